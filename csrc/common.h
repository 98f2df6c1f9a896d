// Shared declarations of the gntk_fast C++ extension.
// Each kernel family lives in its own .cpp file and exposes a
// `register_<family>(pybind11::module_&)` function that module.cpp calls.
#pragma once
#include <pybind11/pybind11.h>

namespace gntk {
namespace py = pybind11;

// Number of OpenMP threads the kernels will use (1 without OpenMP).
int max_threads();

void register_build_info(py::module_& m);
// Masked empirical-NTK layer kernel (entk.cpp).
void register_entk(py::module_& m);
// True when the tile kernels run their AVX-512 instances: the CPU has AVX-512F/VL/DQ
// and GNTK_ENTK_ISA is not "avx2" (decided once per process, entk.cpp).
bool entk_use_avx512();
// Masked backward product of the eNTK's backward pass (masked_matmul.cpp).
void register_masked_matmul(py::module_& m);
}  // namespace gntk
