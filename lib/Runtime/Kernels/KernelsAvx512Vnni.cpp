//===- KernelsAvx512Vnni.cpp - AVX512-VNNI INT8 kernel -------------------===//
//
// INT8: _mm512_dpbusd_epi32 (u8 activations x s8 weights, int32 sums per
// 128-element activation block, then fp32). Its own translation unit so
// that only this code is compiled for VNNI. Tiles: 4 rows x up to 4 tokens.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#include <algorithm>

#define KT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

namespace kt::kernels::detail {
namespace {

#include "RowsDriver.inc"

struct Int8 {
  template <int RB, int TB>
  KT_TARGET static inline void block(const PackedMatrix &w, int r,
                                     const ActRows &a, const int *idx,
                                     float *res) {
    const int P = w.paddedCols;
    const int8_t *wr = &w.q8[static_cast<std::size_t>(r) * P];
    const uint8_t *x[TB];
    for (int tb = 0; tb < TB; ++tb)
      x[tb] = a.u8 + static_cast<std::size_t>(idx[tb]) * a.stride;
    const int NB = P / kActBlock;
    const float *xs[TB];
    for (int tb = 0; tb < TB; ++tb)
      xs[tb] = a.scale + static_cast<std::size_t>(idx[tb]) * (a.stride / kActBlock);
    __m512 facc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        facc[rb][tb] = _mm512_setzero_ps();
    for (int b = 0; b < NB; ++b) {
    __m512i acc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        acc[rb][tb] = _mm512_setzero_si512();
    for (int k = b * kActBlock; k < (b + 1) * kActBlock; k += 64) {
      __m512i xv[TB];
      for (int tb = 0; tb < TB; ++tb)
        xv[tb] = _mm512_loadu_si512(x[tb] + k);
      for (int rb = 0; rb < RB; ++rb) // next tile's rows, one line each
        _mm_prefetch(reinterpret_cast<const char *>(wr + (RB + rb) * P + k),
                     _MM_HINT_T0);
      for (int rb = 0; rb < RB; ++rb) {
        __m512i wv = _mm512_loadu_si512(wr + rb * P + k);
        for (int tb = 0; tb < TB; ++tb)
          acc[rb][tb] = _mm512_dpbusd_epi32(acc[rb][tb], xv[tb], wv);
      }
    }
    for (int tb = 0; tb < TB; ++tb) {
      __m512 s = _mm512_set1_ps(xs[tb][b]);
      for (int rb = 0; rb < RB; ++rb)
        facc[rb][tb] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[rb][tb]), s, facc[rb][tb]);
    }
    }
    // The u8 activations carry +128: subtract 128 * sum_b scale_b * rowSum_b.
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb) {
        const int32_t *rs = &w.rowSum[static_cast<std::size_t>(r + rb) * NB];
        float off = 0;
        for (int b = 0; b < NB; ++b)
          off += xs[tb][b] * static_cast<float>(rs[b]);
        res[tb * RB + rb] =
            (_mm512_reduce_add_ps(facc[rb][tb]) - 128.f * off) * w.scales[r + rb];
      }
  }
};

KT_TARGET void int8Rows(const PackedMatrix &w, int r0, int r1,
                        const ActRows &a, const int *idx, int n, float *out,
                        int outStride) {
  rowsKernel<Int8, 4>(w, r0, r1, a, idx, n, out, outStride);
}

/// INT4 weights times s8 activations (ActRows::s8, one scale per 128
/// elements): the nibbles are the u8 operand of vpdpbusd. 32 bytes of a row
/// (two 32-element blocks b0, b1) give 64 u8 weights as [low nibbles | high
/// nibbles] = elements [b0 0-15, b1 0-15 | b0 16-31, b1 16-31]; the
/// activations' 16-byte quarters are put in the same order (0, 2, 1, 3)
/// once per token and step. Each int32 lane then holds 4 products of one
/// group: lane sums times the group's scale, plus the lanes' activation sums
/// (vpdpbusd with ones) times its offset, and the block's activation scale
/// at the end of each 128-element block.
struct Int4 {
  template <int RB, int TB>
  KT_TARGET static inline void block(const PackedMatrix &w, int r,
                                     const ActRows &a, const int *idx,
                                     float *res) {
    const int P = w.paddedCols, G = w.groupsPerRow(), gs = w.groupSize;
    const auto [wr, sc, of] = int4Row(w, r);
    const int8_t *x[TB];
    const float *xs[TB];
    for (int tb = 0; tb < TB; ++tb) {
      x[tb] = a.s8 + static_cast<std::size_t>(idx[tb]) * a.stride;
      xs[tb] =
          a.scale + static_cast<std::size_t>(idx[tb]) * (a.stride / kActBlock);
    }
    const __m512i ones = _mm512_set1_epi8(1);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m512 facc[RB][TB];
    for (int rb = 0; rb < RB; ++rb)
      for (int tb = 0; tb < TB; ++tb)
        facc[rb][tb] = _mm512_setzero_ps();
    for (int b = 0; b < P / kActBlock; ++b) {
      __m512 bacc[RB][TB]; // this block, before its activation scale
      for (int rb = 0; rb < RB; ++rb)
        for (int tb = 0; tb < TB; ++tb)
          bacc[rb][tb] = _mm512_setzero_ps();
      for (int k = b * kActBlock; k < (b + 1) * kActBlock; k += 64) {
        __m512i xv[TB];
        __m512 xsum[TB];
        for (int tb = 0; tb < TB; ++tb) {
          xv[tb] = _mm512_shuffle_i64x2(_mm512_loadu_si512(x[tb] + k),
                                        _mm512_loadu_si512(x[tb] + k),
                                        _MM_SHUFFLE(3, 1, 2, 0));
          xsum[tb] = _mm512_cvtepi32_ps(
              _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, xv[tb]));
        }
        for (int rb = 0; rb < RB; ++rb) // next tile's rows, one line each
          _mm_prefetch(
              reinterpret_cast<const char *>(wr + (RB + rb) * (P / 2) + k / 2),
              _MM_HINT_T0);
        const int g = k / gs;
        for (int rb = 0; rb < RB; ++rb) {
          const __m256i raw = _mm256_loadu_si256(
              reinterpret_cast<const __m256i *>(wr + rb * (P / 2) + k / 2));
          const __m512i wv = _mm512_inserti64x4(
              _mm512_castsi256_si512(_mm256_and_si256(raw, low4)),
              _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), 1);
          __m512 s = _mm512_set1_ps(sc[rb * G + g]);
          __m512 o = _mm512_set1_ps(of[rb * G + g]);
          if (gs == 32) { // lanes 4-7 and 12-15 hold block b1: group g + 1
            s = _mm512_mask_blend_ps(0xF0F0, s,
                                     _mm512_set1_ps(sc[rb * G + g + 1]));
            o = _mm512_mask_blend_ps(0xF0F0, o,
                                     _mm512_set1_ps(of[rb * G + g + 1]));
          }
          for (int tb = 0; tb < TB; ++tb) {
            const __m512i dot =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv[tb]);
            bacc[rb][tb] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, bacc[rb][tb]);
            bacc[rb][tb] = _mm512_fmadd_ps(xsum[tb], o, bacc[rb][tb]);
          }
        }
      }
      for (int tb = 0; tb < TB; ++tb) {
        const __m512 s = _mm512_set1_ps(xs[tb][b]);
        for (int rb = 0; rb < RB; ++rb)
          facc[rb][tb] = _mm512_fmadd_ps(bacc[rb][tb], s, facc[rb][tb]);
      }
    }
    for (int tb = 0; tb < TB; ++tb)
      for (int rb = 0; rb < RB; ++rb)
        res[tb * RB + rb] = _mm512_reduce_add_ps(facc[rb][tb]);
  }
};

KT_TARGET void int4Rows(const PackedMatrix &w, int r0, int r1, const ActRows &a,
                        const int *idx, int n, float *out, int outStride) {
  rowsKernel<Int4, 4>(w, r0, r1, a, idx, n, out, outStride);
}
/// The broadcast panel kernel (PanelStrips.inc) on the INT8 tile layout: a
/// tile row holds 4 input elements of 16 weight rows; the token's 4 u8
/// activations are broadcast and vpdpbusd adds the 4 products per row.
struct Int8PanelDot {
  using Acc = __m512i;
  using Out = int32_t;
  KT_TARGET static inline __m512i zero() { return _mm512_setzero_si512(); }
  KT_TARGET static inline __m512i step(__m512i acc, __m512i a, __m512i w) {
    return _mm512_dpbusd_epi32(acc, a, w);
  }
  KT_TARGET static inline void store(int32_t *c, __m512i acc) {
    _mm512_storeu_si512(c, acc);
  }
};

#include "PanelStrips.inc"

/// The VNNI panel micro-kernel: vpdpbusd takes u8 activations (q + 128), so
/// the strips add 128 * (the weight rows' sums over these chunks) to every
/// product, which is removed here. The sums come from the same instruction
/// on a broadcast 128 (the weights are in L1 or L2 after the strips), so C
/// holds the s8 products the AMX kernel computes.
KT_TARGET void vnniInt8Micro(const char *A, long aStride, int M, const char *B0,
                             const char *B1, int kChunks, void *C) {
  broadcastPanel<Int8PanelDot>(A, aStride, M, B0, B1, kChunks, C);
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i s0 = _mm512_setzero_si512(), s1 = s0;
  for (long off = 0; off < static_cast<long>(kChunks) * 1024; off += 64) {
    s0 = _mm512_dpbusd_epi32(s0, u128, _mm512_loadu_si512(B0 + off));
    if (B1)
      s1 = _mm512_dpbusd_epi32(s1, u128, _mm512_loadu_si512(B1 + off));
  }
  auto *c = static_cast<int32_t *>(C);
  for (int m = 0; m < M; ++m) {
    int32_t *row = c + m * 32;
    _mm512_storeu_si512(row, _mm512_sub_epi32(_mm512_loadu_si512(row), s0));
    if (B1)
      _mm512_storeu_si512(row + 16,
                          _mm512_sub_epi32(_mm512_loadu_si512(row + 16), s1));
  }
}

} // namespace

RowsKernel avx512VnniInt8Kernel() { return int8Rows; }
RowsKernel avx512VnniInt4Kernel() { return int4Rows; }

PanelKernel vnniInt8Panel() {
  return {vnniInt8Micro, true, true, avx512Epilogue()};
}

} // namespace kt::kernels::detail
