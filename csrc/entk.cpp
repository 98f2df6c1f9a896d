// Masked empirical-NTK layer kernel (spec graphon-ntk.md sections 1, 2).
//
// For one layer with mask M (n_out x n_in), backward signals D (N, k, n_out)
// and activations H (N, n_in) it computes the *unscaled* bilinear form
//
//   traced: out[a, b]        = sum_{i,j} M_ij (sum_c D1[a,c,i] D2[b,c,i]) H1[a,j] H2[b,j]
//   full:   out[a, b, c, c'] = sum_{i,j} M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j]
//
// without ever forming a Jacobian: work ~ (#pairs) * nnz(M), memory ~ N (n_in + k n_out).
//
// Algorithm (see gntk_fast/ops/entk_layer/cpp.py; timings in bench/results/entk.json):
//  * compaction: columns j with H1[:, j] == 0 or H2[:, j] == 0 and rows i with
//    D1[:, :, i] == 0 or D2[:, :, i] == 0 contribute nothing and are dropped;
//    the kept mask entries of the live rows/columns go into CSR form.
//  * tiles of input pairs: a block of MA inputs a times a block of NB inputs b
//    (AVX2: 2 vectors x 6, AVX-512 chosen at run time: 1 vector x 16; the tile
//    code is entk_tile.h, compiled once per instruction set). Per tile and per live row i the kernel forms the
//    row's sparse Gram block  G_i[a, b] = sum_{j kept in row i} H1[a,j] H2[b,j]
//    as a register-resident outer-product accumulation over the row's kept
//    columns (one vector load of H1[block, j], NB broadcasts of H2[block, j],
//    MV*NB FMAs per kept weight: FMA-bound, no wasted work on pruned weights),
//    then folds it into the output with the row's D:
//      traced: acc[a, b] += G_i[a, b] * sum_c D1[a,c,i] D2[b,c,i]
//      full:   acc[a, b, c, c'] += (G_i[a, b] D1[a,c,i]) * D2[b,c',i]   (k^2 FMAs per row and pair)
//    H and D are packed per block so every access is contiguous (blocks packed in
//    parallel; one packed copy serves both sides when x2 is None and MA == NB).
//  * symmetric case (D2/H2 None): only tiles that hold a pair a <= b are
//    computed; the lower triangle is mirrored afterwards.
//  * tiles are shared out dynamically (an atomic tile counter) to the threads
//    of one OpenMP parallel region (OMP_NUM_THREADS); the GIL is released.
#include "common.h"

#include <pybind11/numpy.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#ifdef GNTK_HAVE_OPENMP
#include <omp.h>
#endif

// ---- the tile microkernel, compiled for the build's baseline (generic), AVX2+FMA and AVX-512
#define ENTK_NS gntk_entk_base
#define ENTK_VBYTES 32
#define ENTK_MV 2
#define ENTK_NB 6
#include "entk_tile.h"
#undef ENTK_NS
#undef ENTK_VBYTES
#undef ENTK_MV
#undef ENTK_NB
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GNTK_ENTK_AVX512 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ENTK_NS gntk_entk_avx2
#define ENTK_VBYTES 32
#define ENTK_MV 2
#define ENTK_NB 6
#include "entk_tile.h"
#undef ENTK_NS
#undef ENTK_VBYTES
#undef ENTK_MV
#undef ENTK_NB
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#define ENTK_NS gntk_entk_avx512
#define ENTK_VBYTES 64
#define ENTK_MV 1
#define ENTK_NB 16
#include "entk_tile.h"
#undef ENTK_NS
#undef ENTK_VBYTES
#undef ENTK_MV
#undef ENTK_NB
#pragma GCC pop_options
#endif

namespace gntk {
namespace {


template <typename T>
struct LayerProblem {
  const T* D1;
  const T* H1;
  const T* D2;
  const T* H2;
  const bool* mask;
  int64_t N1, N2, k, n_out, n_in;
  bool symmetric, trace;
  T* out;
};

// ---- compaction: the kept mask entries of live rows / columns, in CSR form
struct CompactMask {
  std::vector<int32_t> col_of;  // compacted column -> original j
  std::vector<int32_t> row_of;  // compacted row -> original i
  std::vector<int64_t> rowptr{0};
  std::vector<int32_t> colidx;  // compacted column of each kept entry
  int64_t nr() const { return static_cast<int64_t>(row_of.size()); }
  int64_t nc() const { return static_cast<int64_t>(col_of.size()); }
};

// live[j] |= (H[a, j] != 0) for the N rows of H (N, n_in)
template <typename T>
void mark_live_columns(const T* H, int64_t N, int64_t n_in, std::vector<char>& live) {
  for (int64_t a = 0; a < N; ++a) {
    const T* h = H + a * n_in;
    for (int64_t j = 0; j < n_in; ++j) live[j] |= (h[j] != T(0));
  }
}

// live[i] |= (D[a, c, i] != 0) for every input a and output c of D (N, k, n_out)
template <typename T>
void mark_live_rows(const T* D, int64_t N, int64_t k, int64_t n_out, std::vector<char>& live) {
  for (int64_t a = 0; a < N; ++a)
    for (int64_t c = 0; c < k; ++c) {
      const T* d = D + (a * k + c) * n_out;
      for (int64_t i = 0; i < n_out; ++i) live[i] |= (d[i] != T(0));
    }
}

// Columns j with H1[:, j] == 0 or H2[:, j] == 0 and rows i with D1[:, :, i] == 0
// or D2[:, :, i] == 0 contribute nothing: drop them, and rows left empty.
template <typename T>
CompactMask compact_mask(const LayerProblem<T>& P) {
  const int64_t n_out = P.n_out, n_in = P.n_in;
  std::vector<char> col_live1(n_in, 0), col_live2(n_in, 0);
  mark_live_columns(P.H1, P.N1, n_in, col_live1);
  mark_live_columns(P.H2, P.N2, n_in, col_live2);
  CompactMask C;
  std::vector<int32_t> col_new(n_in, -1);
  for (int64_t j = 0; j < n_in; ++j)
    if (col_live1[j] && col_live2[j]) {
      col_new[j] = static_cast<int32_t>(C.col_of.size());
      C.col_of.push_back(static_cast<int32_t>(j));
    }
  std::vector<char> row_live1(n_out, 0), row_live2(n_out, 0);
  mark_live_rows(P.D1, P.N1, P.k, n_out, row_live1);
  mark_live_rows(P.D2, P.N2, P.k, n_out, row_live2);
  for (int64_t i = 0; i < n_out; ++i) {
    if (!(row_live1[i] && row_live2[i])) continue;
    const bool* m = P.mask + i * n_in;
    size_t before = C.colidx.size();
    for (int64_t j = 0; j < n_in; ++j)
      if (m[j] && col_new[j] >= 0) C.colidx.push_back(col_new[j]);
    if (C.colidx.size() == before) continue;  // empty row after compaction
    C.row_of.push_back(static_cast<int32_t>(i));
    C.rowptr.push_back(static_cast<int64_t>(C.colidx.size()));
  }
  return C;
}

// ---- packing: one side's inputs in blocks of W, every access contiguous:
// Pk[blk][jc][t] = H[a, col_of[jc]], Dk[blk][r][c][t] = D[a, c, row_of[r]] with a = blk * W + t
// (zero for a >= N). The loops write each block sequentially (the reads walk W * k rows of D
// together) and blocks are packed in parallel: for k > 1 the D blocks are k times H's size.
template <typename T>
void pack_side(const T* H, const T* D, int64_t N, int64_t k, int64_t n_out, int64_t n_in, int64_t W, int64_t nblk,
               const CompactMask& C, int nthreads, T* Pk, T* Dk) {
  const int64_t nc = C.nc(), nr = C.nr();
  const int32_t* col_of = C.col_of.data();
  const int32_t* row_of = C.row_of.data();
#ifdef GNTK_HAVE_OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
  for (int64_t blk = 0; blk < nblk; ++blk) {
    T* pp = Pk + blk * nc * W;
    T* dd = Dk + blk * nr * k * W;
    const int64_t nt = std::min<int64_t>(W, N - blk * W);
    for (int64_t jc = 0; jc < nc; ++jc) {
      const T* h = H + blk * W * n_in + col_of[jc];
      for (int64_t t = 0; t < nt; ++t) pp[jc * W + t] = h[t * n_in];
    }
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t c = 0; c < k; ++c) {
        const T* d = D + (blk * W * k + c) * n_out + row_of[r];
        T* o = dd + (r * k + c) * W;
        for (int64_t t = 0; t < nt; ++t) o[t] = d[t * k * n_out];
      }
  }
}

// ---- the (ia, ib) tiles of MA x NB input pairs to compute (symmetric: those holding a pair a <= b)
std::vector<std::pair<int32_t, int32_t>> list_tiles(int64_t nA, int64_t nB, int64_t MA, int64_t NB, bool symmetric) {
  std::vector<std::pair<int32_t, int32_t>> tiles;
  for (int64_t ia = 0; ia < nA; ++ia)
    for (int64_t ib = 0; ib < nB; ++ib) {
      if (symmetric && ia * MA > ib * NB + NB - 1) continue;  // no pair a <= b in this tile
      tiles.emplace_back(static_cast<int32_t>(ia), static_cast<int32_t>(ib));
    }
  return tiles;
}

// copy a finished tile accumulator (layout acc[((c k + c') NB + b) MA + u]) into the output
template <typename T, int MA, int NB>
void write_tile(const LayerProblem<T>& P, const T* acc, int64_t ia, int64_t ib) {
  const int64_t N1 = P.N1, N2 = P.N2, k = P.k;
  for (int b = 0; b < NB; ++b) {
    const int64_t bg = ib * NB + b;
    if (bg >= N2) break;
    for (int u = 0; u < MA; ++u) {
      const int64_t ag = ia * MA + u;
      if (ag >= N1) break;
      if (P.trace) {
        P.out[ag * N2 + bg] = acc[b * MA + u];
      } else {
        T* o = P.out + (ag * N2 + bg) * k * k;
        for (int64_t c = 0; c < k; ++c)
          for (int64_t c2 = 0; c2 < k; ++c2) o[c * k + c2] = acc[((c * k + c2) * NB + b) * MA + u];
      }
    }
  }
}

// Every pair a <= b was computed; mirror it onto a > b. In full mode the
// diagonal blocks (a, a) are k x k matrices that must be symmetric too: their
// (c, c') and (c', c) entries were rounded differently, average them.
template <typename T>
void mirror_lower(const LayerProblem<T>& P) {
  const int64_t N1 = P.N1, N2 = P.N2, k = P.k;
  if (!P.trace)
    for (int64_t a = 0; a < N1; ++a) {
      T* o = P.out + (a * N2 + a) * k * k;
      for (int64_t c = 0; c < k; ++c)
        for (int64_t c2 = c + 1; c2 < k; ++c2) {
          const T v = T(0.5) * (o[c * k + c2] + o[c2 * k + c]);
          o[c * k + c2] = o[c2 * k + c] = v;
        }
    }
  for (int64_t a = 1; a < N1; ++a)
    for (int64_t b = 0; b < a; ++b) {
      if (P.trace) {
        P.out[a * N2 + b] = P.out[b * N2 + a];
      } else {
        T* dst = P.out + (a * N2 + b) * k * k;
        const T* src = P.out + (b * N2 + a) * k * k;
        for (int64_t c = 0; c < k; ++c)
          for (int64_t c2 = 0; c2 < k; ++c2) dst[c * k + c2] = src[c2 * k + c];
      }
    }
}

template <typename T>
using TileFn = void (*)(const T*, const T*, const T*, const T*, const int64_t*, const int32_t*, int64_t, int64_t,
                        bool, T*);

template <typename T, int MA, int NB>
void run_layer(const LayerProblem<T>& P, TileFn<T> tile) {
  const int64_t N1 = P.N1, N2 = P.N2, k = P.k;
  const CompactMask C = compact_mask(P);
  const int64_t nc = C.nc(), nr = C.nr();
  const int64_t out_per_pair = P.trace ? 1 : k * k;
  if (nr == 0 || nc == 0) {
    std::fill(P.out, P.out + N1 * N2 * out_per_pair, T(0));
    return;
  }
  const int64_t nA = (N1 + MA - 1) / MA, nB = (N2 + NB - 1) / NB;
  const auto tiles = list_tiles(nA, nB, MA, NB, P.symmetric);
  const int64_t ntiles = static_cast<int64_t>(tiles.size());
  const double work = double(ntiles) * MA * NB * double(C.colidx.size() + nr * k * (P.trace ? 1 : k));
  const int nthreads = work < 4e6 ? 1 : std::max(1, std::min<int>(max_threads(), static_cast<int>(ntiles)));
  const int pack_threads = double(N1 + N2) * double(nc + nr * k) < 1e6 ? 1 : max_threads();
  // symmetric with MA == NB: both sides are the same packed arrays
  const bool share = P.symmetric && MA == NB;
  auto PA = aligned_zeros<T>(static_cast<size_t>(nA * nc * MA));
  auto DA = aligned_zeros<T>(static_cast<size_t>(nA * nr * k * MA));
  pack_side(P.H1, P.D1, N1, k, P.n_out, P.n_in, MA, nA, C, pack_threads, PA.get(), DA.get());
  auto PBo = aligned_zeros<T>(share ? 0 : static_cast<size_t>(nB * nc * NB));
  auto DBo = aligned_zeros<T>(share ? 0 : static_cast<size_t>(nB * nr * k * NB));
  if (!share) pack_side(P.H2, P.D2, N2, k, P.n_out, P.n_in, NB, nB, C, pack_threads, PBo.get(), DBo.get());
  const T* PB = share ? PA.get() : PBo.get();
  const T* DB = share ? DA.get() : DBo.get();

  // Worker: pulls tiles from a shared counter; every thread of the OpenMP
  // region below runs it (OpenMP's persistent pool beats a per-call
  // std::thread pool). On an oversubscribed machine OpenMP's spin-waiting can
  // cost far more; there set OMP_WAIT_POLICY=passive (see bench/README.md).
  std::atomic<int64_t> next{0};
  auto worker = [&]() {
    auto accbuf = aligned_zeros<T>(static_cast<size_t>(NB * MA * out_per_pair));
    for (;;) {
      const int64_t t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntiles) break;
      const int64_t ia = tiles[t].first, ib = tiles[t].second;
      T* acc = accbuf.get();
      std::memset(acc, 0, sizeof(T) * NB * MA * out_per_pair);
      tile(PA.get() + ia * nc * MA, PB + ib * nc * NB, DA.get() + ia * nr * k * MA, DB + ib * nr * k * NB, C.rowptr.data(), C.colidx.data(), nr, k, P.trace, acc);
      write_tile<T, MA, NB>(P, acc, ia, ib);
    }
  };
#ifdef GNTK_HAVE_OPENMP
#pragma omp parallel num_threads(nthreads)
  worker();
#else
  (void)nthreads;
  worker();
#endif
  if (P.symmetric) mirror_lower(P);
}

}  // namespace

Isa tile_isa() {
#ifdef GNTK_ENTK_AVX512
  static const Isa isa = [] {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512dq");
    Isa best = avx512 ? Isa::avx512 : (avx2 ? Isa::avx2 : Isa::generic);
    const char* env = std::getenv("GNTK_ENTK_ISA");  // a lower instruction set on request (benchmarks, tests)
    if (env && std::string(env) == "avx2" && best == Isa::avx512) best = Isa::avx2;
    if (env && std::string(env) == "generic") best = Isa::generic;
    return best;
  }();
  return isa;
#else
  return Isa::generic;
#endif
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

namespace {

const char* entk_isa_name() { return isa_name(tile_isa()); }

template <typename T>
py::array run_typed(py::array D1, py::array H1, py::array D2, py::array H2, py::array mask, bool symmetric,
                    bool trace) {
  LayerProblem<T> P;
  P.N1 = D1.shape(0);
  P.k = D1.shape(1);
  P.n_out = D1.shape(2);
  P.n_in = H1.shape(1);
  P.N2 = D2.shape(0);
  P.symmetric = symmetric;
  P.trace = trace;
  P.D1 = static_cast<const T*>(D1.data());
  P.H1 = static_cast<const T*>(H1.data());
  P.D2 = static_cast<const T*>(D2.data());
  P.H2 = static_cast<const T*>(H2.data());
  P.mask = static_cast<const bool*>(mask.data());
  std::vector<py::ssize_t> shape = {P.N1, P.N2};
  if (!trace) {
    shape.push_back(P.k);
    shape.push_back(P.k);
  }
  py::array_t<T> out(shape);
  P.out = static_cast<T*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    switch (tile_isa()) {
#ifdef GNTK_ENTK_AVX512
      case Isa::avx512:
        run_layer<T, gntk_entk_avx512::Cfg<T>::MA, gntk_entk_avx512::Cfg<T>::NB>(P, &gntk_entk_avx512::tile<T>);
        break;
      case Isa::avx2:
        run_layer<T, gntk_entk_avx2::Cfg<T>::MA, gntk_entk_avx2::Cfg<T>::NB>(P, &gntk_entk_avx2::tile<T>);
        break;
#endif
      default:
        run_layer<T, gntk_entk_base::Cfg<T>::MA, gntk_entk_base::Cfg<T>::NB>(P, &gntk_entk_base::tile<T>);
    }
  }
  return std::move(out);
}

py::array entk_masked_layer(py::array D1, py::array H1, py::object D2o, py::object H2o, py::array mask, bool trace) {
  const bool symmetric = D2o.is_none() && H2o.is_none();
  require(D2o.is_none() == H2o.is_none(), "D2 and H2 must both be given or both be None");
  py::array D2 = symmetric ? D1 : py::array(D2o);
  py::array H2 = symmetric ? H1 : py::array(H2o);
  require(D1.ndim() == 3, "D1 must have 3 dimensions (N1, k, n_out); got shape " + shape_str(D1));
  require(H1.ndim() == 2, "H1 must have 2 dimensions (N1, n_in); got shape " + shape_str(H1));
  require(D2.ndim() == 3, "D2 must have 3 dimensions (N2, k, n_out); got shape " + shape_str(D2));
  require(H2.ndim() == 2, "H2 must have 2 dimensions (N2, n_in); got shape " + shape_str(H2));
  require(mask.ndim() == 2, "mask must have 2 dimensions (n_out, n_in); got shape " + shape_str(mask));
  const auto N1 = D1.shape(0), k = D1.shape(1), n_out = D1.shape(2), n_in = H1.shape(1), N2 = D2.shape(0);
  require(H1.shape(0) == N1, "H1 must have N1 = " + std::to_string(N1) + " rows like D1; got shape " + shape_str(H1));
  require(H2.shape(0) == N2, "H2 must have N2 = " + std::to_string(N2) + " rows like D2; got shape " + shape_str(H2));
  require(D2.shape(1) == k && D2.shape(2) == n_out,
          "D2 must have shape (N2, " + std::to_string(k) + ", " + std::to_string(n_out) + ") like D1; got " + shape_str(D2));
  require(H2.shape(1) == n_in, "H2 must have n_in = " + std::to_string(n_in) + " columns like H1; got shape " + shape_str(H2));
  require(mask.shape(0) == n_out && mask.shape(1) == n_in,
          "mask must have shape (" + std::to_string(n_out) + ", " + std::to_string(n_in) + ") = (n_out, n_in); got " +
              shape_str(mask));
  require(N1 > 0 && N2 > 0 && k > 0, "D1/D2 must be non-empty; got N1=" + std::to_string(N1) + ", N2=" +
                                         std::to_string(N2) + ", k=" + std::to_string(k));
  require(mask.dtype().kind() == 'b', "mask must have dtype bool");
  const py::array* arrs[5] = {&D1, &H1, &D2, &H2, &mask};
  const char* names[5] = {"D1", "H1", "D2", "H2", "mask"};
  for (int i = 0; i < 5; ++i)
    require((arrs[i]->flags() & py::array::c_style) != 0, std::string(names[i]) + " must be C-contiguous");
  const bool f32 = D1.dtype().is(py::dtype::of<float>());
  const bool f64 = D1.dtype().is(py::dtype::of<double>());
  require(f32 || f64, "D1 must have dtype float32 or float64");
  for (int i = 1; i < 4; ++i)
    require(arrs[i]->dtype().is(D1.dtype()), std::string(names[i]) + " must have the same dtype as D1 (" +
                                                  std::string(f32 ? "float32" : "float64") + ")");
  if (f32) return run_typed<float>(D1, H1, D2, H2, mask, symmetric, trace);
  return run_typed<double>(D1, H1, D2, H2, mask, symmetric, trace);
}

}  // namespace

void register_entk(py::module_& m) {
  m.def(
      "entk_isa", []() { return std::string(entk_isa_name()); },
      "The instruction set of the tile kernels (entk_masked_layer, masked_backward), chosen at run time: "
      "'avx512' (16-wide tiles) when the CPU has AVX-512F/VL/DQ, else 'avx2' (AVX2+FMA), else 'generic' "
      "(the build's baseline); GNTK_ENTK_ISA=avx2 or generic asks for a lower one.");
  m.def("entk_masked_layer", &entk_masked_layer, py::arg("D1"), py::arg("H1"), py::arg("D2"), py::arg("H2"),
        py::arg("mask"), py::arg("trace") = true,
        "Unscaled masked eNTK layer term. D1 (N1, k, n_out), H1 (N1, n_in), D2/H2 the same for the second set "
        "or None (= the first set, symmetric), mask (n_out, n_in) bool; all C-contiguous, float32 or float64. "
        "Returns (N1, N2) when trace else (N1, N2, k, k): "
        "sum_ij M_ij D1[a,c,i] D2[b,c',i] H1[a,j] H2[b,j] (summed over c = c' when traced).");
}

}  // namespace gntk
