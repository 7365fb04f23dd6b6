//===- MoeInternal.h - Kernel entry points shared by the MoE driver -------===//
//
// Private to lib/Runtime/Kernels. Each kernel TU (scalar, AVX2, AVX512)
// provides one RowsKernel per weight format; the driver (Moe.cpp) picks
// them at run time.
//
//===----------------------------------------------------------------------===//
#ifndef KT_LIB_RUNTIME_KERNELS_MOEINTERNAL_H
#define KT_LIB_RUNTIME_KERNELS_MOEINTERNAL_H

#include "kt/Runtime/Kernels/Moe.h"

namespace kt::kernels::detail {

/// Prepared activation rows, each `stride` (= the weights' paddedCols)
/// elements, zero padded.
struct ActRows {
  int stride = 0;
  const float *f32 = nullptr;  ///< BF16 / INT4 formats: fp32 rows
  const uint8_t *u8 = nullptr; ///< INT8: round(x / scale) + 128
  /// INT8: one scale per 128-element block of each row (max|x| / 127 over
  /// the block), stride / 128 per row.
  const float *scale = nullptr;
  /// INT8 on the AVX2 path: the same values as int16 without the offset
  /// (u8 - 128), so the kernel needs no per-row widening.
  const int16_t *s16 = nullptr;
  /// BF16 weights on the AVX512BF16 / AMX paths: the fp32 rows rounded to
  /// bf16 (round to nearest even).
  const uint16_t *bf16 = nullptr;
};

/// out[j * outStride + (r - r0)] = dot(W row r, activation row idx[j]) for
/// r in [r0, r1), j in [0, n).
using RowsKernel = void (*)(const PackedMatrix &w, int r0, int r1,
                            const ActRows &a, const int *idx, int n,
                            float *out, int outStride);

struct KernelSet {
  RowsKernel bf16 = nullptr, int8 = nullptr, int4 = nullptr;
};

/// Whether the path's INT8 kernel reads ActRows::s16 (else ::u8).
bool int8NeedsS16(KernelPath path);

KernelSet scalarKernels();
KernelSet avx2Kernels();
KernelSet avx512Kernels();
RowsKernel avx512VnniInt8Kernel();
/// vdpbf16ps on the row layout; reads ActRows::bf16.
RowsKernel avx512Bf16Kernel();
/// AMX kernels on the tile layout (PackedMatrix::q8Tiles / bf16Tiles).
/// r0 must be a multiple of kTileRows. INT8 reads ActRows::u8 and ::scale,
/// BF16 reads ActRows::bf16. Configure the calling thread's tiles on first
/// use.
RowsKernel amxInt8Kernel();
RowsKernel amxBf16Kernel();

/// The process-wide pool of `threads` threads (MoeOptions::threads), made
/// on first use.
ThreadPool &sharedPool(int threads);

/// Elements of an activation row that share one INT8 scale.
constexpr int kActBlock = 128;

/// Symmetric u8 quantisation of one activation row used by the INT8
/// kernels, per block of kActBlock elements:
/// q = clamp(round(x / s), -127, 127) + 128, s = max|x[block]| / 127.
/// Writes stride bytes (padding: 128, i.e. zero) and stride / kActBlock
/// scales.
void quantizeRowU8(const float *x, int n, int stride, uint8_t *q,
                   float *scales);

} // namespace kt::kernels::detail

#endif
