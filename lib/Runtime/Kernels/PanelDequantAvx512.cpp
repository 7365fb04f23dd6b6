//===- PanelDequantAvx512.cpp - INT4 / INT8 weights to bf16 tiles ---------===//
//
// INT4 rows (per 32-element block: 16 bytes, low nibbles = elements 0..15,
// high nibbles = 16..31) are widened to fp32, scaled (q * s + o with the
// row's group scale), rounded to bf16 (vcvtne2ps2bf16, nearest even, as
// f32ToBf16) and transposed: one zmm holds a row's 32 elements as 16 pairs,
// and a bf16 tile row holds pair kk of all 16 rows, so 16 rows go through a
// 16 x 16 transpose of 32-bit words. The multiply and add are separately
// rounded (no FMA), so the bits equal the scalar reference's.
// INT8 (Int8Activations::Float) is read from its tile layout, whose rows
// already interleave the 16 weight rows: no transpose, only a split of each
// 64-byte tile row into two bf16 tile rows.
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
      const __m512i b = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i *>(src)));
      const std::size_t gi = static_cast<std::size_t>(row) * G + g;
      const __m512 s = _mm512_set1_ps(m.scales[gi]);
      const __m512 o = _mm512_set1_ps(m.offsets[gi]);
      const __m512 lo = _mm512_add_round_ps(
          _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_and_si512(b, nib)), s,
                              kRound),
          o, kRound);
      const __m512 hi = _mm512_add_round_ps(
          _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4)), s,
                              kRound),
          o, kRound);
      r[n] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); // elements 0..31
    }
    transpose16(r);
    uint16_t *tile = dst + static_cast<std::size_t>(kc) * 512;
    for (int kk = 0; kk < 16; ++kk)
      _mm512_storeu_si512(tile + kk * 32, r[kk]);
  }
}

/// INT8 tile layout (tile kc: row kk holds elements kc*64 + 4kk .. +3 of
/// the 16 weight rows, 4 bytes per row) to bf16 tiles: int8 tile row kk
/// becomes rows 2(kk % 8) and 2(kk % 8) + 1 of bf16 tile 2kc + kk / 8
/// (elements 4kk, 4kk+1 and 4kk+2, 4kk+3 of each weight row).
KT_TARGET void dequantInt8Tiles(const PackedMatrix &m, int rowBlock,
                                uint16_t *dst) {
  const int P = m.paddedCols;
  // Scale of each byte's weight row: bytes 4n .. 4n+3 belong to row n.
  __m512 sc[4];
  for (int q = 0; q < 4; ++q) {
    alignas(64) float s[16];
    for (int i = 0; i < 16; ++i) {
      const int row = rowBlock * kTileRows + 4 * q + i / 4;
      s[i] = row < m.rows ? m.scales[row] : 0.f;
    }
    sc[q] = _mm512_load_ps(s);
  }
  // Even / odd 32-bit words of (rows 0..7 | rows 8..15): element pairs
  // (4kk, 4kk+1) and (4kk+2, 4kk+3) of each row.
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
                                         22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const int8_t *src =
      m.q8Tiles.data() + static_cast<std::size_t>(rowBlock) * kTileRows * P;
  for (int kc = 0; kc < P / 64; ++kc)
    for (int kk = 0; kk < 16; ++kk) {
      const int8_t *t = src + static_cast<std::size_t>(kc) * 1024 + kk * 64;
      __m512 f[4];
      for (int q = 0; q < 4; ++q)
        f[q] = _mm512_mul_round_ps(
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                reinterpret_cast<const __m128i *>(t + 16 * q)))),
            sc[q], kRound);
      const __m512i lo = (__m512i)_mm512_cvtne2ps_pbh(f[1], f[0]); // rows 0..7
      const __m512i hi = (__m512i)_mm512_cvtne2ps_pbh(f[3], f[2]); // 8..15
      uint16_t *tile =
          dst + static_cast<std::size_t>(2 * kc + kk / 8) * 512 + (kk % 8) * 64;
      _mm512_storeu_si512(tile, _mm512_permutex2var_epi32(lo, even, hi));
      _mm512_storeu_si512(tile + 32, _mm512_permutex2var_epi32(lo, odd, hi));
    }
}

void dequant512(const PackedMatrix &m, int rowBlock, uint16_t *dst) {
  if (m.format == WeightFormat::INT4)
    dequantInt4(m, rowBlock, dst);
  else if (m.format == WeightFormat::INT8 && !m.q8Tiles.empty())
    dequantInt8Tiles(m, rowBlock, dst);
  else
    scalarDequant()(m, rowBlock, dst);
}

} // namespace

PanelDequant avx512Dequant() { return dequant512; }

} // namespace kt::kernels::detail
