//===- Safetensors.cpp - safetensors headers and model directories --------===//
//
// See include/kt/Runtime/Safetensors.h. Nothing here throws out of the API:
// every exception from the standard library or nlohmann::json is caught at
// the API boundary and turned into an Error.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Safetensors.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace kt {

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

namespace {
struct DTypeEntry {
  DType type;
  std::string_view name;
  size_t size;
};
constexpr std::array<DTypeEntry, 12> kDTypes = {{
    {DType::F64, "F64", 8},
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},
    {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
    {DType::Bool, "BOOL", 1},
}};

const DTypeEntry &entryFor(DType t) {
  for (const DTypeEntry &e : kDTypes)
    if (e.type == t)
      return e;
  // Unreachable for valid enumerators; F32 keeps callers defined otherwise.
  return kDTypes[1];
}
} // namespace

std::optional<DType> parseDType(std::string_view s) {
  for (const DTypeEntry &e : kDTypes)
    if (e.name == s)
      return e.type;
  return std::nullopt;
}

std::string_view dtypeName(DType t) { return entryFor(t).name; }

size_t dtypeSize(DType t) { return entryFor(t).size; }

//===----------------------------------------------------------------------===//
// TensorInfo
//===----------------------------------------------------------------------===//

int64_t TensorInfo::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

uint64_t TensorInfo::numBytes() const {
  return static_cast<uint64_t>(numElements()) * dtypeSize(dtype);
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

//===----------------------------------------------------------------------===//
// Header parsing
//===----------------------------------------------------------------------===//

namespace {

std::string range(uint64_t b, uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + ")";
}

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

/// Parses `text` as JSON, rejecting duplicate object keys (nlohmann keeps
/// the last silently, which would hide a corrupt header). On failure
/// returns false and sets `why`.
bool parseJsonStrict(std::string_view text, json &out, std::string &why) {
  std::vector<std::set<std::string>> keyStack;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event,
                      json &parsed) -> bool {
    switch (event) {
    case json::parse_event_t::object_start:
      keyStack.emplace_back();
      break;
    case json::parse_event_t::object_end:
      if (!keyStack.empty())
        keyStack.pop_back();
      break;
    case json::parse_event_t::key:
      if (!keyStack.empty() && parsed.is_string() &&
          !keyStack.back().insert(parsed.get<std::string>()).second &&
          duplicate.empty())
        duplicate = parsed.get<std::string>();
      break;
    default:
      break;
    }
    return true;
  };
  try {
    out = json::parse(text.begin(), text.end(), callback,
                      /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception &e) {
    why = e.what();
    return false;
  }
  if (!duplicate.empty()) {
    why = "duplicate key " + quote(duplicate);
    return false;
  }
  return true;
}

/// Reads a non-negative JSON integer.
bool getUnsigned(const json &j, uint64_t &out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

/// Validates one header entry; fills `info` (except file and dataOffset).
std::optional<std::string> parseEntry(const std::string &name, const json &entry,
                                      uint64_t dataSize, TensorInfo &info) {
  std::string who = "tensor " + quote(name) + ": ";
  if (!entry.is_object())
    return who + "entry is not a JSON object (got " +
           std::string(entry.type_name()) + ")";

  auto dt = entry.find("dtype");
  if (dt == entry.end())
    return who + "missing 'dtype'";
  if (!dt->is_string())
    return who + "'dtype' is not a string (got " + std::string(dt->type_name()) +
           ")";
  const std::string &dtypeStr = dt->get_ref<const std::string &>();
  std::optional<DType> dtype = parseDType(dtypeStr);
  if (!dtype)
    return who + "unknown dtype " + quote(dtypeStr);

  auto sh = entry.find("shape");
  if (sh == entry.end())
    return who + "missing 'shape'";
  if (!sh->is_array())
    return who + "'shape' is not an array (got " + std::string(sh->type_name()) +
           ")";
  std::vector<int64_t> shape;
  uint64_t elements = 1;
  bool overflow = false;
  for (const json &d : *sh) {
    uint64_t v;
    if (!getUnsigned(d, v) || v > static_cast<uint64_t>(INT64_MAX))
      return who + "'shape' must hold non-negative integers (got " + d.dump() +
             ")";
    shape.push_back(static_cast<int64_t>(v));
    if (__builtin_mul_overflow(elements, v, &elements))
      overflow = true;
  }
  uint64_t bytes = 0;
  if (overflow || elements > static_cast<uint64_t>(INT64_MAX) ||
      __builtin_mul_overflow(elements, static_cast<uint64_t>(dtypeSize(*dtype)),
                             &bytes))
    return who + "shape " + formatShape(shape) + " is too large";

  auto offs = entry.find("data_offsets");
  if (offs == entry.end())
    return who + "missing 'data_offsets'";
  uint64_t begin, end;
  if (!offs->is_array() || offs->size() != 2 || !getUnsigned((*offs)[0], begin) ||
      !getUnsigned((*offs)[1], end))
    return who + "'data_offsets' must be [begin, end] of non-negative integers (got " +
           offs->dump() + ")";
  if (begin > end)
    return who + "data offsets " + range(begin, end) + " have begin > end";
  if (end - begin != bytes)
    return who + "data offsets " + range(begin, end) + " do not match shape " +
           formatShape(shape) + " of " + std::string(dtypeName(*dtype)) + " (" +
           std::to_string(bytes) + " bytes)";
  if (end > dataSize)
    return who + "data offsets " + range(begin, end) +
           " extend past the end of the data section (" +
           std::to_string(dataSize) + " bytes); the file is truncated";

  info.name = name;
  info.dtype = *dtype;
  info.shape = std::move(shape);
  info.begin = begin;
  info.end = end;
  return std::nullopt;
}

Error errorIn(const std::string &file, const std::string &message) {
  return Error{file + ": " + message};
}

Result<SafetensorsHeader> parseHeaderImpl(std::string_view headerJson,
                                          uint64_t dataSize,
                                          const std::string &displayName) {
  json header;
  std::string why;
  if (!parseJsonStrict(headerJson, header, why))
    return errorIn(displayName, "header is not valid JSON: " + why);
  if (!header.is_object())
    return errorIn(displayName, "header is not a JSON object (got " +
                                    std::string(header.type_name()) + ")");

  SafetensorsHeader result;
  result.headerLength = headerJson.size();
  result.dataOffset = 8 + result.headerLength;
  result.dataSize = dataSize;

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object())
        return errorIn(displayName, "'__metadata__' must be an object mapping "
                                    "strings to strings");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          return errorIn(displayName, "'__metadata__' value of " +
                                          quote(m.key()) +
                                          " is not a string (got " +
                                          std::string(m.value().type_name()) +
                                          ")");
        result.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    TensorInfo info;
    if (std::optional<std::string> err =
            parseEntry(it.key(), it.value(), dataSize, info))
      return errorIn(displayName, *err);
    info.file = displayName;
    info.dataOffset = result.dataOffset;
    result.tensors.push_back(std::move(info));
  }

  std::sort(result.tensors.begin(), result.tensors.end(),
            [](const TensorInfo &a, const TensorInfo &b) {
              if (a.begin != b.begin)
                return a.begin < b.begin;
              if (a.end != b.end)
                return a.end < b.end;
              return a.name < b.name;
            });
  // Sorted by begin, a non-empty range overlaps an earlier one iff it starts
  // before the furthest end seen so far. Empty tensors occupy no bytes.
  const TensorInfo *furthest = nullptr;
  for (const TensorInfo &t : result.tensors) {
    if (t.begin == t.end)
      continue;
    if (furthest && t.begin < furthest->end)
      return errorIn(displayName,
                     "tensors " + quote(furthest->name) + " " +
                         range(furthest->begin, furthest->end) + " and " +
                         quote(t.name) + " " + range(t.begin, t.end) +
                         " overlap");
    if (!furthest || t.end > furthest->end)
      furthest = &t;
  }
  return result;
}

std::string errnoText() { return std::strerror(errno); }

Result<SafetensorsHeader> readFileImpl(const std::string &path,
                                       const std::string &displayName) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    return errorIn(displayName, "cannot open: " +
                                    (ec ? ec.message()
                                        : std::string("no such file")));
  if (!fs::is_regular_file(st))
    return errorIn(displayName, "not a regular file");
  uint64_t fileSize = fs::file_size(path, ec);
  if (ec)
    return errorIn(displayName, "cannot get the file size: " + ec.message());
  if (fileSize < 8)
    return errorIn(displayName, "file is " + std::to_string(fileSize) +
                                    " bytes, too short for a safetensors "
                                    "header (at least 8 bytes)");

  std::ifstream in(path, std::ios::binary);
  if (!in)
    return errorIn(displayName, "cannot open: " + errnoText());
  unsigned char lenBytes[8];
  if (!in.read(reinterpret_cast<char *>(lenBytes), 8))
    return errorIn(displayName, "cannot read the header length");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | lenBytes[i];

  // Both limits are checked before allocating anything.
  if (headerLen > kMaxSafetensorsHeaderBytes)
    return errorIn(displayName, "header length " + std::to_string(headerLen) +
                                    " exceeds the limit of " +
                                    std::to_string(kMaxSafetensorsHeaderBytes) +
                                    " bytes (100 MiB)");
  if (headerLen > fileSize - 8)
    return errorIn(displayName, "header length " + std::to_string(headerLen) +
                                    " exceeds the file size minus 8 (" +
                                    std::to_string(fileSize - 8) + " bytes)");

  std::string text(headerLen, '\0');
  if (headerLen && !in.read(text.data(), static_cast<std::streamsize>(headerLen)))
    return errorIn(displayName, "cannot read the " + std::to_string(headerLen) +
                                    "-byte header");
  return parseHeaderImpl(text, fileSize - 8 - headerLen, displayName);
}

} // namespace

Result<SafetensorsHeader> parseSafetensorsHeader(std::string_view headerJson,
                                                 uint64_t dataSize,
                                                 const std::string &displayName) {
  try {
    return parseHeaderImpl(headerJson, dataSize, displayName);
  } catch (const std::exception &e) {
    return errorIn(displayName, std::string("unexpected error: ") + e.what());
  }
}

Result<SafetensorsHeader> readSafetensorsFile(const std::string &path,
                                              const std::string &displayName) {
  try {
    return readFileImpl(path, displayName);
  } catch (const std::exception &e) {
    return errorIn(displayName, std::string("unexpected error: ") + e.what());
  }
}

Result<std::vector<TensorInfo>>
readSafetensorsHeader(const std::string &path, const std::string &displayName) {
  Result<SafetensorsHeader> h = readSafetensorsFile(path, displayName);
  if (!h.ok())
    return h.error();
  return std::move(h.value().tensors);
}

//===----------------------------------------------------------------------===//
// Model directories
//===----------------------------------------------------------------------===//

const TensorInfo *ModelDir::find(std::string_view name) const {
  auto it = tensors.find(std::string(name));
  return it == tensors.end() ? nullptr : &it->second;
}

std::string ModelDir::filePath(const TensorInfo &t) const {
  return (fs::path(path) / t.file).string();
}

namespace {

constexpr const char *kConfigName = "config.json";
constexpr const char *kSingleName = "model.safetensors";
constexpr const char *kIndexName = "model.safetensors.index.json";

/// Reads a whole small text file.
bool readText(const fs::path &p, std::string &out, std::string &why) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    why = errnoText();
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    why = "read error";
    return false;
  }
  out = ss.str();
  return true;
}

/// Reads and parses a JSON file of the model directory.
std::optional<Error> readJsonFile(const fs::path &dir, const std::string &name,
                                  json &out) {
  std::string text, why;
  if (!readText(dir / name, text, why))
    return errorIn(name, "cannot read: " + why);
  if (!parseJsonStrict(text, out, why))
    return errorIn(name, "not valid JSON: " + why);
  if (!out.is_object())
    return errorIn(name, "not a JSON object (got " +
                             std::string(out.type_name()) + ")");
  return std::nullopt;
}

bool isRegularFile(const fs::path &p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec); // follows symlinks (HF cache layout)
}

/// A shard name must stay inside the model directory.
bool isSafeRelativePath(const std::string &name) {
  if (name.empty())
    return false;
  fs::path p(name);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
    return false;
  for (const fs::path &part : p)
    if (part == "..")
      return false;
  return true;
}

/// Reads each file's header into `md` (tensors, files, metadata), rejecting
/// a tensor name seen in two files.
std::optional<Error> readFiles(const fs::path &dir,
                               const std::vector<std::string> &files,
                               ModelDir &md) {
  for (const std::string &file : files) {
    Result<SafetensorsHeader> h = readSafetensorsFile((dir / file).string(), file);
    if (!h.ok())
      return h.error();
    md.files.push_back(file);
    if (!h->metadata.empty())
      md.metadata[file] = std::move(h->metadata);
    for (TensorInfo &t : h->tensors) {
      auto [it, inserted] = md.tensors.try_emplace(t.name, t);
      if (!inserted)
        return errorIn(file, "tensor " + quote(t.name) +
                                 " is also present in " + it->second.file +
                                 " (duplicate tensor name)");
    }
  }
  return std::nullopt;
}

std::optional<Error> readSharded(const fs::path &dir, ModelDir &md) {
  json index;
  if (std::optional<Error> err = readJsonFile(dir, kIndexName, index))
    return err;
  auto wm = index.find("weight_map");
  if (wm == index.end())
    return errorIn(kIndexName, "missing 'weight_map'");
  if (!wm->is_object())
    return errorIn(kIndexName, "'weight_map' is not an object (got " +
                                   std::string(wm->type_name()) + ")");

  std::map<std::string, std::string> weightMap;
  std::set<std::string> shards;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      return errorIn(kIndexName, "'weight_map' entry for tensor " +
                                     quote(it.key()) +
                                     " is not a string (got " +
                                     std::string(it.value().type_name()) + ")");
    const std::string &shard = it.value().get_ref<const std::string &>();
    if (!isSafeRelativePath(shard))
      return errorIn(kIndexName, "shard " + quote(shard) + " of tensor " +
                                     quote(it.key()) +
                                     " is not a relative path inside the "
                                     "model directory");
    if (shards.insert(shard).second && !isRegularFile(dir / shard))
      return errorIn(kIndexName, "shard " + quote(shard) + " (listed for tensor " +
                                     quote(it.key()) + ") does not exist");
    weightMap[it.key()] = shard;
  }

  md.layout = ModelDir::Layout::Sharded;
  if (std::optional<Error> err =
          readFiles(dir, std::vector<std::string>(shards.begin(), shards.end()),
                    md))
    return err;

  for (const auto &[name, shard] : weightMap) {
    const TensorInfo *t = md.find(name);
    if (!t || t->file != shard)
      return errorIn(shard, "tensor " + quote(name) + " is listed in " +
                                kIndexName + " but not present in the file" +
                                (t ? " (it is in " + t->file + ")" : ""));
  }
  for (const auto &[name, t] : md.tensors)
    if (!weightMap.count(name))
      return errorIn(t.file, "tensor " + quote(name) + " is not listed in " +
                                 kIndexName);
  return std::nullopt;
}

Result<ModelDir> openModelDirImpl(const std::string &dirName) {
  fs::path dir(dirName);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return Error{dirName + ": not a directory"};

  ModelDir md;
  md.path = dirName;
  if (!isRegularFile(dir / kConfigName))
    return Error{dirName + ": missing " + kConfigName};
  if (std::optional<Error> err = readJsonFile(dir, kConfigName, md.config))
    return *err;

  if (isRegularFile(dir / kSingleName)) {
    md.layout = ModelDir::Layout::SingleFile;
    if (std::optional<Error> err = readFiles(dir, {kSingleName}, md))
      return *err;
    return md;
  }
  if (isRegularFile(dir / kIndexName)) {
    if (std::optional<Error> err = readSharded(dir, md))
      return *err;
    return md;
  }

  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), e; !ec && it != e; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() > 12 && name.ends_with(".safetensors") &&
        isRegularFile(it->path()))
      files.push_back(name);
  }
  if (ec)
    return Error{dirName + ": cannot list: " + ec.message()};
  if (files.empty())
    return Error{dirName + ": no weights (no " + kSingleName + ", " + kIndexName +
                 " or *.safetensors file)"};
  std::sort(files.begin(), files.end());
  md.layout = ModelDir::Layout::FileSet;
  if (std::optional<Error> err = readFiles(dir, files, md))
    return *err;
  return md;
}

} // namespace

Result<ModelDir> openModelDir(const std::string &dir) {
  try {
    return openModelDirImpl(dir);
  } catch (const std::exception &e) {
    return Error{dir + ": unexpected error: " + e.what()};
  }
}

} // namespace kt
