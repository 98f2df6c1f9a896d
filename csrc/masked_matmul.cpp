// Masked backward product of the eNTK's explicit backward pass
// (gntk_fast/ntk/empirical.py, forward_backward):
//
//   Y[r, j] = (sum_{i : M[i, j]} X[r, i] W[i, j]) * G[r / k, j]      X (R, n_out), W, M (n_out, n_in), G (R / k, n_in)
//
// i.e. (X @ (W * M)) scaled by the activation derivative of the input each row
// belongs to (rows r = a k + c: input a, output c). Work ~ R * nnz(M) instead of
// the dense GEMM's R * n_out * n_in: the kept weights go to compressed columns
// (CSC), and for a block of RB rows the kernel transposes X's block once
// (xt[i][t], contiguous per weight row i) and forms each output column j as a
// register-resident sum over the column's kept weights: one broadcast of W[i, j]
// and RB / lanes FMAs on contiguous loads per kept weight. Blocks of rows are
// shared out to OpenMP threads; the GIL is released.
#include "common.h"

#include <pybind11/numpy.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#define MM_NS gntk_mm_base
#define MM_VBYTES 32
#define MM_NV 8
#include "masked_matmul_tile.h"
#undef MM_NS
#undef MM_VBYTES
#undef MM_NV
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GNTK_MM_AVX512 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define MM_NS gntk_mm_avx2
#define MM_VBYTES 32
#define MM_NV 8
#include "masked_matmul_tile.h"
#undef MM_NS
#undef MM_VBYTES
#undef MM_NV
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#define MM_NS gntk_mm_avx512
#define MM_VBYTES 64
#define MM_NV 8
#include "masked_matmul_tile.h"
#undef MM_NS
#undef MM_VBYTES
#undef MM_NV
#pragma GCC pop_options
#endif

namespace gntk {
namespace {

// The kept weights of W * M by chunk of IC weight rows, then by column: chunk q, column j holds
// rows rowidx[colptr[q (n_in + 1) + j] .. colptr[q (n_in + 1) + j + 1]) (increasing, chunk-local)
// and values val[...] = W[i, j]. Each chunk is followed by one unused slot (see to_chunked_csc).
template <typename T>
struct ChunkedCsc {
  int64_t nq = 0, n_in = 0;
  std::vector<int64_t> colptr;
  std::vector<int32_t> rowidx;
  std::vector<T> val;
  const int64_t* cols(int64_t q) const { return colptr.data() + q * (n_in + 1); }
};

// Two passes, both parallel over chunks: the kept count of each chunk (a row-major sum of
// the mask), then a branch-free column-wise fill: every position (i, j) of the chunk is
// written at the chunk's cursor, which advances only when M[i, j] (so the last write of a
// chunk may land on its unused slot, never on the next chunk).
template <typename T>
ChunkedCsc<T> to_chunked_csc(const T* W, const bool* M, int64_t n_out, int64_t n_in, int64_t IC, int nthreads) {
  ChunkedCsc<T> C;
  const int64_t nq = (n_out + IC - 1) / IC;
  C.nq = nq;
  C.n_in = n_in;
  C.colptr.assign(nq * (n_in + 1), 0);
  std::vector<int64_t> start(nq + 1, 0);
#ifdef GNTK_HAVE_OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
  for (int64_t q = 0; q < nq; ++q) {
    int64_t cnt = 0;
    const unsigned char* m = reinterpret_cast<const unsigned char*>(M + q * IC * n_in);
    const int64_t n = (std::min(n_out, (q + 1) * IC) - q * IC) * n_in;
    for (int64_t e = 0; e < n; ++e) cnt += m[e];
    start[q + 1] = cnt + 1;  // + the unused slot
  }
  for (int64_t q = 0; q < nq; ++q) start[q + 1] += start[q];
  C.rowidx.resize(start[nq]);
  C.val.resize(start[nq]);
#ifdef GNTK_HAVE_OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
  for (int64_t q = 0; q < nq; ++q) {
    const int64_t i0 = q * IC, i1 = std::min(n_out, (q + 1) * IC);
    int64_t* cp = C.colptr.data() + q * (n_in + 1);
    int32_t* ri = C.rowidx.data();
    T* va = C.val.data();
    int64_t p = start[q];
    cp[0] = p;
    for (int64_t j = 0; j < n_in; ++j) {
      for (int64_t i = i0; i < i1; ++i) {
        ri[p] = static_cast<int32_t>(i - i0);
        va[p] = W[i * n_in + j];
        p += M[i * n_in + j];
      }
      cp[j + 1] = p;
    }
  }
  return C;
}

template <typename T>
using BlockFn = void (*)(const T*, const int64_t*, const int32_t*, const T*, int64_t, bool, T*);

// Chunks of IC weight rows: IC * RB numbers of the transposed block (32 KiB) stay in L1
// while a chunk's kept weights are applied to every column.
template <typename T, int RB>
void run_matmul(const T* X, const T* W, const bool* M, const T* G, int64_t R, int64_t k, int64_t n_out,
                int64_t n_in, T* Y, BlockFn<T> block) {
  constexpr int64_t IC = std::max<int64_t>(8, 32768 / (RB * static_cast<int64_t>(sizeof(T))));
  const int64_t nblk = (R + RB - 1) / RB;
  const int csc_threads = n_out * n_in < (1 << 18) ? 1 : max_threads();
  const ChunkedCsc<T> C = to_chunked_csc(W, M, n_out, n_in, IC, csc_threads);
  const double work = double(R) * double(C.rowidx.size() - C.nq);
  const int nthreads = work < 2e6 ? 1 : std::max(1, std::min<int>(max_threads(), static_cast<int>(nblk)));
#ifdef GNTK_HAVE_OPENMP
#pragma omp parallel num_threads(nthreads)
#endif
  {
    auto xt = aligned_zeros<T>(static_cast<size_t>(C.nq * IC * RB));
    auto yt = aligned_zeros<T>(static_cast<size_t>(n_in * RB));
#ifdef GNTK_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (int64_t b = 0; b < nblk; ++b) {
      const int64_t r0 = b * RB, nrows = std::min<int64_t>(RB, R - r0);
      if (nrows < RB) std::memset(xt.get(), 0, sizeof(T) * C.nq * IC * RB);
      for (int64_t i0 = 0; i0 < n_out; i0 += 16) {  // xt[i][t] = X[r0 + t, i], 16 weight rows at a time
        const int64_t i1 = std::min<int64_t>(n_out, i0 + 16);
        for (int64_t t = 0; t < nrows; ++t) {
          const T* x = X + (r0 + t) * n_out;
          for (int64_t i = i0; i < i1; ++i) xt[i * RB + t] = x[i];
        }
      }
      for (int64_t q = 0; q < C.nq; ++q)
        block(xt.get() + q * IC * RB, C.cols(q), C.rowidx.data(), C.val.data(), n_in, q == 0, yt.get());
      for (int64_t j0 = 0; j0 < n_in; j0 += 16) {  // Y[r0 + t, j] = yt[j][t] * G[(r0 + t) / k, j]
        const int64_t j1 = std::min<int64_t>(n_in, j0 + 16);
        for (int64_t t = 0; t < nrows; ++t) {
          T* y = Y + (r0 + t) * n_in;
          const T* g = G ? G + ((r0 + t) / k) * n_in : nullptr;
          if (g)
            for (int64_t j = j0; j < j1; ++j) y[j] = yt[j * RB + t] * g[j];
          else
            for (int64_t j = j0; j < j1; ++j) y[j] = yt[j * RB + t];
        }
      }
    }
  }
  (void)nthreads;
}

template <typename T>
py::array run_typed(py::array X, py::array W, py::array M, py::object Go, int64_t k) {
  const int64_t R = X.shape(0), n_out = X.shape(1), n_in = W.shape(1);
  py::array_t<T> Y({static_cast<py::ssize_t>(R), static_cast<py::ssize_t>(n_in)});
  const T* G = Go.is_none() ? nullptr : static_cast<const T*>(py::array(Go).data());
  const T* x = static_cast<const T*>(X.data());
  const T* w = static_cast<const T*>(W.data());
  const bool* m = static_cast<const bool*>(M.data());
  T* y = static_cast<T*>(Y.mutable_data());
  {
    py::gil_scoped_release release;
    switch (tile_isa()) {
#ifdef GNTK_MM_AVX512
      case Isa::avx512:
        run_matmul<T, gntk_mm_avx512::Cfg<T>::RB>(x, w, m, G, R, k, n_out, n_in, y, &gntk_mm_avx512::block<T>);
        break;
      case Isa::avx2:
        run_matmul<T, gntk_mm_avx2::Cfg<T>::RB>(x, w, m, G, R, k, n_out, n_in, y, &gntk_mm_avx2::block<T>);
        break;
#endif
      default:
        run_matmul<T, gntk_mm_base::Cfg<T>::RB>(x, w, m, G, R, k, n_out, n_in, y, &gntk_mm_base::block<T>);
    }
  }
  return std::move(Y);
}

py::array masked_backward(py::array X, py::array W, py::array M, py::object Go, int64_t k) {
  require(X.ndim() == 2, "X must have 2 dimensions (R, n_out); got shape " + shape_str(X));
  require(W.ndim() == 2, "W must have 2 dimensions (n_out, n_in); got shape " + shape_str(W));
  require(M.ndim() == 2 && M.shape(0) == W.shape(0) && M.shape(1) == W.shape(1),
          "mask must have W's shape " + shape_str(W) + "; got " + shape_str(M));
  require(X.shape(1) == W.shape(0),
          "X must have n_out = " + std::to_string(W.shape(0)) + " columns like W's rows; got shape " + shape_str(X));
  require(k >= 1 && X.shape(0) % k == 0,
          "k must be >= 1 and divide X's " + std::to_string(X.shape(0)) + " rows; got k=" + std::to_string(k));
  require(M.dtype().kind() == 'b', "mask must have dtype bool");
  const bool f32 = X.dtype().is(py::dtype::of<float>());
  require(f32 || X.dtype().is(py::dtype::of<double>()), "X must have dtype float32 or float64");
  require(W.dtype().is(X.dtype()), "W must have X's dtype");
  require((X.flags() & py::array::c_style) && (W.flags() & py::array::c_style) && (M.flags() & py::array::c_style),
          "X, W and mask must be C-contiguous");
  if (!Go.is_none()) {
    py::array G(Go);
    require(G.ndim() == 2 && G.shape(0) == X.shape(0) / k && G.shape(1) == W.shape(1),
            "G must have shape (" + std::to_string(X.shape(0) / k) + ", " + std::to_string(W.shape(1)) +
                ") = (R / k, n_in); got " + shape_str(G));
    require(G.dtype().is(X.dtype()) && (G.flags() & py::array::c_style) != 0,
            "G must be C-contiguous with X's dtype");
  }
  return f32 ? run_typed<float>(X, W, M, Go, k) : run_typed<double>(X, W, M, Go, k);
}

}  // namespace

void register_masked_matmul(py::module_& m) {
  m.def("masked_backward", &masked_backward, py::arg("X"), py::arg("W"), py::arg("mask"), py::arg("G") = py::none(),
        py::arg("k") = 1,
        "Y = (X @ (W * mask)) * G[r // k] for X (R, n_out), W (n_out, n_in) float, mask (n_out, n_in) bool, "
        "G (R // k, n_in) or None (no scaling): one step of the eNTK's explicit backward pass; work "
        "~ R * nnz(mask). All C-contiguous, float32 or float64 (one dtype). Returns Y (R, n_in).");
}

}  // namespace gntk
