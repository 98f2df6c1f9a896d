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
}  // namespace gntk
