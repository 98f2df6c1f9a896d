// Entry point of gntk_fast._C: registers every kernel family.
#include "common.h"

#include <stdexcept>

PYBIND11_MODULE(_C, m) {
  m.doc() = "gntk_fast compiled CPU kernels (C++17, OpenMP).";
#if defined(__AVX2__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    throw std::runtime_error(
        "gntk_fast._C was built with AVX2/FMA but this CPU lacks them; "
        "rebuild with `pip install . -C cmake.define.GNTK_ARCH=generic`.");
  }
#endif
  gntk::register_build_info(m);
  gntk::register_entk(m);
  gntk::register_masked_matmul(m);
}
