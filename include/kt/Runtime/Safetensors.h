//===- Safetensors.h - safetensors headers and model directories -*- C++ -*-===//
//
// Reads what a Hugging Face model directory says about its weights without
// reading any weight data: the JSON header of each safetensors file (single
// file, sharded through model.safetensors.index.json, or a plain set of
// *.safetensors files) and the raw config.json.
//
// Plain C++ (no MLIR): both the compiler and the runtime use it.
//
// Error handling: no function of this API throws or aborts on bad input.
// Fallible functions return `Result<T>`, which *is a* `std::variant<T, Error>`
// (so std::holds_alternative / std::get / std::visit work) with the helpers
// ok(), value(), error(), operator->, operator*:
//
//   Result<ModelDir> dir = openModelDir(path);
//   if (!dir.ok()) { report(dir.error().message); return; }
//   const TensorInfo *t = dir->find("model.embed_tokens.weight");
//
// value()/operator* on an error (and error() on a value) is a programming
// error and throws std::bad_variant_access, like std::get.
//
// Every Error message names the file it is about (relative to the model
// directory for openModelDir, or the displayName given to
// readSafetensorsHeader) and, where it applies, the tensor, e.g.
//   "model.safetensors: tensor 'x': data offsets [0, 12) do not match shape
//    [2, 4] of F32 (32 bytes)"
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_SAFETENSORS_H
#define KT_RUNTIME_SAFETENSORS_H

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kt {

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

/// A failure, described for a human. The message is complete on its own
/// (it already names the file and tensor concerned).
struct Error {
  std::string message;
};

/// Either a T or an Error. Derives from std::variant<T, Error>, so variant
/// tools work on it; construct it from a T or from an Error.
template <class T>
class [[nodiscard]] Result : public std::variant<T, Error> {
public:
  using Base = std::variant<T, Error>;
  using Base::Base;
  using Base::operator=;

  bool ok() const { return this->index() == 0; }
  explicit operator bool() const { return ok(); }

  T &value() & { return std::get<0>(*this); }
  const T &value() const & { return std::get<0>(*this); }
  T &&value() && { return std::get<0>(std::move(*this)); }
  const Error &error() const { return std::get<1>(*this); }

  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }
  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
};

//===----------------------------------------------------------------------===//
// Element types
//===----------------------------------------------------------------------===//

/// The safetensors element types kt understands.
enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, Bool };

/// Parses a safetensors dtype name: "F64", "F32", "F16", "BF16", "F8_E4M3",
/// "F8_E5M2", "I64", "I32", "I16", "I8", "U8", "BOOL". Case-sensitive, as in
/// the format. Returns std::nullopt for anything else.
std::optional<DType> parseDType(std::string_view s);

/// The safetensors name of `t` (inverse of parseDType; Bool is "BOOL").
std::string_view dtypeName(DType t);

/// Bytes per element of `t`.
size_t dtypeSize(DType t);

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

/// Where one tensor's bytes are. The tensor's data occupies absolute file
/// offsets [dataOffset + begin, dataOffset + end) of `file`.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape; ///< empty for a scalar (one element)
  std::string file;           ///< file name relative to the model directory
                              ///< (the displayName for readSafetensorsHeader)
  uint64_t begin = 0, end = 0; ///< byte offsets within the data section
  uint64_t dataOffset = 0;     ///< absolute file offset of the data section
                               ///< start = 8 + header length

  /// Product of the shape (1 for a scalar). Validated not to overflow by
  /// the readers below.
  int64_t numElements() const;
  /// numElements() * dtypeSize(dtype) (== end - begin for a read tensor).
  uint64_t numBytes() const;
  /// Absolute file offset of the first byte: dataOffset + begin.
  uint64_t fileOffset() const { return dataOffset + begin; }
};

/// Formats a shape as "[2, 4]" ("[]" for a scalar).
std::string formatShape(const std::vector<int64_t> &shape);

/// Largest header length accepted (the format's own limit): 100 MiB.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

/// Everything the header of one safetensors file says.
struct SafetensorsHeader {
  /// Tensors sorted by data offset (then by name, for empty tensors).
  std::vector<TensorInfo> tensors;
  /// The "__metadata__" entry (empty when absent).
  std::map<std::string, std::string> metadata;
  uint64_t headerLength = 0; ///< N, the JSON header's length in bytes
  uint64_t dataOffset = 0;   ///< 8 + N
  uint64_t dataSize = 0;     ///< file size - 8 - N
};

/// Reads and validates only the header of the safetensors file at `path`
/// (no tensor data is read). `displayName` starts every error message and
/// is stored as TensorInfo::file.
///
/// Checks: the file exists, is a regular file and has at least 8 bytes; the
/// little-endian u64 header length is at most kMaxSafetensorsHeaderBytes and
/// at most the file size minus 8 (checked before anything is allocated);
/// the header is a JSON object without duplicate keys; every entry other
/// than "__metadata__" is an object with a known "dtype", a "shape" of
/// non-negative integers and "data_offsets" [begin, end] with begin <= end,
/// end - begin == elements * dtype size, and end within the data section
/// (a truncated file is reported naming the tensor); the byte ranges of
/// different tensors do not overlap; "__metadata__", if present, maps
/// strings to strings. Unknown keys inside an entry are ignored, as the
/// reference implementation does.
Result<SafetensorsHeader> readSafetensorsFile(const std::string &path,
                                              const std::string &displayName);

/// readSafetensorsFile(...).tensors.
Result<std::vector<TensorInfo>>
readSafetensorsHeader(const std::string &path, const std::string &displayName);

/// Parses and validates header bytes already in memory; `dataSize` is the
/// size of the data section that follows the header. Used by
/// readSafetensorsFile; exposed for callers that obtained the bytes another
/// way (and for tests).
Result<SafetensorsHeader> parseSafetensorsHeader(std::string_view headerJson,
                                                 uint64_t dataSize,
                                                 const std::string &displayName);

//===----------------------------------------------------------------------===//
// Model directories
//===----------------------------------------------------------------------===//

/// What a Hugging Face model directory holds, weights described not read.
struct ModelDir {
  /// How the weight files were found.
  enum class Layout {
    SingleFile, ///< model.safetensors
    Sharded,    ///< model.safetensors.index.json
    FileSet     ///< every *.safetensors file of the directory
  };

  std::string path;      ///< the directory as given to openModelDir
  nlohmann::json config; ///< config.json, as parsed (a JSON object)
  std::map<std::string, TensorInfo> tensors; ///< by tensor name
  Layout layout = Layout::SingleFile;
  /// Weight files read, relative to `path`, sorted.
  std::vector<std::string> files;
  /// "__metadata__" of each weight file that had one, by file name.
  std::map<std::string, std::map<std::string, std::string>> metadata;

  /// The tensor called `name`, or nullptr.
  const TensorInfo *find(std::string_view name) const;
  /// `path` joined with t.file: where to open t's bytes.
  std::string filePath(const TensorInfo &t) const;
};

/// Opens the model directory `dir`: reads config.json (required; must be a
/// JSON object) and the safetensors headers of its weights, taken from
///  1. model.safetensors if it exists (what transformers prefers), else
///  2. model.safetensors.index.json: its "weight_map" (tensor name -> shard
///     file) must be an object of strings naming relative paths inside the
///     directory; every shard listed must exist and be valid; a tensor
///     named in the index but absent from its shard is an error, and so is
///     a tensor present in a shard but not mapped to that shard; else
///  3. every *.safetensors file in the directory, sorted by name.
/// A tensor name found in two files is an error naming both. A directory
/// with none of these is an error.
Result<ModelDir> openModelDir(const std::string &dir);

} // namespace kt

#endif // KT_RUNTIME_SAFETENSORS_H
