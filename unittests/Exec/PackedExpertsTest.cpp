//===- PackedExpertsTest.cpp - experts packed offline, loaded by Model ----===//
//
// The pieces kt-quant uses (packExpertsOp, expertsSourceTensors, the
// manifest) on fixture models, and Model::load with ExecOptions::expertsDir:
// the same logits as packing at load, bit for bit.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/PackedExperts.h"
#include "kt/Transforms/Compile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace kt;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string &name) {
  return std::string(KT_TEST_FIXTURES) + "/models/" + name;
}

Plan compile(const std::string &name, const std::string &rules) {
  CompileOptions o;
  o.modelDir = fixture(name);
  o.rulesPath = std::string(KT_SOURCE_RULES_DIR) + "/" + rules;
  o.defaultDevice = "cpu";
  CompileResult r = compileModel(o);
  EXPECT_TRUE(r.plan.has_value()) << r.diagnostics;
  return r.plan ? *r.plan : Plan{};
}

class TempDir {
public:
  TempDir() {
    std::string tmpl = fs::path(testing::TempDir()) / "ktexperts-XXXXXX";
    if (!mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

/// Packs every experts op of `plan` into `dir` as kt-quant does.
void packAll(const Plan &plan, const std::string &model,
             const kernels::QuantConfig &cfg, const std::string &dir) {
  auto md = openModelDir(model);
  ASSERT_TRUE(md.ok()) << md.error().message;
  kernels::ThreadPool pool(2);
  ExpertsManifest m;
  m.model = model;
  for (const PlanOp &op : plan.ops) {
    if (!isRoutedExperts(op))
      continue;
    auto src = expertsSourceTensors(op, *md);
    ASSERT_TRUE(src.ok()) << src.error().message;
    WeightFiles weights(*md);
    auto w = packExpertsOp(op, weights, cfg, &pool);
    ASSERT_TRUE(w.ok()) << w.error().message;
    ExpertsManifestLayer l;
    l.op = op.name;
    l.file = expertsLayerFileName(op.name);
    l.fingerprint = kernels::sourceFingerprint(*src);
    kernels::writeLayerFile(dir + "/" + l.file, *w, op.name, l.fingerprint);
    m.layers.push_back(l);
  }
  ASSERT_FALSE(m.layers.empty());
  ASSERT_FALSE(writeExpertsManifest(dir, m).has_value());
}

std::vector<float> logits(const Plan &plan, ComputeType dt,
                          const std::string &expertsDir) {
  ExecOptions o;
  o.threads = 2;
  o.dtype = dt;
  o.expertsDir = expertsDir;
  auto m = Model::load(plan, o);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (!m.ok())
    return {};
  auto out = (*m)->forward({5, 17, 42, 99, 7, 300, 12}, true);
  EXPECT_TRUE(out.ok());
  return out.ok() ? *out : std::vector<float>{};
}

struct Case {
  const char *model, *rules;
  ComputeType dtype;
  kernels::WeightFormat format;
};

TEST(PackedExperts, SameLogitsAsPackingAtLoad) {
  for (Case c : {Case{"qwen3-moe", "qwen3-moe-cpu-int8.yaml", ComputeType::F32,
                      kernels::WeightFormat::INT8},
                 Case{"qwen3-moe-fused", "qwen3-moe-cpu.yaml",
                      ComputeType::BF16, kernels::WeightFormat::BF16},
                 Case{"mixtral", "mixtral-cpu.yaml", ComputeType::BF16,
                      kernels::WeightFormat::BF16}}) {
    SCOPED_TRACE(c.model);
    Plan plan = compile(c.model, c.rules);
    auto f = expertsFormat(
        *std::find_if(plan.ops.begin(), plan.ops.end(), isRoutedExperts),
        c.dtype);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->config.format, c.format);
    EXPECT_EQ(f->reason, c.dtype == ComputeType::BF16
                             ? "--dtype bf16"
                             : "the rules' backend 'AMXInt8'");
    TempDir dir;
    packAll(plan, fixture(c.model), f->config, dir.path);
    std::vector<float> a = logits(plan, c.dtype, ""),
                       b = logits(plan, c.dtype, dir.path);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  }
}

TEST(PackedExperts, SourceTensorsFollowTheCheckpoint) {
  Plan plan = compile("qwen3-moe", "qwen3-moe-cpu-int8.yaml");
  auto md = openModelDir(fixture("qwen3-moe"));
  ASSERT_TRUE(md.ok());
  const PlanOp &op =
      *std::find_if(plan.ops.begin(), plan.ops.end(), isRoutedExperts);
  auto src = expertsSourceTensors(op, *md);
  ASSERT_TRUE(src.ok());
  ASSERT_EQ(src->size(), 3u * 8); // gate, up, down of 8 experts
  EXPECT_EQ((*src)[0].name, "model.layers.0.mlp.experts.0.gate_proj.weight");
  EXPECT_EQ((*src)[2].name, "model.layers.0.mlp.experts.0.down_proj.weight");
  EXPECT_EQ((*src)[0].dtype, "F32");
  EXPECT_EQ((*src)[0].bytes, 24u * 64 * 4);
  EXPECT_EQ((*src)[0].fileSize,
            fs::file_size(fixture("qwen3-moe") + "/model.safetensors"));

  Plan fused = compile("qwen3-moe-fused", "qwen3-moe-cpu.yaml");
  auto mdf = openModelDir(fixture("qwen3-moe-fused"));
  ASSERT_TRUE(mdf.ok());
  auto srcf = expertsSourceTensors(
      *std::find_if(fused.ops.begin(), fused.ops.end(), isRoutedExperts), *mdf);
  ASSERT_TRUE(srcf.ok());
  EXPECT_EQ(srcf->size(), 2u); // gate_up and down, fused
  EXPECT_NE(kernels::sourceFingerprint(*src),
            kernels::sourceFingerprint(*srcf));
}

TEST(PackedExperts, ManifestRoundTripAndRefusals) {
  TempDir dir;
  ExpertsManifest m;
  m.model = "/models/x";
  m.architecture = "Qwen3MoeForCausalLM";
  m.rules = "r.yaml";
  m.format = "int4 g32 sym";
  m.layers.push_back({"model.layers.0.mlp.experts",
                      "model.layers.0.mlp.experts.ktq", 128, 2048, 768,
                      0xfedcba9876543210ull, 123456789012ull});
  ASSERT_FALSE(writeExpertsManifest(dir.path, m).has_value());
  EXPECT_FALSE(fs::exists(dir.path + "/manifest.json.tmp"));
  auto r = readExpertsManifest(dir.path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, m.model);
  EXPECT_EQ(r->architecture, m.architecture);
  EXPECT_EQ(r->format, m.format);
  ASSERT_EQ(r->layers.size(), 1u);
  EXPECT_EQ(r->layers[0].op, m.layers[0].op);
  EXPECT_EQ(r->layers[0].file, m.layers[0].file);
  EXPECT_EQ(r->layers[0].numExperts, 128);
  EXPECT_EQ(r->layers[0].hidden, 2048);
  EXPECT_EQ(r->layers[0].intermediate, 768);
  EXPECT_EQ(r->layers[0].fingerprint, 0xfedcba9876543210ull);
  EXPECT_EQ(r->layers[0].bytes, 123456789012ull);

  auto refuse = [&](const std::string &text) {
    std::ofstream(dir.path + "/manifest.json", std::ios::trunc) << text;
    auto e = readExpertsManifest(dir.path);
    return e.ok() ? std::string("accepted") : e.error().message;
  };
  const std::string at = dir.path + "/manifest.json: ";
  EXPECT_EQ(refuse("{"), at + "not valid JSON");
  EXPECT_EQ(refuse(R"({"kt_quant_manifest": 2, "layers": []})"),
            at + "version 2 not supported (this kt reads 1)");
  EXPECT_EQ(refuse(R"({"layers": []})"),
            at + "not a kt-quant manifest (no kt_quant_manifest version)");
  EXPECT_EQ(refuse(R"({"kt_quant_manifest": 1,
                       "layers": [{"op": "a", "file": "../a.ktq"}]})"),
            dir.path + "/manifest.json: layers[0]: file '../a.ktq' must be a "
                       "plain file name");
  fs::remove(dir.path + "/manifest.json");
  auto missing = readExpertsManifest(dir.path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            dir.path + "/manifest.json: missing (not a kt-quant output "
                       "directory, or kt-quant did not finish)");
}

} // namespace
