//===- ModelConfigTest.cpp - config.json parsing --------------------------===//

#include "kt/Runtime/ModelConfig.h"

#include <gtest/gtest.h>

using nlohmann::json;
using namespace kt;

namespace {

/// Parses `text`, expecting success.
ModelConfig parseOk(const std::string &text) {
  Result<ModelConfig> r = parseModelConfig(json::parse(text), "config.json");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r.value() : ModelConfig();
}

/// Parses `config`, expecting an error; returns its message.
std::string parseError(const json &config) {
  Result<ModelConfig> r = parseModelConfig(config, "config.json");
  EXPECT_FALSE(r.ok()) << "expected an error";
  return r.ok() ? std::string() : r.error().message;
}

// DeepSeek-V3's config.json as published on the hub (abridged: auto_map and
// training-only fields left out).
const char *kDeepseekV3Hub = R"({
  "architectures": ["DeepseekV3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 0,
  "eos_token_id": 1,
  "ep_size": 1,
  "first_k_dense_replace": 3,
  "hidden_act": "silu",
  "hidden_size": 7168,
  "initializer_range": 0.02,
  "intermediate_size": 18432,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v3",
  "moe_intermediate_size": 2048,
  "moe_layer_freq": 1,
  "n_group": 8,
  "n_routed_experts": 256,
  "n_shared_experts": 1,
  "norm_topk_prob": true,
  "num_attention_heads": 128,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 61,
  "num_key_value_heads": 128,
  "num_nextn_predict_layers": 1,
  "q_lora_rank": 1536,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
                          "quant_method": "fp8", "weight_block_size": [128, 128]},
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40,
                   "mscale": 1.0, "mscale_all_dim": 1.0,
                   "original_max_position_embeddings": 4096, "type": "yarn"},
  "rope_theta": 10000,
  "routed_scaling_factor": 2.5,
  "scoring_func": "sigmoid",
  "tie_word_embeddings": false,
  "topk_group": 4,
  "topk_method": "noaux_tc",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.33.1",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 129280
})";

// DeepSeek-V2-Lite (q_lora_rank null, softmax greedy routing).
const char *kDeepseekV2Lite = R"({
  "architectures": ["DeepseekV2ForCausalLM"],
  "aux_loss_alpha": 0.001,
  "bos_token_id": 100000,
  "eos_token_id": 100001,
  "first_k_dense_replace": 1,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "intermediate_size": 10944,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v2",
  "moe_intermediate_size": 1408,
  "moe_layer_freq": 1,
  "n_group": 1,
  "n_routed_experts": 64,
  "n_shared_experts": 2,
  "norm_topk_prob": false,
  "num_attention_heads": 16,
  "num_experts_per_tok": 6,
  "num_hidden_layers": 27,
  "num_key_value_heads": 16,
  "q_lora_rank": null,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                   "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096,
                   "type": "yarn"},
  "rope_theta": 10000,
  "routed_scaling_factor": 1.0,
  "scoring_func": "softmax",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 1,
  "topk_method": "greedy",
  "torch_dtype": "bfloat16",
  "v_head_dim": 128,
  "vocab_size": 102400
})";

const char *kQwen2Moe = R"({
  "architectures": ["Qwen2MoeForCausalLM"],
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "intermediate_size": 5632,
  "max_position_embeddings": 8192,
  "model_type": "qwen2_moe",
  "moe_intermediate_size": 1408,
  "num_attention_heads": 16,
  "num_experts": 60,
  "num_experts_per_tok": 4,
  "num_hidden_layers": 24,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "shared_expert_intermediate_size": 5632,
  "sliding_window": 32768,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_sliding_window": false,
  "vocab_size": 151936
})";

const char *kMixtral = R"({
  "architectures": ["MixtralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mixtral",
  "num_attention_heads": 32,
  "num_experts_per_tok": 2,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "num_local_experts": 8,
  "rms_norm_eps": 1e-05,
  "router_aux_loss_coef": 0.02,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "vocab_size": 32000
})";

} // namespace

TEST(ModelConfigTest, DeepseekV3HubStyle) {
  ModelConfig c = parseOk(kDeepseekV3Hub);
  EXPECT_EQ(c.family, ModelFamily::DeepseekV3);
  EXPECT_EQ(c.architecture, "DeepseekV3ForCausalLM");
  EXPECT_EQ(c.modelType, "deepseek_v3");
  EXPECT_EQ(c.torchDtype, "bfloat16");
  EXPECT_EQ(c.vocabSize, 129280);
  EXPECT_EQ(c.hiddenSize, 7168);
  EXPECT_EQ(c.intermediateSize, 18432);
  EXPECT_EQ(c.numLayers, 61);
  EXPECT_EQ(c.numHeads, 128);
  EXPECT_EQ(c.numKvHeads, 128);
  EXPECT_EQ(c.headDim, 192); // qk_nope + qk_rope
  EXPECT_EQ(c.maxPositionEmbeddings, 163840);
  EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-6);
  EXPECT_FALSE(c.tieWordEmbeddings);
  EXPECT_FALSE(c.attentionBias);

  EXPECT_EQ(c.rope.type, "yarn");
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000);
  EXPECT_DOUBLE_EQ(c.rope.factor, 40);
  EXPECT_EQ(c.rope.originalMaxPosition, 4096);
  EXPECT_DOUBLE_EQ(c.rope.betaFast, 32);
  EXPECT_DOUBLE_EQ(c.rope.betaSlow, 1);
  EXPECT_DOUBLE_EQ(c.rope.mscale, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.mscaleAllDim, 1.0);
  EXPECT_TRUE(c.rope.interleaved);

  EXPECT_EQ(c.numExperts, 256);
  EXPECT_EQ(c.numExpertsPerTok, 8);
  EXPECT_EQ(c.moeIntermediateSize, 2048);
  EXPECT_EQ(c.numSharedExperts, 1);
  EXPECT_EQ(c.sharedExpertIntermediateSize, 2048);
  EXPECT_EQ(c.firstKDenseReplace, 3);
  EXPECT_EQ(c.moeLayerFreq, 1);
  EXPECT_TRUE(c.normTopkProb);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 2.5);
  EXPECT_EQ(c.scoringFunc, "sigmoid");
  EXPECT_EQ(c.topkMethod, "noaux_tc");
  EXPECT_EQ(c.nGroup, 8);
  EXPECT_EQ(c.topkGroup, 4);

  EXPECT_EQ(c.qLoraRank, 1536);
  EXPECT_EQ(c.kvLoraRank, 512);
  EXPECT_EQ(c.qkNopeHeadDim, 128);
  EXPECT_EQ(c.qkRopeHeadDim, 64);
  EXPECT_EQ(c.vHeadDim, 128);
  EXPECT_EQ(c.numNextnPredictLayers, 1);
  EXPECT_TRUE(c.isMla());

  EXPECT_EQ(c.quantMethod, "fp8");
  EXPECT_EQ(c.weightBlockSize, (std::vector<int64_t>{128, 128}));
  EXPECT_EQ(c.bosTokenId, 0);
  EXPECT_EQ(c.eosTokenId, 1);
  EXPECT_EQ(c.eosTokenIds, std::vector<int64_t>{1});

  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_FALSE(c.isMoeLayer(2));
  EXPECT_TRUE(c.isMoeLayer(3));
  EXPECT_TRUE(c.isMoeLayer(60));
  EXPECT_FALSE(c.isMoeLayer(61)); // the MTP layer is not a decoder layer
}

TEST(ModelConfigTest, KimiK2UsesDeepseekV3) {
  json j = json::parse(kDeepseekV3Hub);
  j["model_type"] = "kimi_k2";
  j["n_routed_experts"] = 384;
  j["n_group"] = 1;
  j["topk_group"] = 1;
  j["num_attention_heads"] = 64;
  j["num_key_value_heads"] = 64;
  j["eos_token_id"] = 163586;
  Result<ModelConfig> r = parseModelConfig(j, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->family, ModelFamily::DeepseekV3);
  EXPECT_EQ(r->modelType, "kimi_k2");
  EXPECT_EQ(r->numExperts, 384);
  EXPECT_EQ(r->nGroup, 1);
  EXPECT_TRUE(r->rope.interleaved);
  EXPECT_EQ(r->eosTokenId, 163586);
}

TEST(ModelConfigTest, Transformers5Style) {
  // transformers 5 writes "dtype" and "rope_parameters" (holding rope_theta),
  // and "rope_interleave" for DeepSeek.
  json j = json::parse(kDeepseekV3Hub);
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j.erase("torch_dtype");
  j["dtype"] = "bfloat16";
  j["head_dim"] = 64; // transformers-5 stores qk_rope_head_dim here
  j["rope_interleave"] = false;
  j["rope_parameters"] = json::parse(R"({"rope_type": "yarn", "rope_theta": 50000.0,
      "factor": 40.0, "original_max_position_embeddings": 4096, "beta_fast": 32.0,
      "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 0.8})");
  Result<ModelConfig> r = parseModelConfig(j, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->torchDtype, "bfloat16");
  EXPECT_EQ(r->rope.type, "yarn");
  EXPECT_DOUBLE_EQ(r->rope.theta, 50000);
  EXPECT_DOUBLE_EQ(r->rope.factor, 40);
  EXPECT_EQ(r->rope.originalMaxPosition, 4096);
  EXPECT_DOUBLE_EQ(r->rope.mscaleAllDim, 0.8);
  EXPECT_FALSE(r->rope.interleaved);
  EXPECT_EQ(r->headDim, 192);

  // A dense model with default rope, theta and partial factor inside
  // rope_parameters.
  ModelConfig q = parseOk(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "dtype": "float32",
    "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 32, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0,
                        "partial_rotary_factor": 0.5}})");
  EXPECT_EQ(q.family, ModelFamily::Qwen3);
  EXPECT_EQ(q.torchDtype, "float32");
  EXPECT_EQ(q.rope.type, "default");
  EXPECT_DOUBLE_EQ(q.rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(q.rope.partialRotaryFactor, 0.5);
  EXPECT_FALSE(q.rope.interleaved);
  EXPECT_EQ(q.headDim, 32);
  EXPECT_EQ(q.numKvHeads, 2);
  EXPECT_FALSE(q.attentionBias);
  EXPECT_FALSE(q.isMoe());
  EXPECT_FALSE(q.isMoeLayer(0));
}

TEST(ModelConfigTest, RopeParametersPerAttentionType) {
  ModelConfig c = parseOk(R"({
    "architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8,
    "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 2.0,
                                           "rope_theta": 500000.0}}})");
  EXPECT_EQ(c.rope.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope.factor, 2);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000);
}

TEST(ModelConfigTest, UnsupportedArchitecture) {
  std::string msg = parseError(json::parse(R"({"architectures": ["GPT2LMHeadModel"]})"));
  EXPECT_EQ(msg.rfind("config.json: unsupported architecture 'GPT2LMHeadModel' "
                      "(supported: ",
                      0),
            0u)
      << msg;
  EXPECT_NE(msg.find("DeepseekV3ForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("MistralForCausalLM"), std::string::npos) << msg;
}

TEST(ModelConfigTest, MissingArchitectures) {
  EXPECT_EQ(parseError(json::parse(R"({"hidden_size": 8})")),
            "config.json: missing 'architectures'");
  EXPECT_NE(parseError(json::parse(R"({"architectures": []})"))
                .find("'architectures' must be a non-empty list of strings"),
            std::string::npos);
  EXPECT_EQ(parseError(json::parse("[1]")),
            "config.json: not a JSON object (got array)");
}

TEST(ModelConfigTest, MissingHiddenSize) {
  json j = json::parse(kMixtral);
  j.erase("hidden_size");
  EXPECT_EQ(parseError(j), "config.json: missing 'hidden_size'");
}

TEST(ModelConfigTest, WrongFieldTypesNamed) {
  json j = json::parse(kMixtral);
  j["hidden_size"] = "4096";
  EXPECT_EQ(parseError(j), "config.json: 'hidden_size' must be an integer (got string)");

  j = json::parse(kMixtral);
  j["num_hidden_layers"] = 32.5;
  EXPECT_EQ(parseError(j),
            "config.json: 'num_hidden_layers' must be an integer (got number)");

  j = json::parse(kMixtral);
  j["rms_norm_eps"] = "small";
  EXPECT_EQ(parseError(j), "config.json: 'rms_norm_eps' must be a number (got string)");

  j = json::parse(kMixtral);
  j["tie_word_embeddings"] = 0;
  EXPECT_EQ(parseError(j),
            "config.json: 'tie_word_embeddings' must be a boolean (got number)");

  j = json::parse(kDeepseekV3Hub);
  j["rope_scaling"]["factor"] = "40";
  EXPECT_EQ(parseError(j),
            "config.json: 'rope_scaling.factor' must be a number (got string)");

  j = json::parse(kDeepseekV3Hub);
  j.erase("kv_lora_rank");
  EXPECT_EQ(parseError(j), "config.json: missing 'kv_lora_rank'");

  j = json::parse(kMixtral);
  j["num_local_experts"] = nullptr;
  EXPECT_EQ(parseError(j), "config.json: missing 'num_local_experts'");
}

TEST(ModelConfigTest, InconsistentValuesRejected) {
  json j = json::parse(kMixtral);
  j["num_key_value_heads"] = 5;
  EXPECT_NE(parseError(j).find("must be divisible by num_key_value_heads (5)"),
            std::string::npos);

  j = json::parse(kMixtral);
  j["num_experts_per_tok"] = 9;
  EXPECT_NE(parseError(j).find("'num_experts_per_tok' must be between 1 and "
                               "num_local_experts (8)"),
            std::string::npos);

  j = json::parse(kMixtral);
  j["hidden_size"] = 4097;
  EXPECT_NE(parseError(j).find("is not divisible by 'num_attention_heads'"),
            std::string::npos);

  j = json::parse(kDeepseekV3Hub);
  j["topk_group"] = 9;
  EXPECT_NE(parseError(j).find("'topk_group' must be between 1 and n_group (8)"),
            std::string::npos);

  j = json::parse(kDeepseekV3Hub);
  j["scoring_func"] = "relu";
  EXPECT_NE(parseError(j).find("unsupported 'scoring_func' 'relu'"), std::string::npos);

  j = json::parse(kDeepseekV3Hub);
  j["rope_scaling"]["type"] = "longrope";
  EXPECT_NE(parseError(j).find("unsupported rope type 'longrope'"), std::string::npos);

  j = json::parse(kDeepseekV3Hub);
  j["rope_scaling"].erase("factor");
  EXPECT_EQ(parseError(j),
            "config.json: missing 'rope_scaling.factor' for rope type 'yarn'");

  j = json::parse(kQwen2Moe);
  j["mlp_only_layers"] = {0, 24};
  EXPECT_NE(parseError(j).find("'mlp_only_layers' holds layer 24, outside [0, 24)"),
            std::string::npos);
}

TEST(ModelConfigTest, QLoraRankNullMeansPlainQProj) {
  ModelConfig c = parseOk(kDeepseekV2Lite);
  EXPECT_EQ(c.family, ModelFamily::DeepseekV2);
  EXPECT_EQ(c.qLoraRank, 0);
  EXPECT_EQ(c.kvLoraRank, 512);
  EXPECT_EQ(c.headDim, 192);
  EXPECT_EQ(c.scoringFunc, "softmax");
  EXPECT_EQ(c.topkMethod, "greedy");
  EXPECT_FALSE(c.normTopkProb);
  EXPECT_EQ(c.numSharedExperts, 2);
  EXPECT_EQ(c.sharedExpertIntermediateSize, 2 * 1408);
  EXPECT_DOUBLE_EQ(c.rope.mscale, 0.707);
  EXPECT_TRUE(c.rope.interleaved);
  EXPECT_FALSE(c.isMoeLayer(0));
  EXPECT_TRUE(c.isMoeLayer(1));
  EXPECT_EQ(c.numNextnPredictLayers, 0);
  EXPECT_TRUE(c.quantMethod.empty());

  // Absent is the same as null; DeepSeek-V2 defaults apply when the
  // routing fields are missing.
  json j = json::parse(kDeepseekV2Lite);
  j.erase("q_lora_rank");
  j.erase("scoring_func");
  j.erase("topk_method");
  j.erase("n_group");
  j.erase("topk_group");
  j["q_lora_rank"] = nullptr;
  Result<ModelConfig> r = parseModelConfig(j, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->qLoraRank, 0);
  EXPECT_EQ(r->scoringFunc, "softmax");
  EXPECT_EQ(r->topkMethod, "greedy");
  EXPECT_EQ(r->nGroup, 1);
  EXPECT_EQ(r->topkGroup, 1);

  // configuration_deepseek.py spells its default "gready".
  j["topk_method"] = "gready";
  r = parseModelConfig(j, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->topkMethod, "greedy");
}

TEST(ModelConfigTest, DenseDeepseek) {
  json j = json::parse(kDeepseekV2Lite);
  j["n_routed_experts"] = nullptr;
  j.erase("num_experts_per_tok");
  Result<ModelConfig> r = parseModelConfig(j, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->isMoe());
  EXPECT_FALSE(r->isMoeLayer(5));
}

TEST(ModelConfigTest, Qwen2MoeDefaults) {
  ModelConfig c = parseOk(kQwen2Moe);
  EXPECT_EQ(c.family, ModelFamily::Qwen2Moe);
  EXPECT_EQ(c.numKvHeads, 16); // defaults to num_attention_heads
  EXPECT_EQ(c.headDim, 128);   // hidden / heads
  EXPECT_TRUE(c.attentionBias); // Qwen2 q/k/v have biases
  EXPECT_EQ(c.numExperts, 60);
  EXPECT_EQ(c.numExpertsPerTok, 4);
  EXPECT_EQ(c.moeIntermediateSize, 1408);
  EXPECT_EQ(c.sharedExpertIntermediateSize, 5632);
  EXPECT_EQ(c.numSharedExperts, 1);
  EXPECT_EQ(c.decoderSparseStep, 1);
  EXPECT_TRUE(c.mlpOnlyLayers.empty());
  EXPECT_FALSE(c.normTopkProb);
  EXPECT_EQ(c.scoringFunc, "softmax");
  EXPECT_EQ(c.slidingWindow, 0); // use_sliding_window false
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_FALSE(c.rope.interleaved);
  EXPECT_EQ(c.eosTokenId, 151643);
  for (int64_t l = 0; l < 24; ++l)
    EXPECT_TRUE(c.isMoeLayer(l)) << l;

  // Explicit values win; qkv_bias (transformers 5) can turn the bias off.
  json j = json::parse(kQwen2Moe);
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  j["norm_topk_prob"] = true;
  j["qkv_bias"] = false;
  Result<ModelConfig> r = parseModelConfig(j, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->normTopkProb);
  EXPECT_FALSE(r->attentionBias);
  EXPECT_FALSE(r->isMoeLayer(0));
  EXPECT_TRUE(r->isMoeLayer(1));
  EXPECT_FALSE(r->isMoeLayer(3)); // mlp_only_layers
  EXPECT_TRUE(r->isMoeLayer(5));

  j = json::parse(kQwen2Moe);
  j.erase("shared_expert_intermediate_size");
  EXPECT_EQ(parseError(j), "config.json: missing 'shared_expert_intermediate_size'");
}

TEST(ModelConfigTest, Qwen3Moe) {
  ModelConfig c = parseOk(R"({
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
    "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
    "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4,
    "head_dim": 128, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "rope_scaling": null, "attention_bias": false,
    "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
    "norm_topk_prob": true, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "eos_token_id": [151645, 151643], "bos_token_id": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16"})");
  EXPECT_EQ(c.family, ModelFamily::Qwen3Moe);
  EXPECT_EQ(c.headDim, 128); // not hidden/heads (64)
  EXPECT_FALSE(c.attentionBias);
  EXPECT_TRUE(c.normTopkProb);
  EXPECT_EQ(c.numSharedExperts, 0);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_EQ(c.eosTokenId, 151645);
  EXPECT_EQ(c.eosTokenIds, (std::vector<int64_t>{151645, 151643}));
  EXPECT_EQ(c.bosTokenId, -1);
  EXPECT_TRUE(c.isMoeLayer(47));

  // Without norm_topk_prob, transformers' Qwen3MoeConfig (4.51 and 5)
  // defaults it to false; released Qwen3-MoE checkpoints all say true.
  json j = json::parse(R"({
    "architectures": ["Qwen3MoeForCausalLM"], "vocab_size": 16, "hidden_size": 8,
    "intermediate_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
    "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 8,
    "decoder_sparse_step": 2, "mlp_only_layers": [3]})");
  Result<ModelConfig> r = parseModelConfig(j, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->normTopkProb);
  EXPECT_FALSE(r->isMoeLayer(0));
  EXPECT_TRUE(r->isMoeLayer(1));
  EXPECT_FALSE(r->isMoeLayer(2));
  EXPECT_FALSE(r->isMoeLayer(3)); // (3+1) % 2 == 0 but listed in mlp_only_layers
}

TEST(ModelConfigTest, Mixtral) {
  ModelConfig c = parseOk(kMixtral);
  EXPECT_EQ(c.family, ModelFamily::Mixtral);
  EXPECT_EQ(c.numExperts, 8);
  EXPECT_EQ(c.numExpertsPerTok, 2);
  EXPECT_EQ(c.moeIntermediateSize, 14336); // intermediate_size
  EXPECT_EQ(c.numSharedExperts, 0);
  EXPECT_TRUE(c.normTopkProb); // Mixtral renormalises its top-2
  EXPECT_EQ(c.numKvHeads, 8);
  EXPECT_EQ(c.headDim, 128);
  EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6); // MixtralConfig's default
  EXPECT_EQ(c.slidingWindow, 0);       // null
  EXPECT_FALSE(c.attentionBias);
  EXPECT_FALSE(c.rope.interleaved);
  EXPECT_EQ(c.bosTokenId, 1);
  EXPECT_EQ(c.eosTokenId, 2);
  EXPECT_TRUE(c.isMoeLayer(0));
  EXPECT_TRUE(c.isMoeLayer(31));
  EXPECT_FALSE(c.isMoeLayer(32));
}

TEST(ModelConfigTest, LlamaWithLlama3Rope) {
  ModelConfig c = parseOk(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
    "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0, "tie_word_embeddings": true, "mlp_bias": false,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]})");
  EXPECT_EQ(c.family, ModelFamily::Llama);
  EXPECT_EQ(c.headDim, 64);
  EXPECT_TRUE(c.tieWordEmbeddings);
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope.factor, 32);
  EXPECT_DOUBLE_EQ(c.rope.lowFreqFactor, 1);
  EXPECT_DOUBLE_EQ(c.rope.highFreqFactor, 4);
  EXPECT_EQ(c.rope.originalMaxPosition, 8192);
  EXPECT_EQ(c.eosTokenIds.size(), 3u);
  EXPECT_FALSE(c.isMoe());
}

TEST(ModelConfigTest, DefaultsForMinimalDenseConfigs) {
  ModelConfig m = parseOk(R"({
    "architectures": ["MistralForCausalLM"], "vocab_size": 32, "hidden_size": 16,
    "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "sliding_window": 4096})");
  EXPECT_EQ(m.family, ModelFamily::Mistral);
  EXPECT_EQ(m.numKvHeads, 4);
  EXPECT_EQ(m.headDim, 4);
  EXPECT_EQ(m.slidingWindow, 4096);
  EXPECT_EQ(m.maxPositionEmbeddings, 131072);
  EXPECT_DOUBLE_EQ(m.rope.theta, 10000);
  EXPECT_EQ(m.rope.originalMaxPosition, 0);
  EXPECT_EQ(m.eosTokenId, -1);
  EXPECT_TRUE(m.eosTokenIds.empty());
  EXPECT_EQ(m.torchDtype, "");

  ModelConfig q = parseOk(R"({
    "architectures": ["Qwen2ForCausalLM"], "vocab_size": 32, "hidden_size": 16,
    "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "use_sliding_window": true, "sliding_window": 128,
    "rope_scaling": {"type": "yarn", "factor": 4.0}})");
  EXPECT_TRUE(q.attentionBias);
  EXPECT_EQ(q.slidingWindow, 128);
  EXPECT_EQ(q.rope.type, "yarn");
  // Not given: transformers falls back to max_position_embeddings.
  EXPECT_EQ(q.rope.originalMaxPosition, 32768);
}

// transformers 5 writes Qwen-MoE expert counts as num_local_experts.
TEST(ModelConfigTest, QwenMoeNumLocalExperts) {
  nlohmann::json c = {{"architectures", {"Qwen3MoeForCausalLM"}},
                      {"vocab_size", 100},
                      {"hidden_size", 64},
                      {"intermediate_size", 128},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_local_experts", 8},
                      {"num_experts_per_tok", 2},
                      {"moe_intermediate_size", 24}};
  auto r = kt::parseModelConfig(c, "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->numExperts, 8);
  c.erase("num_local_experts");
  auto missing = kt::parseModelConfig(c, "config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("num_experts"), std::string::npos);
}
