//===- PanelDequantAvx512.cpp - INT4 weights to bf16 tiles (AVX512) -------===//
//
// INT4 rows (per 32-element block: 16 bytes, low nibbles = elements 0..15,
// high nibbles = 16..31) are widened to fp32, scaled (q * s + o with the
// row's group scale), rounded to bf16 (vcvtne2ps2bf16, nearest even, as
// f32ToBf16) and transposed: one zmm holds a row's 32 elements as 16 pairs,
// and a bf16 tile row holds pair kk of all 16 rows, so 16 rows go through a
// 16 x 16 transpose of 32-bit words. The multiply and add are separately
// rounded (no FMA), so the bits equal the scalar reference's.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#define KT_TARGET                                                              \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace kt::kernels::detail {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// r[n] word kk -> r[kk] word n, for 16 zmm of 16 32-bit words.
KT_TARGET inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4g + j]: in 128-bit lane L, word 4L + j of rows 4g .. 4g + 3.
  __m512i u[16];
  for (int g = 0; g < 4; ++g) {
    const __m512i *tg = t + 4 * g;
    u[4 * g + 0] = _mm512_unpacklo_epi64(tg[0], tg[2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(tg[0], tg[2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(tg[1], tg[3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(tg[1], tg[3]);
  }
  // Output word 4L + j gathers lane L of u[j], u[4 + j], u[8 + j], u[12 + j].
  for (int j = 0; j < 4; ++j) {
    const __m512i p = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44);
    const __m512i q = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44);
    const __m512i p2 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xEE);
    const __m512i q2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xEE);
    r[0 + j] = _mm512_shuffle_i32x4(p, q, 0x88);
    r[4 + j] = _mm512_shuffle_i32x4(p, q, 0xDD);
    r[8 + j] = _mm512_shuffle_i32x4(p2, q2, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(p2, q2, 0xDD);
  }
}

KT_TARGET void dequantInt4(const PackedMatrix &m, int rowBlock, uint16_t *dst) {
  const int P = m.paddedCols, G = m.groupsPerRow();
  const __m512i nib = _mm512_set1_epi32(15);
  for (int kc = 0; kc < P / 32; ++kc) {
    __m512i r[16];
    const int g = kc * 32 / m.groupSize;
    for (int n = 0; n < kTileRows; ++n) {
      const int row = rowBlock * kTileRows + n;
      if (row >= m.rows) {
        r[n] = _mm512_setzero_si512();
        continue;
      }
      const uint8_t *src =
          &m.q4[(static_cast<std::size_t>(row) * P + kc * 32) / 2];
      const __m512i b =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(src)));
      const std::size_t gi = static_cast<std::size_t>(row) * G + g;
      const __m512 s = _mm512_set1_ps(m.scales[gi]);
      const __m512 o = _mm512_set1_ps(m.offsets[gi]);
      const __m512 lo = _mm512_add_round_ps(
          _mm512_mul_round_ps(
              _mm512_cvtepi32_ps(_mm512_and_si512(b, nib)), s, kRound),
          o, kRound);
      const __m512 hi = _mm512_add_round_ps(
          _mm512_mul_round_ps(
              _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4)), s, kRound),
          o, kRound);
      r[n] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); // elements 0..31
    }
    transpose16(r);
    uint16_t *tile = dst + static_cast<std::size_t>(kc) * 512;
    for (int kk = 0; kk < 16; ++kk)
      _mm512_storeu_si512(tile + kk * 32, r[kk]);
  }
}

void dequant512(const PackedMatrix &m, int rowBlock, uint16_t *dst) {
  if (m.format == WeightFormat::INT4)
    dequantInt4(m, rowBlock, dst);
  else
    scalarDequant()(m, rowBlock, dst);
}

} // namespace

PanelDequant avx512Dequant() { return dequant512; }

} // namespace kt::kernels::detail
