//===- KernelsAmx.cpp - AMX-INT8 / AMX-BF16 kernels
//------------------------===//
//
// Prefill side of KernelPath::AMX: C[tokens, rows] += A[tokens, K] * B[K, rows]
// with A = activation rows gathered into a 32-row panel and B = the weights'
// tile layout (PackedMatrix::q8Tiles / bf16Tiles, 1 KiB VNNI-ordered tiles,
// see Moe.h). Every tile is 16 rows x 64 bytes; one micro-kernel step works
// on up to 2 x 2 C tiles (tmm0-3: 32 tokens x 32 weight rows), A tiles in
// tmm4-5 and B tiles in tmm6-7.
//
//  INT8: tdpbssd (s8 x s8 -> int32). The u8 activations of the other INT8
//  kernels are u8 = q + 128 with q symmetric in [-127, 127], so the panel
//  holds u8 ^ 0x80 = q: no offset correction. Each 128-element block has its
//  own activation scale, so the C tiles are zeroed per block (2 tdpbssd per
//  C tile) and folded into fp32 accumulators with the per-(token, block)
//  scale; the per-row weight scale is applied at the end. The int32 block
//  sums are exact, so this matches the scalar kernel up to fp32 rounding.
//  BF16: tdpbf16ps on bf16 activation rows (ActRows::bf16), fp32 C tiles
//  accumulated over the whole input dimension.
//
// Tile state: each thread loads the (fixed) configuration once
// (thread_local flag) and leaves it loaded; the kernel only runs after
// cpuFeatures() saw AMX and obtained the tile permission. The tile
// instructions are written as inline asm with a "memory" clobber (GCC's
// _tile_loadd does not tell the compiler it reads memory, so stores to the
// panel could be moved past it).
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>

#define KT_TARGET                                                              \
  __attribute__((target("amx-tile,amx-int8,amx-bf16,avx512f,avx512bw,"         \
                        "avx512vl,avx512bf16,fma")))

#define KT_TILE_LOAD(t, base, stride)                                          \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(base),                \
                   "r"(static_cast<long>(stride))                              \
                   : "memory")
#define KT_TILE_STORE(t, base, stride)                                         \
  __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(base),            \
                   "r"(static_cast<long>(stride))                              \
                   : "memory")
#define KT_TILE_ZERO(t) __asm__ volatile("tilezero %%tmm" #t ::)
#define KT_TDPBSSD(c, a, b)                                                    \
  __asm__ volatile("tdpbssd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
#define KT_TDPBF16PS(c, a, b)                                                  \
  __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)

namespace kt::kernels::detail {
namespace {

constexpr int kPanel = 32;      // tokens per panel (2 A tiles)
constexpr int kTileSize = 1024; // bytes per tile

struct alignas(64) TileConfig {
  uint8_t palette = 1, startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configureTiles() {
  thread_local bool configured = false;
  if (configured)
    return;
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = kTileBytes;
    c.rows[t] = kTileRows;
  }
  __asm__ volatile("ldtilecfg %0" ::"m"(c) : "memory");
  configured = true;
}

/// A per-thread, 64-byte aligned scratch buffer.
struct Scratch {
  std::unique_ptr<char[]> mem;
  std::size_t cap = 0;
  char *get(std::size_t bytes) {
    if (bytes + 64 > cap) {
      cap = bytes + 64;
      mem.reset(new char[cap]);
    }
    return reinterpret_cast<char *>(
        (reinterpret_cast<uintptr_t>(mem.get()) + 63) & ~uintptr_t(63));
  }
};

// INT8: acc[m * 32 + n] (m < MT * 16, n < NT * 16) = sum over blocks b of
// scale[m * NB + b] * (int32 dot of block b). A: panel rows (stride aStride
// bytes); B: tiles of the first 16-row block, the second at + bBlock bytes.
template <int MT, int NT>
KT_TARGET void int8Micro(const int8_t *A, long aStride, const int8_t *B,
                         long bBlock, int NB, const float *scale, float *acc,
                         int32_t *cbuf) {
  for (int m = 0; m < MT * 16; ++m)
    for (int n = 0; n < NT * 16; n += 16)
      _mm512_storeu_ps(acc + m * 32 + n, _mm512_setzero_ps());
  for (int b = 0; b < NB; ++b) {
    KT_TILE_ZERO(0);
    if constexpr (NT == 2)
      KT_TILE_ZERO(1);
    if constexpr (MT == 2)
      KT_TILE_ZERO(2);
    if constexpr (MT == 2 && NT == 2)
      KT_TILE_ZERO(3);
    for (int kc = 2 * b; kc < 2 * b + 2; ++kc) { // kActBlock = 2 x 64
      const int8_t *a = A + kc * kTileBytes;
      const int8_t *w = B + static_cast<long>(kc) * kTileSize;
      KT_TILE_LOAD(4, a, aStride);
      if constexpr (MT == 2)
        KT_TILE_LOAD(5, a + 16 * aStride, aStride);
      KT_TILE_LOAD(6, w, kTileBytes);
      if constexpr (NT == 2)
        KT_TILE_LOAD(7, w + bBlock, kTileBytes);
      KT_TDPBSSD(0, 4, 6);
      if constexpr (NT == 2)
        KT_TDPBSSD(1, 4, 7);
      if constexpr (MT == 2)
        KT_TDPBSSD(2, 5, 6);
      if constexpr (MT == 2 && NT == 2)
        KT_TDPBSSD(3, 5, 7);
    }
    KT_TILE_STORE(0, cbuf, 128);
    if constexpr (NT == 2)
      KT_TILE_STORE(1, cbuf + 16, 128);
    if constexpr (MT == 2)
      KT_TILE_STORE(2, cbuf + 16 * 32, 128);
    if constexpr (MT == 2 && NT == 2)
      KT_TILE_STORE(3, cbuf + 16 * 32 + 16, 128);
    for (int m = 0; m < MT * 16; ++m) {
      const __m512 s = _mm512_set1_ps(scale[m * NB + b]);
      for (int n = 0; n < NT * 16; n += 16) {
        __m512 c = _mm512_cvtepi32_ps(_mm512_load_si512(cbuf + m * 32 + n));
        _mm512_storeu_ps(
            acc + m * 32 + n,
            _mm512_fmadd_ps(c, s, _mm512_loadu_ps(acc + m * 32 + n)));
      }
    }
  }
}

// BF16: cbuf[m * 32 + n] = dot over kChunks chunks of 32 elements.
template <int MT, int NT>
KT_TARGET void bf16Micro(const uint16_t *A, long aStride, const uint16_t *B,
                         long bBlock, int kChunks, float *cbuf) {
  KT_TILE_ZERO(0);
  if constexpr (NT == 2)
    KT_TILE_ZERO(1);
  if constexpr (MT == 2)
    KT_TILE_ZERO(2);
  if constexpr (MT == 2 && NT == 2)
    KT_TILE_ZERO(3);
  const char *ab = reinterpret_cast<const char *>(A);
  const char *bb = reinterpret_cast<const char *>(B);
  for (int kc = 0; kc < kChunks; ++kc) {
    const char *a = ab + kc * kTileBytes;
    const char *w = bb + static_cast<long>(kc) * kTileSize;
    KT_TILE_LOAD(4, a, aStride);
    if constexpr (MT == 2)
      KT_TILE_LOAD(5, a + 16 * aStride, aStride);
    KT_TILE_LOAD(6, w, kTileBytes);
    if constexpr (NT == 2)
      KT_TILE_LOAD(7, w + bBlock, kTileBytes);
    KT_TDPBF16PS(0, 4, 6);
    if constexpr (NT == 2)
      KT_TDPBF16PS(1, 4, 7);
    if constexpr (MT == 2)
      KT_TDPBF16PS(2, 5, 6);
    if constexpr (MT == 2 && NT == 2)
      KT_TDPBF16PS(3, 5, 7);
  }
  KT_TILE_STORE(0, cbuf, 128);
  if constexpr (NT == 2)
    KT_TILE_STORE(1, cbuf + 16, 128);
  if constexpr (MT == 2)
    KT_TILE_STORE(2, cbuf + 16 * 32, 128);
  if constexpr (MT == 2 && NT == 2)
    KT_TILE_STORE(3, cbuf + 16 * 32 + 16, 128);
}

template <bool Int8>
KT_TARGET void amxRows(const PackedMatrix &w, int r0, int r1, const ActRows &a,
                       const int *idx, int n, float *out, int outStride) {
  configureTiles();
  constexpr int esz = Int8 ? 1 : 2; // bytes per element
  const int P = w.paddedCols;
  const long rowBytes = static_cast<long>(P) * esz;
  const int kChunks = static_cast<int>(rowBytes / kTileBytes);
  const int NB = P / kActBlock;
  const long bBlock = static_cast<long>(kChunks) * kTileSize; // bytes
  const char *tiles = Int8 ? reinterpret_cast<const char *>(w.q8Tiles.data())
                           : reinterpret_cast<const char *>(w.bf16Tiles.data());

  thread_local Scratch panelMem, miscMem;
  char *panel = panelMem.get(kPanel * rowBytes);
  char *misc = miscMem.get(sizeof(float) * kPanel * (NB + 64));
  float *scale = reinterpret_cast<float *>(misc); // [kPanel][NB]
  float *acc = scale + kPanel * NB;               // [32][32]
  acc = reinterpret_cast<float *>((reinterpret_cast<uintptr_t>(acc) + 63) &
                                  ~uintptr_t(63));
  alignas(64) int32_t cbuf[32 * 32];
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));

  for (int j0 = 0; j0 < n; j0 += kPanel) {
    const int m = std::min(kPanel, n - j0);
    const int MT = m > 16 ? 2 : 1;
    // Gather the chunk's activation rows; rows m .. MT*16 are zero.
    for (int t = 0; t < MT * 16; ++t) {
      char *dst = panel + t * rowBytes;
      if (t >= m) {
        std::memset(dst, 0, rowBytes);
        if constexpr (Int8)
          std::fill(scale + t * NB, scale + (t + 1) * NB, 0.f);
        continue;
      }
      const std::size_t row = static_cast<std::size_t>(idx[j0 + t]);
      if constexpr (Int8) {
        const uint8_t *src = a.u8 + row * a.stride;
        for (long k = 0; k < rowBytes; k += 64)
          _mm512_store_si512(
              dst + k, _mm512_xor_si512(_mm512_loadu_si512(src + k), flip));
        std::memcpy(scale + t * NB, a.scale + row * (a.stride / kActBlock),
                    sizeof(float) * NB);
      } else {
        std::memcpy(dst, a.bf16 + row * a.stride, rowBytes);
      }
    }
    for (int rb = r0; rb < r1; rb += 32) {
      const int nr = std::min(32, r1 - rb);
      const int NT = nr > 16 ? 2 : 1;
      const char *B = tiles + static_cast<long>(rb / kTileRows) * bBlock;
      if constexpr (Int8) {
        const int8_t *A8 = reinterpret_cast<const int8_t *>(panel);
        const int8_t *B8 = reinterpret_cast<const int8_t *>(B);
        if (MT == 2 && NT == 2)
          int8Micro<2, 2>(A8, rowBytes, B8, bBlock, NB, scale, acc, cbuf);
        else if (MT == 2)
          int8Micro<2, 1>(A8, rowBytes, B8, bBlock, NB, scale, acc, cbuf);
        else if (NT == 2)
          int8Micro<1, 2>(A8, rowBytes, B8, bBlock, NB, scale, acc, cbuf);
        else
          int8Micro<1, 1>(A8, rowBytes, B8, bBlock, NB, scale, acc, cbuf);
        const float *ws = &w.scales[rb];
        for (int t = 0; t < m; ++t) {
          float *o = out + static_cast<long>(j0 + t) * outStride + (rb - r0);
          for (int c = 0; c < nr; ++c)
            o[c] = acc[t * 32 + c] * ws[c];
        }
      } else {
        const uint16_t *A16 = reinterpret_cast<const uint16_t *>(panel);
        const uint16_t *B16 = reinterpret_cast<const uint16_t *>(B);
        float *cf = reinterpret_cast<float *>(cbuf);
        if (MT == 2 && NT == 2)
          bf16Micro<2, 2>(A16, rowBytes, B16, bBlock, kChunks, cf);
        else if (MT == 2)
          bf16Micro<2, 1>(A16, rowBytes, B16, bBlock, kChunks, cf);
        else if (NT == 2)
          bf16Micro<1, 2>(A16, rowBytes, B16, bBlock, kChunks, cf);
        else
          bf16Micro<1, 1>(A16, rowBytes, B16, bBlock, kChunks, cf);
        for (int t = 0; t < m; ++t) {
          float *o = out + static_cast<long>(j0 + t) * outStride + (rb - r0);
          std::memcpy(o, cf + t * 32, sizeof(float) * nr);
        }
      }
    }
  }
}

KT_TARGET void amxInt8Rows(const PackedMatrix &w, int r0, int r1,
                           const ActRows &a, const int *idx, int n, float *out,
                           int outStride) {
  amxRows<true>(w, r0, r1, a, idx, n, out, outStride);
}
KT_TARGET void amxBf16Rows(const PackedMatrix &w, int r0, int r1,
                           const ActRows &a, const int *idx, int n, float *out,
                           int outStride) {
  amxRows<false>(w, r0, r1, a, idx, n, out, outStride);
}

} // namespace

RowsKernel amxInt8Kernel() { return amxInt8Rows; }
RowsKernel amxBf16Kernel() { return amxBf16Rows; }

} // namespace kt::kernels::detail
