//===- KernelsAvx2.cpp - AVX2 + FMA fallback kernels ---------------------===//
//
// For x86-64 CPUs without AVX512. Same numerics as the scalar kernels:
//   BF16 / INT4, and INT8 with fp32 activations: fp32 FMA, 8 lanes.
//   INT8: weights and activations (ActRows::s8 = u8 - 128, made once per
//   call) both in [-127, 127]: vpmaddubsw multiplies |w| (u8) by sign(x, w)
//   (s8), whose pair sums stay within 2 * 127 * 127 < 32767 (exact, no
//   saturation), and vpmaddwd by ones widens them to int32: 32 weights per
//   step with no widening shuffles.
// Tiles are 2 rows x up to 4 tokens (16 ymm registers).
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#define KT_TARGET __attribute__((target("avx2,fma")))

namespace kt::kernels::detail {
namespace {

#include "RowsDriver.inc"

KT_TARGET static inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
KT_TARGET static inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v),
                            _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Weights widened to fp32 8 at a time: BF16 by a 16-bit shift, INT8 (for
// fp32 activations, Int8Activations::Float) by sign extension; INT8's row
// scale is applied once to the dot product.
struct Bf16Load {
  using T = uint16_t;
  static const T *row(const PackedMatrix &w, int r) {
    return &w.bf16[static_cast<std::size_t>(r) * w.paddedCols];
  }
  KT_TARGET static inline __m256 load(const T *p) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float scale(const PackedMatrix &, int) { return 1.f; }
};
struct Int8Load {
  using T = int8_t;
  static const T *row(const PackedMatrix &w, int r) {
    return &w.q8[static_cast<std::size_t>(r) * w.paddedCols];
  }
  KT_TARGET static inline __m256 load(const T *p) {
    __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(p));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
  }
  static float scale(const PackedMatrix &w, int r) { return w.scales[r]; }
};

template <class L> struct FloatDot {
  template <int RB, int TB>
  KT_TARGET static inline void block(const PackedMatrix &w, int r,
                                     const ActRows &a, const int *idx,
                                     float *res) {
    const int P = w.paddedCols;
    const typename L::T *wr = L::row(w, r);
    const float *x[TB];
    for (int tb = 0; tb < TB; ++tb)
      x[tb] = a.f32 + static_cast<std::size_t>(idx[tb]) * a.stride;
    __m256 acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm256_setzero_ps();
    for (int k = 0; k < P; k += 8) {
      if ((k * sizeof(typename L::T) & 63) == 0) // next tile's rows
        for (int rb = 0; rb < RB; ++rb)
          _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * P + k),
                       _MM_HINT_T0);
      for (int rb = 0; rb < RB; ++rb) {
        const __m256 wv = L::load(wr + rb * P + k);
        for (int tb = 0; tb < TB; ++tb)
          acc[rb][tb] =
              _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[tb] + k), acc[rb][tb]);
      }
    }
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        res[tb * RB + rb] = hsum(acc[rb][tb]) * L::scale(w, r + rb);
  }
};

struct Int8 {
  template <int RB, int TB>
  KT_TARGET static inline void block(const PackedMatrix &w, int r,
                                     const ActRows &a, const int *idx,
                                     float *res) {
    const int P = w.paddedCols;
    const int8_t *wr = &w.q8[static_cast<std::size_t>(r) * P];
    const int8_t *x[TB];
    for (int tb = 0; tb < TB; ++tb)
      x[tb] = a.s8 + static_cast<std::size_t>(idx[tb]) * a.stride;
    const float *xs[TB];
    for (int tb = 0; tb < TB; ++tb)
      xs[tb] = a.scale + static_cast<std::size_t>(idx[tb]) * (a.stride / kActBlock);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 facc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        facc[rb][tb] = _mm256_setzero_ps();
    for (int b = 0; b < P / kActBlock; ++b) {
    __m256i acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm256_setzero_si256();
    for (int k = b * kActBlock; k < (b + 1) * kActBlock; k += 32) {
      __m256i xv[TB];
      for (int tb = 0; tb < TB; ++tb)
        xv[tb] = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x[tb] + k));
      if ((k & 63) == 0) // next tile's rows, one cache line per row
        for (int rb = 0; rb < RB; ++rb)
          _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * P + k),
                       _MM_HINT_T0);
      for (int rb = 0; rb < RB; ++rb) {
        const __m256i wv = _mm256_loadu_si256(
            reinterpret_cast<const __m256i *>(wr + rb * P + k));
        const __m256i aw = _mm256_sign_epi8(wv, wv); // |w|
        for (int tb = 0; tb < TB; ++tb) {
          const __m256i p16 =
              _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv[tb], wv));
          acc[rb][tb] =
              _mm256_add_epi32(acc[rb][tb], _mm256_madd_epi16(p16, ones));
        }
      }
    }
    for (int tb = 0; tb < TB; ++tb) {
      __m256 s = _mm256_set1_ps(xs[tb][b]);
      for (int rb = 0; rb < RB; ++rb)
        facc[rb][tb] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[rb][tb]), s, facc[rb][tb]);
    }
    }
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        res[tb * RB + rb] = hsum(facc[rb][tb]) * w.scales[r + rb];
  }
};

struct Int4 {
  template <int RB, int TB>
  KT_TARGET static inline void block(const PackedMatrix &w, int r,
                                     const ActRows &a, const int *idx,
                                     float *res) {
    const int P = w.paddedCols, G = w.groupsPerRow(), gs = w.groupSize;
    const auto [wr, sc, of] = int4Row(w, r);
    const float *x[TB];
    for (int tb = 0; tb < TB; ++tb)
      x[tb] = a.f32 + static_cast<std::size_t>(idx[tb]) * a.stride;
    __m256 acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm256_setzero_ps();
    const __m256i mask = _mm256_set1_epi32(15);
    for (int g = 0; g < G; ++g) {
      for (int k = g * gs; k < (g + 1) * gs; k += 32) {
        if ((k & 127) == 0) // next tile's rows, one cache line per row
          for (int rb = 0; rb < RB; ++rb)
            _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * (P / 2) + k / 2),
                         _MM_HINT_T0);
        for (int rb = 0; rb < RB; ++rb) {
          __m256 s = _mm256_set1_ps(sc[rb * G + g]);
          __m256 o = _mm256_set1_ps(of[rb * G + g]);
          const uint8_t *q = wr + rb * (P / 2) + k / 2;
          for (int half = 0; half < 2; ++half) {
            // bytes 8*half..8*half+7 hold elements 8*half.. (low nibbles)
            // and 16+8*half.. (high nibbles).
            __m256i v = _mm256_cvtepu8_epi32(
                _mm_loadl_epi64(reinterpret_cast<const __m128i *>(q + 8 * half)));
            __m256 lo = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(_mm256_and_si256(v, mask)), s, o);
            __m256 hi = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), s, o);
            for (int tb = 0; tb < TB; ++tb) {
              acc[rb][tb] = _mm256_fmadd_ps(
                  lo, _mm256_loadu_ps(x[tb] + k + 8 * half), acc[rb][tb]);
              acc[rb][tb] = _mm256_fmadd_ps(
                  hi, _mm256_loadu_ps(x[tb] + k + 16 + 8 * half), acc[rb][tb]);
            }
          }
        }
      }
    }
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        res[tb * RB + rb] = hsum(acc[rb][tb]);
  }
};

KT_TARGET void bf16Rows(const PackedMatrix &w, int r0, int r1,
                        const ActRows &a, const int *idx, int n, float *out,
                        int outStride) {
  rowsKernel<FloatDot<Bf16Load>, 2, 4>(w, r0, r1, a, idx, n, out, outStride);
}
KT_TARGET void int8Rows(const PackedMatrix &w, int r0, int r1,
                        const ActRows &a, const int *idx, int n, float *out,
                        int outStride) {
  rowsKernel<Int8, 2, 4>(w, r0, r1, a, idx, n, out, outStride);
}
KT_TARGET void int4Rows(const PackedMatrix &w, int r0, int r1,
                        const ActRows &a, const int *idx, int n, float *out,
                        int outStride) {
  rowsKernel<Int4, 2, 4>(w, r0, r1, a, idx, n, out, outStride);
}
KT_TARGET void int8FloatRows(const PackedMatrix &w, int r0, int r1,
                             const ActRows &a, const int *idx, int n,
                             float *out, int outStride) {
  rowsKernel<FloatDot<Int8Load>, 2, 4>(w, r0, r1, a, idx, n, out, outStride);
}

} // namespace

KernelSet avx2Kernels() {
  return {bf16Rows, int8Rows, int4Rows, int8FloatRows, int4Rows};
}

} // namespace kt::kernels::detail
