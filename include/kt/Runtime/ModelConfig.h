//===- ModelConfig.h - typed view of a Hugging Face config.json -*- C++ -*-===//
//
// parseModelConfig reads the fields kt's importers and runtime need from a
// config.json, for the supported architectures, accepting both the hub's
// style (rope_theta + rope_scaling, torch_dtype) and the transformers-5 style
// (rope_parameters, dtype). Errors are returned (see Result in
// Safetensors.h), never thrown.
//
// Defaults for absent optional fields follow the reference modeling code
// (transformers' config classes; DeepSeek's own configuration_deepseek.py).
// An optional field given as null counts as absent. A field of the wrong
// JSON type is an error naming the field, e.g.
//   "config.json: 'hidden_size' must be an integer (got string)".
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_MODELCONFIG_H
#define KT_RUNTIME_MODELCONFIG_H

#include "kt/Runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kt {

/// Model families kt supports; one per supported `architectures[0]`.
enum class ModelFamily {
  DeepseekV2, ///< DeepseekV2ForCausalLM
  DeepseekV3, ///< DeepseekV3ForCausalLM (also Kimi-K2)
  Qwen2Moe,   ///< Qwen2MoeForCausalLM
  Qwen3Moe,   ///< Qwen3MoeForCausalLM
  Mixtral,    ///< MixtralForCausalLM
  Llama,      ///< LlamaForCausalLM
  Qwen2,      ///< Qwen2ForCausalLM
  Qwen3,      ///< Qwen3ForCausalLM
  Mistral,    ///< MistralForCausalLM
};

/// Rotary position embedding parameters.
struct RopeConfig {
  std::string type = "default"; ///< default|linear|dynamic|yarn|llama3
  double theta = 10000;
  double factor = 1;
  /// Context length the model was trained with before scaling. When the
  /// config gives none for yarn/dynamic/llama3, max_position_embeddings
  /// (as transformers does); 0 for default/linear without one.
  int64_t originalMaxPosition = 0;
  double betaFast = 32, betaSlow = 1; ///< yarn
  double mscale = 1, mscaleAllDim = 0; ///< yarn (DeepSeek style)
  double attentionFactor = 0;          ///< yarn "attention_factor"; 0 = derive
  /// Rope rotates interleaved pairs (x0,x1),(x2,x3)... instead of the two
  /// halves. DeepSeek V2/V3 (and Kimi-K2) checkpoints do, unless the config
  /// says "rope_interleave": false.
  bool interleaved = false;
  double partialRotaryFactor = 1.0; ///< fraction of head_dim that is rotated
  double lowFreqFactor = 1, highFreqFactor = 4; ///< llama3
};

/// Typed view of config.json.
struct ModelConfig {
  ModelFamily family = ModelFamily::Llama;
  std::string architecture; ///< architectures[0], e.g. "DeepseekV3ForCausalLM"
  std::string modelType;    ///< model_type ("" when absent)
  std::string torchDtype;   ///< torch_dtype or dtype ("bfloat16"...; "" if absent)
  std::string hiddenAct = "silu"; ///< hidden_act

  int64_t vocabSize = 0, hiddenSize = 0, intermediateSize = 0, numLayers = 0,
          numHeads = 0, numKvHeads = 0;
  /// Per-head q/k dimension. head_dim, else hidden/heads. For DeepSeek (MLA)
  /// it is qkNopeHeadDim + qkRopeHeadDim whatever the config says
  /// (transformers-5 writes head_dim = qk_rope_head_dim there).
  int64_t headDim = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-6;
  bool tieWordEmbeddings = false;
  /// q/k/v projections have a bias. Qwen2 family: true unless the config
  /// says otherwise (qkv_bias / attention_bias); others: attention_bias,
  /// default false.
  bool attentionBias = false;
  bool mlpBias = false; ///< Llama's mlp_bias
  /// Sliding-window attention size, 0 = none (Mistral/Mixtral
  /// sliding_window; Qwen only with use_sliding_window).
  int64_t slidingWindow = 0;
  RopeConfig rope;

  // MoE ----------------------------------------------------------------------
  int64_t numExperts = 0, numExpertsPerTok = 0, moeIntermediateSize = 0,
          numSharedExperts = 0, sharedExpertIntermediateSize = 0,
          firstKDenseReplace = 0, moeLayerFreq = 1, decoderSparseStep = 1;
  std::vector<int64_t> mlpOnlyLayers;
  /// Renormalise the top-k routing weights to sum to 1 (Mixtral always does).
  bool normTopkProb = false;
  double routedScalingFactor = 1.0;
  std::string scoringFunc = "softmax"; ///< softmax|sigmoid
  std::string topkMethod = "greedy";   ///< greedy|group_limited_greedy|noaux_tc
  int64_t nGroup = 1, topkGroup = 1;

  // MLA (DeepSeek) -----------------------------------------------------------
  int64_t qLoraRank = 0; ///< 0 = plain q_proj (q_lora_rank null)
  int64_t kvLoraRank = 0, qkNopeHeadDim = 0, qkRopeHeadDim = 0, vHeadDim = 0;
  /// DeepSeek-V3 multi-token-prediction layers stored after the
  /// numLayers decoder layers (model.layers.<numLayers>...): not part of
  /// the causal LM.
  int64_t numNextnPredictLayers = 0;

  // Quantised checkpoints (quantization_config) -----------------------------
  std::string quantMethod;              ///< e.g. "fp8"; "" = none
  std::vector<int64_t> weightBlockSize; ///< e.g. {128, 128} for DeepSeek fp8

  int64_t bosTokenId = -1, eosTokenId = -1; ///< -1 = absent; eos: first one
  std::vector<int64_t> eosTokenIds;         ///< all eos ids

  bool isMoe() const { return numExperts > 0; }
  bool isMla() const {
    return family == ModelFamily::DeepseekV2 || family == ModelFamily::DeepseekV3;
  }
  /// Whether decoder layer `layer` (0-based) has routed experts rather than a
  /// dense MLP, by the family's rule (DeepSeek: first_k_dense_replace and
  /// moe_layer_freq; Qwen-MoE: mlp_only_layers and decoder_sparse_step;
  /// Mixtral: every layer; dense families: none).
  bool isMoeLayer(int64_t layer) const;
};

/// The supported architectures, comma separated (for messages).
std::string supportedArchitectures();

/// Reads `config` (the parsed config.json); `fileName` starts every error
/// message (normally "config.json").
///
/// Required: architectures (non-empty array of strings, first one
/// supported), vocab_size, hidden_size, intermediate_size,
/// num_hidden_layers, num_attention_heads; for MoE families the expert
/// count, experts per token and expert size (Qwen2-MoE also
/// shared_expert_intermediate_size; DeepSeek only when n_routed_experts is
/// set); for DeepSeek kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim,
/// v_head_dim. Also checked: sizes positive, heads divisible by kv heads,
/// hidden divisible by heads when head_dim is absent, top-k within the
/// expert count, group counts consistent, known rope type / scoring
/// function / top-k method.
Result<ModelConfig> parseModelConfig(const nlohmann::json &config,
                                     const std::string &fileName);

} // namespace kt

#endif // KT_RUNTIME_MODELCONFIG_H
