// Shared declarations of the gntk_fast C++ extension.
// Each kernel family lives in its own .cpp file and exposes a
// `register_<family>(pybind11::module_&)` function that module.cpp calls.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace gntk {
namespace py = pybind11;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// n zeroed elements of T, 64-byte aligned (for the SIMD tiles), freed with std::free.
template <typename T>
std::unique_ptr<T[], AlignedFree> aligned_zeros(size_t n) {
  const size_t bytes = std::max<size_t>(64, ((n * sizeof(T) + 63) / 64) * 64);
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return std::unique_ptr<T[], AlignedFree>(static_cast<T*>(p));
}

// "(d0, d1, ...)" for error messages.
inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Argument check: std::invalid_argument (Python ValueError) with `msg` unless ok.
inline void require(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

// Number of OpenMP threads the kernels will use (1 without OpenMP).
int max_threads();

void register_build_info(py::module_& m);
// Masked empirical-NTK layer kernel (entk.cpp).
void register_entk(py::module_& m);
// The instruction set the tile kernels run, chosen once per process (entk.cpp): every
// kernel is compiled for all three (per-function `#pragma GCC target`, no global -mavx2),
// and the best the CPU supports is used: AVX-512F/VL/DQ, else AVX2+FMA, else the
// generic build. GNTK_ENTK_ISA=avx2 or =generic asks for a lower one (tests, benchmarks).
enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };
Isa tile_isa();
const char* isa_name(Isa isa);
// Masked backward product of the eNTK's backward pass (masked_matmul.cpp).
void register_masked_matmul(py::module_& m);
}  // namespace gntk
