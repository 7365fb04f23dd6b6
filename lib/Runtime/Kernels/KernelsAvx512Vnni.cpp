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
/// Panel micro-kernel on the tile layout: a weight tile row (64 bytes = 4
/// input elements of 16 weight rows, VNNI order) is one zmm, the 4 matching
/// u8 activations of a token are broadcast, so vpdpbusd accumulates 16 weight
/// rows of one token per instruction with no horizontal sums. Strips of up
/// to 8 tokens x 32 rows keep 16 accumulators in registers.
template <int N, bool Two>
KT_TARGET void panelStrip(const char *A, long aStride, const char *B0,
                          const char *B1, int kChunks, int32_t *C) {
  __m512i acc0[N], acc1[N];
  for (int n = 0; n < N; ++n)
    acc0[n] = acc1[n] = _mm512_setzero_si512();
  for (int kc = 0; kc < kChunks; ++kc) {
    const char *b0 = B0 + static_cast<long>(kc) * 1024;
    const char *b1 = Two ? B1 + static_cast<long>(kc) * 1024 : nullptr;
    const char *a = A + static_cast<long>(kc) * 64;
    for (int kk = 0; kk < 16; ++kk) {
      const __m512i w0 = _mm512_loadu_si512(b0 + kk * 64);
      __m512i w1 = _mm512_setzero_si512();
      if constexpr (Two)
        w1 = _mm512_loadu_si512(b1 + kk * 64);
      for (int n = 0; n < N; ++n) {
        int32_t v;
        __builtin_memcpy(&v, a + n * aStride + kk * 4, 4);
        const __m512i av = _mm512_set1_epi32(v);
        acc0[n] = _mm512_dpbusd_epi32(acc0[n], av, w0);
        if constexpr (Two)
          acc1[n] = _mm512_dpbusd_epi32(acc1[n], av, w1);
      }
    }
  }
  for (int n = 0; n < N; ++n) {
    _mm512_storeu_si512(C + n * 32, acc0[n]);
    if constexpr (Two)
      _mm512_storeu_si512(C + n * 32 + 16, acc1[n]);
  }
}

template <bool Two>
KT_TARGET void panelStrips(const char *A, long aStride, int M, const char *B0,
                           const char *B1, int kChunks, int32_t *C) {
  for (int m0 = 0; m0 < M; m0 += 8) {
    const char *a = A + m0 * aStride;
    int32_t *c = C + m0 * 32;
    switch (std::min(8, M - m0)) {
    case 8: panelStrip<8, Two>(a, aStride, B0, B1, kChunks, c); break;
    case 7: panelStrip<7, Two>(a, aStride, B0, B1, kChunks, c); break;
    case 6: panelStrip<6, Two>(a, aStride, B0, B1, kChunks, c); break;
    case 5: panelStrip<5, Two>(a, aStride, B0, B1, kChunks, c); break;
    case 4: panelStrip<4, Two>(a, aStride, B0, B1, kChunks, c); break;
    case 3: panelStrip<3, Two>(a, aStride, B0, B1, kChunks, c); break;
    case 2: panelStrip<2, Two>(a, aStride, B0, B1, kChunks, c); break;
    default: panelStrip<1, Two>(a, aStride, B0, B1, kChunks, c); break;
    }
  }
}

KT_TARGET void vnniPanel(const char *A, long aStride, int M, const char *B0,
                         const char *B1, int kChunks, void *C) {
  if (B1)
    panelStrips<true>(A, aStride, M, B0, B1, kChunks, static_cast<int32_t *>(C));
  else
    panelStrips<false>(A, aStride, M, B0, B1, kChunks, static_cast<int32_t *>(C));
}

} // namespace

RowsKernel avx512VnniInt8Kernel() { return int8Rows; }

PanelKernel vnniInt8Panel() {
  return {vnniPanel, true, true, avx512Epilogue()};
}

} // namespace kt::kernels::detail
