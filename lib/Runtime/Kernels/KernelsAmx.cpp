//===- KernelsAmx.cpp - AMX-INT8 / AMX-BF16 panel kernels -----------------===//
//
// The micro-kernels of the panel pipeline (MoeTiled.cpp) on AMX:
// C[32 tokens, 32 weight rows] = A[32, K] * B[K, 32] with A = two 16-row
// tiles of an expert's activation panel and B = two 16-row blocks of the
// weights' tile layout (PackedMatrix::q8Tiles / bf16Tiles: 1 KiB
// VNNI-ordered tiles, see Moe.h). tmm0-3 hold the 2 x 2 C tiles for the
// input dimension (or one INT8 activation block of it), tmm4-5 the A tiles,
// tmm6-7 the B tiles. Each chunk prefetches the next chunk's operands (up to
// 64 lines) into L1.
//
//  INT8: tdpbssd (s8 x s8 -> int32), over one block of the input dimension
//  that shares an activation scale (the caller scales and adds the blocks).
//  BF16: tdpbf16ps on bf16 activations, fp32 C.
//
// Tile state: each thread loads the (fixed) configuration once
// (thread_local flag) and leaves it loaded; the kernels only run after
// cpuFeatures() saw AMX and obtained the tile permission. The tile
// instructions are inline asm with a "memory" clobber (GCC's _tile_loadd
// does not tell the compiler it reads memory, so stores to the panel could be
// moved past it).
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

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

/// MT x NT C tiles over kChunks 64-byte chunks of the input dimension;
/// C row stride 128 bytes (32 int32 / fp32).
template <bool Int8, int MT, int NT>
KT_TARGET void panelMicro(const char *A, long aStride, const char *B0,
                          const char *B1, int kChunks, void *C) {
  KT_TILE_ZERO(0);
  if constexpr (NT == 2)
    KT_TILE_ZERO(1);
  if constexpr (MT == 2)
    KT_TILE_ZERO(2);
  if constexpr (MT == 2 && NT == 2)
    KT_TILE_ZERO(3);
  const char *a1 = A + 16 * aStride;
  for (int kc = 0; kc < kChunks; ++kc) {
    const long ko = static_cast<long>(kc) * kTileBytes;
    const long bo = static_cast<long>(kc) * kTileSize;
    // The next chunk's A rows and B tiles into L1 while this chunk's
    // products run: tile loads do not overlap the products, so they should
    // hit L1 (docs/performance.md, "tile probes" and "prefetch"). After the
    // last chunk that is the next INT8 block's first chunk (prefetches past
    // the operands do not fault).
    for (int r = 0; r < 16 * MT; ++r)
      _mm_prefetch(A + r * aStride + ko + kTileBytes, _MM_HINT_T0);
    for (int l = 0; l < kTileSize; l += 64) {
      _mm_prefetch(B0 + bo + kTileSize + l, _MM_HINT_T0);
      if constexpr (NT == 2)
        _mm_prefetch(B1 + bo + kTileSize + l, _MM_HINT_T0);
    }
    KT_TILE_LOAD(6, B0 + bo, kTileBytes);
    KT_TILE_LOAD(4, A + ko, aStride);
    if constexpr (NT == 2)
      KT_TILE_LOAD(7, B1 + bo, kTileBytes);
    if constexpr (MT == 2)
      KT_TILE_LOAD(5, a1 + ko, aStride);
    if constexpr (Int8) {
      KT_TDPBSSD(0, 4, 6);
      if constexpr (NT == 2)
        KT_TDPBSSD(1, 4, 7);
      if constexpr (MT == 2)
        KT_TDPBSSD(2, 5, 6);
      if constexpr (MT == 2 && NT == 2)
        KT_TDPBSSD(3, 5, 7);
    } else {
      KT_TDPBF16PS(0, 4, 6);
      if constexpr (NT == 2)
        KT_TDPBF16PS(1, 4, 7);
      if constexpr (MT == 2)
        KT_TDPBF16PS(2, 5, 6);
      if constexpr (MT == 2 && NT == 2)
        KT_TDPBF16PS(3, 5, 7);
    }
  }
  char *c = static_cast<char *>(C);
  KT_TILE_STORE(0, c, 128);
  if constexpr (NT == 2)
    KT_TILE_STORE(1, c + 64, 128);
  if constexpr (MT == 2)
    KT_TILE_STORE(2, c + 16 * 128, 128);
  if constexpr (MT == 2 && NT == 2)
    KT_TILE_STORE(3, c + 16 * 128 + 64, 128);
}

template <bool Int8>
KT_TARGET void amxPanel(const char *A, long aStride, int M, const char *B0,
                        const char *B1, int kChunks, void *C) {
  configureTiles();
  if (M > 16) {
    if (B1)
      panelMicro<Int8, 2, 2>(A, aStride, B0, B1, kChunks, C);
    else
      panelMicro<Int8, 2, 1>(A, aStride, B0, B1, kChunks, C);
  } else {
    if (B1)
      panelMicro<Int8, 1, 2>(A, aStride, B0, B1, kChunks, C);
    else
      panelMicro<Int8, 1, 1>(A, aStride, B0, B1, kChunks, C);
  }
}

} // namespace

PanelKernel amxInt8Panel() {
  PanelKernel k{amxPanel<true>, true, false, avx512Epilogue()};
  k.tileA = true;
  return k;
}
PanelKernel amxBf16Panel() {
  PanelKernel k{amxPanel<false>, false, false, avx512Epilogue()};
  k.tileA = true;
  return k;
}

} // namespace kt::kernels::detail
