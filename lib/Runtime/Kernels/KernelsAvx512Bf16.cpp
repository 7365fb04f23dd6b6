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

/// The broadcast panel kernel (PanelStrips.inc) on the BF16 tile layout: a
/// tile row holds 2 input elements of 16 weight rows; the token's 2 bf16
/// activations are broadcast and vdpbf16ps adds both products per row.
struct Bf16PanelDot {
  using Acc = __m512;
  using Out = float;
  KT_TARGET static inline __m512 zero() { return _mm512_setzero_ps(); }
  KT_TARGET static inline __m512 step(__m512 acc, __m512i a, __m512i w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)w);
  }
  KT_TARGET static inline void store(float *c, __m512 acc) {
    _mm512_storeu_ps(c, acc);
  }
};

#include "PanelStrips.inc"

} // namespace

RowsKernel avx512Bf16Kernel() { return bf16DpRows; }

PanelKernel avx512Bf16Panel() {
  return {broadcastPanel<Bf16PanelDot>, false, false, avx512Epilogue()};
}

} // namespace kt::kernels::detail
