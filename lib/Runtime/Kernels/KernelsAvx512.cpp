//===- KernelsAvx512.cpp - AVX512F kernels (BF16, INT4) -------------------===//
//
// Compiled without global -m flags: every function carries a target
// attribute and is only called after cpuFeatures() said the CPU has it.
//   BF16: bf16 -> f32 by a 16-bit shift, fp32 FMA.
//   INT8 with fp32 activations: s8 -> f32, fp32 FMA, row scale at the end.
//   INT4: nibbles -> f32, dequantised by one FMA per 16 weights, fp32 FMA.
//   INT8 (AVX512-VNNI) lives in KernelsAvx512Vnni.cpp, so that these need
//   no VNNI.
// Tiles are 4 rows x up to 4 tokens; dot products run along the contiguous
// (padded) input dimension and are reduced horizontally once per tile.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#define KT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

namespace kt::kernels::detail {
namespace {

#include "RowsDriver.inc"

// Weights widened to fp32 16 at a time: BF16 by a 16-bit shift, INT8 (for
// fp32 activations, Int8Activations::Float) by sign extension; INT8's row
// scale is applied once to the dot product.
struct Bf16Load {
  using T = uint16_t;
  static const T *row(const PackedMatrix &w, int r) {
    return &w.bf16[static_cast<std::size_t>(r) * w.paddedCols];
  }
  KT_TARGET static inline __m512 load(const T *p) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static float scale(const PackedMatrix &, int) { return 1.f; }
};
struct Int8Load {
  using T = int8_t;
  static const T *row(const PackedMatrix &w, int r) {
    return &w.q8[static_cast<std::size_t>(r) * w.paddedCols];
  }
  KT_TARGET static inline __m512 load(const T *p) {
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
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
    __m512 acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm512_setzero_ps();
    for (int k = 0; k < P; k += 16) {
      __m512 xv[TB];
      for (int tb = 0; tb < TB; ++tb)
        xv[tb] = _mm512_loadu_ps(x[tb] + k);
      if ((k * sizeof(typename L::T) & 63) == 0) // next tile's rows
        for (int rb = 0; rb < RB; ++rb)
          _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * P + k),
                       _MM_HINT_T0);
      for (int rb = 0; rb < RB; ++rb) {
        const __m512 wv = L::load(wr + rb * P + k);
        for (int tb = 0; tb < TB; ++tb)
          acc[rb][tb] = _mm512_fmadd_ps(wv, xv[tb], acc[rb][tb]);
      }
    }
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        res[tb * RB + rb] =
            _mm512_reduce_add_ps(acc[rb][tb]) * L::scale(w, r + rb);
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
    __m512 acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm512_setzero_ps();
    const __m512i mask = _mm512_set1_epi32(15);
    for (int g = 0; g < G; ++g) {
      for (int k = g * gs; k < (g + 1) * gs; k += 32) {
        if ((k & 127) == 0) // next tile's rows, one cache line per row
          for (int rb = 0; rb < RB; ++rb)
            _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * (P / 2) + k / 2),
                         _MM_HINT_T0);
        for (int rb = 0; rb < RB; ++rb) {
          __m512 s = _mm512_set1_ps(sc[rb * G + g]);
          __m512 o = _mm512_set1_ps(of[rb * G + g]);
          __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(
              reinterpret_cast<const __m128i *>(wr + rb * (P / 2) + k / 2)));
          __m512 lo = _mm512_fmadd_ps(
              _mm512_cvtepi32_ps(_mm512_and_si512(v, mask)), s, o);
          __m512 hi = _mm512_fmadd_ps(
              _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), s, o);
          for (int tb = 0; tb < TB; ++tb) {
            acc[rb][tb] =
                _mm512_fmadd_ps(lo, _mm512_loadu_ps(x[tb] + k), acc[rb][tb]);
            acc[rb][tb] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x[tb] + k + 16),
                                          acc[rb][tb]);
          }
        }
      }
    }
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        res[tb * RB + rb] = _mm512_reduce_add_ps(acc[rb][tb]);
  }
};

KT_TARGET void bf16Rows(const PackedMatrix &w, int r0, int r1,
                        const ActRows &a, const int *idx, int n, float *out,
                        int outStride) {
  rowsKernel<FloatDot<Bf16Load>, 4>(w, r0, r1, a, idx, n, out, outStride);
}
KT_TARGET void int8FloatRows(const PackedMatrix &w, int r0, int r1,
                             const ActRows &a, const int *idx, int n,
                             float *out, int outStride) {
  rowsKernel<FloatDot<Int8Load>, 4>(w, r0, r1, a, idx, n, out, outStride);
}
KT_TARGET void int4Rows(const PackedMatrix &w, int r0, int r1,
                        const ActRows &a, const int *idx, int n, float *out,
                        int outStride) {
  rowsKernel<Int4, 4>(w, r0, r1, a, idx, n, out, outStride);
}

} // namespace

KernelSet avx512Kernels() {
  // With VNNI, INT4 multiplies the nibbles by int8 activations (moeForward
  // sees avx512VnniInt4Kernel and quantises them); else fp32 FMA on
  // dequantised nibbles.
  return {bf16Rows, avx512VnniInt8Kernel(),
          cpuFeatures().avx512vnni ? avx512VnniInt4Kernel() : int4Rows,
          int8FloatRows, int4Rows};
}

} // namespace kt::kernels::detail
