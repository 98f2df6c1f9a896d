// Entry point of gntk_fast._C: registers every kernel family.
#include "common.h"

#include <stdexcept>

PYBIND11_MODULE(_C, m) {
  m.doc() = "gntk_fast compiled CPU kernels (C++17, OpenMP).";
#if defined(__AVX2__) && (defined(__x86_64__) || defined(__i386__))
  // only a build for this machine (GNTK_ARCH=native or avx2) assumes AVX2 outside the tile kernels
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    throw std::runtime_error(
        "gntk_fast._C was built with AVX2/FMA for the whole library but this CPU lacks them; "
        "rebuild with the default `pip install .` (portable: the kernels pick their instruction set at run time).");
  }
#endif
  gntk::register_build_info(m);
  gntk::register_entk(m);
  gntk::register_masked_matmul(m);
}
