//===- ExecutorTest.cpp - plan execution on the fixture models -----------===//
//
// Properties that hold whatever the numbers: decoding through the KV cache
// equals recomputing the whole sequence, MLA with and without matrix
// absorption agree, rewind() reuses a prefix, bad calls leave the cache
// unchanged. Parity with Hugging Face is tested end to end by the lit tests
// in test/kt-run.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Executor.h"
#include "kt/Runtime/Kernels/Topology.h"
#include "kt/Transforms/Compile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

using namespace kt;

namespace {

std::string fixture(const std::string &name) {
  return std::string(KT_TEST_FIXTURES) + "/models/" + name;
}

Plan compile(const std::string &name, const std::string &rules) {
  CompileOptions o;
  o.modelDir = fixture(name);
  o.rulesPath = rules.empty() ? "" : std::string(KT_SOURCE_RULES_DIR) + "/" + rules;
  o.defaultDevice = "cpu";
  CompileResult r = compileModel(o);
  EXPECT_TRUE(r.plan.has_value()) << r.diagnostics;
  return r.plan ? *r.plan : Plan{};
}

std::unique_ptr<Model> load(const Plan &plan, ComputeType dt = ComputeType::F32) {
  ExecOptions o;
  o.threads = 2;
  o.dtype = dt;
  auto m = Model::load(plan, o);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(*m) : nullptr;
}

const std::vector<int64_t> kIds = {5, 17, 42, 99, 7, 300, 12, 64, 8, 255};

double maxRelDiff(const std::vector<float> &a, const std::vector<float> &b) {
  double scale = 0, d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(double(b[i])));
    d = std::max(d, std::fabs(double(a[i]) - b[i]));
  }
  return d / scale;
}

struct Case {
  const char *fixture, *rules;
};

class CacheTest : public ::testing::TestWithParam<Case> {};

TEST_P(CacheTest, DecodeThroughCacheEqualsRecompute) {
  Plan plan = compile(GetParam().fixture, GetParam().rules);
  auto model = load(plan);
  ASSERT_TRUE(model);
  int64_t vocab = model->vocabSize();
  auto full = model->forward(kIds, true);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), kIds.size() * vocab);
  model->reset();
  // First 4 tokens as a prefill, the rest one at a time.
  std::vector<int64_t> head(kIds.begin(), kIds.begin() + 4);
  auto first = model->forward(head, false);
  ASSERT_TRUE(first.ok());
  std::vector<float> lastOfFull(full->begin() + 3 * vocab,
                                full->begin() + 4 * vocab);
  EXPECT_LT(maxRelDiff(*first, lastOfFull), 1e-5);
  for (size_t i = 4; i < kIds.size(); ++i) {
    auto step = model->forward({kIds[i]}, false);
    ASSERT_TRUE(step.ok());
    std::vector<float> ref(full->begin() + i * vocab,
                           full->begin() + (i + 1) * vocab);
    EXPECT_LT(maxRelDiff(*step, ref), 1e-5) << "position " << i;
  }
  EXPECT_EQ(model->position(), static_cast<int64_t>(kIds.size()));
  // Rewind to 6 and replay: same logits as the full pass.
  model->rewind(6);
  auto replay = model->forward({kIds[6], kIds[7]}, true);
  ASSERT_TRUE(replay.ok());
  std::vector<float> ref(full->begin() + 6 * vocab, full->begin() + 8 * vocab);
  EXPECT_LT(maxRelDiff(*replay, ref), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, CacheTest,
    ::testing::Values(Case{"deepseek-v2", "deepseek-v2-lite-cpu.yaml"},
                      Case{"deepseek-v3", "deepseek-v3-cpu.yaml"},
                      Case{"qwen2-moe", "qwen3-moe-cpu.yaml"},
                      Case{"qwen3-moe-fused", "qwen3-moe-cpu.yaml"},
                      Case{"mixtral", "mixtral-cpu.yaml"},
                      Case{"llama", ""}),
    [](const auto &info) {
      std::string n = info.param.fixture;
      for (char &c : n)
        if (c == '-')
          c = '_';
      return n;
    });

TEST(Mla, AbsorbedEqualsPlain) {
  for (const char *name : {"deepseek-v2", "deepseek-v3"}) {
    Plan plain = compile(name, name == std::string("deepseek-v2")
                                   ? "deepseek-v2-lite-cpu.yaml"
                                   : "deepseek-v3-cpu.yaml");
    Plan absorbed = plain;
    int mlaOps = 0;
    for (auto &op : plain.ops)
      if (op.kind == "mla_core") {
        op.attrs["absorb"] = false;
        ++mlaOps;
      }
    for (auto &op : absorbed.ops)
      if (op.kind == "mla_core")
        op.attrs["absorb"] = true;
    ASSERT_GT(mlaOps, 0) << name;
    auto a = load(plain), b = load(absorbed);
    ASSERT_TRUE(a && b);
    auto la = a->forward(kIds, true), lb = b->forward(kIds, true);
    ASSERT_TRUE(la.ok() && lb.ok());
    EXPECT_LT(maxRelDiff(*lb, *la), 1e-5) << name;
    // And through the cache, one token at a time.
    b->reset();
    for (size_t i = 0; i < kIds.size(); ++i) {
      auto s = b->forward({kIds[i]}, false);
      ASSERT_TRUE(s.ok());
      std::vector<float> ref(la->begin() + i * a->vocabSize(),
                             la->begin() + (i + 1) * a->vocabSize());
      EXPECT_LT(maxRelDiff(*s, ref), 1e-5) << name << " position " << i;
    }
  }
}

TEST(Executor, BadCallsLeaveTheCacheUnchanged) {
  Plan plan = compile("qwen3-moe", "qwen3-moe-cpu.yaml");
  ExecOptions o;
  o.maxContext = 8;
  o.threads = 1;
  auto m = Model::load(plan, o);
  ASSERT_TRUE(m.ok());
  auto &model = **m;
  ASSERT_TRUE(model.forward({1, 2, 3}, false).ok());
  auto tooLong = model.forward({1, 2, 3, 4, 5, 6}, false);
  ASSERT_FALSE(tooLong.ok());
  EXPECT_NE(tooLong.error().message.find("context length 8"), std::string::npos)
      << tooLong.error().message;
  auto badId = model.forward({model.vocabSize()}, false);
  ASSERT_FALSE(badId.ok());
  EXPECT_NE(badId.error().message.find("outside the vocabulary"),
            std::string::npos);
  EXPECT_EQ(model.position(), 3);
  EXPECT_FALSE(model.forward({}, false).ok());
}

TEST(Executor, CudaPlacementIsRefusedNamingTheOp) {
  Plan plan = compile("qwen3-moe", "qwen3-moe.yaml"); // GPU + CPU rules
  auto m = Model::load(plan, ExecOptions{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("cuda:0"), std::string::npos)
      << m.error().message;
  EXPECT_NE(m.error().message.find("CPU only"), std::string::npos);
}

TEST(Executor, MissingTensorIsReportedAtLoad) {
  Plan plan = compile("qwen3-moe", "qwen3-moe-cpu.yaml");
  for (auto &op : plan.ops)
    if (op.kind == "rms_norm") {
      op.weights["weight"].tensor = "model.no_such.weight";
      break;
    }
  auto m = Model::load(plan, ExecOptions{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("model.no_such.weight"), std::string::npos)
      << m.error().message;
}

TEST(Executor, Bf16StaysCloseToF32) {
  Plan plan = compile("qwen3-moe", "qwen3-moe-cpu.yaml");
  auto a = load(plan), b = load(plan, ComputeType::BF16);
  ASSERT_TRUE(a && b);
  auto la = a->forward(kIds, true), lb = b->forward(kIds, true);
  ASSERT_TRUE(la.ok() && lb.ok());
  double d = maxRelDiff(*lb, *la);
  EXPECT_GT(d, 0.0); // really ran in bf16
  EXPECT_LT(d, 2e-2);
}

/// INT8 experts (the AMXInt8 backend) with unquantised activations
/// (ExecOptions::int8FloatActivations, kt-run --int8-activations float):
/// the option reaches the kernels (the logits change) and brings them closer
/// to the exact fp32 experts, since only the weights' rounding is left.
TEST(Executor, Int8FloatActivationsCloserToReference) {
  Plan ref = compile("qwen3-moe", "qwen3-moe-cpu.yaml");
  Plan q8 = compile("qwen3-moe", "qwen3-moe-cpu-int8.yaml");
  ExecOptions o;
  o.threads = 2;
  auto exact = Model::load(ref, o);
  auto w8a8 = Model::load(q8, o);
  o.int8FloatActivations = true;
  auto w8a16 = Model::load(q8, o);
  ASSERT_TRUE(exact.ok() && w8a8.ok() && w8a16.ok());
  auto e = (*exact)->forward(kIds, true), a = (*w8a8)->forward(kIds, true),
       b = (*w8a16)->forward(kIds, true);
  ASSERT_TRUE(e.ok() && a.ok() && b.ok());
  const double d8 = maxRelDiff(*a, *e), d16 = maxRelDiff(*b, *e);
  std::printf("[ info ] max relative logit difference vs fp32 experts: "
              "w8a8 %.3g, w8a16 %.3g\n",
              d8, d16);
  EXPECT_NE(*a, *b);
  EXPECT_LT(d16, d8);
}

/// ExecOptions::int8ActBlock (kt-run --int8-act-block) reaches the experts'
/// preparation: a block that is no whole number of 64-byte chunks is refused
/// at load with the option's name; 0 (one scale per token) and 128 load and
/// run. (The fixture's hidden size, 64, is one block either way, so their
/// results agree; the blocks' numerics are tested in unittests/Kernels,
/// PanelInt8RealShapeAccuracy.)
TEST(Executor, Int8ActBlockIsCheckedAndPassedOn) {
  Plan q8 = compile("qwen3-moe", "qwen3-moe-cpu-int8.yaml");
  ExecOptions o;
  o.threads = 2;
  o.int8ActBlock = 96;
  auto bad = Model::load(q8, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("int8ActBlock 96"), std::string::npos)
      << bad.error().message;
  std::vector<std::vector<float>> logits;
  for (int block : {0, 128}) {
    o.int8ActBlock = block;
    auto m = Model::load(q8, o);
    ASSERT_TRUE(m.ok()) << m.error().message;
    auto l = (*m)->forward(kIds, true);
    ASSERT_TRUE(l.ok());
    logits.push_back(*l);
  }
  EXPECT_EQ(logits[0], logits[1]);
}

/// Packed experts split across (virtual) NUMA nodes: ExecOptions::numaNodes
/// and KT_NUMA_NODES select the per-node pools and NumaMoe weights. The
/// fixture's intermediate size (24) is below one 128-column slice, so the
/// split has one slice and must equal the unsplit run exactly; the
/// arithmetic of several slices is tested in unittests/Kernels.
TEST(Executor, NumaSplitExpertsMatchUnsplit) {
  Plan plan = compile("qwen3-moe", "qwen3-moe-cpu.yaml");
  ExecOptions o;
  o.threads = 2;
  o.dtype = ComputeType::BF16; // packed BF16 experts
  o.numaNodes = 0;
  auto plain = Model::load(plan, o);
  o.numaNodes = 3;
  auto split = Model::load(plan, o);
  ASSERT_TRUE(plain.ok() && split.ok());
  // What kt-run reports: no split, then 3 virtual nodes over this machine's
  // memory node(s), one 128-column slice, binding only across memory nodes.
  EXPECT_EQ((*plain)->numaSplit().nodes, 0);
  const NumaSplitInfo &s = (*split)->numaSplit();
  EXPECT_EQ(s.nodes, 3);
  EXPECT_TRUE(s.virtualNodes);
  EXPECT_EQ(s.slices, 1);
  EXPECT_EQ(s.topology.rfind("3 nodes (virtual, ", 0), 0u) << s.topology;
  EXPECT_EQ(s.physicalNodes, kt::kernels::CpuTopology::host().physicalNodes());
  if (s.physicalNodes == 1)
    EXPECT_EQ(s.boundBytes + s.bindFailures, 0u);
  auto a = (*plain)->forward(kIds, true), b = (*split)->forward(kIds, true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  ::setenv("KT_NUMA_NODES", "2", 1);
  o.numaNodes = -1;
  auto env = Model::load(plan, o);
  ::unsetenv("KT_NUMA_NODES");
  ASSERT_TRUE(env.ok());
  auto c = (*env)->forward(kIds, true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*a, *c);
}

} // namespace
