//===- RulesMatchTest.cpp - name (re.search) and class (isinstance) -------===//

#include "RulesTestUtil.h"

using namespace kt::rules;
using namespace kt::rules::test;

namespace {

/// A one-rule set matching `name` (a YAML double-quoted string body).
RuleSet nameRule(const std::string &quotedName) {
  return parseOk("- match:\n    name: \"" + quotedName +
                 "\"\n  replace:\n    class: default\n");
}

bool nameMatches(const RuleSet &set, std::string_view name) {
  return !set.rules().empty() && set.matches(set.rules()[0], name, "Module");
}

TEST(RulesMatch, NegativeLookahead) {
  RuleSet set =
      nameRule("^model\\\\.layers\\\\.(?!.*self_attn\\\\.kv_b_proj).*$");
  ASSERT_EQ(set.rules().size(), 1u);
  EXPECT_EQ(*set.rules()[0].namePattern,
            "^model\\.layers\\.(?!.*self_attn\\.kv_b_proj).*$");
  EXPECT_TRUE(nameMatches(set, "model.layers.0.mlp.gate_proj"));
  EXPECT_TRUE(nameMatches(set, "model.layers.12.self_attn.q_proj"));
  EXPECT_FALSE(nameMatches(set, "model.layers.0.self_attn.kv_b_proj"));
  EXPECT_FALSE(nameMatches(set, "model.layers.61.self_attn.kv_b_proj"));
  EXPECT_FALSE(nameMatches(set, "lm_head"));
}

TEST(RulesMatch, SearchIsUnanchored) {
  RuleSet set = nameRule("mlp");
  EXPECT_TRUE(nameMatches(set, "model.layers.0.mlp.gate"));
  EXPECT_TRUE(nameMatches(set, "mlp"));
  EXPECT_FALSE(nameMatches(set, "model.layers.0.self_attn"));

  // Upstream's "^model.embed_tokens" relies on '.' matching any character
  // and on the missing '$'.
  RuleSet embed = nameRule("^model.embed_tokens");
  EXPECT_TRUE(nameMatches(embed, "model.embed_tokens"));
  EXPECT_TRUE(nameMatches(embed, "model_embed_tokens_extra"));
  EXPECT_FALSE(nameMatches(embed, "xmodel.embed_tokens"));
}

TEST(RulesMatch, AnchorsAreRespected) {
  RuleSet set = nameRule("^lm_head$");
  EXPECT_TRUE(nameMatches(set, "lm_head"));
  EXPECT_FALSE(nameMatches(set, "model.lm_head"));
  EXPECT_FALSE(nameMatches(set, "lm_head.weight"));

  RuleSet tail = nameRule("\\\\.mlp$");
  EXPECT_TRUE(nameMatches(tail, "model.layers.3.mlp"));
  EXPECT_FALSE(nameMatches(tail, "model.layers.3.mlp.experts"));
}

TEST(RulesMatch, FirstMatchWins) {
  RuleSet set = parseOk(R"(- match:
    name: "^model\\.layers\\.0\\."
  replace:
    class: default
    kwargs: {generate_device: "cuda:0"}
- match:
    name: "^model\\.layers\\."
  replace:
    class: default
    kwargs: {generate_device: "cuda:1"}
- match:
    name: "gate"
  replace:
    class: default
)");
  ASSERT_EQ(set.rules().size(), 3u);
  EXPECT_EQ(set.firstMatch("model.layers.0.mlp.gate", "Linear"), 0u);
  EXPECT_EQ(set.firstMatch("model.layers.1.mlp.gate", "Linear"), 1u);
  EXPECT_EQ(set.firstMatch("model.gate", "Linear"), 2u);
  EXPECT_EQ(set.firstMatch("lm_head", "Linear"), std::nullopt);
}

TEST(RulesMatch, NameAndClassMustBothHold) {
  RuleSet set = parseOk(R"(- match:
    name: "^model\\.layers\\."
    class: torch.nn.Linear
  replace:
    class: default
)");
  ASSERT_EQ(set.rules().size(), 1u);
  const Rule &r = set.rules()[0];
  EXPECT_TRUE(set.matches(r, "model.layers.0.mlp.up_proj", "torch.nn.Linear"));
  EXPECT_TRUE(set.matches(r, "model.layers.0.mlp.up_proj", "Linear"));
  EXPECT_FALSE(set.matches(r, "model.layers.0.mlp", "torch.nn.Module"));
  EXPECT_FALSE(
      set.matches(r, "model.layers.0.mlp",
                  "ktransformers.models.modeling_deepseek.DeepseekV2MoE"));
  EXPECT_FALSE(set.matches(r, "lm_head", "torch.nn.Linear"));
}

TEST(RulesMatch, ClassMatchesSubclasses) {
  RuleSet set = parseOk(R"(- match:
    class: ktransformers.models.modeling_deepseek.DeepseekV2RotaryEmbedding
  replace:
    class: ktransformers.operators.RoPE.YarnRotaryEmbedding
- match:
    class: torch.nn.Module
  replace:
    class: default
)");
  ASSERT_EQ(set.rules().size(), 2u);
  const Rule &rotary = set.rules()[0];
  const Rule &any = set.rules()[1];
  std::string yarn =
      "ktransformers.models.modeling_deepseek.DeepseekV2YarnRotaryEmbedding";
  EXPECT_TRUE(set.matches(rotary, "model.layers.0.self_attn.rotary_emb", yarn));
  EXPECT_TRUE(set.matches(rotary, "x", "DeepseekV2YarnRotaryEmbedding"));
  EXPECT_TRUE(set.matches(rotary, "x", "DeepseekV2RotaryEmbedding"));
  EXPECT_FALSE(set.matches(rotary, "x", "DeepseekV3YarnRotaryEmbedding"));
  EXPECT_FALSE(set.matches(rotary, "x", "torch.nn.Linear"));
  EXPECT_TRUE(set.matches(any, "x", yarn));
  EXPECT_TRUE(set.matches(any, "x", "SomethingNotInTheRegistry"));
  EXPECT_EQ(set.firstMatch("model.layers.0.self_attn.rotary_emb", yarn), 0u);
  EXPECT_EQ(set.firstMatch("model.layers.0.self_attn", "DeepseekV2Attention"),
            1u);
}

TEST(RulesMatch, IsInstance) {
  EXPECT_TRUE(isInstance("DeepseekV2YarnRotaryEmbedding",
                         "ktransformers.models.modeling_deepseek."
                         "DeepseekV2RotaryEmbedding"));
  EXPECT_TRUE(isInstance("DeepseekV2YarnRotaryEmbedding", "torch.nn.Module"));
  EXPECT_FALSE(
      isInstance("DeepseekV2RotaryEmbedding", "DeepseekV2YarnRotaryEmbedding"));
  EXPECT_TRUE(isInstance("DeepseekV3DynamicNTKScalingRotaryEmbedding",
                         "DeepseekV3RotaryEmbedding"));
  EXPECT_TRUE(isInstance("DeepseekV2FlashAttention2", "DeepseekV2Attention"));
  EXPECT_FALSE(isInstance("DeepseekV2Attention", "DeepseekV3Attention"));
  EXPECT_TRUE(isInstance("torch.nn.Linear", "Linear"));
  EXPECT_FALSE(isInstance("torch.nn.Linear", "Embedding"));
  // Same leaf, different module path: upstream's isinstance would compare
  // the objects; kt compares leaves.
  EXPECT_TRUE(isInstance("ktransformers.models.modeling_deepseek.MoEGate",
                         "ktransformers.models.modeling_deepseek_v3.MoEGate"));
  // Unknown classes are instances of themselves and of Module only.
  EXPECT_TRUE(isInstance("a.b.MyBlock", "MyBlock"));
  EXPECT_TRUE(isInstance("a.b.MyBlock", "torch.nn.Module"));
  EXPECT_FALSE(isInstance("a.b.MyBlock", "Linear"));
  EXPECT_FALSE(isInstance("", "Module"));
}

TEST(RulesMatch, Qwen3MoeRotaryIsNotAQwen2MoeRotary) {
  // Upstream's modeling_qwen3_moe.py declares Qwen3MoeRotaryEmbedding as a
  // plain nn.Module; its attention layers instantiate Qwen2MoeRotaryEmbedding
  // directly, and those are what Qwen3Moe-serve-amx.yaml's rule catches.
  EXPECT_FALSE(
      isInstance("Qwen3MoeRotaryEmbedding", "Qwen2MoeRotaryEmbedding"));
  RuleSet set = parseUpstream("Qwen3Moe-serve-amx.yaml");
  ASSERT_FALSE(set.rules().empty());
  EXPECT_EQ(set.firstMatch("model.layers.0.self_attn.rotary_emb",
                           "ktransformers.models.modeling_qwen2_moe."
                           "Qwen2MoeRotaryEmbedding"),
            0u);
  EXPECT_EQ(set.firstMatch("model.rotary_emb", "Qwen3MoeRotaryEmbedding"),
            std::nullopt);
}

TEST(RulesMatch, KnownClasses) {
  for (const char *cls :
       {"torch.nn.Module", "torch.nn.Linear", "torch.nn.Embedding",
        "torch.nn.ModuleList", "DeepseekV2MoE", "DeepseekV3MoE", "MoEGate",
        "Qwen2MoeSparseMoeBlock", "Qwen3MoeSparseMoeBlock", "Qwen3MoeExperts",
        "MixtralBlockSparseTop2MLP", "MixtralExperts", "LlamaRMSNorm",
        "Qwen2MLP", "Qwen3RotaryEmbedding",
        "ktransformers.models.modeling_qwen3_moe.Qwen3MoeRMSNorm"})
    EXPECT_TRUE(isKnownClass(cls)) << cls;
  EXPECT_FALSE(isKnownClass("DeepseekV9MoE"));
  EXPECT_FALSE(isKnownClass(""));
  EXPECT_EQ(parentClass("DeepseekV3YarnRotaryEmbedding"),
            "DeepseekV3RotaryEmbedding");
  EXPECT_EQ(parentClass("torch.nn.Module"), "");
  EXPECT_EQ(parentClass("Nope"), std::nullopt);
  EXPECT_EQ(classLeaf("a.b.C"), "C");
  EXPECT_EQ(classLeaf("C"), "C");
}

TEST(RulesMatch, RegexSearchHelper) {
  EXPECT_EQ(regexSearch("b+", "abbbc"),
            (std::variant<bool, std::string>(true)));
  EXPECT_EQ(regexSearch("^b", "abc"), (std::variant<bool, std::string>(false)));
  EXPECT_EQ(regexSearch("x", ""), (std::variant<bool, std::string>(false)));
  EXPECT_EQ(regexSearch("", ""), (std::variant<bool, std::string>(true)));
  auto bad = regexSearch("a(", "a");
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_NE(std::get<std::string>(bad).find("offset 2"), std::string::npos);
}

TEST(RulesMatch, HandBuiltRuleCompilesOnTheFly) {
  Rule r;
  r.namePattern = "experts$";
  r.matchClass = "torch.nn.Module";
  RuleSet empty;
  EXPECT_TRUE(empty.matches(r, "model.layers.1.mlp.experts", "ModuleList"));
  EXPECT_FALSE(empty.matches(r, "model.layers.1.mlp.experts.0", "Module"));
  r.namePattern = "(";
  EXPECT_FALSE(empty.matches(r, "(", "Module"));
  EXPECT_EQ(empty.firstMatch("anything", "Module"), std::nullopt);
}

TEST(RulesMatch, UpstreamDeepSeekV3Placement) {
  RuleSet set = parseUpstream("DeepSeek-V3-Chat.yaml");
  ASSERT_EQ(set.rules().size(), 9u);
  const std::string v3 = "ktransformers.models.modeling_deepseek_v3.";
  EXPECT_EQ(set.firstMatch("model.layers.3.self_attn.rotary_emb",
                           v3 + "DeepseekV3YarnRotaryEmbedding"),
            0u);
  EXPECT_EQ(set.firstMatch("lm_head", "torch.nn.Linear"), 1u);
  EXPECT_EQ(
      set.firstMatch("model.layers.3.self_attn.q_a_proj", "torch.nn.Linear"),
      2u);
  // kv_b_proj is excluded by the lookahead and nothing else takes it.
  EXPECT_EQ(
      set.firstMatch("model.layers.3.self_attn.kv_b_proj", "torch.nn.Linear"),
      std::nullopt);
  EXPECT_EQ(set.firstMatch("model.layers.3.mlp", v3 + "DeepseekV3MoE"), 3u);
  // A dense layer's MLP is not a DeepseekV3MoE.
  EXPECT_EQ(set.firstMatch("model.layers.0.mlp", v3 + "DeepseekV3MLP"),
            std::nullopt);
  EXPECT_EQ(set.firstMatch("model.layers.3.mlp.gate", v3 + "MoEGate"), 4u);
  EXPECT_EQ(set.firstMatch("model.layers.3.mlp.experts", "torch.nn.ModuleList"),
            5u);
  EXPECT_EQ(
      set.firstMatch("model.layers.3.self_attn", v3 + "DeepseekV3Attention"),
      6u);
  EXPECT_EQ(set.firstMatch("model", v3 + "DeepseekV3Model"), 7u);
  EXPECT_EQ(set.firstMatch("model.embed_tokens", "torch.nn.Embedding"), 8u);
  EXPECT_EQ(set.firstMatch("model.norm", v3 + "DeepseekV3RMSNorm"),
            std::nullopt);
}

TEST(RulesMatch, UpstreamMultiGpuSplitsLayers) {
  RuleSet set = parseUpstream("DeepSeek-V3-Chat-multi-gpu.yaml");
  ASSERT_EQ(set.rules().size(), 17u);
  EXPECT_EQ(set.firstMatch("model.layers.29.mlp.down_proj", "Linear"), 3u);
  EXPECT_EQ(set.firstMatch("model.layers.30.mlp.down_proj", "Linear"), 4u);
  // Layers 30-69 fall through to the final "default" rule for cuda:1.
  EXPECT_EQ(set.firstMatch("model.layers.30.self_attn.kv_b_proj", "Linear"),
            16u);
  EXPECT_EQ(set.firstMatch("model.layers.70.self_attn.kv_b_proj", "Linear"),
            std::nullopt);
  EXPECT_EQ(set.firstMatch("model.layers.5.self_attn.kv_b_proj", "Linear"),
            14u); // the catch-all "default" for layers 0-29
  EXPECT_EQ(set.firstMatch("model.norm", "DeepseekV3RMSNorm"), 16u);
}

TEST(RulesMatch, UpstreamQwen3MoeExcludesSharedExpertGate) {
  RuleSet set = parseUpstream("Qwen3Moe-serve-amx.yaml");
  EXPECT_EQ(set.firstMatch("model.layers.0.mlp.gate", "torch.nn.Linear"), 2u);
  EXPECT_EQ(set.firstMatch("model.layers.0.mlp.shared_expert_gate",
                           "torch.nn.Linear"),
            std::nullopt);
  EXPECT_EQ(set.firstMatch("model.layers.0.mlp",
                           "ktransformers.models.modeling_qwen3_moe."
                           "Qwen3MoeSparseMoeBlock"),
            3u);
  EXPECT_EQ(set.firstMatch("model.norm", "Qwen3MoeRMSNorm"), 8u);
}

} // namespace
