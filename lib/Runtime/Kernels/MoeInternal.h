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

#include <memory>
#include <vector>

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
  /// The u8 values as int8 without the offset (u8 - 128, in [-127, 127]):
  /// the AVX2 INT8 kernel (vpmaddubsw on |w| and sign(x, w)) and the VNNI
  /// INT4 kernel (nibbles x s8) read these.
  const int8_t *s8 = nullptr;
  /// BF16 weights on the AVX512BF16 / AMX paths: the fp32 rows rounded to
  /// bf16 (round to nearest even).
  const uint16_t *bf16 = nullptr;
};

/// Row r of an INT4 matrix: its nibbles (paddedCols / 2 bytes), and its
/// groups' scales and offsets (groupsPerRow() each); the rows after it
/// follow at the same strides.
struct Int4Row {
  const uint8_t *q;
  const float *scales, *offsets;
};
inline Int4Row int4Row(const PackedMatrix &w, int r) {
  const std::size_t g = static_cast<std::size_t>(r) * w.groupsPerRow();
  return {&w.q4[static_cast<std::size_t>(r) * w.paddedCols / 2], &w.scales[g],
          &w.offsets[g]};
}

/// out[j * outStride + (r - r0)] = dot(W row r, activation row idx[j]) for
/// r in [r0, r1), j in [0, n).
using RowsKernel = void (*)(const PackedMatrix &w, int r0, int r1,
                            const ActRows &a, const int *idx, int n,
                            float *out, int outStride);

struct KernelSet {
  RowsKernel bf16 = nullptr, int8 = nullptr, int4 = nullptr;
  /// INT8 weights times fp32 activations (Int8Activations::Float).
  RowsKernel int8Float = nullptr;
  /// INT4 weights times fp32 activations (Int4Activations::Float; `int4`
  /// is the same kernel except avx512VnniInt4Kernel on VNNI CPUs).
  RowsKernel int4Float = nullptr;
};


KernelSet scalarKernels();
KernelSet avx2Kernels();
KernelSet avx512Kernels();
RowsKernel avx512VnniInt8Kernel();
/// INT4 nibbles x s8 activations with vpdpbusd; reads ActRows::s8 and
/// ::scale.
RowsKernel avx512VnniInt4Kernel();
/// vdpbf16ps on the row layout; reads ActRows::bf16.
RowsKernel avx512Bf16Kernel();

//===----------------------------------------------------------------------===//
// Panel (expert-major) kernels on the tile layout (MoeTiled.cpp): experts
// with many tokens, and on the AMX path every expert
//===----------------------------------------------------------------------===//

/// C[m * 32 + c] = dot(A row m, weight row c) for m < M (<= 32) and c < 32:
/// columns 0..15 from the 16-row weight tile block at B0, 16..31 from B1
/// (null: only 16 columns). A rows are `aStride` bytes apart and hold
/// kChunks * 64 bytes; rows M .. 16 * ceil(M / 16) - 1 must be readable.
/// Weight blocks are kChunks contiguous 1 KiB tiles in the layout of
/// PackedMatrix::q8Tiles / bf16Tiles. INT8 kernels write int32: the
/// products of the signed activations q (kernels that take u8 activations,
/// q + 128, remove the offset themselves); BF16 kernels write fp32.
using PanelMicro = void (*)(const char *A, long aStride, int M,
                            const char *B0, const char *B1, int kChunks,
                            void *C);

/// Element-wise steps around the panel micro-kernels (PanelEpilogue.cpp).
struct PanelEpilogue {
  /// INT8: F[m][c] = a[m * aStride] * w[c] * C[m][c] for m < M, c < cols
  /// (16 or 32), added to F unless `first`: the int32 results of one block
  /// of the input dimension (row stride 32) scaled by the block's activation
  /// scale per token and the weight rows' scales, into fp32 (row stride 32).
  void (*scaleAdd)(const int32_t *C, int M, int cols, const float *a,
                   int aStride, const float *w, bool first, float *F) = nullptr;
  /// The M token rows of a gate/up result (fp32, row stride 32: 16 gate then
  /// 16 up columns): h[m][c] = silu(g[m][c]) * u[m][c] for c < nc (<= 16),
  /// written as fp32 (hf) or bf16 (hb, the other null), rows hStride
  /// elements apart.
  void (*gateUp)(const float *C, int M, int nc, float *hf, uint16_t *hb,
                 long hStride) = nullptr;
  /// The M token rows of a down result (fp32, row stride 32): o[m][c] +=
  /// f[m] * C[m][c] for m < M and c < nc (<= 32).
  void (*down)(const float *C, int M, int nc, const float *f,
               float *const *o) = nullptr;
  /// Per-row symmetric INT8: q = clamp(round(x / s), -127, 127) with
  /// s = max|x[0..n)| / 127; writes `stride` bytes (q, or q + 128 when
  /// unsignedA; padding = zero) and returns s.
  float (*quantize)(const float *x, int n, int stride, bool unsignedA,
                    char *dst) = nullptr;
  /// dst[c] = bf16(x[c]) for c < n.
  void (*toBf16)(const float *x, int n, uint16_t *dst) = nullptr;
};
PanelEpilogue scalarEpilogue();
PanelEpilogue avx512Epilogue();

/// Writes the 16-row block `rowBlock` of m (INT4, or INT8) dequantised to
/// bf16 in the tile layout of PackedMatrix::bf16Tiles: paddedCols / 32 tiles
/// of 1 KiB, rows >= m.rows zero. The BF16 panel micro-kernels then run
/// formats that have no bf16 tile layout of their own (PanelKernel::dequant).
using PanelDequant = void (*)(const PackedMatrix &m, int rowBlock,
                              uint16_t *dst);
/// Portable reference (PackedMatrix::dequant, rounded to bf16).
PanelDequant scalarDequant();
/// AVX512 with AVX512-BF16 conversion; the same bits as scalarDequant().
PanelDequant avx512Dequant();

struct PanelKernel {
  PanelMicro micro = nullptr;
  bool int8 = false;
  /// INT8: the kernel takes u8 activations (q + 128), else s8 (q).
  bool unsignedA = false;
  PanelEpilogue epi;
  /// When set, the micro-kernel is a BF16 one and weight blocks are
  /// dequantised per task into per-thread scratch rather than read from the
  /// weights' tile layout (INT4 on the AMX path).
  PanelDequant dequant = nullptr;
  /// The micro-kernel reads A in 16-row tiles (AMX): each expert's panel
  /// rows are padded to a multiple of 16 (zeros). The broadcast kernels
  /// read rows < M only, so their panels are not padded.
  bool tileA = false;
};

PanelKernel amxInt8Panel();
PanelKernel amxBf16Panel();
/// vpdpbusd with broadcast u8 activations on the INT8 tile layout: experts
/// with many tokens on the AVX512 path, few tokens on the AMX path.
PanelKernel vnniInt8Panel();
/// vdpbf16ps with broadcast bf16 activations on the BF16 tile layout:
/// experts with few tokens (decode) on the AMX path.
PanelKernel avx512Bf16Panel();
/// Portable reference of the AMX panel kernels (s8 or bf16 activations):
/// MoeOptions::emulatePanels runs the panel pipeline with it on any CPU.
PanelKernel scalarPanel(bool int8);

/// Tokens grouped by expert (Moe.cpp).
struct Routing {
  std::vector<int> offsets;    // [E + 1] pairs of expert e: offsets[e]..
  std::vector<int> token;      // [A] token of each pair
  std::vector<float> weight;   // [A] routing weight of each pair
  std::vector<int> expert;     // [A] expert of each pair
  std::vector<int> slotPair;   // [T * k] pair of each slot, -1 if skipped
  std::vector<int> active;     // experts with at least one pair
  int count(int e) const { return offsets[e + 1] - offsets[e]; }
};

/// Grow-only scratch memory reused across calls (per calling thread), so
/// large prefill buffers are not faulted in and zeroed on every call.
class Workspace {
public:
  /// `bytes` of 64-byte aligned, uninitialised memory; valid until the next
  /// reset().
  char *take(std::size_t bytes);
  template <class T> T *take(std::size_t n) {
    return reinterpret_cast<T *>(take(n * sizeof(T)));
  }
  /// Start a new call: earlier take()s may be handed out again.
  void reset();

private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::vector<std::size_t> caps_;
  std::size_t next_ = 0;
};

/// Runs the experts in `experts` (each routed >= 1 token) through `k`:
/// expert-major activation panels, fused gate/up, h quantised once per pair,
/// and down tasks that own blocks of the hidden dimension and add
/// weight * y straight into accum [tokens, hidden] (fp32, rows of
/// accumStride(hidden) floats, zeroed by the caller). xf: fp32 activation
/// rows of stride = the weights' paddedCols; xb: the same rows in bf16, or
/// null (a BF16 kernel then rounds xf). One of them may be null where `k`
/// does not read it. opts: task sizes (panelGateRows, panelDownRows) and
/// stats.
void runPanelExperts(const MoeWeights &w, const Routing &rt,
                     const std::vector<int> &experts, const PanelKernel &k,
                     const float *xf, const uint16_t *xb, int tokens,
                     ThreadPool &pool, Workspace &ws, float *accum,
                     const MoeOptions &opts);

/// Row stride (floats) of the panel pipeline's accumulator: hidden rounded
/// up to 16, plus 16. Real hidden sizes are multiples of 1024 floats (4
/// KiB), so unpadded rows would all fall into the same few L1 / L2 sets and
/// a down task's column slice of every token row would not stay in L2.
int accumStride(int hidden);

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
