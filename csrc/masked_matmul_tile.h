// The inner loop of the masked backward product (see masked_matmul.cpp),
// written once and compiled per instruction set: masked_matmul.cpp includes
// this file with
//   MM_NS     the namespace of this instance
//   MM_VBYTES SIMD vector size in bytes (32: AVX2, 64: AVX-512)
//   MM_NV     vector accumulators per column (RB = MM_NV * lanes rows)
// under the matching `#pragma GCC target`.
// No include guard on purpose.

namespace MM_NS {

template <typename T>
struct Cfg {
  typedef T V __attribute__((vector_size(MM_VBYTES), aligned(MM_VBYTES)));
  static constexpr int W = MM_VBYTES / static_cast<int>(sizeof(T));
  static constexpr int NV = MM_NV;
  static constexpr int RB = W * NV;
};

// One block of RB rows and one chunk of weight rows: for every column j < n_cols
//   yt[j][t] (=, or += unless `first`) sum_{p in column j} val[p] * xt[rowidx[p]][t]
// xt (aligned): the chunk's weight rows of the block, transposed, [rows][RB]; yt (aligned): [n_cols][RB].
template <typename T>
void block(const T* __restrict xt, const int64_t* colptr, const int32_t* rowidx, const T* __restrict val,
           int64_t n_cols, bool first, T* __restrict yt) {
  typedef typename Cfg<T>::V V;
  constexpr int NV = Cfg<T>::NV, RB = Cfg<T>::RB;
  for (int64_t j = 0; j < n_cols; ++j) {
    V* y = reinterpret_cast<V*>(yt + j * RB);
    V acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = first ? V{} : y[v];
    const int64_t pend = colptr[j + 1];
    for (int64_t p = colptr[j]; p < pend; ++p) {
      const T w = val[p];
      const V* x = reinterpret_cast<const V*>(xt + static_cast<int64_t>(rowidx[p]) * RB);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[v] += x[v] * w;
    }
    for (int v = 0; v < NV; ++v) y[v] = acc[v];
  }
}

}  // namespace MM_NS
