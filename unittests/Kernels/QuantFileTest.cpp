//===- QuantFileTest.cpp - packed layer files: round trip and refusals ----===//
//
// pack -> writeLayerFile -> readLayerFile must give bit-identical matrices
// (and so identical moeForward results) for every format; damaged or
// mismatched files must be refused with a message naming the file and the
// cause.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/QuantFile.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

using namespace kt::kernels;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the test temp dir, removed at the end.
class TempDir {
public:
  TempDir() {
    std::string tmpl = fs::path(testing::TempDir()) / "ktquant-XXXXXX";
    if (!mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string &name) const { return path_ / name; }

private:
  fs::path path_;
};

struct Source {
  int E, H, I;
  std::vector<float> gate, up, down;
};

Source makeSource(int E, int H, int I, unsigned seed) {
  Source s{E, H, I, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.f, 1.f);
  for (auto *v : {&s.gate, &s.up})
    for (size_t i = 0; i < size_t(E) * I * H; ++i)
      v->push_back(n01(rng) / std::sqrt(float(H)));
  for (size_t i = 0; i < size_t(E) * H * I; ++i)
    s.down.push_back(n01(rng) / std::sqrt(float(I)));
  return s;
}

MoeWeights pack(const Source &s, const QuantConfig &cfg) {
  std::vector<ExpertSource> src;
  for (int e = 0; e < s.E; ++e)
    src.push_back({&s.gate[size_t(e) * s.I * s.H], &s.up[size_t(e) * s.I * s.H],
                   &s.down[size_t(e) * s.H * s.I]});
  return packMoe(src, DType::F32, s.H, s.I, cfg);
}

template <class T>
bool sameBits(const std::vector<T> &a, const std::vector<T> &b) {
  return a.size() == b.size() &&
         (a.empty() ||
          std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void expectSameMatrix(const PackedMatrix &a, const PackedMatrix &b,
                      const std::string &what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.paddedCols, b.paddedCols);
  EXPECT_EQ(a.groupSize, b.groupSize);
  EXPECT_EQ(a.asymmetric, b.asymmetric);
  EXPECT_EQ(a.rotation, b.rotation);
  EXPECT_TRUE(sameBits(a.bf16, b.bf16));
  EXPECT_TRUE(sameBits(a.q8, b.q8));
  EXPECT_TRUE(sameBits(a.rowSum, b.rowSum));
  EXPECT_TRUE(sameBits(a.q4, b.q4));
  EXPECT_TRUE(sameBits(a.scales, b.scales));
  EXPECT_TRUE(sameBits(a.offsets, b.offsets));
  EXPECT_TRUE(sameBits(a.q8Tiles, b.q8Tiles));
  EXPECT_TRUE(sameBits(a.bf16Tiles, b.bf16Tiles));
}

void expectSameWeights(const MoeWeights &a, const MoeWeights &b) {
  ASSERT_EQ(a.numExperts, b.numExperts);
  EXPECT_EQ(a.hidden, b.hidden);
  EXPECT_EQ(a.intermediate, b.intermediate);
  EXPECT_EQ(a.config.format, b.config.format);
  EXPECT_EQ(a.config.groupSize, b.config.groupSize);
  EXPECT_EQ(a.config.asymmetric, b.config.asymmetric);
  ASSERT_EQ(a.gate.size(), b.gate.size());
  for (int e = 0; e < a.numExperts; ++e) {
    expectSameMatrix(a.gate[e], b.gate[e], "gate " + std::to_string(e));
    expectSameMatrix(a.up[e], b.up[e], "up " + std::to_string(e));
    expectSameMatrix(a.down[e], b.down[e], "down " + std::to_string(e));
  }
}

std::vector<float> forward(const MoeWeights &w, KernelPath path,
                           bool emulatePanels = false) {
  const int T = 5, K = 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> n01(0.f, 1.f);
  std::vector<float> x(size_t(T) * w.hidden), wts(T * K, 0.5f),
      out(size_t(T) * w.hidden);
  for (float &v : x)
    v = n01(rng);
  std::vector<int32_t> ids(T * K);
  for (int i = 0; i < T * K; ++i)
    ids[i] = (i * 3 + 1) % w.numExperts;
  MoeArgs a;
  a.tokens = T;
  a.topK = K;
  a.x = x.data();
  a.ids = ids.data();
  a.weights = wts.data();
  a.out = out.data();
  MoeOptions o;
  o.path = path;
  o.emulatePanels = emulatePanels;
  moeForward(w, a, o);
  return out;
}

/// forward() with every expert on the panel pipeline's portable reference
/// micro-kernel (runs tile-only weights on any CPU).
std::vector<float> forwardEmulated(const MoeWeights &w) {
  return forward(w, KernelPath::Scalar, true);
}

std::vector<char> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void writeBytes(const std::string &path, const std::vector<char> &b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
}

/// The message readLayerFile throws for `path` (fails the test if none).
std::string readError(const std::string &path, const LayerExpectation &x = {}) {
  try {
    (void)readLayerFile(path, x, TilePacking::Never);
  } catch (const QuantFileError &e) {
    return e.what();
  }
  ADD_FAILURE() << "readLayerFile accepted " << path;
  return "";
}

struct FormatCase {
  WeightFormat format;
  int group;
  bool asym;
};

void PrintTo(const FormatCase &c, std::ostream *os) {
  *os << describeFormat(c.format, c.group, c.asym);
}

std::string caseName(const testing::TestParamInfo<FormatCase> &i) {
  std::string s = toString(i.param.format);
  if (i.param.format == WeightFormat::INT4)
    s += "_g" + std::to_string(i.param.group) +
         (i.param.asym ? "_asym" : "_sym");
  return s;
}

class QuantFileRoundTrip : public testing::TestWithParam<FormatCase> {};

TEST_P(QuantFileRoundTrip, BitIdenticalOnOddShapes) {
  const FormatCase fc = GetParam();
  for (auto [E, H, I] : {std::tuple{5, 200, 72}, std::tuple{3, 64, 24},
                         std::tuple{2, 130, 257}}) {
    SCOPED_TRACE("E " + std::to_string(E) + " H " + std::to_string(H) + " I " +
                 std::to_string(I));
    Source s = makeSource(E, H, I, 11 + H);
    QuantConfig cfg;
    cfg.format = fc.format;
    cfg.groupSize = fc.group;
    cfg.asymmetric = fc.asym;
    cfg.tiles = TilePacking::Never;
    MoeWeights w = pack(s, cfg);
    TempDir dir;
    const std::string path = dir.file("layer.ktq");
    writeLayerFile(path, w, "model.layers.7.mlp.experts", 0x1234abcdull);
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    LayerFileInfo info = readLayerFileInfo(path);
    EXPECT_EQ(info.version, kQuantFileVersion);
    EXPECT_EQ(info.format, fc.format);
    EXPECT_EQ(info.layer, "model.layers.7.mlp.experts");
    EXPECT_EQ(info.fingerprint, 0x1234abcdull);
    EXPECT_EQ(info.numExperts, E);
    EXPECT_EQ(info.hidden, H);
    EXPECT_EQ(info.intermediate, I);
    EXPECT_EQ(info.fileBytes, fs::file_size(path));
    if (fc.format == WeightFormat::INT4) {
      EXPECT_EQ(info.groupSize, fc.group);
      EXPECT_EQ(info.asymmetric, fc.asym);
    }
    // INT8 down weights are stored rotated by default, and say so.
    EXPECT_EQ(info.rotatedDown, fc.format == WeightFormat::INT8);
    EXPECT_EQ(w.down[0].rotation,
              fc.format == WeightFormat::INT8 ? kRotationBlock : 0);

    MoeWeights r = readLayerFile(path, {}, TilePacking::Never);
    expectSameWeights(w, r);
    // The kernels give exactly the same output on the read weights.
    for (KernelPath p : {KernelPath::Scalar, KernelPath::Auto}) {
      std::vector<float> a = forward(w, p), b = forward(r, p);
      EXPECT_TRUE(sameBits(a, b)) << toString(p);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, QuantFileRoundTrip,
    testing::Values(FormatCase{WeightFormat::BF16, 64, false},
                    FormatCase{WeightFormat::INT8, 64, false},
                    FormatCase{WeightFormat::INT4, 32, false},
                    FormatCase{WeightFormat::INT4, 32, true},
                    FormatCase{WeightFormat::INT4, 64, false},
                    FormatCase{WeightFormat::INT4, 64, true},
                    FormatCase{WeightFormat::INT4, 128, false},
                    FormatCase{WeightFormat::INT4, 128, true}),
    caseName);

// The tile layout is not stored; reading with TilePacking::Always rebuilds
// exactly what packMatrix builds.
TEST(QuantFile, TilesRebuiltAtLoad) {
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::INT8}) {
    SCOPED_TRACE(toString(f));
    Source s = makeSource(3, 200, 72, 5);
    QuantConfig cfg;
    cfg.format = f;
    cfg.tiles = TilePacking::Always;
    MoeWeights w = pack(s, cfg);
    ASSERT_TRUE(w.hasTiles());
    TempDir dir;
    const std::string path = dir.file("t.ktq");
    writeLayerFile(path, w, "l", 1);
    MoeWeights plain = readLayerFile(path, {}, TilePacking::Never);
    EXPECT_FALSE(plain.gate[0].hasTiles());
    ThreadPool pool(2);
    MoeWeights tiled = readLayerFile(path, {}, TilePacking::Always, &pool);
    EXPECT_TRUE(tiled.hasTiles());
    expectSameWeights(w, tiled);
    // addTileLayout on a matrix packed without tiles gives the same bytes.
    cfg.tiles = TilePacking::Never;
    PackedMatrix m = packMatrix(s.gate.data(), DType::F32, 72, 200, cfg);
    addTileLayout(m);
    expectSameMatrix(w.gate[0], m, "addTileLayout");
  }
}

// Tile-only weights: the file holds the row layout (rebuilt from the tiles:
// the same bytes as a file written from both layouts), and reading it back
// tile-only gives identical tiles, scales and row sums, no rows.
TEST(QuantFile, TileOnlyRoundTrip) {
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::INT8}) {
    SCOPED_TRACE(toString(f));
    Source s = makeSource(3, 200, 72, 6);
    QuantConfig cfg;
    cfg.format = f;
    cfg.tiles = TilePacking::Only;
    MoeWeights only = pack(s, cfg);
    ASSERT_FALSE(only.hasRows());
    cfg.tiles = TilePacking::Always;
    MoeWeights both = pack(s, cfg);
    TempDir dir;
    writeLayerFile(dir.file("only.ktq"), only, "l", 1);
    writeLayerFile(dir.file("both.ktq"), both, "l", 1);
    EXPECT_EQ(readBytes(dir.file("only.ktq")), readBytes(dir.file("both.ktq")));

    ThreadPool pool(2);
    for (ThreadPool *tp : {static_cast<ThreadPool *>(nullptr), &pool}) {
      MoeWeights r =
          readLayerFile(dir.file("only.ktq"), {}, TilePacking::Only, tp);
      EXPECT_FALSE(r.hasRows());
      EXPECT_EQ(r.config.tiles, TilePacking::Only);
      expectSameWeights(only, r);
      EXPECT_EQ(r.memoryBytes(), only.memoryBytes());
    }
    MoeWeights r =
        readLayerFile(dir.file("only.ktq"), {}, TilePacking::Always, &pool);
    expectSameWeights(both, r);
    // Auto: tile-only on an AMX CPU, rows only elsewhere.
    MoeWeights a = readLayerFile(dir.file("only.ktq"), {}, TilePacking::Auto);
    const bool amx = pathSupported(KernelPath::AMX, f);
    EXPECT_EQ(a.hasRows(), !amx);
    EXPECT_EQ(a.hasTiles(), amx);
    // The same results (panel pipeline, emulated) on the read weights.
    MoeWeights back =
        readLayerFile(dir.file("only.ktq"), {}, TilePacking::Only);
    EXPECT_TRUE(sameBits(forwardEmulated(only), forwardEmulated(back)));
  }
}

TEST(QuantFile, Crc32cKnownValueAndPaths) {
  const char *check = "123456789";
  EXPECT_EQ(crc32c(0, check, 9), 0xE3069283u); // the CRC-32C check value
  EXPECT_EQ(crc32cPortable(0, check, 9), 0xE3069283u);
  std::vector<unsigned char> data(100003);
  std::mt19937 rng(3);
  for (auto &b : data)
    b = static_cast<unsigned char>(rng());
  // Any split, any alignment: hardware and table versions agree.
  for (size_t off : {0, 1, 7}) {
    uint32_t whole = crc32c(0, data.data() + off, data.size() - off);
    EXPECT_EQ(whole, crc32cPortable(0, data.data() + off, data.size() - off));
    uint32_t split = crc32c(0, data.data() + off, 12345);
    split = crc32c(split, data.data() + off + 12345, data.size() - off - 12345);
    EXPECT_EQ(whole, split);
  }
}

TEST(QuantFile, FingerprintCoversEveryField) {
  SourceTensor t{"model.layers.0.mlp.experts.0.gate_proj.weight",
                 "model.safetensors",
                 "BF16",
                 {24, 64},
                 1000,
                 100,
                 3072};
  const uint64_t base = sourceFingerprint({t});
  EXPECT_EQ(base, sourceFingerprint({t}));
  auto changed = [&](auto edit) {
    SourceTensor u = t;
    edit(u);
    return sourceFingerprint({u});
  };
  EXPECT_NE(base, changed([](SourceTensor &u) { u.name += "x"; }));
  EXPECT_NE(base, changed([](SourceTensor &u) { u.file = "other"; }));
  EXPECT_NE(base, changed([](SourceTensor &u) { u.dtype = "F32"; }));
  EXPECT_NE(base, changed([](SourceTensor &u) { u.shape = {64, 24}; }));
  EXPECT_NE(base, changed([](SourceTensor &u) { u.fileSize += 1; }));
  EXPECT_NE(base, changed([](SourceTensor &u) { u.offset += 1; }));
  EXPECT_NE(base, changed([](SourceTensor &u) { u.bytes += 1; }));
  EXPECT_NE(base, sourceFingerprint({t, t}));
  EXPECT_EQ(formatFingerprint(0x00ab), "0x00000000000000ab");
}

/// A written INT8 layer file to damage.
class QuantFileRefusal : public testing::Test {
protected:
  void SetUp() override {
    Source s = makeSource(4, 200, 72, 9);
    QuantConfig cfg;
    cfg.format = WeightFormat::INT8;
    cfg.tiles = TilePacking::Never;
    writeLayerFile(path, pack(s, cfg), "model.layers.1.mlp.experts", 42);
    bytes = readBytes(path);
    ASSERT_GT(bytes.size(), 4096u);
  }
  TempDir dir;
  std::string path = dir.file("model.layers.1.mlp.experts.ktq");
  std::vector<char> bytes;
};

TEST_F(QuantFileRefusal, MissingFile) {
  std::string msg = readError(dir.file("nope.ktq"));
  EXPECT_NE(msg.find("layer file " + dir.file("nope.ktq") +
                     ": cannot open: No such file"),
            std::string::npos)
      << msg;
}

TEST_F(QuantFileRefusal, BadMagic) {
  bytes[0] = 'X';
  writeBytes(path, bytes);
  EXPECT_EQ(readError(path),
            "layer file " + path + ": not a kt-quant layer file (bad magic)");
}

TEST_F(QuantFileRefusal, FutureVersion) {
  bytes[8] = 2; // version, little endian
  writeBytes(path, bytes);
  EXPECT_EQ(readError(path), "layer file " + path +
                                 ": version 2 not supported (this kt reads 1)");
}

TEST_F(QuantFileRefusal, Truncated) {
  const size_t full = bytes.size();
  bytes.resize(full - 1000);
  writeBytes(path, bytes);
  EXPECT_EQ(readError(path), "layer file " + path + ": truncated: expected " +
                                 std::to_string(full) + " bytes, file has " +
                                 std::to_string(full - 1000));
  bytes.resize(50);
  writeBytes(path, bytes);
  EXPECT_EQ(readError(path),
            "layer file " + path +
                ": truncated: expected at least 128 bytes (the header), file "
                "has 50");
}

TEST_F(QuantFileRefusal, TrailingData) {
  bytes.push_back(0);
  writeBytes(path, bytes);
  EXPECT_NE(readError(path).find("(trailing data)"), std::string::npos);
}

TEST_F(QuantFileRefusal, FlippedPayloadByte) {
  bytes[bytes.size() - 3] ^= 0x10; // inside down.scales, the last section
  writeBytes(path, bytes);
  EXPECT_EQ(readError(path), "layer file " + path +
                                 ": checksum mismatch in section down.scales "
                                 "(corrupt file)");
  // The header alone still reads (the data is checked when it is read).
  EXPECT_EQ(readLayerFileInfo(path).numExperts, 4);
}

TEST_F(QuantFileRefusal, FlippedHeaderByte) {
  bytes[32] ^= 1; // hidden size
  writeBytes(path, bytes);
  EXPECT_EQ(readError(path),
            "layer file " + path + ": header checksum mismatch (corrupt file)");
}

TEST_F(QuantFileRefusal, WrongFormat) {
  LayerExpectation x;
  x.format = WeightFormat::INT4;
  x.groupSize = 64;
  x.asymmetric = true;
  x.formatReason = "the rules' backend 'AMXInt4'";
  EXPECT_EQ(readError(path, x),
            "layer file " + path +
                ": format int8 but the rules' backend 'AMXInt4' asks for int4 "
                "g64 asym");
  x = {};
  x.format = WeightFormat::BF16;
  EXPECT_EQ(readError(path, x),
            "layer file " + path +
                ": format int8 but the caller asks for bf16");
}

TEST_F(QuantFileRefusal, WrongInt4Group) {
  Source s = makeSource(2, 64, 24, 1);
  QuantConfig cfg;
  cfg.format = WeightFormat::INT4;
  cfg.groupSize = 32;
  cfg.asymmetric = false;
  writeLayerFile(path, pack(s, cfg), "l", 1);
  LayerExpectation x;
  x.format = WeightFormat::INT4;
  x.groupSize = 64;
  EXPECT_EQ(readError(path, x), "layer file " + path +
                                    ": format int4 g32 sym but the caller "
                                    "asks for int4 g64 sym");
  x.groupSize = 32; // the group matches; symmetry is not asked for
  EXPECT_NO_THROW((void)readLayerFile(path, x, TilePacking::Never));
}

TEST_F(QuantFileRefusal, WrongShape) {
  LayerExpectation x;
  x.numExperts = 8;
  x.hidden = 200;
  x.intermediate = 72;
  EXPECT_EQ(readError(path, x),
            "layer file " + path +
                ": holds 4 experts, hidden 200, intermediate 72; expected 8 "
                "experts, hidden 200, intermediate 72");
  x.numExperts = 4;
  x.intermediate = 96;
  EXPECT_NE(readError(path, x).find("expected 4 experts, hidden 200, "
                                    "intermediate 96"),
            std::string::npos);
}

TEST_F(QuantFileRefusal, WrongLayerAndFingerprint) {
  LayerExpectation x;
  x.layer = "model.layers.2.mlp.experts";
  EXPECT_EQ(readError(path, x),
            "layer file " + path +
                ": holds layer 'model.layers.1.mlp.experts', not "
                "'model.layers.2.mlp.experts'");
  x = {};
  x.fingerprint = 43;
  EXPECT_EQ(readError(path, x),
            "layer file " + path +
                ": written for a different checkpoint (source fingerprint "
                "0x000000000000002a, the model's is 0x000000000000002b)");
  x.fingerprint = 42;
  x.layer = "model.layers.1.mlp.experts";
  x.format = WeightFormat::INT8;
  x.numExperts = 4;
  EXPECT_NO_THROW((void)readLayerFile(path, x, TilePacking::Never));
}

// Unrotated INT8 files (rotateDown off, or written before the flag existed)
// stay loadable and give the same output as their weights.
TEST(QuantFile, UnrotatedInt8RoundTrip) {
  Source s = makeSource(3, 200, 72, 5);
  QuantConfig cfg;
  cfg.format = WeightFormat::INT8;
  cfg.tiles = TilePacking::Never;
  cfg.rotateDown = false;
  MoeWeights w = pack(s, cfg);
  EXPECT_EQ(w.down[0].rotation, 0);
  TempDir dir;
  const std::string path = dir.file("plain.ktq");
  writeLayerFile(path, w, "l", 0);
  EXPECT_FALSE(readLayerFileInfo(path).rotatedDown);
  MoeWeights r = readLayerFile(path, {}, TilePacking::Never);
  EXPECT_FALSE(r.config.rotateDown);
  expectSameWeights(w, r);
  EXPECT_TRUE(
      sameBits(forward(w, KernelPath::Scalar), forward(r, KernelPath::Scalar)));
}

TEST_F(QuantFileRefusal, RotationFlagOnAnotherFormat) {
  EXPECT_TRUE(readLayerFileInfo(path).rotatedDown);
  bytes[16] = 0; // format: bf16 (little endian), flag bit 1 still set
  // A consistent header checksum (bytes 52..55, over the whole header, as a
  // writer computes it), so that the flag check is what refuses the file.
  uint32_t headerBytes = 0;
  std::memcpy(&headerBytes, &bytes[12], 4);
  std::memset(&bytes[52], 0, 4);
  const uint32_t crc = crc32c(0, bytes.data(), headerBytes);
  std::memcpy(&bytes[52], &crc, 4);
  writeBytes(path, bytes);
  EXPECT_EQ(readError(path), "layer file " + path +
                                 ": rotated down weights flagged for bf16 "
                                 "(only INT8 is stored rotated)");
}

TEST(QuantFile, WriteRefusesInconsistentWeights) {
  Source s = makeSource(2, 64, 24, 1);
  QuantConfig cfg;
  cfg.format = WeightFormat::INT8;
  MoeWeights w = pack(s, cfg);
  w.down.pop_back();
  TempDir dir;
  const std::string path = dir.file("bad.ktq");
  EXPECT_THROW(writeLayerFile(path, w, "l", 0), QuantFileError);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  try {
    writeLayerFile(dir.file("nodir/x.ktq"), pack(s, cfg), "l", 0);
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const QuantFileError &e) {
    EXPECT_NE(std::string(e.what()).find("cannot create"), std::string::npos)
        << e.what();
  }
}

} // namespace
