//===- PanelEpilogue.cpp - Element-wise steps of the panel pipeline -------===//
//
// INT8 block results scaled into fp32, silu(gate) * up, the weighted down
// accumulation and INT8 / bf16 conversion of activations, in a portable version
// (the numerics) and an AVX512 one (same formulas; exp by range reduction and a
// degree-6 polynomial, relative error ~2e-7, so silu matches std::exp's to
// fp32 rounding).
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#define KT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

namespace kt::kernels::detail {
namespace {

//===----------------------------------------------------------------------===//
// Portable
//===----------------------------------------------------------------------===//

inline float silu(float v) { return v / (1.f + std::exp(-v)); }

void scaleAddScalar(const int32_t *C, int M, int cols, const float *a,
                    int aStride, const float *w, bool first, float *F) {
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < cols; ++c) {
      // As scaleAdd512: one rounding for the scales' product, one for the
      // multiply-add.
      const float v = static_cast<float>(C[m * 32 + c]),
                  sw = a[m * aStride] * w[c];
      F[m * 32 + c] = first ? v * sw : std::fma(v, sw, F[m * 32 + c]);
    }
}

void gateUpScalar(const float *C, int M, int nc, float *hf, uint16_t *hb,
                  long hStride) {
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < nc; ++c) {
      const float h = silu(C[m * 32 + c]) * C[m * 32 + 16 + c];
      if (hf)
        hf[m * hStride + c] = h;
      else
        hb[m * hStride + c] = f32ToBf16(h);
    }
}

void downScalar(const float *C, int M, int nc, const float *f,
                float *const *o) {
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < nc; ++c)
      o[m][c] += f[m] * C[m * 32 + c];
}

float quantizeScalar(const float *x, int n, int stride, bool unsignedA,
                     char *dst) {
  float mx = 0;
  for (int i = 0; i < n; ++i)
    mx = std::max(mx, std::fabs(x[i]));
  const float inv = mx > 0 ? 127.f / mx : 0.f;
  const int off = unsignedA ? 128 : 0;
  auto *d = reinterpret_cast<uint8_t *>(dst);
  int i = 0;
  for (; i < n; ++i) {
    int q = static_cast<int>(std::nearbyint(x[i] * inv));
    d[i] = static_cast<uint8_t>(std::clamp(q, -127, 127) + off);
  }
  std::memset(d + i, off, static_cast<std::size_t>(stride - n));
  return mx / 127.f;
}

void toBf16Scalar(const float *x, int n, uint16_t *dst) {
  for (int i = 0; i < n; ++i)
    dst[i] = f32ToBf16(x[i]);
}

//===----------------------------------------------------------------------===//
// AVX512
//===----------------------------------------------------------------------===//

KT_TARGET inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.f)),
                    _mm512_set1_ps(-88.f));
  const __m512 n = _mm512_roundscale_ps(
      _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2 in two steps (Cody-Waite).
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

KT_TARGET inline __m512 silu512(__m512 g) {
  const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

/// Round to nearest even bf16 (NaN not special-cased: h never is NaN
/// unless the inputs are).
KT_TARGET inline __m256i bf16x16(__m512 v) {
  __m512i u = _mm512_castps_si512(v);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  u = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16));
}

KT_TARGET void scaleAdd512(const int32_t *C, int M, int cols, const float *a,
                           int aStride, const float *w, bool first, float *F) {
  const __m512 w0 = _mm512_loadu_ps(w);
  const __m512 w1 = cols > 16 ? _mm512_loadu_ps(w + 16) : w0;
  for (int m = 0; m < M; ++m) {
    const __m512 s = _mm512_set1_ps(a[m * aStride]);
    for (int h = 0; 16 * h < cols; ++h) {
      const __m512 v =
          _mm512_cvtepi32_ps(_mm512_loadu_si512(C + m * 32 + 16 * h));
      const __m512 sw = _mm512_mul_ps(s, h ? w1 : w0);
      float *f = F + m * 32 + 16 * h;
      _mm512_storeu_ps(f, first ? _mm512_mul_ps(v, sw)
                                : _mm512_fmadd_ps(v, sw, _mm512_loadu_ps(f)));
    }
  }
}

KT_TARGET void gateUp512(const float *C, int M, int nc, float *hf, uint16_t *hb,
                         long hStride) {
  const __mmask16 k = static_cast<__mmask16>((1u << nc) - 1);
  for (int m = 0; m < M; ++m) {
    const __m512 g = _mm512_loadu_ps(C + m * 32);
    const __m512 u = _mm512_loadu_ps(C + m * 32 + 16);
    const __m512 h = _mm512_mul_ps(silu512(g), u);
    if (hf)
      _mm512_mask_storeu_ps(hf + m * hStride, k, h);
    else
      _mm256_mask_storeu_epi16(hb + m * hStride, k, bf16x16(h));
  }
}

KT_TARGET void down512(const float *C, int M, int nc, const float *f,
                       float *const *o) {
  for (int h = 0; 16 * h < nc; ++h) {
    const int c = 16 * h, left = nc - c;
    const __mmask16 k = left >= 16 ? __mmask16(0xffff)
                                   : static_cast<__mmask16>((1u << left) - 1);
    for (int m = 0; m < M; ++m) {
      float *om = o[m] + c;
      _mm512_mask_storeu_ps(om, k,
                            _mm512_fmadd_ps(_mm512_loadu_ps(C + m * 32 + c),
                                            _mm512_set1_ps(f[m]),
                                            _mm512_maskz_loadu_ps(k, om)));
    }
  }
}

KT_TARGET float quantize512(const float *x, int n, int stride, bool unsignedA,
                            char *dst) {
  __m512 mx = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16)
    mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
  const float amax = _mm512_reduce_max_ps(mx);
  const __m512 inv = _mm512_set1_ps(amax > 0 ? 127.f / amax : 0.f);
  const __m512i off = _mm512_set1_epi32(unsignedA ? 128 : 0);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (i = 0; i < n; i += 16) {
    const int left = n - i;
    const __mmask16 m =
        left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), off);
    _mm_mask_storeu_epi8(dst + i, m, _mm512_cvtepi32_epi8(q));
  }
  std::memset(dst + n, unsignedA ? 128 : 0, static_cast<std::size_t>(stride - n));
  return amax / 127.f;
}

KT_TARGET void toBf16512(const float *x, int n, uint16_t *dst) {
  int i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + i),
                        bf16x16(_mm512_loadu_ps(x + i)));
  for (; i < n; ++i)
    dst[i] = f32ToBf16(x[i]);
}

} // namespace

PanelEpilogue scalarEpilogue() {
  return {scaleAddScalar, gateUpScalar, downScalar, quantizeScalar,
          toBf16Scalar};
}

PanelEpilogue avx512Epilogue() {
  return {scaleAdd512, gateUp512, down512, quantize512, toBf16512};
}

} // namespace kt::kernels::detail
