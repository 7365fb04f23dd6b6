//===- QuantFile.cpp - packed expert weights on disk ----------------------===//
//
// Writer and validating reader of the layer files of QuantFile.h. The byte
// layout is documented in docs/kt-quant.md; layoutFor() is its single
// definition in code (the writer follows it, the reader requires it).
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/QuantFile.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// Arrays are stored in host order, which the format defines as little endian.
static_assert(std::endian::native == std::endian::little,
              "layer files hold little-endian arrays; a big-endian host "
              "would need byte swapping");

namespace kt::kernels {
namespace {

constexpr char kMagic[8] = {'K', 'T', 'Q', 'L', 'A', 'Y', 'E', 'R'};
/// Rows are padded to a multiple of this many columns, and INT8 rowSum has
/// one entry per block of it (detail::kActBlock).
constexpr uint32_t kColumnBlock = 128;
constexpr uint32_t kEntryBytes = 32; // one section table entry
constexpr uint32_t kMaxHeaderBytes = 1u << 20;
constexpr uint32_t kMaxLayerName = 4096;
constexpr int kMaxExperts = 1 << 16, kMaxDim = 1 << 20;

// Header field offsets (docs/kt-quant.md).
enum HeaderField : std::size_t {
  kOffMagic = 0,
  kOffVersion = 8,
  kOffHeaderBytes = 12,
  kOffFormat = 16,
  kOffGroup = 20,
  kOffFlags = 24,
  kOffExperts = 28,
  kOffHidden = 32,
  kOffInter = 36,
  kOffBlock = 40,
  kOffSections = 44,
  kOffNameBytes = 48,
  kOffHeaderCrc = 52,
  kOffFingerprint = 56,
  kOffFileBytes = 64,
};
constexpr uint32_t kFlagAsymmetric = 1;
/// INT8: the down matrices are stored rotated (PackedMatrix::rotation ==
/// kRotationBlock). Files without it hold unrotated down weights, which
/// stay valid: the rotation is carried by the weights, not required.
constexpr uint32_t kFlagRotatedDown = 2;

enum Role : uint32_t { kGate, kUp, kDown };
enum Array : uint32_t { kBf16, kQ8, kRowSum, kQ4, kScales, kOffsets };

const char *roleName(uint32_t r) {
  static const char *names[] = {"gate", "up", "down"};
  return r < 3 ? names[r] : "?";
}
const char *arrayName(uint32_t a) {
  static const char *names[] = {"bf16", "q8",     "rowSum",
                                "q4",   "scales", "offsets"};
  return a < 6 ? names[a] : "?";
}
std::string sectionName(uint32_t role, uint32_t array) {
  return std::string(roleName(role)) + "." + arrayName(array);
}

struct Section {
  uint32_t role = 0, array = 0;
  uint64_t offset = 0, bytes = 0; ///< bytes of all experts together
  uint32_t crc = 0;
};

struct Layout {
  std::vector<Section> sections;
  uint64_t headerBytes = 0, fileBytes = 0;
};

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/// [rows, cols] of the matrices of `role`.
std::pair<uint64_t, uint64_t> roleShape(uint32_t role, int hidden, int inter) {
  return role == kDown ? std::pair<uint64_t, uint64_t>(hidden, inter)
                       : std::pair<uint64_t, uint64_t>(inter, hidden);
}

std::vector<Array> arraysOf(WeightFormat f) {
  switch (f) {
  case WeightFormat::BF16:
    return {kBf16};
  case WeightFormat::INT8:
    return {kQ8, kRowSum, kScales};
  case WeightFormat::INT4:
    return {kQ4, kScales, kOffsets};
  }
  return {};
}

/// Bytes of array `a` of one [rows, cols] matrix.
uint64_t arrayBytes(Array a, WeightFormat f, int group, uint64_t rows,
                    uint64_t cols) {
  const uint64_t p = alignUp(cols, kColumnBlock);
  switch (a) {
  case kBf16:
    return rows * p * 2;
  case kQ8:
    return rows * p;
  case kRowSum:
    return rows * (p / kColumnBlock) * 4;
  case kQ4:
    return rows * p / 2;
  case kScales:
    return f == WeightFormat::INT4 ? rows * (p / group) * 4 : rows * 4;
  case kOffsets:
    return rows * (p / group) * 4;
  }
  return 0;
}

/// The one layout of a file with these parameters.
Layout layoutFor(WeightFormat f, int group, int experts, int hidden, int inter,
                 uint64_t nameBytes) {
  Layout l;
  const std::vector<Array> arrays = arraysOf(f);
  l.headerBytes =
      alignUp(kQuantHeaderBytes + kEntryBytes * 3 * arrays.size() + nameBytes,
              kQuantAlign);
  uint64_t off = l.headerBytes;
  for (uint32_t role : {kGate, kUp, kDown}) {
    auto [rows, cols] = roleShape(role, hidden, inter);
    for (Array a : arrays) {
      Section s;
      s.role = role;
      s.array = a;
      s.offset = alignUp(off, kQuantAlign);
      s.bytes = experts * arrayBytes(a, f, group, rows, cols);
      off = s.offset + s.bytes;
      l.sections.push_back(s);
    }
  }
  l.fileBytes = off;
  return l;
}

/// Data and byte size of array `a` of `m`.
std::pair<const void *, uint64_t> arrayData(const PackedMatrix &m, Array a) {
  switch (a) {
  case kBf16:
    return {m.bf16.data(), m.bf16.size() * 2};
  case kQ8:
    return {m.q8.data(), m.q8.size()};
  case kRowSum:
    return {m.rowSum.data(), m.rowSum.size() * 4};
  case kQ4:
    return {m.q4.data(), m.q4.size()};
  case kScales:
    return {m.scales.data(), m.scales.size() * 4};
  case kOffsets:
    return {m.offsets.data(), m.offsets.size() * 4};
  }
  return {nullptr, 0};
}

/// As arrayData, but the row layout (bf16 / q8) of a matrix packed
/// tile-only is rebuilt from its tiles into `tmp`: files always hold the row
/// layout. `m` is only read (other threads may be running it).
std::pair<const void *, uint64_t> rowArrayData(const PackedMatrix &m, Array a,
                                               std::vector<char> &tmp) {
  const bool q8 = a == kQ8 && m.q8.empty() && !m.q8Tiles.empty();
  const bool b16 = a == kBf16 && m.bf16.empty() && !m.bf16Tiles.empty();
  if (!q8 && !b16)
    return arrayData(m, a);
  const std::size_t P = m.paddedCols, esz = b16 ? 2 : 1;
  tmp.resize(static_cast<std::size_t>(m.rows) * P * esz);
  for (int r = 0; r < m.rows; ++r)
    for (int c = 0; c < m.paddedCols; ++c) {
      const std::size_t t = m.tileIndex(r, c), i = r * P + c;
      if (q8)
        tmp[i] = static_cast<char>(m.q8Tiles[t]);
      else
        std::memcpy(&tmp[2 * i], &m.bf16Tiles[t], 2);
    }
  return {tmp.data(), tmp.size()};
}

/// Sizes array `a` of `m` to `bytes` and returns its storage.
void *resizeArray(PackedMatrix &m, Array a, uint64_t bytes) {
  switch (a) {
  case kBf16:
    m.bf16.resize(bytes / 2);
    return m.bf16.data();
  case kQ8:
    m.q8.resize(bytes);
    return m.q8.data();
  case kRowSum:
    m.rowSum.resize(bytes / 4);
    return m.rowSum.data();
  case kQ4:
    m.q4.resize(bytes);
    return m.q4.data();
  case kScales:
    m.scales.resize(bytes / 4);
    return m.scales.data();
  case kOffsets:
    m.offsets.resize(bytes / 4);
    return m.offsets.data();
  }
  return nullptr;
}

void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<unsigned char>(v >> 8 * i);
}
void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<unsigned char>(v >> 8 * i);
}
uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(p[i]) << 8 * i;
  return v;
}
uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(p[i]) << 8 * i;
  return v;
}

[[noreturn]] void fail(const std::string &path, const std::string &msg) {
  throw QuantFileError("layer file " + path + ": " + msg);
}

/// Closes the descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

void writeAll(int fd, const void *data, uint64_t n, const std::string &path) {
  const auto *p = static_cast<const char *>(data);
  while (n) {
    ssize_t w = ::write(fd, p, std::min<uint64_t>(n, 1u << 30));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      fail(path, std::string("write failed: ") + std::strerror(errno));
    p += w;
    n -= static_cast<uint64_t>(w);
  }
}

void readAll(int fd, void *data, uint64_t n, uint64_t off,
             const std::string &path) {
  auto *p = static_cast<char *>(data);
  while (n) {
    ssize_t r = ::pread(fd, p, std::min<uint64_t>(n, 1u << 30),
                        static_cast<off_t>(off));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      fail(path, std::string("read failed: ") + std::strerror(errno));
    if (r == 0)
      fail(path, "truncated: the file ended at byte " + std::to_string(off) +
                     " while reading");
    p += r;
    off += static_cast<uint64_t>(r);
    n -= static_cast<uint64_t>(r);
  }
}

const std::vector<PackedMatrix> &roleMatrices(const MoeWeights &w,
                                              uint32_t role) {
  return role == kGate ? w.gate : role == kUp ? w.up : w.down;
}
std::vector<PackedMatrix> &roleMatrices(MoeWeights &w, uint32_t role) {
  return role == kGate ? w.gate : role == kUp ? w.up : w.down;
}

struct Parsed {
  LayerFileInfo info;
  Layout layout;
};

/// Reads and validates the header and section table of the open file.
Parsed parseHeader(int fd, const std::string &path) {
  struct stat st {};
  if (fstat(fd, &st) != 0)
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < kQuantHeaderBytes)
    fail(path, "truncated: expected at least " +
                   std::to_string(kQuantHeaderBytes) +
                   " bytes (the header), file has " + std::to_string(size));
  unsigned char fixed[kQuantHeaderBytes];
  readAll(fd, fixed, sizeof fixed, 0, path);
  if (std::memcmp(fixed + kOffMagic, kMagic, sizeof kMagic) != 0)
    fail(path, "not a kt-quant layer file (bad magic)");
  Parsed p;
  LayerFileInfo &info = p.info;
  info.version = get32(fixed + kOffVersion);
  if (info.version != kQuantFileVersion)
    fail(path, "version " + std::to_string(info.version) +
                   " not supported (this kt reads " +
                   std::to_string(kQuantFileVersion) + ")");
  const uint32_t headerBytes = get32(fixed + kOffHeaderBytes);
  info.fileBytes = get64(fixed + kOffFileBytes);
  if (headerBytes < kQuantHeaderBytes || headerBytes > kMaxHeaderBytes ||
      headerBytes % kQuantAlign)
    fail(path,
         "corrupt header (header size " + std::to_string(headerBytes) + ")");
  if (info.fileBytes > size || headerBytes > size)
    fail(path,
         "truncated: expected " +
             std::to_string(std::max<uint64_t>(info.fileBytes, headerBytes)) +
             " bytes, file has " + std::to_string(size));
  std::vector<unsigned char> h(headerBytes);
  readAll(fd, h.data(), h.size(), 0, path);
  const uint32_t storedCrc = get32(&h[kOffHeaderCrc]);
  put32(&h[kOffHeaderCrc], 0);
  if (crc32c(0, h.data(), h.size()) != storedCrc)
    fail(path, "header checksum mismatch (corrupt file)");
  if (info.fileBytes < size)
    fail(path, "has " + std::to_string(size) + " bytes, the header says " +
                   std::to_string(info.fileBytes) + " (trailing data)");

  const uint32_t format = get32(&h[kOffFormat]);
  if (format > static_cast<uint32_t>(WeightFormat::INT4))
    fail(path, "unknown weight format " + std::to_string(format));
  info.format = static_cast<WeightFormat>(format);
  info.groupSize = static_cast<int>(get32(&h[kOffGroup]));
  const uint32_t flags = get32(&h[kOffFlags]);
  info.asymmetric = flags & kFlagAsymmetric;
  info.rotatedDown = flags & kFlagRotatedDown;
  if (flags & ~(kFlagAsymmetric | kFlagRotatedDown))
    fail(path, "unknown flags " + std::to_string(flags));
  if (info.rotatedDown && info.format != WeightFormat::INT8)
    fail(path, "rotated down weights flagged for " +
                   std::string(toString(info.format)) +
                   " (only INT8 is stored rotated)");
  if (info.format == WeightFormat::INT4
          ? info.groupSize != 32 && info.groupSize != 64 &&
                info.groupSize != 128
          : info.groupSize != 0 || info.asymmetric)
    fail(path, "invalid group size " + std::to_string(info.groupSize) +
                   " for " + toString(info.format));
  const uint32_t e = get32(&h[kOffExperts]), hid = get32(&h[kOffHidden]),
                 in = get32(&h[kOffInter]);
  if (e < 1 || e > kMaxExperts || hid < 1 || hid > kMaxDim || in < 1 ||
      in > kMaxDim)
    fail(path, "invalid dimensions (" + std::to_string(e) +
                   " experts, hidden " + std::to_string(hid) +
                   ", intermediate " + std::to_string(in) + ")");
  info.numExperts = static_cast<int>(e);
  info.hidden = static_cast<int>(hid);
  info.intermediate = static_cast<int>(in);
  const uint32_t block = get32(&h[kOffBlock]);
  if (block != kColumnBlock)
    fail(path, "rows padded to blocks of " + std::to_string(block) +
                   " columns; this kt packs blocks of " +
                   std::to_string(kColumnBlock));
  const uint32_t sections = get32(&h[kOffSections]);
  const uint32_t nameBytes = get32(&h[kOffNameBytes]);
  info.fingerprint = get64(&h[kOffFingerprint]);
  if (nameBytes > kMaxLayerName)
    fail(path, "corrupt header (layer name of " + std::to_string(nameBytes) +
                   " bytes)");
  p.layout = layoutFor(info.format, info.groupSize, info.numExperts,
                       info.hidden, info.intermediate, nameBytes);
  Layout &l = p.layout;
  if (sections != l.sections.size() || headerBytes != l.headerBytes)
    fail(path, "corrupt header (" + std::to_string(sections) + " sections in " +
                   std::to_string(headerBytes) + " header bytes; " +
                   toString(info.format) + " has " +
                   std::to_string(l.sections.size()) + " in " +
                   std::to_string(l.headerBytes) + ")");
  for (uint32_t i = 0; i < sections; ++i) {
    const unsigned char *t = &h[kQuantHeaderBytes + kEntryBytes * i];
    Section &s = l.sections[i];
    if (get32(t) != s.role || get32(t + 4) != s.array ||
        get64(t + 8) != s.offset || get64(t + 16) != s.bytes)
      fail(path, "section table entry " + std::to_string(i) + " (" +
                     sectionName(get32(t), get32(t + 4)) + " at " +
                     std::to_string(get64(t + 8)) + ", " +
                     std::to_string(get64(t + 16)) +
                     " bytes) does not match the layout of its format and "
                     "shape (" +
                     sectionName(s.role, s.array) + " at " +
                     std::to_string(s.offset) + ", " + std::to_string(s.bytes) +
                     " bytes)");
    s.crc = get32(t + 24);
  }
  if (l.fileBytes != info.fileBytes)
    fail(path, "corrupt header (sections end at byte " +
                   std::to_string(l.fileBytes) + ", the header says " +
                   std::to_string(info.fileBytes) + ")");
  info.layer.assign(reinterpret_cast<const char *>(
                        &h[kQuantHeaderBytes + kEntryBytes * sections]),
                    nameBytes);
  return p;
}

} // namespace

std::string describeFormat(WeightFormat format, int groupSize,
                           bool asymmetric) {
  std::string s = toString(format);
  if (format == WeightFormat::INT4)
    s += " g" + std::to_string(groupSize) + (asymmetric ? " asym" : " sym");
  return s;
}

void writeLayerFile(const std::string &path, const MoeWeights &w,
                    const std::string &layer, uint64_t fingerprint) {
  const WeightFormat f = w.config.format;
  const int group = f == WeightFormat::INT4 ? w.config.groupSize : 0;
  const bool asym = f == WeightFormat::INT4 && w.config.asymmetric;
  const int rotation = w.down.empty() ? 0 : w.down[0].rotation;
  if ((rotation != 0 && rotation != kRotationBlock) ||
      (rotation != 0 && f != WeightFormat::INT8))
    fail(path, "cannot write: down rotation block " + std::to_string(rotation) +
                   " (the file format holds INT8 with block " +
                   std::to_string(kRotationBlock) + " or none)");
  if (w.numExperts < 1 || w.numExperts > kMaxExperts || w.hidden < 1 ||
      w.hidden > kMaxDim || w.intermediate < 1 || w.intermediate > kMaxDim)
    fail(path, "cannot write: invalid dimensions");
  if (f == WeightFormat::INT4 && group != 32 && group != 64 && group != 128)
    fail(path, "cannot write: INT4 group size must be 32, 64 or 128");
  if (layer.size() > kMaxLayerName)
    fail(path, "cannot write: layer name longer than " +
                   std::to_string(kMaxLayerName) + " bytes");
  Layout l =
      layoutFor(f, group, w.numExperts, w.hidden, w.intermediate, layer.size());
  std::vector<char> rowBuf; // one tile-only matrix's rows at a time
  // Check every matrix against the layout, and checksum the sections.
  for (Section &s : l.sections) {
    const auto &mats = roleMatrices(w, s.role);
    if (mats.size() != static_cast<std::size_t>(w.numExperts))
      fail(path, "cannot write: " + std::to_string(mats.size()) + " " +
                     roleName(s.role) + " matrices for " +
                     std::to_string(w.numExperts) + " experts");
    const uint64_t perExpert = s.bytes / w.numExperts;
    auto [rows, cols] = roleShape(s.role, w.hidden, w.intermediate);
    uint32_t crc = 0;
    for (int e = 0; e < w.numExperts; ++e) {
      const PackedMatrix &m = mats[e];
      auto [data, bytes] = rowArrayData(m, static_cast<Array>(s.array), rowBuf);
      if (m.format != f || static_cast<uint64_t>(m.rows) != rows ||
          static_cast<uint64_t>(m.cols) != cols || bytes != perExpert ||
          (f == WeightFormat::INT4 &&
           (m.groupSize != group || m.asymmetric != asym)) ||
          (s.role == kDown && m.rotation != rotation))
        fail(path, "cannot write: expert " + std::to_string(e) + " " +
                       sectionName(s.role, s.array) +
                       " does not match the layer's format and shape");
      crc = crc32c(crc, data, bytes);
    }
    s.crc = crc;
  }

  std::vector<unsigned char> h(l.headerBytes, 0);
  std::memcpy(&h[kOffMagic], kMagic, sizeof kMagic);
  put32(&h[kOffVersion], kQuantFileVersion);
  put32(&h[kOffHeaderBytes], static_cast<uint32_t>(l.headerBytes));
  put32(&h[kOffFormat], static_cast<uint32_t>(f));
  put32(&h[kOffGroup], static_cast<uint32_t>(group));
  put32(&h[kOffFlags],
        (asym ? kFlagAsymmetric : 0) | (rotation ? kFlagRotatedDown : 0));
  put32(&h[kOffExperts], static_cast<uint32_t>(w.numExperts));
  put32(&h[kOffHidden], static_cast<uint32_t>(w.hidden));
  put32(&h[kOffInter], static_cast<uint32_t>(w.intermediate));
  put32(&h[kOffBlock], kColumnBlock);
  put32(&h[kOffSections], static_cast<uint32_t>(l.sections.size()));
  put32(&h[kOffNameBytes], static_cast<uint32_t>(layer.size()));
  put64(&h[kOffFingerprint], fingerprint);
  put64(&h[kOffFileBytes], l.fileBytes);
  for (std::size_t i = 0; i < l.sections.size(); ++i) {
    unsigned char *t = &h[kQuantHeaderBytes + kEntryBytes * i];
    const Section &s = l.sections[i];
    put32(t, s.role);
    put32(t + 4, s.array);
    put64(t + 8, s.offset);
    put64(t + 16, s.bytes);
    put32(t + 24, s.crc);
  }
  std::memcpy(&h[kQuantHeaderBytes + kEntryBytes * l.sections.size()],
              layer.data(), layer.size());
  put32(&h[kOffHeaderCrc], crc32c(0, h.data(), h.size()));

  const std::string tmp = path + ".tmp";
  try {
    Fd fd;
    fd.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd.fd < 0)
      fail(path, "cannot create " + tmp + ": " + std::strerror(errno));
    writeAll(fd.fd, h.data(), h.size(), path);
    uint64_t pos = h.size();
    static const unsigned char zeros[kQuantAlign] = {};
    for (const Section &s : l.sections) {
      writeAll(fd.fd, zeros, s.offset - pos, path);
      for (const PackedMatrix &m : roleMatrices(w, s.role)) {
        auto [data, bytes] =
            rowArrayData(m, static_cast<Array>(s.array), rowBuf);
        writeAll(fd.fd, data, bytes, path);
      }
      pos = s.offset + s.bytes;
    }
    if (::fsync(fd.fd) != 0)
      fail(path, std::string("fsync failed: ") + std::strerror(errno));
    if (::close(fd.fd) != 0) {
      fd.fd = -1;
      fail(path, std::string("close failed: ") + std::strerror(errno));
    }
    fd.fd = -1;
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      fail(path, "cannot rename " + tmp + ": " + std::strerror(errno));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

LayerFileInfo readLayerFileInfo(const std::string &path) {
  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  return parseHeader(fd.fd, path).info;
}

std::string checkLayerFile(const std::string &path, const LayerFileInfo &info,
                           const LayerExpectation &x) {
  const std::string at = "layer file " + path + ": ";
  if (x.layer && *x.layer != info.layer)
    return at + "holds layer '" + info.layer + "', not '" + *x.layer + "'";
  const bool int4 = info.format == WeightFormat::INT4;
  if ((x.format && *x.format != info.format) ||
      (int4 && x.groupSize && *x.groupSize != info.groupSize) ||
      (int4 && x.asymmetric && *x.asymmetric != info.asymmetric)) {
    WeightFormat want = x.format.value_or(info.format);
    std::string wanted =
        describeFormat(want, x.groupSize.value_or(info.groupSize),
                       x.asymmetric.value_or(info.asymmetric));
    if (want == WeightFormat::INT4 && !x.groupSize && !int4)
      wanted = "int4";
    return at + "format " +
           describeFormat(info.format, info.groupSize, info.asymmetric) +
           " but " +
           (x.formatReason.empty() ? std::string("the caller")
                                   : x.formatReason) +
           " asks for " + wanted;
  }
  auto shape = [](int e, int h, int i) {
    return std::to_string(e) + " experts, hidden " + std::to_string(h) +
           ", intermediate " + std::to_string(i);
  };
  if ((x.numExperts && *x.numExperts != info.numExperts) ||
      (x.hidden && *x.hidden != info.hidden) ||
      (x.intermediate && *x.intermediate != info.intermediate))
    return at + "holds " +
           shape(info.numExperts, info.hidden, info.intermediate) +
           "; expected " +
           shape(x.numExperts.value_or(info.numExperts),
                 x.hidden.value_or(info.hidden),
                 x.intermediate.value_or(info.intermediate));
  if (x.fingerprint && *x.fingerprint != info.fingerprint)
    return at + "written for a different checkpoint (source fingerprint " +
           formatFingerprint(info.fingerprint) + ", the model's is " +
           formatFingerprint(*x.fingerprint) + ")";
  return "";
}

MoeWeights readLayerFile(const std::string &path,
                         const LayerExpectation &expect, TilePacking tiles,
                         ThreadPool *pool) {
  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  Parsed p = parseHeader(fd.fd, path);
  const LayerFileInfo &info = p.info;
  if (std::string err = checkLayerFile(path, info, expect); !err.empty())
    throw QuantFileError(err);

  MoeWeights w;
  w.numExperts = info.numExperts;
  w.hidden = info.hidden;
  w.intermediate = info.intermediate;
  w.config.format = info.format;
  if (info.format == WeightFormat::INT4) {
    w.config.groupSize = info.groupSize;
    w.config.asymmetric = info.asymmetric;
  }
  w.config.tiles = tiles;
  w.config.rotateDown = info.rotatedDown;
  for (uint32_t role : {kGate, kUp, kDown}) {
    auto [rows, cols] = roleShape(role, info.hidden, info.intermediate);
    auto &mats = roleMatrices(w, role);
    mats.resize(info.numExperts);
    for (PackedMatrix &m : mats) {
      m.format = info.format;
      m.rows = static_cast<int>(rows);
      m.cols = static_cast<int>(cols);
      m.paddedCols = static_cast<int>(alignUp(cols, kColumnBlock));
      m.groupSize = info.groupSize;
      m.asymmetric = info.asymmetric;
      m.rotation = role == kDown && info.rotatedDown ? kRotationBlock : 0;
    }
  }
  // The tile layout is built from the rows a batch of matrices at a time,
  // right after they are read; tile-only loads then free those rows, so the
  // rows of only a batch (the pool's size) are held besides the tiles.
  const bool toTileLayout = wantsTiles(w.config);
  const bool keepRows = wantsRows(w.config);
  const int E = info.numExperts;
  for (const Section &s : p.layout.sections) {
    const Array a = static_cast<Array>(s.array);
    const bool toTiles = toTileLayout && (a == kBf16 || a == kQ8);
    const int batch = toTiles && pool ? pool->size() : 1;
    const uint64_t perExpert = s.bytes / E;
    std::vector<PackedMatrix> &mats = roleMatrices(w, s.role);
    uint64_t off = s.offset;
    uint32_t crc = 0;
    for (int e0 = 0; e0 < E; e0 += batch) {
      const int e1 = std::min(E, e0 + batch);
      for (int e = e0; e < e1; ++e) {
        void *data = resizeArray(mats[e], a, perExpert);
        readAll(fd.fd, data, perExpert, off, path);
        crc = crc32c(crc, data, perExpert);
        off += perExpert;
      }
      if (!toTiles)
        continue;
      auto task = [&](int i, int) {
        addTileLayout(mats[e0 + i]);
        if (!keepRows)
          dropRowLayout(mats[e0 + i]);
      };
      if (pool)
        pool->run(e1 - e0, task);
      else
        for (int i = 0; i < e1 - e0; ++i)
          task(i, 0);
    }
    if (crc != s.crc)
      fail(path, "checksum mismatch in section " +
                     sectionName(s.role, s.array) + " (corrupt file)");
  }
  return w;
}

} // namespace kt::kernels
