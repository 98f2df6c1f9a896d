// One tile of the masked eNTK layer kernel (see entk.cpp), written once and
// compiled per instruction set: entk.cpp includes this file with
//   ENTK_NS     the namespace of this instance
//   ENTK_VBYTES SIMD vector size in bytes (32: AVX2, 64: AVX-512)
//   ENTK_MV     vectors of inputs a per tile (MA = MV * lanes inputs a)
//   ENTK_NB     inputs b per tile (broadcast side)
// under the matching `#pragma GCC target`.
// No include guard on purpose.

namespace ENTK_NS {

template <typename T>
struct Cfg {
  typedef T V __attribute__((vector_size(ENTK_VBYTES), aligned(ENTK_VBYTES)));
  static constexpr int W = ENTK_VBYTES / static_cast<int>(sizeof(T));
  static constexpr int MV = ENTK_MV;
  static constexpr int MA = W * MV;
  static constexpr int NB = ENTK_NB;
};

// acc (aligned, zeroed by the caller): traced [NB][MA]; full [k][k][NB][MA].
// pa: packed H1 of the a-block, [nc][MA]; pb: packed H2 of the b-block, [nc][NB];
// da: packed D1, [nr][k][MA]; db: packed D2, [nr][k][NB]; CSR rptr/cidx over compacted rows/columns.
template <typename T>
void tile(const T* __restrict pa, const T* __restrict pb, const T* __restrict da, const T* __restrict db,
          const int64_t* rptr, const int32_t* cidx, int64_t nr, int64_t k, bool trace, T* __restrict acc) {
  typedef typename Cfg<T>::V V;
  constexpr int W = Cfg<T>::W, MV = Cfg<T>::MV, MA = Cfg<T>::MA, NB = Cfg<T>::NB;
  V* accv = reinterpret_cast<V*>(acc);
  for (int64_t r = 0; r < nr; ++r) {
    V g[NB][MV];
    for (int b = 0; b < NB; ++b)
      for (int v = 0; v < MV; ++v) g[b][v] = V{};
    const int64_t pend = rptr[r + 1];
    for (int64_t p = rptr[r]; p < pend; ++p) {
      const int64_t jc = cidx[p];
      V a[MV];
      for (int v = 0; v < MV; ++v) a[v] = *reinterpret_cast<const V*>(pa + jc * MA + v * W);
      const T* bj = pb + jc * NB;
#pragma GCC unroll 16
      for (int b = 0; b < NB; ++b) {
        const T s = bj[b];
        for (int v = 0; v < MV; ++v) g[b][v] += a[v] * s;
      }
    }
    const T* dar = da + r * k * MA;
    const T* dbr = db + r * k * NB;
    if (trace) {
      if (k == 1) {
        V d[MV];
        for (int v = 0; v < MV; ++v) d[v] = *reinterpret_cast<const V*>(dar + v * W);
        for (int b = 0; b < NB; ++b)
          for (int v = 0; v < MV; ++v) accv[b * MV + v] += g[b][v] * (d[v] * dbr[b]);
      } else {
        V dt[NB][MV];
        for (int b = 0; b < NB; ++b)
          for (int v = 0; v < MV; ++v) dt[b][v] = V{};
        for (int64_t c = 0; c < k; ++c) {
          V d[MV];
          for (int v = 0; v < MV; ++v) d[v] = *reinterpret_cast<const V*>(dar + c * MA + v * W);
          const T* dbc = dbr + c * NB;
          for (int b = 0; b < NB; ++b)
            for (int v = 0; v < MV; ++v) dt[b][v] += d[v] * dbc[b];
        }
        for (int b = 0; b < NB; ++b)
          for (int v = 0; v < MV; ++v) accv[b * MV + v] += g[b][v] * dt[b][v];
      }
    } else {
      for (int64_t c = 0; c < k; ++c) {
        V q[NB][MV];
        for (int v = 0; v < MV; ++v) {
          const V d = *reinterpret_cast<const V*>(dar + c * MA + v * W);
          for (int b = 0; b < NB; ++b) q[b][v] = g[b][v] * d;
        }
        for (int64_t c2 = 0; c2 < k; ++c2) {
          const T* dbc = dbr + c2 * NB;
          V* av = accv + (c * k + c2) * NB * MV;
          for (int b = 0; b < NB; ++b)
            for (int v = 0; v < MV; ++v) av[b * MV + v] += q[b][v] * dbc[b];
        }
      }
    }
  }
}

}  // namespace ENTK_NS
