//===- SafetensorsTest.cpp - safetensors headers and model directories ----===//
//
// Every input is written to a fresh temporary directory by the test itself.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;
using nlohmann::json;
using namespace kt;

namespace {

/// A fresh directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    const ::testing::TestInfo *info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    dir = fs::temp_directory_path() /
          ("kt-modelio-" + std::to_string(::getpid()) + "-" +
           info->test_suite_name() + "-" + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string path(const std::string &name) const { return (dir / name).string(); }

  /// Writes raw bytes.
  void writeRaw(const std::string &name, const std::string &bytes) {
    std::ofstream out(dir / name, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good());
  }

  /// Writes a little-endian u64 `headerLen`, the header text and `dataSize`
  /// zero bytes.
  void writeWithLength(const std::string &name, uint64_t headerLen,
                       const std::string &header, uint64_t dataSize) {
    std::string bytes;
    for (int i = 0; i < 8; ++i)
      bytes.push_back(static_cast<char>((headerLen >> (8 * i)) & 0xff));
    bytes += header;
    bytes.append(dataSize, '\0');
    writeRaw(name, bytes);
  }

  /// Writes a well-formed safetensors file with the given header.
  void writeSafetensors(const std::string &name, const std::string &header,
                        uint64_t dataSize) {
    writeWithLength(name, header.size(), header, dataSize);
  }
  void writeSafetensors(const std::string &name, const json &header,
                        uint64_t dataSize) {
    writeSafetensors(name, header.dump(), dataSize);
  }

  void writeText(const std::string &name, const std::string &text) {
    writeRaw(name, text);
  }

  /// Reads `name` expecting an error; returns its message.
  std::string readError(const std::string &name) {
    Result<std::vector<TensorInfo>> r = readSafetensorsHeader(path(name), name);
    EXPECT_FALSE(r.ok()) << "expected an error reading " << name;
    return r.ok() ? std::string() : r.error().message;
  }

  fs::path dir;
};

json tensor(const std::string &dtype, std::vector<int64_t> shape, uint64_t begin,
            uint64_t end) {
  return json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

const char *kConfig = R"({"architectures": ["LlamaForCausalLM"]})";

using SafetensorsFileTest = TempDirTest;
using ModelDirTest = TempDirTest;

} // namespace

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

TEST(DTypeTest, NamesAndSizesRoundTrip) {
  const std::pair<const char *, size_t> names[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"I64", 8}, {"I32", 4}, {"I16", 2},  {"I8", 1},   {"U8", 1},      {"BOOL", 1}};
  for (auto [name, size] : names) {
    std::optional<DType> t = parseDType(name);
    ASSERT_TRUE(t.has_value()) << name;
    EXPECT_EQ(dtypeName(*t), name);
    EXPECT_EQ(dtypeSize(*t), size) << name;
  }
  EXPECT_EQ(parseDType("BF16"), DType::BF16);
  EXPECT_EQ(parseDType("F8_E4M3"), DType::F8_E4M3);
  EXPECT_FALSE(parseDType("bf16").has_value()); // names are case-sensitive
  EXPECT_FALSE(parseDType("Q4_0").has_value());
  EXPECT_FALSE(parseDType("").has_value());
}

TEST(TensorInfoTest, ElementsAndBytes) {
  TensorInfo t;
  t.dtype = DType::BF16;
  t.shape = {3, 5};
  EXPECT_EQ(t.numElements(), 15);
  EXPECT_EQ(t.numBytes(), 30u);
  t.shape = {};
  EXPECT_EQ(t.numElements(), 1); // scalar
  t.shape = {4, 0};
  EXPECT_EQ(t.numBytes(), 0u);
  EXPECT_EQ(formatShape({2, 4}), "[2, 4]");
  EXPECT_EQ(formatShape({}), "[]");
}

//===----------------------------------------------------------------------===//
// One file
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsFileTest, SingleFileHeaderRoundTrip) {
  json header = {
      {"__metadata__", {{"format", "pt"}}},
      // Listed out of offset order on purpose.
      {"b.weight", tensor("BF16", {3, 5}, 32, 62)},
      {"a.weight", tensor("F32", {2, 4}, 0, 32)},
      {"c.scale", tensor("F8_E4M3", {}, 62, 63)},
  };
  std::string text = header.dump();
  writeSafetensors("model.safetensors", text, 63);

  Result<SafetensorsHeader> r =
      readSafetensorsFile(path("model.safetensors"), "model.safetensors");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->headerLength, text.size());
  EXPECT_EQ(r->dataOffset, 8 + text.size());
  EXPECT_EQ(r->dataSize, 63u);
  ASSERT_EQ(r->metadata.size(), 1u);
  EXPECT_EQ(r->metadata.at("format"), "pt");

  const std::vector<TensorInfo> &ts = r->tensors;
  ASSERT_EQ(ts.size(), 3u);
  // Sorted by data offset.
  EXPECT_EQ(ts[0].name, "a.weight");
  EXPECT_EQ(ts[1].name, "b.weight");
  EXPECT_EQ(ts[2].name, "c.scale");

  EXPECT_EQ(ts[0].dtype, DType::F32);
  EXPECT_EQ(ts[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(ts[0].begin, 0u);
  EXPECT_EQ(ts[0].end, 32u);
  EXPECT_EQ(ts[0].numElements(), 8);
  EXPECT_EQ(ts[0].numBytes(), 32u);

  EXPECT_EQ(ts[1].dtype, DType::BF16);
  EXPECT_EQ(ts[1].shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(ts[1].begin, 32u);
  EXPECT_EQ(ts[1].end, 62u);
  EXPECT_EQ(ts[1].fileOffset(), 8 + text.size() + 32);

  EXPECT_EQ(ts[2].dtype, DType::F8_E4M3);
  EXPECT_TRUE(ts[2].shape.empty());
  EXPECT_EQ(ts[2].numBytes(), 1u);

  for (const TensorInfo &t : ts) {
    EXPECT_EQ(t.file, "model.safetensors");
    EXPECT_EQ(t.dataOffset, 8 + text.size());
  }

  // The vector-returning form agrees.
  Result<std::vector<TensorInfo>> v =
      readSafetensorsHeader(path("model.safetensors"), "model.safetensors");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[1].name, "b.weight");
  // Result is a std::variant underneath.
  EXPECT_TRUE(std::holds_alternative<std::vector<TensorInfo>>(v));
}

TEST_F(SafetensorsFileTest, PaddedHeaderAndEmptyTensorsAccepted) {
  // Writers pad the header with spaces to align the data section; an empty
  // tensor may share its offset with a neighbour.
  json header = {{"empty", tensor("F16", {0, 7}, 8, 8)},
                 {"x", tensor("I64", {1}, 0, 8)},
                 {"y", tensor("U8", {2}, 8, 10)}};
  writeSafetensors("m.safetensors", header.dump() + "      ", 10);
  Result<std::vector<TensorInfo>> r =
      readSafetensorsHeader(path("m.safetensors"), "m.safetensors");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 3u);
}

TEST_F(SafetensorsFileTest, TruncatedFileNamesTensor) {
  json header = {{"first", tensor("F32", {4}, 0, 16)},
                 {"last", tensor("F32", {4}, 16, 32)}};
  writeSafetensors("model.safetensors", header, 20); // 12 bytes short
  std::string msg = readError("model.safetensors");
  EXPECT_NE(msg.find("model.safetensors: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor 'last'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[16, 32)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("'first'"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, OverlappingOffsetsRejected) {
  json header = {{"a", tensor("F32", {4}, 0, 16)},
                 {"b", tensor("F32", {4}, 8, 24)}};
  writeSafetensors("o.safetensors", header, 24);
  std::string msg = readError("o.safetensors");
  EXPECT_NE(msg.find("o.safetensors: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a' [0, 16)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'b' [8, 24)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, ContainedRangeOverlapRejected) {
  // b and c both lie inside a.
  json header = {{"a", tensor("U8", {100}, 0, 100)},
                 {"b", tensor("U8", {10}, 10, 20)},
                 {"c", tensor("U8", {10}, 50, 60)}};
  writeSafetensors("o.safetensors", header, 100);
  std::string msg = readError("o.safetensors");
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a'"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, BadDTypeNamesTensorAndDType) {
  json header = {{"w", tensor("Q4", {4}, 0, 4)}};
  writeSafetensors("d.safetensors", header, 4);
  std::string msg = readError("d.safetensors");
  EXPECT_EQ(msg, "d.safetensors: tensor 'w': unknown dtype 'Q4'");
}

TEST_F(SafetensorsFileTest, HugeHeaderLengthRejectedWithoutAllocating) {
  // 2^60 bytes could never be allocated: the check must come first.
  writeWithLength("huge.safetensors", uint64_t(1) << 60, "{}", 0);
  std::string msg = readError("huge.safetensors");
  EXPECT_NE(msg.find("huge.safetensors: header length 1152921504606846976 exceeds"),
            std::string::npos)
      << msg;
}

TEST_F(SafetensorsFileTest, HeaderJustOverLimitRejected) {
  writeWithLength("big.safetensors", kMaxSafetensorsHeaderBytes + 1, "{}", 0);
  std::string msg = readError("big.safetensors");
  EXPECT_NE(msg.find("exceeds the limit"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, HeaderLengthLargerThanFile) {
  writeWithLength("short.safetensors", 1000, "{}", 10);
  std::string msg = readError("short.safetensors");
  EXPECT_EQ(msg, "short.safetensors: header length 1000 exceeds the file size "
                 "minus 8 (12 bytes)");
}

TEST_F(SafetensorsFileTest, NonJsonHeader) {
  writeSafetensors("bad.safetensors", std::string("{\"a\": not json}"), 0);
  std::string msg = readError("bad.safetensors");
  EXPECT_NE(msg.find("bad.safetensors: header is not valid JSON"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("parse error"), std::string::npos) << msg; // nlohmann's text
}

TEST_F(SafetensorsFileTest, HeaderNotAnObject) {
  writeSafetensors("arr.safetensors", std::string("[1, 2]"), 0);
  std::string msg = readError("arr.safetensors");
  EXPECT_NE(msg.find("not a JSON object"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, DuplicateKeysRejected) {
  writeSafetensors("dup.safetensors",
                   std::string(R"({"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},)"
                               R"( "x": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})"),
                   2);
  std::string msg = readError("dup.safetensors");
  EXPECT_NE(msg.find("duplicate key 'x'"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, ShapeOffsetMismatch) {
  json header = {{"x", tensor("F32", {2, 4}, 0, 12)}};
  writeSafetensors("model.safetensors", header, 32);
  std::string msg = readError("model.safetensors");
  EXPECT_EQ(msg, "model.safetensors: tensor 'x': data offsets [0, 12) do not "
                 "match shape [2, 4] of F32 (32 bytes)");
}

TEST_F(SafetensorsFileTest, FileShorterThanEightBytes) {
  writeRaw("tiny.safetensors", std::string("\x02\0\0\0\0", 5));
  std::string msg = readError("tiny.safetensors");
  EXPECT_NE(msg.find("tiny.safetensors: file is 5 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("too short"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, MissingFileAndDirectory) {
  std::string msg = readError("absent.safetensors");
  EXPECT_NE(msg.find("absent.safetensors: cannot open"), std::string::npos) << msg;
  fs::create_directory(dir / "sub.safetensors");
  msg = readError("sub.safetensors");
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}

TEST_F(SafetensorsFileTest, MalformedEntriesNamed) {
  struct Case {
    json entry;
    const char *expected;
  } cases[] = {
      {json{{"shape", {1}}, {"data_offsets", {0, 4}}}, "tensor 't': missing 'dtype'"},
      {json{{"dtype", 5}, {"shape", {1}}, {"data_offsets", {0, 4}}},
       "tensor 't': 'dtype' is not a string"},
      {json{{"dtype", "F32"}, {"data_offsets", {0, 4}}}, "tensor 't': missing 'shape'"},
      {json{{"dtype", "F32"}, {"shape", {-1}}, {"data_offsets", {0, 4}}},
       "tensor 't': 'shape' must hold non-negative integers"},
      {json{{"dtype", "F32"}, {"shape", {1.5}}, {"data_offsets", {0, 4}}},
       "tensor 't': 'shape' must hold non-negative integers"},
      {json{{"dtype", "F32"}, {"shape", {1}}}, "tensor 't': missing 'data_offsets'"},
      {json{{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0}}},
       "tensor 't': 'data_offsets' must be [begin, end]"},
      {json{{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {4, 0}}},
       "tensor 't': data offsets [4, 0) have begin > end"},
      {json{{"dtype", "F32"},
            {"shape", {uint64_t(1) << 40, uint64_t(1) << 40}},
            {"data_offsets", {0, 4}}},
       "tensor 't': shape [1099511627776, 1099511627776] is too large"},
      {json("oops"), "tensor 't': entry is not a JSON object"},
  };
  for (const Case &c : cases) {
    json header = {{"t", c.entry}};
    writeSafetensors("e.safetensors", header, 4);
    std::string msg = readError("e.safetensors");
    EXPECT_NE(msg.find(std::string("e.safetensors: ") + c.expected), std::string::npos)
        << "got: " << msg << "\nwanted: " << c.expected;
  }
}

TEST_F(SafetensorsFileTest, BadMetadataRejected) {
  json header = {{"__metadata__", {{"format", 1}}}};
  writeSafetensors("m.safetensors", header, 0);
  std::string msg = readError("m.safetensors");
  EXPECT_NE(msg.find("'__metadata__' value of 'format' is not a string"),
            std::string::npos)
      << msg;
  writeSafetensors("m.safetensors", json{{"__metadata__", "x"}}, 0);
  msg = readError("m.safetensors");
  EXPECT_NE(msg.find("'__metadata__' must be an object"), std::string::npos) << msg;
}

TEST(SafetensorsParseTest, InMemoryHeader) {
  Result<SafetensorsHeader> r = parseSafetensorsHeader(
      R"({"x": {"dtype": "I32", "shape": [3], "data_offsets": [0, 12]}})", 12,
      "mem");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 1u);
  EXPECT_EQ(r->tensors[0].file, "mem");
  Result<SafetensorsHeader> bad = parseSafetensorsHeader(
      R"({"x": {"dtype": "I32", "shape": [3], "data_offsets": [0, 12]}})", 11,
      "mem");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("mem: tensor 'x'"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Model directories
//===----------------------------------------------------------------------===//

TEST_F(ModelDirTest, SingleFileModelDir) {
  writeText("config.json", kConfig);
  writeSafetensors("model.safetensors",
                   json{{"w", tensor("BF16", {2, 2}, 0, 8)},
                        {"__metadata__", {{"format", "pt"}}}},
                   8);
  // A stray shard is ignored when model.safetensors exists.
  writeSafetensors("extra.safetensors", json{{"w", tensor("BF16", {2, 2}, 0, 8)}}, 8);

  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->layout, ModelDir::Layout::SingleFile);
  EXPECT_EQ(r->path, dir.string());
  EXPECT_EQ(r->config["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(r->files, std::vector<std::string>{"model.safetensors"});
  ASSERT_EQ(r->tensors.size(), 1u);
  const TensorInfo *w = r->find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->file, "model.safetensors");
  EXPECT_EQ(r->filePath(*w), (dir / "model.safetensors").string());
  EXPECT_EQ(r->find("nope"), nullptr);
  EXPECT_EQ(r->metadata.at("model.safetensors").at("format"), "pt");
}

TEST_F(ModelDirTest, ShardedModelDir) {
  writeText("config.json", kConfig);
  writeSafetensors("model-00001-of-00002.safetensors",
                   json{{"a", tensor("F32", {2}, 0, 8)}, {"b", tensor("F16", {4}, 8, 16)}},
                   16);
  writeSafetensors("model-00002-of-00002.safetensors",
                   json{{"c", tensor("BF16", {3}, 0, 6)}}, 6);
  writeText("model.safetensors.index.json", R"({
    "metadata": {"total_size": 22},
    "weight_map": {"a": "model-00001-of-00002.safetensors",
                   "b": "model-00001-of-00002.safetensors",
                   "c": "model-00002-of-00002.safetensors"}})");

  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->layout, ModelDir::Layout::Sharded);
  EXPECT_EQ(r->files, (std::vector<std::string>{"model-00001-of-00002.safetensors",
                                                "model-00002-of-00002.safetensors"}));
  ASSERT_EQ(r->tensors.size(), 3u);
  EXPECT_EQ(r->find("a")->file, "model-00001-of-00002.safetensors");
  EXPECT_EQ(r->find("b")->dtype, DType::F16);
  const TensorInfo *c = r->find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->file, "model-00002-of-00002.safetensors");
  EXPECT_EQ(c->shape, std::vector<int64_t>{3});
  EXPECT_EQ(r->filePath(*c), (dir / "model-00002-of-00002.safetensors").string());
}

TEST_F(ModelDirTest, ShardedMissingShard) {
  writeText("config.json", kConfig);
  writeSafetensors("s1.safetensors", json{{"a", tensor("F32", {2}, 0, 8)}}, 8);
  writeText("model.safetensors.index.json",
            R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "model.safetensors.index.json: shard "
                               "'s2.safetensors' (listed for tensor 'b') does "
                               "not exist");
}

TEST_F(ModelDirTest, ShardedTensorMissingFromShard) {
  writeText("config.json", kConfig);
  writeSafetensors("s1.safetensors", json{{"a", tensor("F32", {2}, 0, 8)}}, 8);
  writeText("model.safetensors.index.json",
            R"({"weight_map": {"a": "s1.safetensors", "ghost": "s1.safetensors"}})");
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "s1.safetensors: tensor 'ghost' is listed in "
                               "model.safetensors.index.json but not present "
                               "in the file");
}

TEST_F(ModelDirTest, ShardedTensorInAnotherShard) {
  writeText("config.json", kConfig);
  writeSafetensors("s1.safetensors", json{{"a", tensor("F32", {2}, 0, 8)}}, 8);
  writeSafetensors("s2.safetensors", json{{"b", tensor("F32", {2}, 0, 8)}}, 8);
  writeText("model.safetensors.index.json",
            R"({"weight_map": {"a": "s2.safetensors", "b": "s2.safetensors"}})");
  // s1 is not listed, so it is not read; a is not where the index says.
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "s2.safetensors: tensor 'a' is listed in "
                               "model.safetensors.index.json but not present "
                               "in the file");

  writeText("model.safetensors.index.json",
            R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}})");
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "s1.safetensors: tensor 'b' is listed in "
                               "model.safetensors.index.json but not present "
                               "in the file (it is in s2.safetensors)");
}

TEST_F(ModelDirTest, ShardedTensorNotInIndex) {
  writeText("config.json", kConfig);
  writeSafetensors("s1.safetensors",
                   json{{"a", tensor("F32", {2}, 0, 8)}, {"extra", tensor("U8", {1}, 8, 9)}},
                   9);
  writeText("model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors"}})");
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "s1.safetensors: tensor 'extra' is not listed in model.safetensors.index.json");
}

TEST_F(ModelDirTest, ShardedDuplicateNames) {
  writeText("config.json", kConfig);
  writeSafetensors("s1.safetensors", json{{"a", tensor("F32", {2}, 0, 8)}}, 8);
  writeSafetensors("s2.safetensors",
                   json{{"a", tensor("F32", {2}, 0, 8)}, {"b", tensor("F32", {2}, 8, 16)}},
                   16);
  writeText("model.safetensors.index.json",
            R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "s2.safetensors: tensor 'a' is also present in "
                               "s1.safetensors (duplicate tensor name)");
}

TEST_F(ModelDirTest, ShardedInvalidShardReported) {
  writeText("config.json", kConfig);
  writeSafetensors("s1.safetensors", json{{"a", tensor("F32", {2}, 0, 8)}}, 4);
  writeText("model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors"}})");
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("s1.safetensors: tensor 'a'"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos)
      << r.error().message;
}

TEST_F(ModelDirTest, ShardedBadIndex) {
  writeText("config.json", kConfig);
  writeSafetensors("s1.safetensors", json{{"a", tensor("F32", {2}, 0, 8)}}, 8);

  writeText("model.safetensors.index.json", R"({"metadata": {}})");
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "model.safetensors.index.json: missing 'weight_map'");

  writeText("model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("entry for tensor 'a' is not a string"),
            std::string::npos)
      << r.error().message;

  writeText("model.safetensors.index.json",
            R"({"weight_map": {"a": "../s1.safetensors"}})");
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a relative path inside the model directory"),
            std::string::npos)
      << r.error().message;

  writeText("model.safetensors.index.json", "{oops");
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("model.safetensors.index.json: not valid JSON"),
            std::string::npos)
      << r.error().message;
}

TEST_F(ModelDirTest, FileSetModelDir) {
  writeText("config.json", kConfig);
  writeSafetensors("b.safetensors", json{{"y", tensor("F32", {1}, 0, 4)}}, 4);
  writeSafetensors("a.safetensors", json{{"x", tensor("F32", {1}, 0, 4)}}, 4);
  writeText("notes.txt", "not weights");
  Result<ModelDir> r = openModelDir(dir.string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->layout, ModelDir::Layout::FileSet);
  EXPECT_EQ(r->files, (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
  EXPECT_EQ(r->find("x")->file, "a.safetensors");
  EXPECT_EQ(r->find("y")->file, "b.safetensors");

  // The same name in two files of the set.
  writeSafetensors("c.safetensors", json{{"x", tensor("F32", {1}, 0, 4)}}, 4);
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "c.safetensors: tensor 'x' is also present in "
                               "a.safetensors (duplicate tensor name)");
}

TEST_F(ModelDirTest, ModelDirErrors) {
  Result<ModelDir> r = openModelDir((dir / "absent").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a directory"), std::string::npos);

  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, dir.string() + ": missing config.json");

  writeText("config.json", "[1]");
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "config.json: not a JSON object (got array)");

  writeText("config.json", "{\"a\": }");
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("config.json: not valid JSON"), std::string::npos)
      << r.error().message;

  writeText("config.json", kConfig);
  r = openModelDir(dir.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no weights"), std::string::npos)
      << r.error().message;
}
