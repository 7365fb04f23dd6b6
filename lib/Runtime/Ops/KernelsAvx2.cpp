//===- KernelsAvx2.cpp - AVX2 + FMA + F16C kernels -----------------------===//
//
// 8 fp32 lanes. bf16 is widened by a 16-bit shift, f16 by vcvtph2ps. The
// GEMM tile is 4 weight rows x 3 tokens (12 accumulators + 3 activations +
// 1 weight vector = 16 ymm registers); the column tail is scalar.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <immintrin.h>

#define KT_TARGET __attribute__((target("avx2,fma,f16c")))

namespace kt::cpu::detail {
namespace {

KT_TARGET inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <WType W> KT_TARGET inline __m256 load8(const void *row, int64_t k) {
  if constexpr (W == WType::F32) {
    return _mm256_loadu_ps(static_cast<const float *>(row) + k);
  } else {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(
        static_cast<const uint16_t *>(row) + k));
    if constexpr (W == WType::BF16)
      return _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else
      return _mm256_cvtph_ps(h);
  }
}

/// res[tb * RB + rb] = x[tb] · rows[rb] over k columns.
template <WType W, int RB, int TB>
KT_TARGET void block(const float *x, int64_t ldx, int64_t k,
                     const void *const *rows, float *res) {
  __m256 acc[RB][TB];
  for (int rb = 0; rb < RB; ++rb)
    for (int tb = 0; tb < TB; ++tb)
      acc[rb][tb] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    __m256 xv[TB];
    for (int tb = 0; tb < TB; ++tb)
      xv[tb] = _mm256_loadu_ps(x + tb * ldx + i);
    for (int rb = 0; rb < RB; ++rb) {
      __m256 wv = load8<W>(rows[rb], i);
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm256_fmadd_ps(wv, xv[tb], acc[rb][tb]);
    }
  }
  for (int rb = 0; rb < RB; ++rb)
    for (int tb = 0; tb < TB; ++tb) {
      float s = hsum(acc[rb][tb]);
      for (int64_t j = i; j < k; ++j)
        s += x[tb * ldx + j] * loadW(rows[rb], W, j);
      res[tb * RB + rb] = s;
    }
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
    tile<W, 4, 3>(x, ldx, tokens, w, r, bias, y, ldy);
  for (; r < r1; ++r)
    tile<W, 1, 3>(x, ldx, tokens, w, r, bias, y, ldy);
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
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 =
        _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                           _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc0 =
        _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i)
    s += a[i] * b[i];
  return s;
}

KT_TARGET void axpy(float a, const float *x, float *y, int64_t n) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i),
                                            _mm256_loadu_ps(y + i)));
  for (; i < n; ++i)
    y[i] += a * x[i];
}

template <WType W>
KT_TARGET void axpyWT(float a, const void *w, float *y, int64_t n) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(
        y + i, _mm256_fmadd_ps(av, load8<W>(w, i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i)
    y[i] += a * loadW(w, W, i);
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

const Kernels &avx2Kernels() {
  static const Kernels k{gemm, dot, axpy, axpyW};
  return k;
}

} // namespace kt::cpu::detail
