// build_info(): how this extension was compiled and what the CPU offers.
#include "common.h"

#include <initializer_list>
#include <string>
#ifdef GNTK_HAVE_OPENMP
#include <omp.h>
#endif

namespace gntk {

int max_threads() {
#ifdef GNTK_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

static bool cpu_has(const char* feature) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (std::string(feature) == "avx2") return __builtin_cpu_supports("avx2");
  if (std::string(feature) == "fma") return __builtin_cpu_supports("fma");
  if (std::string(feature) == "avx512f") return __builtin_cpu_supports("avx512f");
  if (std::string(feature) == "avx512vl") return __builtin_cpu_supports("avx512vl");
  if (std::string(feature) == "avx512dq") return __builtin_cpu_supports("avx512dq");
#endif
  return false;
}

void register_build_info(py::module_& m) {
  m.def(
      "build_info",
      []() {
        py::dict d;
        d["compiler"] = GNTK_COMPILER;
        d["build_type"] = GNTK_BUILD_TYPE;
        d["flags"] = GNTK_CXX_FLAGS;
        d["cplusplus"] = static_cast<long>(__cplusplus);
#ifdef __AVX2__
        d["simd"] = "avx2+fma";  // the baseline of the whole build
#else
        d["simd"] = "generic";
#endif
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        d["tile_isas"] = "avx512,avx2,generic";  // compiled in; tile_isa() picks one at run time
#else
        d["tile_isas"] = "generic";
#endif
        d["tile_isa"] = isa_name(tile_isa());
#ifdef GNTK_HAVE_OPENMP
        d["openmp"] = true;
        d["openmp_version"] = static_cast<long>(_OPENMP);
#else
        d["openmp"] = false;
        d["openmp_version"] = 0L;
#endif
        d["threads"] = max_threads();
        py::dict cpu;
        cpu["avx2"] = cpu_has("avx2");
        cpu["fma"] = cpu_has("fma");
        for (const char* f : {"avx512f", "avx512vl", "avx512dq"}) cpu[f] = cpu_has(f);
        d["cpu"] = cpu;
        return d;
      },
      "Return a dict describing the build: compiler, build_type, flags, simd, "
      "openmp (bool), openmp_version, threads (OpenMP max threads) and the "
      "CPU's features (cpu: avx2, fma, avx512f, avx512vl, avx512dq).");
  m.def("max_threads", &max_threads, "OpenMP max threads (1 without OpenMP).");
}

}  // namespace gntk
