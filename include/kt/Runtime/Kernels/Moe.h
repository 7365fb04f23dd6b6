//===- Moe.h - CPU routed-expert (MoE) kernels ------------------*- C++ -*-===//
//
// The CPU side of `kt.cpu_experts`: packed expert weights (BF16, INT8,
// grouped INT4) and the fused MoE operator
//
//   out[t] = sum_j w[t,j] * down_e( silu(gate_e(x[t])) * up_e(x[t]) ),
//   e = ids[t,j]  (ids < 0 are skipped)
//
// Weights are packed once from f32 or bf16 source tensors in the Hugging Face
// nn.Linear layout ([out, in], row-major). Kernels (scalar, AVX2, AVX512 /
// AVX512-VNNI, AVX512-BF16, AMX-INT8 / AMX-BF16) are chosen at run time from
// the CPU's features; the library is compiled without global -m flags, so one
// build runs on any x86-64.
// docs/kernels.md describes the formats and the quantisation schemes.
//
//===----------------------------------------------------------------------===//
#ifndef KT_RUNTIME_KERNELS_MOE_H
#define KT_RUNTIME_KERNELS_MOE_H

#include "kt/Runtime/Kernels/ThreadPool.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace kt::kernels {

/// Element type of activations and source weight tensors.
enum class DType { F32, BF16 };
/// Element type of the top-k expert ids.
enum class IdType { I32, I64 };

/// Packed weight format.
enum class WeightFormat { BF16, INT8, INT4 };

/// Kernel implementation. Auto picks the best one the CPU supports.
///  * AVX512: fp32 FMA (BF16, INT4), VNNI vpdpbusd (INT8).
///  * AVX512BF16: as AVX512, but BF16 weights use vdpbf16ps on bf16
///    activations (x and h rounded to bf16).
///  * AMX: every BF16 / INT8 expert on the tile layout (QuantConfig::tiles):
///    AMX tiles (tdpbssd for INT8, tdpbf16ps for BF16) when the expert has
///    >= MoeOptions::amxMinTokens tokens, else the VNNI (INT8) or AVX512-BF16
///    (BF16) panel kernel on the same tiles. INT4 (no tile layout): experts
///    with >= kAmxMinTokensInt4 tokens have their nibbles dequantised to bf16
///    tiles per task for tdpbf16ps (bf16 activations); the others run the
///    AVX512 fp32 row kernel.
/// The other paths run experts with few tokens on the row layout, so they
/// refuse weights packed tile-only (TilePacking::Only).
enum class KernelPath { Auto, Scalar, AVX2, AVX512, AVX512BF16, AMX };

const char *toString(WeightFormat f);
const char *toString(KernelPath p);

/// CPU features relevant to kernel selection (cached; __builtin_cpu_supports
/// and CPUID leaf 7 / XCR0 for AVX512-BF16 and AMX).
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false; ///< CPUID.(7,1):EAX[5]
  bool amxTile = false, amxInt8 = false, amxBf16 = false; ///< CPUID.(7,0):EDX
  bool amxOsEnabled = false; ///< XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA)
  /// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) succeeded (Linux
  /// asks each process to request the 8 KiB tile state once).
  bool amxPermitted = false;
};
const CpuFeatures &cpuFeatures();

/// Whether `path` can run `format` on this CPU (Auto and Scalar: always).
bool pathSupported(KernelPath path, WeightFormat format);
/// The path Auto resolves to for `format` on this CPU.
KernelPath bestPath(WeightFormat format);
/// Human-readable reason why `path` cannot run `format` here ("" if it can),
/// e.g. "CPU lacks AVX512-VNNI".
std::string missingFeature(KernelPath path, WeightFormat format);

/// Which layouts packMatrix keeps for BF16 / INT8 weights: the row layout
/// (PackedMatrix::bf16 / q8, read by the row kernels) and / or the AMX tile
/// layout (bf16Tiles / q8Tiles, read by the panel kernels). INT4 has no tile
/// layout: it always keeps its rows, whatever this says.
enum class TilePacking {
  /// Tiles only (Only) on a CPU that can run the AMX path for the format,
  /// else rows only (Never).
  Auto,
  /// Both layouts (tests that run several paths on one packed set).
  Always,
  /// Rows only.
  Never,
  /// Tiles only: half the memory of Always; only the AMX path (and
  /// MoeOptions::emulatePanels) can run the weights. INT8 keeps its scales
  /// and rowSum (the VNNI panel kernel's offset corrections need it).
  Only
};

/// Rows per AMX tile block and bytes per tile row (16 x 64-byte tiles).
constexpr int kTileRows = 16, kTileBytes = 64;
/// Tokens an expert needs for the AMX path to use AMX tiles rather than the
/// VNNI (INT8) / AVX512-BF16 (BF16) kernels: where the tiles became faster
/// in bench_moe's threshold/* cases on the 16-core AMX machine
/// (docs/kernels.md). MoeOptions::amxMinTokens overrides both.
constexpr int kAmxMinTokensInt8 = 5, kAmxMinTokensBf16 = 6;
/// INT4 weights on the AMX path: experts with at least this many tokens are
/// dequantised to bf16 tiles for AMX, the others run the AVX512 row kernel.
constexpr int kAmxMinTokensInt4 = 8;
/// INT8 on the AVX512 path with VNNI and the tile layout: experts with at
/// least this many tokens use the VNNI panel kernel (broadcast activations
/// over the tile layout) instead of the row kernel. MoeOptions::vnniMinTokens
/// overrides it.
constexpr int kVnniPanelMinTokens = 5;
/// Panel pipeline task sizes (MoeOptions::panelGateRows / panelDownRows;
/// docs/kernels.md, measured with the tune/ benchmarks): intermediate rows
/// per gate/up task and hidden rows per down task. A task reads each token
/// panel of an expert once for all its weight rows, so taller tasks read
/// the panels from L3 fewer times.
constexpr int kPanelGateRows = 64, kPanelDownRows = 64;
/// INT8 panel kernels: activation elements per 8-bit scale
/// (MoeOptions::int8PanelBlock).
constexpr int kInt8PanelBlock = 256;
/// Whether `elements` is a valid MoeOptions::int8PanelBlock: <= 0 (one
/// scale per token row) or whole 64-byte chunks of INT8 activations.
constexpr bool int8PanelBlockValid(int elements) {
  return elements <= 0 || elements % kTileBytes == 0;
}

struct QuantConfig {
  WeightFormat format = WeightFormat::BF16;
  /// INT4 only: elements of a row that share one scale (32, 64 or 128).
  int groupSize = 64;
  /// INT4 only: asymmetric (scale + minimum per group) instead of symmetric.
  bool asymmetric = false;
  /// Row and / or AMX tile layout of BF16 / INT8 weights.
  TilePacking tiles = TilePacking::Auto;
  /// INT8 only: store the down projection rotated (downRotation()), so that
  /// the 8-bit activations it multiplies lose their outliers.
  bool rotateDown = true;
};

/// Columns per block of the down projection's rotation (docs/kernels.md,
/// "Rotated down projection").
constexpr int kRotationBlock = 128;
/// Block size of the rotation packMoe applies to down weights under `cfg`:
/// kRotationBlock for INT8 with rotateDown, else 0 (none).
int downRotation(const QuantConfig &cfg);
/// The normalised Walsh-Hadamard transform (H / sqrt(block), orthogonal and
/// symmetric, so applying it twice restores v), in place on each whole
/// `block` of v[0, n); a tail shorter than `block` is rotated in
/// power-of-two pieces, largest first (I 72 with block 128: 64, then 8).
/// `block` a power of two; 0 does nothing. y = W h = (W R)(R h) for R this
/// transform: down weights are stored as W R and h is rotated before it is
/// quantised.
void hadamardRotate(float *v, int n, int block);

/// One [rows, cols] weight matrix in a packed format. Every row is padded
/// with zeros to `paddedCols` (a multiple of 128) so kernels need no tails.
struct PackedMatrix {
  WeightFormat format = WeightFormat::BF16;
  int rows = 0, cols = 0, paddedCols = 0;
  int groupSize = 0;     ///< INT4 only
  bool asymmetric = false; ///< INT4 only
  /// Columns stored rotated by hadamardRotate(row, cols, rotation) (0: not
  /// rotated): the matrix multiplies rotated activations. dequant() reads
  /// the stored (rotated) values, dequantRow() the original ones.
  int rotation = 0;

  /// BF16: rows * paddedCols raw bf16 bits (the row layout; empty when
  /// packed tile-only).
  std::vector<uint16_t> bf16;
  /// INT8: rows * paddedCols signed values in [-127, 127] (the row layout;
  /// empty when packed tile-only).
  std::vector<int8_t> q8;
  /// INT8: sum of the q8 values of each 128-column block of each row,
  /// rows * paddedCols / 128 (for the +128 offset of u8 activations).
  std::vector<int32_t> rowSum;
  /// INT4: rows * paddedCols / 2 bytes; see docs/kernels.md for the nibble
  /// order (per 32-element block: low nibbles = elements 0..15, high
  /// nibbles = elements 16..31).
  std::vector<uint8_t> q4;
  /// INT8: one scale per row. INT4: rows * groupsPerRow() scales.
  std::vector<float> scales;
  /// INT4: rows * groupsPerRow() offsets; w = q * scale + offset with q the
  /// unsigned nibble (symmetric: offset = -8 * scale).
  std::vector<float> offsets;

  /// AMX tile layout (optional, see TilePacking): the same values as bf16 /
  /// q8, rows padded with zeros to tileRows() (a multiple of 16), stored as
  /// 1 KiB B tiles (16 rows x 64 bytes) in VNNI order. Tile (rb, kc) holds
  /// weight rows 16*rb .. +15 and the kc-th chunk of 64 bytes of the input
  /// dimension (INT8: 64 elements, BF16: 32); its row kk, bytes 4n .. 4n+3,
  /// hold weight row 16*rb + n, elements kc*64 + 4kk .. +3 (INT8) or
  /// kc*32 + 2kk .. +1 (BF16). Tiles of one row block are contiguous
  /// (kc inner). See tileIndex().
  std::vector<int8_t> q8Tiles;
  std::vector<uint16_t> bf16Tiles;

  int groupsPerRow() const { return groupSize ? paddedCols / groupSize : 0; }
  /// Holds the AMX tile layout (BF16 / INT8).
  bool hasTiles() const { return !q8Tiles.empty() || !bf16Tiles.empty(); }
  /// Holds the row layout (bf16 / q8 / q4): false when packed tile-only.
  bool hasRows() const { return !bf16.empty() || !q8.empty() || !q4.empty(); }
  int tileRows() const { return (rows + kTileRows - 1) / kTileRows * kTileRows; }
  /// Index into q8Tiles / bf16Tiles of element (r, c).
  std::size_t tileIndex(int r, int c) const {
    const int perRow = format == WeightFormat::INT8 ? 4 : 2; // K per 4 bytes
    const int kChunk = 16 * perRow; // elements of K per tile
    const std::size_t chunks = paddedCols / kChunk;
    const std::size_t tile = (r / kTileRows) * chunks + c / kChunk;
    const int kk = (c % kChunk) / perRow;
    return tile * kTileRows * kChunk + kk * (kTileRows * perRow) +
           (r % kTileRows) * perRow + c % perRow;
  }
  /// Bytes of packed weight data one kernel streams: one layout (the row
  /// layout when present, else the tile layout) plus scales, offsets and
  /// rowSum.
  std::size_t bytes() const;
  /// Bytes held in memory: every layout held, scales included.
  std::size_t memoryBytes() const;
  /// Dequantised value of element (r, c) (c < cols), for tests and
  /// references; reads the tile layout when the row layout is absent.
  float dequant(int r, int c) const;
  /// Row r dequantised and rotated back: out[0, cols) approximates the
  /// source row, whatever `rotation` is.
  void dequantRow(int r, float *out) const;
};

/// Pack a row-major [rows, cols] tensor of type `srcType`.
/// Throws std::invalid_argument on a bad configuration.
/// rotation: hadamardRotate the source rows with this block before
/// quantising (0: none; packMoe passes downRotation(cfg) for down).
PackedMatrix packMatrix(const void *src, DType srcType, int rows, int cols,
                        const QuantConfig &cfg, int rotation = 0);

/// Whether packMatrix adds the AMX tile layout under `cfg` (BF16 / INT8 with
/// TilePacking::Always or Only, or Auto on a CPU that can run the AMX path).
bool wantsTiles(const QuantConfig &cfg);
/// Whether packMatrix keeps the row layout under `cfg`: always for INT4;
/// BF16 / INT8 unless tile-only (Only, or Auto on a CPU that can run the AMX
/// path).
bool wantsRows(const QuantConfig &cfg);
/// Builds m's AMX tile layout (q8Tiles / bf16Tiles) from its row layout, as
/// packMatrix does when wantsTiles(); nothing for INT4. Used when packed
/// weights are read from a file (the files hold the row layout only).
void addTileLayout(PackedMatrix &m);
/// Frees m's row layout (bf16 / q8) when m holds the tile layout; INT8 keeps
/// scales and rowSum. Nothing for INT4 or a matrix without tiles.
void dropRowLayout(PackedMatrix &m);
/// Rebuilds m's row layout from its tile layout (the inverse of
/// addTileLayout); nothing when m already holds rows or has no tiles.
void addRowLayout(PackedMatrix &m);

/// Pack columns [c0, c1) of a row-major [rows, cols] tensor (a strided view,
/// no copy) as a [rows, c1 - c0] matrix holding exactly the values of those
/// columns in packMatrix(src, ..., rows, cols, cfg): INT8 row scales come
/// from the whole row. c0 must be a multiple of 128 (INT4 groups and INT8
/// row-sum blocks stay aligned); throws std::invalid_argument otherwise.
/// With a rotation, each whole source row is rotated before the slice is
/// taken (c0 is a multiple of the block, so the slice's blocks are whole).
PackedMatrix packMatrixColumns(const void *src, DType srcType, int rows,
                               int cols, int c0, int c1, const QuantConfig &cfg,
                               int rotation = 0);

/// The routed experts of one MoE layer, packed.
struct MoeWeights {
  int numExperts = 0, hidden = 0, intermediate = 0;
  QuantConfig config;
  std::vector<PackedMatrix> gate, up, down; ///< [I,H], [I,H], [H,I] each
  std::size_t bytes() const;
  std::size_t memoryBytes() const; ///< every layout held
  /// Every matrix carries the AMX tile layout.
  bool hasTiles() const;
  /// Every matrix carries the row layout (false: packed tile-only).
  bool hasRows() const;
};

/// Source pointers of one expert (HF layout: gate/up [I, H], down [H, I]).
struct ExpertSource {
  const void *gate = nullptr, *up = nullptr, *down = nullptr;
};

/// Pack all experts; uses `pool` (may be null) to parallelise packing.
MoeWeights packMoe(const std::vector<ExpertSource> &experts, DType srcType,
                   int hidden, int intermediate, const QuantConfig &cfg,
                   ThreadPool *pool = nullptr);

/// Wall time of the phases of one moeForward call (seconds), for profiling.
struct MoeStats {
  double prepare = 0; ///< activations, routing
  double panels = 0;  ///< panel pipeline: gathering / quantising x panels
  double gateUp = 0;  ///< panel pipeline: fused gate/up
  double quantH = 0;  ///< panel pipeline: INT8 h rows
  double down = 0;    ///< panel pipeline: down + accumulation
  double rows = 0;    ///< row kernels (experts with few tokens)
  double combine = 0; ///< weighted sum per token
  /// Panel pipeline, gate/up and down phases: time spent inside tasks, mean
  /// over the pool's threads and the busiest thread's. The phase time minus
  /// the busiest thread's is synchronisation; busiest minus mean is
  /// imbalance (a slow core, or too few tasks).
  double gateUpBusyMean = 0, gateUpBusyMax = 0;
  double downBusyMean = 0, downBusyMax = 0;
  int panelExperts = 0, rowExperts = 0;
};

/// What INT8 weights are multiplied with (MoeOptions::int8Activations).
enum class Int8Activations {
  /// W8A8: activations quantised to 8 bits too (per 128 elements on the row
  /// kernels, per MoeOptions::int8PanelBlock elements on the panel kernels);
  /// integer dot products (VNNI, tdpbssd), the fastest. Mean relative error
  /// on Gaussian data ~0.018 (rows) / ~0.019 (panels) against the original
  /// weights with the rotated down projection (QuantConfig::rotateDown).
  Int8,
  /// W8A16: fp32 activations on the row kernels; on the AMX path experts
  /// with many tokens have their weights dequantised to bf16 tiles for
  /// tdpbf16ps (bf16 activations). Only the weights' rounding is left
  /// (~0.015); prefill runs at about BF16 speed with INT8's memory.
  Float
};

/// What INT4 weights are multiplied with on the row kernels of an
/// AVX512-VNNI CPU (MoeOptions::int4Activations); elsewhere INT4 always
/// takes fp32 activations, and on the AMX path experts with many tokens
/// take bf16 tiles either way.
enum class Int4Activations {
  /// Activations quantised to 8 bits per 128 elements (as INT8's W8A8);
  /// the nibbles are multiplied by them with vpdpbusd. Adds ~0.015 mean
  /// relative error against the dequantised weights, small beside INT4's own
  /// ~0.1-0.2 against the original weights.
  Int8,
  /// fp32 activations, nibbles dequantised to fp32 (exact up to fp32
  /// rounding against the dequantised weights).
  Float,
};
const char *toString(Int8Activations a);

struct MoeOptions {
  KernelPath path = KernelPath::Auto;
  /// INT8 weights only: see Int8Activations.
  Int8Activations int8Activations = Int8Activations::Int8;
  /// INT4 weights on the row kernels of an AVX512-VNNI CPU: see
  /// Int4Activations.
  Int4Activations int4Activations = Int4Activations::Int8;
  /// Threads to use when `pool` is null (a process-wide pool of this size is
  /// created on first use). Ignored when `pool` is given.
  int threads = 1;
  ThreadPool *pool = nullptr;
  /// AMX path: experts with at least this many tokens use AMX tiles, the
  /// others the VNNI / AVX512-BF16 panel kernels on the same tile layout.
  /// <= 0: kAmxMinTokensInt8 / kAmxMinTokensBf16.
  int amxMinTokens = 0;
  /// AVX512 path, INT8 weights with the tile layout: experts with at least
  /// this many tokens use the VNNI panel kernel. <= 0: kVnniPanelMinTokens.
  int vnniMinTokens = 0;
  /// Panel pipeline task sizes (docs/kernels.md, "Panel pipeline"):
  /// intermediate rows per gate/up task (rounded up to a multiple of 16;
  /// <= 0: kPanelGateRows) and hidden rows per down task (rounded up to a
  /// multiple of 32; <= 0: kPanelDownRows). Results do not depend on them
  /// (bit for bit).
  int panelGateRows = 0;
  int panelDownRows = 0;
  /// INT8 W8A8 on the panel kernels: activation elements (x over the
  /// hidden size, h over the intermediate size) that share one 8-bit scale,
  /// a multiple of 64; <= 0: one scale per token row (faster, less exact).
  /// The micro-kernel runs once per block and its int32 sums are scaled
  /// into fp32 between blocks. Mean relative error on Gaussian data at
  /// H 2048 / I 768 (docs/kernels.md): 0.0187 at 256, 0.020 per row; the
  /// issue's bound is 0.02.
  int int8PanelBlock = kInt8PanelBlock;
  /// Tests only: run experts with >= amxMinTokens tokens (default 1) through
  /// the panel pipeline with its portable reference micro-kernel, so the
  /// pipeline is checked on CPUs without AMX. Needs the tile layout. On
  /// tile-only weights the other experts take the same micro-kernel too (as
  /// the AMX path sends them to its small-expert panel kernels).
  bool emulatePanels = false;
  /// When set, receives the phase times of the call.
  MoeStats *stats = nullptr;
};

/// Inputs of one MoE call. `x` is [tokens, hidden] of `xType`; `ids` and
/// `weights` are [tokens, topK] (ids < 0 skip the slot). `out` is
/// [tokens, hidden] of `outType`; it is overwritten.
struct MoeArgs {
  int tokens = 0, topK = 0;
  const void *x = nullptr;
  DType xType = DType::F32;
  const void *ids = nullptr;
  IdType idType = IdType::I32;
  const float *weights = nullptr;
  void *out = nullptr;
  DType outType = DType::F32;
};

/// Run the MoE operator. Throws std::invalid_argument for an expert id
/// >= numExperts, a path the CPU cannot run, the AMX path on weights packed
/// without the tile layout (Auto then falls back to AVX512BF16 / AVX512), or
/// a row-kernel path on weights packed tile-only.
void moeForward(const MoeWeights &w, const MoeArgs &args,
                const MoeOptions &opts = {});

/// A moeForward running on a pool's driver thread (submitMoe). wait()
/// blocks until it is done and rethrows its exception; the destructor waits
/// too (dropping the exception) so buffers are never used after the handle
/// is gone.
class MoeHandle {
public:
  MoeHandle() = default;
  explicit MoeHandle(std::future<void> f) : f_(std::move(f)) {}
  MoeHandle(MoeHandle &&) = default;
  MoeHandle &operator=(MoeHandle &&o) noexcept;
  ~MoeHandle();
  /// A call is pending (not yet waited for).
  bool valid() const { return f_.valid(); }
  /// Done (wait() will not block). False when !valid().
  bool ready() const;
  /// Blocks until done; rethrows the call's exception. Once.
  void wait();

private:
  std::future<void> f_;
};

/// Starts moeForward(w, args, opts) on the driver thread of opts.pool (or of
/// the shared pool of opts.threads threads) and returns at once. Until the
/// handle's wait() returns (or the handle is destroyed), `w`, the pool, and
/// the buffers args points at (x, ids, weights, out) must stay valid; x,
/// ids and weights must not change and out must not be read. Calls on one
/// pool run one after another, in submission order; synchronous run()s of
/// other callers interleave with them between pool phases.
MoeHandle submitMoe(const MoeWeights &w, const MoeArgs &args,
                    const MoeOptions &opts = {});

/// Floating-point work of one call: 2 * 3 * H * I per routed (token, expert).
double moeFlops(const MoeWeights &w, const MoeArgs &args);
/// Bytes one call reads: packed weights of every distinct routed expert plus
/// the activations (x, ids, routing weights).
double moeBytesRead(const MoeWeights &w, const MoeArgs &args);

// bf16 helpers (round to nearest even).
inline uint16_t f32ToBf16(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep it quiet
    return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

} // namespace kt::kernels

#endif // KT_RUNTIME_KERNELS_MOE_H
