//===- KernelsAvx512.cpp - AVX512 (F, BW, VL) kernels --------------------===//
//
// 16 fp32 lanes; column tails use masked loads, so there is no scalar tail.
// bf16 is widened by a 16-bit shift, f16 by vcvtph2ps. The GEMM tile is 4
// weight rows x 6 tokens (24 accumulators + 6 activations + 1 weight = 31
// zmm registers). Compiled without global -m flags; only called after
// cpuFeatures() reported AVX512F/BW/VL.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <immintrin.h>

#define KT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

namespace kt::cpu::detail {
namespace {

template <WType W>
KT_TARGET inline __m512 load16(const void *row, int64_t k, __mmask16 m) {
  if constexpr (W == WType::F32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float *>(row) + k);
  } else {
    __m256i h =
        _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t *>(row) + k);
    if constexpr (W == WType::BF16)
      return _mm512_castsi512_ps(
          _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else
      return _mm512_cvtph_ps(h);
  }
}

KT_TARGET inline __mmask16 tailMask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff)
                    : static_cast<__mmask16>((1u << left) - 1u);
}

/// res[tb * RB + rb] = x[tb] · rows[rb] over k columns.
template <WType W, int RB, int TB>
KT_TARGET void block(const float *x, int64_t ldx, int64_t k,
                     const void *const *rows, float *res) {
  __m512 acc[RB][TB];
  for (int rb = 0; rb < RB; ++rb)
    for (int tb = 0; tb < TB; ++tb)
      acc[rb][tb] = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = tailMask(k - i);
    __m512 xv[TB];
    for (int tb = 0; tb < TB; ++tb)
      xv[tb] = _mm512_maskz_loadu_ps(m, x + tb * ldx + i);
    for (int rb = 0; rb < RB; ++rb) {
      __m512 wv = load16<W>(rows[rb], i, m);
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm512_fmadd_ps(wv, xv[tb], acc[rb][tb]);
    }
  }
  for (int rb = 0; rb < RB; ++rb)
    for (int tb = 0; tb < TB; ++tb)
      res[tb * RB + rb] = _mm512_reduce_add_ps(acc[rb][tb]);
}

template <WType W, int RB, int TB>
KT_TARGET void tile(const float *x, int64_t ldx, int64_t tokens,
                    const MatrixView &w, int64_t r, const float *bias, float *y,
                    int64_t ldy) {
  const void *rows[RB];
  for (int rb = 0; rb < RB; ++rb)
    rows[rb] = rowPtr(w, r + rb);
  float res[RB * TB];
  int64_t t = 0;
  for (; t + TB <= tokens; t += TB) {
    block<W, RB, TB>(x + t * ldx, ldx, w.cols, rows, res);
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        y[(t + tb) * ldy + r + rb] =
            res[tb * RB + rb] + (bias ? bias[r + rb] : 0.0f);
  }
  for (; t < tokens; ++t) {
    block<W, RB, 1>(x + t * ldx, ldx, w.cols, rows, res);
    for (int rb = 0; rb < RB; ++rb)
      y[t * ldy + r + rb] = res[rb] + (bias ? bias[r + rb] : 0.0f);
  }
}

template <WType W>
KT_TARGET void gemmT(const float *x, int64_t ldx, int64_t tokens,
                     const MatrixView &w, int64_t r0, int64_t r1,
                     const float *bias, float *y, int64_t ldy) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4)
    tile<W, 4, 6>(x, ldx, tokens, w, r, bias, y, ldy);
  for (; r < r1; ++r)
    tile<W, 1, 6>(x, ldx, tokens, w, r, bias, y, ldy);
}

void gemm(const float *x, int64_t ldx, int64_t tokens, const MatrixView &w,
          int64_t r0, int64_t r1, const float *bias, float *y, int64_t ldy) {
  switch (w.type) {
  case WType::F32:
    return gemmT<WType::F32>(x, ldx, tokens, w, r0, r1, bias, y, ldy);
  case WType::BF16:
    return gemmT<WType::BF16>(x, ldx, tokens, w, r0, r1, bias, y, ldy);
  case WType::F16:
    return gemmT<WType::F16>(x, ldx, tokens, w, r0, r1, bias, y, ldy);
  }
}

KT_TARGET float dot(const float *a, const float *b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 =
        _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                           _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                           _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

KT_TARGET void axpy(float a, const float *x, float *y, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    __m512 r = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i),
                               _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

template <WType W>
KT_TARGET void axpyWT(float a, const void *w, float *y, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    __m512 r = _mm512_fmadd_ps(av, load16<W>(w, i, m),
                               _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

void axpyW(float a, const void *w, WType type, float *y, int64_t n) {
  switch (type) {
  case WType::F32:
    return axpyWT<WType::F32>(a, w, y, n);
  case WType::BF16:
    return axpyWT<WType::BF16>(a, w, y, n);
  case WType::F16:
    return axpyWT<WType::F16>(a, w, y, n);
  }
}

} // namespace

const Kernels &avx512Kernels() {
  static const Kernels k{gemm, dot, axpy, axpyW};
  return k;
}

} // namespace kt::cpu::detail
