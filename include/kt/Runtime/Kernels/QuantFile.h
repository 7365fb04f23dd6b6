//===- QuantFile.h - packed expert weights on disk --------------*- C++ -*-===//
//
// One MoE layer's packed routed experts (MoeWeights: the row layouts of
// every expert's gate, up and down matrices) in a versioned little-endian
// file, as `kt-quant` writes it and `kt-run --experts-dir` reads it. The
// AMX tile layout is not stored: the reader rebuilds it when the
// TilePacking asks for it (addTileLayout), and frees the rows again when it
// asks for tiles only (Only, or Auto on an AMX CPU).
//
// Layout (docs/kt-quant.md has it byte by byte): a 128-byte header (magic
// "KTQLAYER", version, format, group size, symmetry, dimensions, source
// fingerprint, total size, header CRC32C), a table of sections (one per
// matrix role and array: gate.q8, gate.rowSum, ..., each with its offset,
// size and CRC32C), the layer name, then the sections, 64-byte aligned.
// Each section holds that array for every expert, in expert order.
//
// The reader checks everything before it allocates: magic, version, header
// checksum, sizes against the file size (truncation), the section table
// against the layout the dimensions imply, what the caller expects (layer,
// format, shape, fingerprint) and each section's checksum. Errors throw
// QuantFileError with a message that starts "layer file PATH: ".
//
//===----------------------------------------------------------------------===//
#ifndef KT_RUNTIME_KERNELS_QUANTFILE_H
#define KT_RUNTIME_KERNELS_QUANTFILE_H

#include "kt/Runtime/Kernels/Moe.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kt::kernels {

/// The layer file format version this build writes and reads.
inline constexpr uint32_t kQuantFileVersion = 1;
/// Bytes of the fixed header; sections start at multiples of kQuantAlign.
inline constexpr std::size_t kQuantHeaderBytes = 128, kQuantAlign = 64;

class QuantFileError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One source tensor of a layer as its checkpoint describes it (safetensors
/// header and file size); what the fingerprint covers.
struct SourceTensor {
  std::string name;  ///< tensor name
  std::string file;  ///< weight file, relative to the model directory
  std::string dtype; ///< safetensors dtype name ("BF16", "F32", ...)
  std::vector<int64_t> shape;
  uint64_t fileSize = 0; ///< bytes of `file`
  uint64_t offset = 0;   ///< absolute file offset of the tensor's data
  uint64_t bytes = 0;    ///< bytes of data
};

/// FNV-1a 64 over a canonical text of `tensors` (in order): name, file,
/// dtype, shape, file size, offset and size of each. Not a content hash:
/// computing it reads headers only, so kt-run can check a layer file
/// against a multi-hundred-GB checkpoint without reading its weights.
uint64_t sourceFingerprint(const std::vector<SourceTensor> &tensors);
/// "0x" and 16 lowercase hex digits.
std::string formatFingerprint(uint64_t fingerprint);

/// CRC32C (Castagnoli, reflected, as iSCSI / ext4 use it) of `n` bytes,
/// continuing from `crc` (0 to start). Uses the SSE4.2 crc32 instruction
/// when the CPU has it; crc32cPortable is the table version (same values).
uint32_t crc32c(uint32_t crc, const void *data, std::size_t n);
uint32_t crc32cPortable(uint32_t crc, const void *data, std::size_t n);

/// What a layer file's header says.
struct LayerFileInfo {
  uint32_t version = 0;
  WeightFormat format = WeightFormat::BF16;
  int groupSize = 0;       ///< INT4 only, else 0
  bool asymmetric = false; ///< INT4 only
  /// INT8: down weights stored rotated (flag bit 1; PackedMatrix::rotation).
  bool rotatedDown = false;
  int numExperts = 0, hidden = 0, intermediate = 0;
  uint64_t fingerprint = 0;
  uint64_t fileBytes = 0;
  std::string layer; ///< the plan op's name, e.g. model.layers.3.mlp.experts
};

/// "int8", "bf16", "int4 g64 asym" / "int4 g32 sym".
std::string describeFormat(WeightFormat format, int groupSize, bool asymmetric);

/// What the reader requires of a file; unset fields are not checked.
struct LayerExpectation {
  std::optional<std::string> layer;
  std::optional<WeightFormat> format;
  std::optional<int> groupSize;   ///< INT4
  std::optional<bool> asymmetric; ///< INT4
  std::optional<int> numExperts, hidden, intermediate;
  std::optional<uint64_t> fingerprint;
  /// Who asks for `format`, for the message ("the rules' backend
  /// 'AMXInt8'"); "" = "the caller".
  std::string formatReason;
};

/// Writes `w` (row layouts; tiles are not stored: the rows of matrices
/// packed tile-only are rebuilt from their tiles) as the layer file `path`:
/// to `path`.tmp first, renamed over `path` once complete, so an interrupted
/// write never leaves a file under the final name. Throws QuantFileError.
void writeLayerFile(const std::string &path, const MoeWeights &w,
                    const std::string &layer, uint64_t fingerprint);

/// Reads and validates the header only (no weight data).
LayerFileInfo readLayerFileInfo(const std::string &path);

/// Checks `info` against `expect`; "" when it matches, else the message.
std::string checkLayerFile(const std::string &path, const LayerFileInfo &info,
                           const LayerExpectation &expect);

/// Reads the layer file `path`, checks it against `expect` and every
/// section's checksum, and returns the weights with config.tiles = `tiles`
/// (the AMX tile layout is rebuilt when wantsTiles(), on `pool` if given, a
/// batch of matrices right after their rows are read; when !wantsRows()
/// those rows are freed at once, so a tile-only load never holds a whole
/// layer twice).
MoeWeights readLayerFile(const std::string &path,
                         const LayerExpectation &expect = {},
                         TilePacking tiles = TilePacking::Auto,
                         ThreadPool *pool = nullptr);

} // namespace kt::kernels

#endif // KT_RUNTIME_KERNELS_QUANTFILE_H
