//===- KernelsAvx512Bf16.cpp - AVX512-BF16 (vdpbf16ps) BF16 kernel --------===//
//
// BF16 weights (row layout) times bf16 activation rows (ActRows::bf16):
// _mm512_dpbf16_ps multiplies 32 bf16 pairs exactly and adds them in fp32
// to 16 lanes. Half the instructions of the fp32 kernel (no widening, 32
// elements per instruction); the price is activations rounded to bf16.
// The BF16 kernel of KernelPath::AVX512BF16 (row layout; tiles: 4 rows x
// up to 4 tokens, as the AVX512 kernels), and the panel micro-kernel on the
// tile layout that runs the AMX path's experts with few tokens (decode).
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#include <algorithm>

#define KT_TARGET                                                              \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

namespace kt::kernels::detail {
namespace {

#include "RowsDriver.inc"

struct Bf16Dp {
  template <int RB, int TB>
  KT_TARGET static inline void block(const PackedMatrix &w, int r,
                                     const ActRows &a, const int *idx,
                                     float *res) {
    const int P = w.paddedCols;
    const uint16_t *wr = &w.bf16[static_cast<std::size_t>(r) * P];
    const uint16_t *x[TB];
    for (int tb = 0; tb < TB; ++tb)
      x[tb] = a.bf16 + static_cast<std::size_t>(idx[tb]) * a.stride;
    __m512 acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm512_setzero_ps();
    for (int k = 0; k < P; k += 32) {
      __m512bh xv[TB];
      for (int tb = 0; tb < TB; ++tb)
        xv[tb] = (__m512bh)_mm512_loadu_si512(x[tb] + k);
      for (int rb = 0; rb < RB; ++rb) // next tile's rows, one line each
        _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * P + k),
                     _MM_HINT_T0);
      for (int rb = 0; rb < RB; ++rb) {
        __m512bh wv = (__m512bh)_mm512_loadu_si512(wr + rb * P + k);
        for (int tb = 0; tb < TB; ++tb)
          acc[rb][tb] = _mm512_dpbf16_ps(acc[rb][tb], wv, xv[tb]);
      }
    }
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        res[tb * RB + rb] = _mm512_reduce_add_ps(acc[rb][tb]);
  }
};

KT_TARGET void bf16DpRows(const PackedMatrix &w, int r0, int r1,
                          const ActRows &a, const int *idx, int n, float *out,
                          int outStride) {
  rowsKernel<Bf16Dp, 4>(w, r0, r1, a, idx, n, out, outStride);
}

/// Panel micro-kernel on the BF16 tile layout (PanelMicro's contract), as
/// vnniPanel is on the INT8 one: a tile row (64 bytes = 2 input elements of
/// 16 weight rows, VNNI order) is one zmm; the token's 2 matching bf16
/// activations (32 bits) are broadcast, so one vdpbf16ps accumulates 16
/// weight rows of one token, with no horizontal sums. Strips of up to 8
/// tokens x 32 rows keep 16 fp32 accumulators in registers.
template <int N, bool Two>
KT_TARGET void panelStrip(const char *A, long aStride, const char *B0,
                          const char *B1, int kChunks, float *C) {
  __m512 acc0[N], acc1[N];
  for (int n = 0; n < N; ++n)
    acc0[n] = acc1[n] = _mm512_setzero_ps();
  for (int kc = 0; kc < kChunks; ++kc) {
    const char *b0 = B0 + static_cast<long>(kc) * 1024;
    const char *b1 = Two ? B1 + static_cast<long>(kc) * 1024 : nullptr;
    const char *a = A + static_cast<long>(kc) * 64;
    for (int kk = 0; kk < 16; ++kk) {
      const __m512bh w0 = (__m512bh)_mm512_loadu_si512(b0 + kk * 64);
      __m512bh w1 = w0;
      if constexpr (Two)
        w1 = (__m512bh)_mm512_loadu_si512(b1 + kk * 64);
      for (int n = 0; n < N; ++n) {
        int32_t v; // activations 2kk, 2kk + 1 of token n
        __builtin_memcpy(&v, a + n * aStride + kk * 4, 4);
        const __m512bh av = (__m512bh)_mm512_set1_epi32(v);
        acc0[n] = _mm512_dpbf16_ps(acc0[n], av, w0);
        if constexpr (Two)
          acc1[n] = _mm512_dpbf16_ps(acc1[n], av, w1);
      }
    }
  }
  for (int n = 0; n < N; ++n) {
    _mm512_storeu_ps(C + n * 32, acc0[n]);
    if constexpr (Two)
      _mm512_storeu_ps(C + n * 32 + 16, acc1[n]);
  }
}

template <bool Two>
KT_TARGET void panelStrips(const char *A, long aStride, int M, const char *B0,
                           const char *B1, int kChunks, float *C) {
  for (int m0 = 0; m0 < M; m0 += 8) {
    const char *a = A + m0 * aStride;
    float *c = C + m0 * 32;
    switch (std::min(8, M - m0)) {
    case 8:
      panelStrip<8, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    case 7:
      panelStrip<7, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    case 6:
      panelStrip<6, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    case 5:
      panelStrip<5, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    case 4:
      panelStrip<4, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    case 3:
      panelStrip<3, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    case 2:
      panelStrip<2, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    default:
      panelStrip<1, Two>(a, aStride, B0, B1, kChunks, c);
      break;
    }
  }
}

KT_TARGET void bf16Panel(const char *A, long aStride, int M, const char *B0,
                         const char *B1, int kChunks, void *C) {
  if (B1)
    panelStrips<true>(A, aStride, M, B0, B1, kChunks, static_cast<float *>(C));
  else
    panelStrips<false>(A, aStride, M, B0, B1, kChunks, static_cast<float *>(C));
}

} // namespace

RowsKernel avx512Bf16Kernel() { return bf16DpRows; }

PanelKernel avx512Bf16Panel() {
  return {bf16Panel, false, false, avx512Epilogue()};
}

} // namespace kt::kernels::detail
