//===- RulesTargetsTest.cpp - replace.class -> kt op, devices -------------===//

#include "RulesTestUtil.h"

using namespace kt::rules;
using namespace kt::rules::test;
using nlohmann::json;

namespace {

Rule makeRule(const std::string &replaceClass, json kwargs = json::object()) {
  Rule r;
  r.namePattern = ".";
  r.replaceClass = replaceClass;
  r.kwargs = std::move(kwargs);
  return r;
}

/// resolveTarget that must succeed; returns "op|impl".
std::string resolved(const Rule &r, std::string_view currentOp) {
  auto result = resolveTarget(r, currentOp);
  if (auto *err = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << *err;
    return "<error>";
  }
  const Target &t = std::get<Target>(result);
  return t.op + "|" + t.impl;
}

/// resolveTarget that must fail; returns the message.
std::string failure(const Rule &r, std::string_view currentOp) {
  auto result = resolveTarget(r, currentOp);
  if (auto *err = std::get_if<std::string>(&result))
    return *err;
  ADD_FAILURE() << "resolved to " << std::get<Target>(result).op;
  return "";
}

constexpr const char *kLinear =
    "ktransformers.operators.linear.KTransformersLinear";
constexpr const char *kExperts =
    "ktransformers.operators.experts.KTransformersExperts";

TEST(RulesTargets, DefaultKeepsTheOp) {
  for (const char *op :
       {"kt.module", "kt.linear", "kt.embedding", "kt.rms_norm", "kt.rotary",
        "kt.moe_gate", "kt.experts"})
    EXPECT_EQ(resolved(makeRule("default", {{"generate_device", "cpu"}}), op),
              std::string(op) + "|");
}

TEST(RulesTargets, KTransformersLinear) {
  EXPECT_EQ(resolved(makeRule(kLinear, {{"generate_op", "KLinearMarlin"}}),
                     "kt.linear"),
            "kt.marlin_linear|KLinearMarlin");
  EXPECT_EQ(resolved(makeRule(kLinear, {{"generate_op", "VLinearMarlin"}}),
                     "kt.linear"),
            "kt.marlin_linear|VLinearMarlin");
  EXPECT_EQ(resolved(makeRule(kLinear, {{"generate_op", "KLinearTorch"}}),
                     "kt.linear"),
            "kt.linear|KLinearTorch");
  EXPECT_EQ(
      resolved(makeRule(kLinear, {{"generate_op", "KLinearFP8"}}), "kt.linear"),
      "kt.fp8_linear|KLinearFP8");
  // Upstream's KTransformersLinear defaults generate_op to KLinearMarlin.
  EXPECT_EQ(resolved(makeRule(kLinear), "kt.linear"),
            "kt.marlin_linear|KLinearMarlin");
  // A linear that already became a specialised linear still is a linear.
  EXPECT_EQ(resolved(makeRule(kLinear, {{"generate_op", "KLinearTorch"}}),
                     "kt.marlin_linear"),
            "kt.linear|KLinearTorch");

  EXPECT_EQ(failure(makeRule(kLinear, {{"generate_op", "KLinearMarlin"}}),
                    "kt.module"),
            std::string(kLinear) +
                " cannot replace a module of kind kt.module");
  EXPECT_NE(
      failure(makeRule(kLinear, {{"generate_op", "KLinearQ8"}}), "kt.linear")
          .find("unsupported generate_op 'KLinearQ8'"),
      std::string::npos);
  EXPECT_NE(failure(makeRule(kLinear, {{"generate_op", 3}}), "kt.linear")
                .find("must be a string"),
            std::string::npos);
}

TEST(RulesTargets, KTransformersExperts) {
  json cpu = {{"generate_device", "cpu"},
              {"generate_op", "KExpertsCPU"},
              {"prefill_device", "cuda"},
              {"prefill_op", "KExpertsTorch"},
              {"backend", "AMXInt8"}};
  EXPECT_EQ(resolved(makeRule(kExperts, cpu), "kt.experts"),
            "kt.cpu_experts|KExpertsCPU");
  EXPECT_EQ(resolved(makeRule(kExperts), "kt.experts"), "kt.cpu_experts|");
  EXPECT_EQ(resolved(makeRule(kExperts, {{"generate_device", "cuda:1"},
                                         {"generate_op", "KExpertsMarlin"}}),
                     "kt.experts"),
            "kt.gpu_experts|KExpertsMarlin");
  EXPECT_EQ(
      resolved(makeRule(kExperts, {{"generate_device", "cuda"}}), "kt.experts"),
      "kt.gpu_experts|");
  EXPECT_EQ(resolved(makeRule(std::string(kExperts) + "V2",
                              {{"generate_op", "KSFTExpertsCPU"},
                               {"backend", "AMXBF16"}}),
                     "kt.experts"),
            "kt.cpu_experts|KSFTExpertsCPU");

  EXPECT_EQ(failure(makeRule(kExperts, cpu), "kt.linear"),
            "ktransformers.operators.experts.KTransformersExperts cannot "
            "replace a module of kind kt.linear");
  EXPECT_NE(failure(makeRule(kExperts, {{"generate_op", "KExpertsGPU"}}),
                    "kt.experts")
                .find("unsupported generate_op 'KExpertsGPU'"),
            std::string::npos);
  EXPECT_NE(failure(makeRule(kExperts, {{"backend", "AVX1"}}), "kt.experts")
                .find("unsupported backend 'AVX1'"),
            std::string::npos);
  for (const char *backend :
       {"AMXInt8", "AMXBF16", "AMXInt4", "llamafile", "AVX512", "AVX2"})
    EXPECT_EQ(
        resolved(makeRule(kExperts, {{"backend", backend}}), "kt.experts"),
        "kt.cpu_experts|")
        << backend;
}

TEST(RulesTargets, ContainersAttentionAndModels) {
  const std::string ops = "ktransformers.operators.";
  for (const char *leaf :
       {"experts.KDeepseekV2MoE", "experts.KDeepseekV3MoE",
        "experts.KMistralSparseMoEBlock", "experts.KQwen2MoeSparseMoeBlock",
        "experts.KQwen3MoeSparseMoeBlockV2",
        "balance_serve_attention.KQwen3MoeAttention",
        "balance_serve_attention.KQwen2MoeAttention",
        "attention.KLlamaAttention", "models.KDeepseekV2Model",
        "models.KQwen2MoeModel", "models.KQwen3MoeModel", "models.KLlamaModel",
        "models.KMixtralModel", "mlp.KQwen2MoeMLP", "mlp.KDeepseekV2MLP"}) {
    std::string path = ops + leaf;
    std::string impl(classLeaf(path));
    EXPECT_EQ(resolved(makeRule(path), "kt.module"), "kt.module|" + impl);
    EXPECT_EQ(failure(makeRule(path), "kt.linear"),
              path + " cannot replace a module of kind kt.linear");
  }
  std::string mla = ops + "attention.KDeepseekV2Attention";
  EXPECT_EQ(
      resolved(makeRule(mla, {{"absorb_for_prefill", false}}), "kt.module"),
      "kt.mla|KDeepseekV2Attention");
  EXPECT_EQ(resolved(makeRule(mla), "kt.attention"),
            "kt.mla|KDeepseekV2Attention");
  EXPECT_EQ(resolved(makeRule(mla), "kt.mla"), "kt.mla|KDeepseekV2Attention");
  EXPECT_EQ(failure(makeRule(mla), "kt.rotary"),
            mla + " cannot replace a module of kind kt.rotary");
  // A model-level class may not turn an MLA back into a container.
  EXPECT_FALSE(std::holds_alternative<Target>(
      resolveTarget(makeRule(ops + "models.KDeepseekV2Model"), "kt.mla")));
}

TEST(RulesTargets, LeafOps) {
  const std::string ops = "ktransformers.operators.";
  EXPECT_EQ(resolved(makeRule(ops + "gate.KMoEGate"), "kt.moe_gate"),
            "kt.moe_gate|KMoEGate");
  EXPECT_NE(failure(makeRule(ops + "gate.KMoEGate"), "kt.linear")
                .find("cannot replace a module of kind kt.linear"),
            std::string::npos);
  for (const char *leaf :
       {"RotaryEmbedding", "RotaryEmbeddingV3", "YarnRotaryEmbedding",
        "YarnRotaryEmbeddingV3", "DeepSeekV3YarnRotaryEmbedding"})
    EXPECT_EQ(resolved(makeRule(ops + "RoPE." + leaf), "kt.rotary"),
              std::string("kt.rotary|") + leaf);
  for (const char *leaf : {"RMSNorm", "KQwen3MoeRMSNorm", "KDeepseekRMSNorm"})
    EXPECT_EQ(resolved(makeRule(ops + "layernorm." + leaf), "kt.rms_norm"),
              std::string("kt.rms_norm|") + leaf);
  EXPECT_FALSE(std::holds_alternative<Target>(
      resolveTarget(makeRule(ops + "layernorm.RMSNorm"), "kt.module")));
}

TEST(RulesTargets, KtOpNamesMapToThemselves) {
  struct Case {
    const char *op;
    const char *current;
  };
  for (Case c :
       {Case{"kt.cpu_experts", "kt.experts"}, Case{"kt.linear", "kt.linear"},
        Case{"kt.marlin_linear", "kt.linear"},
        Case{"kt.fp8_linear", "kt.linear"}, Case{"kt.lora_linear", "kt.linear"},
        Case{"kt.lora_linear", "kt.marlin_linear"}, Case{"kt.mla", "kt.module"},
        Case{"kt.rotary", "kt.rotary"}, Case{"kt.rms_norm", "kt.rms_norm"},
        Case{"kt.moe_gate", "kt.moe_gate"}, Case{"kt.module", "kt.module"},
        Case{"kt.embedding", "kt.embedding"}})
    EXPECT_EQ(resolved(makeRule(c.op), c.current), std::string(c.op) + "|")
        << c.op << " on " << c.current;
  EXPECT_EQ(
      resolved(makeRule("kt.gpu_experts", {{"generate_device", "cuda:0"}}),
               "kt.experts"),
      "kt.gpu_experts|");

  EXPECT_EQ(failure(makeRule("kt.cpu_experts"), "kt.linear"),
            "kt.cpu_experts cannot replace a module of kind kt.linear");
  EXPECT_EQ(failure(makeRule("kt.marlin_linear"), "kt.experts"),
            "kt.marlin_linear cannot replace a module of kind kt.experts");
  EXPECT_EQ(failure(makeRule("kt.lora_linear"), "kt.module"),
            "kt.lora_linear cannot replace a module of kind kt.module");
  EXPECT_EQ(failure(makeRule("kt.mla"), "kt.linear"),
            "kt.mla cannot replace a module of kind kt.linear");
  EXPECT_NE(failure(makeRule("kt.cpu_experts", {{"generate_device", "cuda"}}),
                    "kt.experts")
                .find("generate_device"),
            std::string::npos);
  EXPECT_NE(failure(makeRule("kt.gpu_experts"), "kt.experts")
                .find("cuda generate_device"),
            std::string::npos);
}

TEST(RulesTargets, UnknownReplaceClass) {
  EXPECT_NE(failure(makeRule("kt.not_an_op"), "kt.module")
                .find("unknown replace class 'kt.not_an_op'"),
            std::string::npos);
  EXPECT_NE(failure(makeRule("ktransformers.operators.linear.KLinearMarlin"),
                    "kt.linear")
                .find("unknown replace class"),
            std::string::npos);
  EXPECT_TRUE(isKnownReplaceClass("default"));
  EXPECT_TRUE(isKnownReplaceClass(kLinear));
  EXPECT_TRUE(isKnownReplaceClass("kt.cpu_experts"));
  EXPECT_FALSE(isKnownReplaceClass("KTransformersLinear"));
}

TEST(RulesTargets, BadDevicesAreRejectedByResolveToo) {
  EXPECT_NE(
      failure(makeRule("default", {{"generate_device", "cuda:a"}}), "kt.module")
          .find("invalid device"),
      std::string::npos);
  EXPECT_NE(failure(makeRule(kLinear, {{"transfer_map", {{"x", "cuda:1"}}}}),
                    "kt.linear")
                .find("transfer_map"),
            std::string::npos);
}

TEST(RulesTargets, Devices) {
  for (const char *ok :
       {"cpu", "cuda", "cuda:0", "cuda:1", "cuda:15", "cuda:007"})
    EXPECT_TRUE(isValidDevice(ok)) << ok;
  for (const char *bad :
       {"", "gpu", "CPU", "cuda:", "cuda:-1", "cuda:+1", "cuda:1.0", "cuda0",
        "cuda:1 ", " cuda", "cpu:0", "xpu:0", "cuda:1234567"})
    EXPECT_FALSE(isValidDevice(bad)) << bad;
  EXPECT_EQ(normalizeDevice("cuda"), "cuda:0");
  EXPECT_EQ(normalizeDevice("cuda:0"), "cuda:0");
  EXPECT_EQ(normalizeDevice("cuda:3"), "cuda:3");
  EXPECT_EQ(normalizeDevice("cuda:007"), "cuda:7");
  EXPECT_EQ(normalizeDevice("cpu"), "cpu");
  EXPECT_EQ(normalizeDevice("bogus"), "bogus");
}

/// The op a module of the class that `r` matches would have before
/// injection, guessed from the replace class: every upstream rule must
/// resolve against it.
std::string currentOpFor(const Rule &r) {
  std::string_view cls = r.replaceClass;
  auto has = [&](std::string_view s) {
    return cls.find(s) != std::string_view::npos;
  };
  if (has("KTransformersLinear"))
    return "kt.linear";
  if (has("KTransformersExperts"))
    return "kt.experts";
  if (has(".RoPE."))
    return "kt.rotary";
  if (has(".gate."))
    return "kt.moe_gate";
  if (has(".layernorm."))
    return "kt.rms_norm";
  return "kt.module";
}

TEST(RulesTargets, EveryUpstreamRuleResolves) {
  size_t count = 0;
  for (const auto &file : upstreamRuleFiles()) {
    RuleSet set = parseUpstream(file.filename().string());
    for (const Rule &r : set.rules()) {
      auto result = resolveTarget(r, currentOpFor(r));
      EXPECT_TRUE(std::holds_alternative<Target>(result))
          << file.filename() << " rule " << r.index << ": "
          << std::get<std::string>(result);
      ++count;
    }
  }
  EXPECT_EQ(count, 102u);

  // Spot checks across the files.
  RuleSet v2 = parseUpstream("DeepSeek-V2-Lite-Chat.yaml");
  EXPECT_EQ(resolved(v2.rules()[1], "kt.linear"),
            "kt.marlin_linear|KLinearMarlin");
  EXPECT_EQ(resolved(v2.rules()[4], "kt.experts"),
            "kt.cpu_experts|KExpertsCPU");
  EXPECT_EQ(resolved(v2.rules()[5], "kt.module"),
            "kt.mla|KDeepseekV2Attention");
  RuleSet fp8 = parseUpstream("DeepSeek-V3-Chat-fp8-linear-ggml-experts.yaml");
  EXPECT_EQ(resolved(fp8.rules()[1], "kt.linear"), "kt.fp8_linear|KLinearFP8");
  RuleSet qwen = parseUpstream("Qwen3Moe-serve-amx.yaml");
  EXPECT_EQ(resolved(qwen.rules()[1], "kt.linear"),
            "kt.marlin_linear|VLinearMarlin");
  EXPECT_EQ(resolved(qwen.rules()[4], "kt.experts"),
            "kt.cpu_experts|KExpertsCPU");
  EXPECT_EQ(qwen.rules()[4].kwargs["backend"], "AMXBF16");
}

} // namespace
