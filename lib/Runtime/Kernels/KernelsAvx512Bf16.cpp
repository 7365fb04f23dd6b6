//===- KernelsAvx512Bf16.cpp - AVX512-BF16 (vdpbf16ps) BF16 kernel --------===//
//
// BF16 weights (row layout) times bf16 activation rows (ActRows::bf16):
// _mm512_dpbf16_ps multiplies 32 bf16 pairs exactly and adds them in fp32
// to 16 lanes. Half the instructions of the fp32 kernel (no widening, 32
// elements per instruction); the price is activations rounded to bf16.
// The decode side of the AMX path, and the BF16 kernel of KernelPath::
// AVX512BF16. Tiles: 4 rows x up to 4 tokens, as the AVX512 kernels.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

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

} // namespace

RowsKernel avx512Bf16Kernel() { return bf16DpRows; }

} // namespace kt::kernels::detail
