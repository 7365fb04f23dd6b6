//===- KernelsAvx512Vnni.cpp - AVX512-VNNI INT8 kernel -------------------===//
//
// INT8: _mm512_dpbusd_epi32 (u8 activations x s8 weights, int32 sums per
// 128-element activation block, then fp32). Its own translation unit so
// that only this code is compiled for VNNI. Tiles: 4 rows x up to 4 tokens.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#include <algorithm>

#define KT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

namespace kt::kernels::detail {
namespace {

#include "RowsDriver.inc"

struct Int8 {
  template <int RB, int TB>
  KT_TARGET static inline void block(const PackedMatrix &w, int r,
                                     const ActRows &a, const int *idx,
                                     float *res) {
    const int P = w.paddedCols;
    const int8_t *wr = &w.q8[static_cast<std::size_t>(r) * P];
    const uint8_t *x[TB];
    for (int tb = 0; tb < TB; ++tb)
      x[tb] = a.u8 + static_cast<std::size_t>(idx[tb]) * a.stride;
    const int NB = P / kActBlock;
    const float *xs[TB];
    for (int tb = 0; tb < TB; ++tb)
      xs[tb] = a.scale + static_cast<std::size_t>(idx[tb]) * (a.stride / kActBlock);
    __m512 facc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        facc[rb][tb] = _mm512_setzero_ps();
    for (int b = 0; b < NB; ++b) {
    __m512i acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm512_setzero_si512();
    for (int k = b * kActBlock; k < (b + 1) * kActBlock; k += 64) {
      __m512i xv[TB];
      for (int tb = 0; tb < TB; ++tb)
        xv[tb] = _mm512_loadu_si512(x[tb] + k);
      for (int rb = 0; rb < RB; ++rb) // next tile's rows, one line each
        _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * P + k),
                     _MM_HINT_T0);
      for (int rb = 0; rb < RB; ++rb) {
        __m512i wv = _mm512_loadu_si512(wr + rb * P + k);
        for (int tb = 0; tb < TB; ++tb)
          acc[rb][tb] = _mm512_dpbusd_epi32(acc[rb][tb], xv[tb], wv);
      }
    }
    for (int tb = 0; tb < TB; ++tb) {
      __m512 s = _mm512_set1_ps(xs[tb][b]);
      for (int rb = 0; rb < RB; ++rb)
        facc[rb][tb] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[rb][tb]), s, facc[rb][tb]);
    }
    }
    // The u8 activations carry +128: subtract 128 * sum_b scale_b * rowSum_b.
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb) {
        const int32_t *rs = &w.rowSum[static_cast<std::size_t>(r + rb) * NB];
        float off = 0;
        for (int b = 0; b < NB; ++b)
          off += xs[tb][b] * static_cast<float>(rs[b]);
        res[tb * RB + rb] =
            (_mm512_reduce_add_ps(facc[rb][tb]) - 128.f * off) * w.scales[r + rb];
      }
  }
};

KT_TARGET void int8Rows(const PackedMatrix &w, int r0, int r1,
                        const ActRows &a, const int *idx, int n, float *out,
                        int outStride) {
  rowsKernel<Int8, 4>(w, r0, r1, a, idx, n, out, outStride);
}
/// The broadcast panel kernel (PanelStrips.inc) on the INT8 tile layout: a
/// tile row holds 4 input elements of 16 weight rows; the token's 4 u8
/// activations are broadcast and vpdpbusd adds the 4 products per row.
struct Int8PanelDot {
  using Acc = __m512i;
  using Out = int32_t;
  KT_TARGET static inline __m512i zero() { return _mm512_setzero_si512(); }
  KT_TARGET static inline __m512i step(__m512i acc, __m512i a, __m512i w) {
    return _mm512_dpbusd_epi32(acc, a, w);
  }
  KT_TARGET static inline void store(int32_t *c, __m512i acc) {
    _mm512_storeu_si512(c, acc);
  }
};

#include "PanelStrips.inc"

} // namespace

RowsKernel avx512VnniInt8Kernel() { return int8Rows; }

PanelKernel vnniInt8Panel() {
  return {broadcastPanel<Int8PanelDot>, true, true, avx512Epilogue()};
}

} // namespace kt::kernels::detail
