//===- ModelConfig.cpp - typed view of a Hugging Face config.json ---------===//
//
// See include/kt/Runtime/ModelConfig.h. Defaults for absent fields are the
// reference config classes' (transformers; DeepSeek's configuration_deepseek
// for the DeepSeek families).
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/ModelConfig.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>

using nlohmann::json;

namespace kt {

namespace {

struct ArchEntry {
  std::string_view name;
  ModelFamily family;
};
constexpr std::array<ArchEntry, 9> kArchitectures = {{
    {"DeepseekV2ForCausalLM", ModelFamily::DeepseekV2},
    {"DeepseekV3ForCausalLM", ModelFamily::DeepseekV3},
    {"Qwen2MoeForCausalLM", ModelFamily::Qwen2Moe},
    {"Qwen3MoeForCausalLM", ModelFamily::Qwen3Moe},
    {"MixtralForCausalLM", ModelFamily::Mixtral},
    {"LlamaForCausalLM", ModelFamily::Llama},
    {"Qwen2ForCausalLM", ModelFamily::Qwen2},
    {"Qwen3ForCausalLM", ModelFamily::Qwen3},
    {"MistralForCausalLM", ModelFamily::Mistral},
}};

/// Reads typed fields of one JSON object. Readers made with sub() share the
/// first error recorded. `where` prefixes field names in messages
/// ("rope_scaling." ...).
class FieldReader {
public:
  FieldReader(const json &obj, std::string file)
      : obj(&obj), file(std::make_shared<std::string>(std::move(file))),
        error(std::make_shared<std::optional<Error>>()) {}

  FieldReader sub(const json &child, std::string childWhere) const {
    FieldReader r(*this);
    r.obj = &child;
    r.where = std::move(childWhere);
    return r;
  }

  /// The field, or nullptr when absent or null.
  const json *get(const char *key) const {
    if (!obj->is_object())
      return nullptr;
    auto it = obj->find(key);
    if (it == obj->end() || it->is_null())
      return nullptr;
    return &*it;
  }
  bool has(const char *key) const { return get(key) != nullptr; }

  /// Each read leaves `out` alone when the field is absent or null (an
  /// error if `required`), returns false after recording an error.
  bool readInt(const char *key, int64_t &out, bool required = false) {
    const json *j = get(key);
    if (!j)
      return absent(key, required);
    if (!toInt(*j, out))
      return wrongType(key, "an integer", *j);
    return true;
  }

  bool readDouble(const char *key, double &out, bool required = false) {
    const json *j = get(key);
    if (!j)
      return absent(key, required);
    if (!j->is_number())
      return wrongType(key, "a number", *j);
    double v = j->get<double>();
    if (!std::isfinite(v))
      return fail("'" + name(key) + "' is not finite");
    out = v;
    return true;
  }

  bool readBool(const char *key, bool &out, bool required = false) {
    const json *j = get(key);
    if (!j)
      return absent(key, required);
    if (!j->is_boolean())
      return wrongType(key, "a boolean", *j);
    out = j->get<bool>();
    return true;
  }

  bool readString(const char *key, std::string &out, bool required = false) {
    const json *j = get(key);
    if (!j)
      return absent(key, required);
    if (!j->is_string())
      return wrongType(key, "a string", *j);
    out = j->get<std::string>();
    return true;
  }

  bool readIntList(const char *key, std::vector<int64_t> &out,
                   bool required = false) {
    const json *j = get(key);
    if (!j)
      return absent(key, required);
    if (!j->is_array())
      return wrongType(key, "a list of integers", *j);
    std::vector<int64_t> v;
    for (const json &e : *j) {
      int64_t x;
      if (!toInt(e, x))
        return fail("'" + name(key) + "' must be a list of integers (got " +
                    j->dump() + ")");
      v.push_back(x);
    }
    out = std::move(v);
    return true;
  }

  /// An integer or a list of integers (eos_token_id).
  bool readIntOrList(const char *key, std::vector<int64_t> &out) {
    const json *j = get(key);
    if (!j)
      return true;
    if (j->is_array())
      return readIntList(key, out);
    int64_t v;
    if (!readInt(key, v))
      return false;
    out = {v};
    return true;
  }

  /// Records `message` unless an error is already recorded; returns false.
  bool fail(const std::string &message) {
    if (!*error)
      *error = Error{*file + ": " + message};
    return false;
  }
  /// Unless `cond`, records "'<key>' <what>"; returns cond.
  bool check(bool cond, const char *key, const std::string &what) {
    return cond || fail("'" + name(key) + "' " + what);
  }

  std::string name(const char *key) const { return where + key; }
  bool failed() const { return error->has_value(); }
  const Error &firstError() const { return **error; }

private:
  static bool toInt(const json &j, int64_t &out) {
    if (j.is_number_unsigned()) {
      if (j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        return false;
      out = static_cast<int64_t>(j.get<uint64_t>());
      return true;
    }
    if (j.is_number_integer()) {
      out = j.get<int64_t>();
      return true;
    }
    return false;
  }
  bool absent(const char *key, bool required) {
    return required ? fail("missing '" + name(key) + "'") : true;
  }
  bool wrongType(const char *key, const char *expected, const json &j) {
    return fail("'" + name(key) + "' must be " + expected + " (got " +
                std::string(j.type_name()) + ")");
  }

  const json *obj;
  std::shared_ptr<std::string> file;
  std::shared_ptr<std::optional<Error>> error;
  std::string where;
};

bool isDeepseek(ModelFamily f) {
  return f == ModelFamily::DeepseekV2 || f == ModelFamily::DeepseekV3;
}

/// Rope: hub style (rope_theta + rope_scaling) or transformers-5 style
/// (rope_parameters, which may also hold rope_theta and
/// partial_rotary_factor, or one such object per attention type).
void parseRope(FieldReader &top, ModelConfig &cfg) {
  RopeConfig &rope = cfg.rope;
  if (cfg.family == ModelFamily::Mixtral)
    rope.theta = 1e6; // MixtralConfig's default
  top.readDouble("rope_theta", rope.theta);
  top.readDouble("partial_rotary_factor", rope.partialRotaryFactor);

  const json *params = nullptr;
  std::string where;
  if (const json *p = top.get("rope_parameters")) {
    params = p;
    where = "rope_parameters.";
    // Per-attention-type parameters ({"full_attention": {...}, ...}).
    if (p->is_object() && !p->contains("rope_type") && !p->contains("type") &&
        !p->contains("rope_theta") && p->contains("full_attention")) {
      params = &(*p)["full_attention"];
      where = "rope_parameters.full_attention.";
    }
  } else if (const json *s = top.get("rope_scaling")) {
    params = s;
    where = "rope_scaling.";
  }

  bool factorGiven = false;
  if (params) {
    if (!params->is_object()) {
      top.fail("'" + where.substr(0, where.size() - 1) +
               "' must be an object (got " + std::string(params->type_name()) +
               ")");
      return;
    }
    FieldReader r = top.sub(*params, where);
    // transformers reads rope_type first, then the legacy "type".
    if (!r.readString("rope_type", rope.type) || !r.has("rope_type"))
      r.readString("type", rope.type);
    r.readDouble("rope_theta", rope.theta);
    factorGiven = r.has("factor");
    r.readDouble("factor", rope.factor);
    r.readInt("original_max_position_embeddings", rope.originalMaxPosition);
    r.readDouble("beta_fast", rope.betaFast);
    r.readDouble("beta_slow", rope.betaSlow);
    r.readDouble("mscale", rope.mscale);
    r.readDouble("mscale_all_dim", rope.mscaleAllDim);
    r.readDouble("attention_factor", rope.attentionFactor);
    r.readDouble("low_freq_factor", rope.lowFreqFactor);
    r.readDouble("high_freq_factor", rope.highFreqFactor);
    r.readDouble("partial_rotary_factor", rope.partialRotaryFactor);
    if (top.failed())
      return;

    static constexpr std::array<std::string_view, 5> kTypes = {
        "default", "linear", "dynamic", "yarn", "llama3"};
    if (std::find(kTypes.begin(), kTypes.end(), rope.type) == kTypes.end()) {
      top.fail("unsupported rope type '" + rope.type + "' in '" +
               where.substr(0, where.size() - 1) +
               "' (supported: default, linear, dynamic, yarn, llama3)");
      return;
    }
    if (rope.type != "default" && !factorGiven) {
      top.fail("missing '" + r.name("factor") + "' for rope type '" +
               rope.type + "'");
      return;
    }
    r.check(rope.factor > 0, "factor", "must be positive");
    r.check(rope.originalMaxPosition >= 0, "original_max_position_embeddings",
            "must not be negative");
  }
  top.check(rope.theta > 0, "rope_theta", "must be positive");
  top.check(rope.partialRotaryFactor > 0 && rope.partialRotaryFactor <= 1,
            "partial_rotary_factor", "must be in (0, 1]");
  if (rope.originalMaxPosition == 0 &&
      (rope.type == "yarn" || rope.type == "dynamic" || rope.type == "llama3"))
    rope.originalMaxPosition = cfg.maxPositionEmbeddings;

  // DeepSeek checkpoints rotate interleaved pairs; transformers-5's
  // DeepSeek configs say so with rope_interleave (default true).
  if (isDeepseek(cfg.family)) {
    rope.interleaved = true;
    top.readBool("rope_interleave", rope.interleaved);
  }
}

void parseMoe(FieldReader &r, ModelConfig &cfg) {
  switch (cfg.family) {
  case ModelFamily::Qwen2Moe:
  case ModelFamily::Qwen3Moe: {
    bool qwen2 = cfg.family == ModelFamily::Qwen2Moe;
    // transformers 5 saves the expert count as num_local_experts (its
    // config classes map num_experts onto it); hub configs say num_experts.
    if (r.has("num_experts") || !r.has("num_local_experts"))
      r.readInt("num_experts", cfg.numExperts, /*required=*/true);
    else
      r.readInt("num_local_experts", cfg.numExperts, true);
    r.readInt("num_experts_per_tok", cfg.numExpertsPerTok, true);
    r.readInt("moe_intermediate_size", cfg.moeIntermediateSize, true);
    if (qwen2) {
      r.readInt("shared_expert_intermediate_size",
                cfg.sharedExpertIntermediateSize, true);
      cfg.numSharedExperts = cfg.sharedExpertIntermediateSize > 0 ? 1 : 0;
    }
    r.readInt("decoder_sparse_step", cfg.decoderSparseStep);
    r.readIntList("mlp_only_layers", cfg.mlpOnlyLayers);
    // Both transformers config classes default norm_topk_prob to false.
    r.readBool("norm_topk_prob", cfg.normTopkProb);
    break;
  }
  case ModelFamily::Mixtral:
    r.readInt("num_local_experts", cfg.numExperts, true);
    r.readInt("num_experts_per_tok", cfg.numExpertsPerTok, true);
    cfg.moeIntermediateSize = cfg.intermediateSize;
    cfg.normTopkProb = true; // Mixtral renormalises its top-k weights
    break;
  case ModelFamily::DeepseekV2:
  case ModelFamily::DeepseekV3: {
    bool v3 = cfg.family == ModelFamily::DeepseekV3;
    cfg.scoringFunc = v3 ? "sigmoid" : "softmax";
    cfg.topkMethod = v3 ? "noaux_tc" : "greedy";
    cfg.normTopkProb = v3;
    // n_routed_experts null: a dense model.
    r.readInt("n_routed_experts", cfg.numExperts);
    bool moe = r.has("n_routed_experts");
    r.readInt("num_experts_per_tok", cfg.numExpertsPerTok, moe);
    r.readInt("moe_intermediate_size", cfg.moeIntermediateSize, moe);
    r.readInt("n_shared_experts", cfg.numSharedExperts);
    r.readInt("first_k_dense_replace", cfg.firstKDenseReplace);
    r.readInt("moe_layer_freq", cfg.moeLayerFreq);
    r.readBool("norm_topk_prob", cfg.normTopkProb);
    r.readDouble("routed_scaling_factor", cfg.routedScalingFactor);
    r.readString("scoring_func", cfg.scoringFunc);
    r.readString("topk_method", cfg.topkMethod);
    if (cfg.topkMethod == "gready") // configuration_deepseek.py's spelling
      cfg.topkMethod = "greedy";
    r.readInt("n_group", cfg.nGroup);
    cfg.topkGroup = cfg.nGroup;
    r.readInt("topk_group", cfg.topkGroup);
    cfg.sharedExpertIntermediateSize =
        cfg.numSharedExperts * cfg.moeIntermediateSize;
    if (r.failed())
      return;
    if (cfg.scoringFunc != "softmax" && cfg.scoringFunc != "sigmoid")
      r.fail("unsupported 'scoring_func' '" + cfg.scoringFunc +
             "' (supported: softmax, sigmoid)");
    if (cfg.topkMethod != "greedy" && cfg.topkMethod != "group_limited_greedy" &&
        cfg.topkMethod != "noaux_tc")
      r.fail("unsupported 'topk_method' '" + cfg.topkMethod +
             "' (supported: greedy, group_limited_greedy, noaux_tc)");
    r.check(cfg.numSharedExperts >= 0, "n_shared_experts", "must not be negative");
    r.check(cfg.firstKDenseReplace >= 0, "first_k_dense_replace",
            "must not be negative");
    r.check(cfg.moeLayerFreq >= 1, "moe_layer_freq", "must be at least 1");
    r.check(cfg.nGroup >= 1, "n_group", "must be at least 1");
    r.check(cfg.topkGroup >= 1 && cfg.topkGroup <= cfg.nGroup, "topk_group",
            "must be between 1 and n_group (" + std::to_string(cfg.nGroup) + ")");
    if (cfg.numExperts > 0)
      r.check(cfg.numExperts % cfg.nGroup == 0, "n_routed_experts",
              "(" + std::to_string(cfg.numExperts) +
                  ") must be divisible by n_group (" +
                  std::to_string(cfg.nGroup) + ")");
    break;
  }
  default:
    return;
  }
  if (r.failed())
    return;

  const char *expertsKey = cfg.family == ModelFamily::Mixtral ? "num_local_experts"
                           : isDeepseek(cfg.family)           ? "n_routed_experts"
                                                              : "num_experts";
  if (cfg.numExperts == 0 && isDeepseek(cfg.family))
    return; // dense DeepSeek
  r.check(cfg.numExperts > 0, expertsKey, "must be positive");
  r.check(cfg.numExpertsPerTok >= 1 && cfg.numExpertsPerTok <= cfg.numExperts,
          "num_experts_per_tok",
          "must be between 1 and " + std::string(expertsKey) + " (" +
              std::to_string(cfg.numExperts) + ")");
  r.check(cfg.moeIntermediateSize > 0,
          cfg.family == ModelFamily::Mixtral ? "intermediate_size"
                                             : "moe_intermediate_size",
          "must be positive");
  r.check(cfg.sharedExpertIntermediateSize >= 0,
          "shared_expert_intermediate_size", "must not be negative");
  r.check(cfg.decoderSparseStep >= 1, "decoder_sparse_step",
          "must be at least 1");
  for (int64_t l : cfg.mlpOnlyLayers)
    if (!r.check(l >= 0 && l < cfg.numLayers, "mlp_only_layers",
                 "holds layer " + std::to_string(l) + ", outside [0, " +
                     std::to_string(cfg.numLayers) + ")"))
      break;
}

void parseMla(FieldReader &r, ModelConfig &cfg) {
  r.readInt("q_lora_rank", cfg.qLoraRank); // null: plain q_proj
  r.readInt("kv_lora_rank", cfg.kvLoraRank, true);
  r.readInt("qk_nope_head_dim", cfg.qkNopeHeadDim, true);
  r.readInt("qk_rope_head_dim", cfg.qkRopeHeadDim, true);
  r.readInt("v_head_dim", cfg.vHeadDim, true);
  r.readInt("num_nextn_predict_layers", cfg.numNextnPredictLayers);
  if (r.failed())
    return;
  r.check(cfg.qLoraRank >= 0, "q_lora_rank", "must not be negative");
  r.check(cfg.kvLoraRank > 0, "kv_lora_rank", "must be positive");
  r.check(cfg.qkNopeHeadDim >= 0, "qk_nope_head_dim", "must not be negative");
  r.check(cfg.qkRopeHeadDim > 0 && cfg.qkRopeHeadDim % 2 == 0,
          "qk_rope_head_dim", "must be positive and even");
  r.check(cfg.vHeadDim > 0, "v_head_dim", "must be positive");
  r.check(cfg.numNextnPredictLayers >= 0, "num_nextn_predict_layers",
          "must not be negative");
  cfg.headDim = cfg.qkNopeHeadDim + cfg.qkRopeHeadDim;
}

/// transformers' defaults for fields real configs nearly always carry.
void setFamilyDefaults(ModelConfig &cfg) {
  switch (cfg.family) {
  case ModelFamily::Llama:
    cfg.maxPositionEmbeddings = 2048;
    cfg.rmsNormEps = 1e-6;
    break;
  case ModelFamily::Mistral:
    cfg.maxPositionEmbeddings = 4096 * 32;
    cfg.rmsNormEps = 1e-6;
    break;
  case ModelFamily::Mixtral:
    cfg.maxPositionEmbeddings = 4096 * 32;
    cfg.rmsNormEps = 1e-5;
    break;
  case ModelFamily::Qwen2:
  case ModelFamily::Qwen3:
  case ModelFamily::Qwen2Moe:
  case ModelFamily::Qwen3Moe:
    cfg.maxPositionEmbeddings = 32768;
    cfg.rmsNormEps = 1e-6;
    break;
  case ModelFamily::DeepseekV2:
    cfg.maxPositionEmbeddings = 2048;
    cfg.rmsNormEps = 1e-6;
    break;
  case ModelFamily::DeepseekV3:
    cfg.maxPositionEmbeddings = 4096;
    cfg.rmsNormEps = 1e-6;
    break;
  }
}

Result<ModelConfig> parseImpl(const json &config, const std::string &fileName) {
  if (!config.is_object())
    return Error{fileName + ": not a JSON object (got " +
                 std::string(config.type_name()) + ")"};
  FieldReader r(config, fileName);
  ModelConfig cfg;

  const json *archs = r.get("architectures");
  if (!archs)
    return Error{fileName + ": missing 'architectures'"};
  if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string())
    return Error{fileName +
                 ": 'architectures' must be a non-empty list of strings (got " +
                 archs->dump() + ")"};
  cfg.architecture = (*archs)[0].get<std::string>();
  auto arch = std::find_if(kArchitectures.begin(), kArchitectures.end(),
                           [&](const ArchEntry &e) { return e.name == cfg.architecture; });
  if (arch == kArchitectures.end())
    return Error{fileName + ": unsupported architecture '" + cfg.architecture +
                 "' (supported: " + supportedArchitectures() + ")"};
  cfg.family = arch->family;
  setFamilyDefaults(cfg);

  r.readString("model_type", cfg.modelType);
  if (!r.readString("torch_dtype", cfg.torchDtype) || !r.has("torch_dtype"))
    r.readString("dtype", cfg.torchDtype);
  r.readString("hidden_act", cfg.hiddenAct);

  r.readInt("vocab_size", cfg.vocabSize, /*required=*/true);
  r.readInt("hidden_size", cfg.hiddenSize, true);
  r.readInt("intermediate_size", cfg.intermediateSize, true);
  r.readInt("num_hidden_layers", cfg.numLayers, true);
  r.readInt("num_attention_heads", cfg.numHeads, true);
  cfg.numKvHeads = cfg.numHeads;
  r.readInt("num_key_value_heads", cfg.numKvHeads);
  r.readInt("max_position_embeddings", cfg.maxPositionEmbeddings);
  r.readDouble("rms_norm_eps", cfg.rmsNormEps);
  r.readBool("tie_word_embeddings", cfg.tieWordEmbeddings);
  if (r.failed())
    return r.firstError();

  r.check(cfg.vocabSize > 0, "vocab_size", "must be positive");
  r.check(cfg.hiddenSize > 0, "hidden_size", "must be positive");
  r.check(cfg.intermediateSize > 0, "intermediate_size", "must be positive");
  r.check(cfg.numLayers > 0, "num_hidden_layers", "must be positive");
  r.check(cfg.numHeads > 0, "num_attention_heads", "must be positive");
  r.check(cfg.numKvHeads > 0, "num_key_value_heads", "must be positive");
  r.check(cfg.maxPositionEmbeddings > 0, "max_position_embeddings",
          "must be positive");
  r.check(cfg.rmsNormEps > 0, "rms_norm_eps", "must be positive");
  if (r.failed())
    return r.firstError();
  r.check(cfg.numHeads % cfg.numKvHeads == 0, "num_attention_heads",
          "(" + std::to_string(cfg.numHeads) +
              ") must be divisible by num_key_value_heads (" +
              std::to_string(cfg.numKvHeads) + ")");

  // Attention projections.
  if (cfg.family == ModelFamily::Qwen2 || cfg.family == ModelFamily::Qwen2Moe) {
    cfg.attentionBias = true; // Qwen2 attention always has q/k/v biases
    if (!r.readBool("qkv_bias", cfg.attentionBias) || !r.has("qkv_bias"))
      r.readBool("attention_bias", cfg.attentionBias);
  } else {
    r.readBool("attention_bias", cfg.attentionBias);
  }
  if (cfg.family == ModelFamily::Llama)
    r.readBool("mlp_bias", cfg.mlpBias);

  if (isDeepseek(cfg.family)) {
    parseMla(r, cfg);
  } else if (r.has("head_dim")) {
    r.readInt("head_dim", cfg.headDim);
    r.check(cfg.headDim > 0, "head_dim", "must be positive");
  } else if (cfg.hiddenSize % cfg.numHeads != 0) {
    r.fail("'hidden_size' (" + std::to_string(cfg.hiddenSize) +
           ") is not divisible by 'num_attention_heads' (" +
           std::to_string(cfg.numHeads) + ") and 'head_dim' is not given");
  } else {
    cfg.headDim = cfg.hiddenSize / cfg.numHeads;
  }

  // Sliding window: Mistral/Mixtral give it directly; Qwen only applies it
  // with use_sliding_window.
  if (cfg.family == ModelFamily::Mistral || cfg.family == ModelFamily::Mixtral) {
    r.readInt("sliding_window", cfg.slidingWindow);
  } else if (cfg.family == ModelFamily::Qwen2 || cfg.family == ModelFamily::Qwen3 ||
             cfg.family == ModelFamily::Qwen2Moe ||
             cfg.family == ModelFamily::Qwen3Moe) {
    bool use = false;
    r.readBool("use_sliding_window", use);
    if (use)
      r.readInt("sliding_window", cfg.slidingWindow);
  }
  r.check(cfg.slidingWindow >= 0, "sliding_window", "must not be negative");
  if (r.failed())
    return r.firstError();

  parseRope(r, cfg);
  if (r.failed())
    return r.firstError();
  parseMoe(r, cfg);
  if (r.failed())
    return r.firstError();

  if (const json *q = r.get("quantization_config")) {
    if (!q->is_object())
      return Error{fileName + ": 'quantization_config' must be an object (got " +
                   std::string(q->type_name()) + ")"};
    FieldReader qr = r.sub(*q, "quantization_config.");
    qr.readString("quant_method", cfg.quantMethod);
    qr.readIntList("weight_block_size", cfg.weightBlockSize);
  }

  r.readInt("bos_token_id", cfg.bosTokenId);
  r.readIntOrList("eos_token_id", cfg.eosTokenIds);
  if (!cfg.eosTokenIds.empty())
    cfg.eosTokenId = cfg.eosTokenIds.front();
  if (r.failed())
    return r.firstError();
  return cfg;
}

} // namespace

std::string supportedArchitectures() {
  std::string s;
  for (const ArchEntry &e : kArchitectures) {
    if (!s.empty())
      s += ", ";
    s += e.name;
  }
  return s;
}

bool ModelConfig::isMoeLayer(int64_t layer) const {
  if (layer < 0 || layer >= numLayers || numExperts <= 0)
    return false;
  switch (family) {
  case ModelFamily::DeepseekV2:
  case ModelFamily::DeepseekV3:
    return layer >= firstKDenseReplace && moeLayerFreq > 0 &&
           layer % moeLayerFreq == 0;
  case ModelFamily::Qwen2Moe:
  case ModelFamily::Qwen3Moe:
    return std::find(mlpOnlyLayers.begin(), mlpOnlyLayers.end(), layer) ==
               mlpOnlyLayers.end() &&
           decoderSparseStep > 0 && (layer + 1) % decoderSparseStep == 0;
  case ModelFamily::Mixtral:
    return true;
  default:
    return false;
  }
}

Result<ModelConfig> parseModelConfig(const json &config,
                                     const std::string &fileName) {
  try {
    return parseImpl(config, fileName);
  } catch (const std::exception &e) {
    return Error{fileName + ": unexpected error: " + e.what()};
  }
}

} // namespace kt
