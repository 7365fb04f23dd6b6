//===- ClassRegistry.cpp - Module class hierarchy for match.class ---------===//
//
// Upstream matches `match.class` with Python's isinstance. kt has no Python
// classes, so it keeps the relevant part of the hierarchy here, keyed by the
// last dotted component (class leaf -> parent leaf). Every class derives from
// torch.nn.Module ("Module").
//
//===----------------------------------------------------------------------===//

#include "kt/Transforms/Rules.h"

#include <string>
#include <string_view>
#include <unordered_map>

using namespace kt::rules;

namespace {

struct ClassEntry {
  std::string_view leaf;
  std::string_view parent;
};

// Parent "" only for Module itself.
constexpr ClassEntry kClasses[] = {
    // torch.nn
    {"Module", ""},
    {"Linear", "Module"},
    {"Embedding", "Module"},
    {"ModuleList", "Module"},
    {"ModuleDict", "Module"},
    {"Sequential", "Module"},
    {"LayerNorm", "Module"},
    {"RMSNorm", "Module"},
    {"Identity", "Module"},
    {"Dropout", "Module"},
    {"SiLU", "Module"},
    {"GELU", "Module"},

    // DeepSeek V2 (ktransformers.models.modeling_deepseek)
    {"DeepseekV2ForCausalLM", "Module"},
    {"DeepseekV2Model", "Module"},
    {"DeepseekV2DecoderLayer", "Module"},
    {"DeepseekV2Attention", "Module"},
    {"DeepseekV2FlashAttention2", "DeepseekV2Attention"},
    {"DeepseekV2RMSNorm", "Module"},
    {"DeepseekV2RotaryEmbedding", "Module"},
    {"DeepseekV2YarnRotaryEmbedding", "DeepseekV2RotaryEmbedding"},
    {"DeepseekV2LinearScalingRotaryEmbedding", "DeepseekV2RotaryEmbedding"},
    {"DeepseekV2DynamicNTKScalingRotaryEmbedding", "DeepseekV2RotaryEmbedding"},
    {"DeepseekV2MLP", "Module"},
    {"DeepseekV2MoE", "Module"},
    // Both modeling_deepseek and modeling_deepseek_v3 name their router
    // MoEGate; only the leaf counts, so one entry serves both.
    {"MoEGate", "Module"},

    // DeepSeek V3 (ktransformers.models.modeling_deepseek_v3)
    {"DeepseekV3ForCausalLM", "Module"},
    {"DeepseekV3Model", "Module"},
    {"DeepseekV3DecoderLayer", "Module"},
    {"DeepseekV3Attention", "Module"},
    {"DeepseekV3FlashAttention2", "DeepseekV3Attention"},
    {"DeepseekV3RMSNorm", "Module"},
    {"DeepseekV3RotaryEmbedding", "Module"},
    {"DeepseekV3YarnRotaryEmbedding", "DeepseekV3RotaryEmbedding"},
    {"DeepseekV3LinearScalingRotaryEmbedding", "DeepseekV3RotaryEmbedding"},
    {"DeepseekV3DynamicNTKScalingRotaryEmbedding", "DeepseekV3RotaryEmbedding"},
    {"DeepseekV3MLP", "Module"},
    {"DeepseekV3MoE", "Module"},

    // Qwen2-MoE (modeling_qwen2_moe)
    {"Qwen2MoeForCausalLM", "Module"},
    {"Qwen2MoeModel", "Module"},
    {"Qwen2MoeDecoderLayer", "Module"},
    {"Qwen2MoeAttention", "Module"},
    {"Qwen2MoeFlashAttention2", "Qwen2MoeAttention"},
    {"Qwen2MoeSdpaAttention", "Qwen2MoeAttention"},
    {"Qwen2MoeRMSNorm", "Module"},
    {"Qwen2MoeRotaryEmbedding", "Module"},
    {"Qwen2MoeSparseMoeBlock", "Module"},
    {"Qwen2MoeMLP", "Module"},
    {"Qwen2MoeExperts", "Module"},

    // Qwen3-MoE (modeling_qwen3_moe).
    // Qwen3MoeRotaryEmbedding is NOT a Qwen2MoeRotaryEmbedding. In
    // KTransformers' own ktransformers/models/modeling_qwen3_moe.py it is
    // declared `class Qwen3MoeRotaryEmbedding(nn.Module)` and only serves
    // as the model-level `Qwen3MoeModel.rotary_emb`. The per-layer rotary,
    // `Qwen3MoeAttention.rotary_emb`, is constructed as
    // `Qwen2MoeRotaryEmbedding(...)` (imported from
    // ktransformers.models.modeling_qwen2_moe), which is why
    // Qwen3Moe-serve-amx.yaml matches
    // modeling_qwen2_moe.Qwen2MoeRotaryEmbedding:
    // it catches the per-layer instances, whose class *is*
    // Qwen2MoeRotaryEmbedding, not the model-level one.
    {"Qwen3MoeForCausalLM", "Module"},
    {"Qwen3MoeModel", "Module"},
    {"Qwen3MoeDecoderLayer", "Module"},
    {"Qwen3MoeAttention", "Module"},
    {"Qwen3MoeRMSNorm", "Module"},
    {"Qwen3MoeRotaryEmbedding", "Module"},
    {"Qwen3MoeSparseMoeBlock", "Module"},
    {"Qwen3MoeMLP", "Module"},
    {"Qwen3MoeExperts", "Module"},

    // Mixtral (modeling_mixtral)
    {"MixtralForCausalLM", "Module"},
    {"MixtralModel", "Module"},
    {"MixtralDecoderLayer", "Module"},
    {"MixtralAttention", "Module"},
    {"MixtralFlashAttention2", "MixtralAttention"},
    {"MixtralSdpaAttention", "MixtralAttention"},
    {"MixtralRMSNorm", "Module"},
    {"MixtralRotaryEmbedding", "Module"},
    {"MixtralSparseMoeBlock", "Module"},
    {"MixtralBlockSparseTop2MLP", "Module"},
    {"MixtralExperts", "Module"},

    // Dense Llama (modeling_llama)
    {"LlamaForCausalLM", "Module"},
    {"LlamaModel", "Module"},
    {"LlamaDecoderLayer", "Module"},
    {"LlamaAttention", "Module"},
    {"LlamaFlashAttention2", "LlamaAttention"},
    {"LlamaSdpaAttention", "LlamaAttention"},
    {"LlamaRMSNorm", "Module"},
    {"LlamaRotaryEmbedding", "Module"},
    {"LlamaLinearScalingRotaryEmbedding", "LlamaRotaryEmbedding"},
    {"LlamaDynamicNTKScalingRotaryEmbedding", "LlamaRotaryEmbedding"},
    {"LlamaMLP", "Module"},

    // Dense Qwen2 (modeling_qwen2)
    {"Qwen2ForCausalLM", "Module"},
    {"Qwen2Model", "Module"},
    {"Qwen2DecoderLayer", "Module"},
    {"Qwen2Attention", "Module"},
    {"Qwen2FlashAttention2", "Qwen2Attention"},
    {"Qwen2SdpaAttention", "Qwen2Attention"},
    {"Qwen2RMSNorm", "Module"},
    {"Qwen2RotaryEmbedding", "Module"},
    {"Qwen2MLP", "Module"},

    // Dense Qwen3 (modeling_qwen3)
    {"Qwen3ForCausalLM", "Module"},
    {"Qwen3Model", "Module"},
    {"Qwen3DecoderLayer", "Module"},
    {"Qwen3Attention", "Module"},
    {"Qwen3RMSNorm", "Module"},
    {"Qwen3RotaryEmbedding", "Module"},
    {"Qwen3MLP", "Module"},
};

const std::unordered_map<std::string_view, std::string_view> &registry() {
  static const auto *table = [] {
    auto *m = new std::unordered_map<std::string_view, std::string_view>();
    for (const ClassEntry &e : kClasses)
      m->emplace(e.leaf, e.parent);
    return m;
  }();
  return *table;
}

} // namespace

std::string_view kt::rules::classLeaf(std::string_view dottedClass) {
  size_t dot = dottedClass.rfind('.');
  return dot == std::string_view::npos ? dottedClass
                                       : dottedClass.substr(dot + 1);
}

bool kt::rules::isKnownClass(std::string_view anyDottedClass) {
  return registry().count(classLeaf(anyDottedClass)) != 0;
}

std::optional<std::string>
kt::rules::parentClass(std::string_view anyDottedClass) {
  const auto &reg = registry();
  auto it = reg.find(classLeaf(anyDottedClass));
  if (it == reg.end())
    return std::nullopt;
  return std::string(it->second);
}

bool kt::rules::isInstance(std::string_view moduleClass,
                           std::string_view baseClass) {
  std::string_view leaf = classLeaf(moduleClass);
  std::string_view base = classLeaf(baseClass);
  if (leaf.empty() || base.empty())
    return false;
  if (leaf == base || base == "Module")
    return true;
  const auto &reg = registry();
  // The table is acyclic; the bound only guards against a bad edit.
  for (size_t depth = 0; depth < reg.size(); ++depth) {
    auto it = reg.find(leaf);
    if (it == reg.end() || it->second.empty())
      return false;
    leaf = it->second;
    if (leaf == base)
      return true;
  }
  return false;
}
