//===- RuleTargets.cpp - replace.class -> kt op resolution ----------------===//
//
// replace.class is "default", a kt op name, or an upstream KTransformers
// class path accepted as an alias of a kt op. This file holds that table,
// the kwargs checks that do not need a module, and resolveTarget.
//
//===----------------------------------------------------------------------===//

#include "RulesInternal.h"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

using namespace kt::rules;
using namespace kt::rules::detail;
using nlohmann::json;

//===----------------------------------------------------------------------===//
// Devices
//===----------------------------------------------------------------------===//

namespace {

/// Parses "cuda:N"'s N; nullopt unless 1-6 decimal digits.
std::optional<long> cudaIndex(std::string_view d) {
  constexpr std::string_view prefix = "cuda:";
  if (d.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  std::string_view digits = d.substr(prefix.size());
  if (digits.empty() || digits.size() > 6)
    return std::nullopt;
  long value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

} // namespace

bool kt::rules::isValidDevice(std::string_view d) {
  return d == "cpu" || d == "cuda" || cudaIndex(d).has_value();
}

std::string kt::rules::normalizeDevice(std::string_view d) {
  if (d == "cuda")
    return "cuda:0";
  if (auto index = cudaIndex(d))
    return "cuda:" + std::to_string(*index);
  return std::string(d);
}

//===----------------------------------------------------------------------===//
// Replace class table
//===----------------------------------------------------------------------===//

namespace {

enum class Kind {
  Default, // keep the module, only set kwargs
  Fixed,   // always the same op
  Linear,  // KTransformersLinear: op from generate_op
  Experts, // KTransformersExperts(V2): op from generate_device
};

struct ReplaceEntry {
  std::string_view path;
  Kind kind;
  std::string_view op;    // resulting op (Fixed; also kt op names)
  std::string_view needs; // base kind of the module it may replace
};

constexpr std::string_view kModule = "kt.module";
constexpr std::string_view kLinear = "kt.linear";
constexpr std::string_view kExperts = "kt.experts";
constexpr std::string_view kRotary = "kt.rotary";
constexpr std::string_view kRmsNorm = "kt.rms_norm";
constexpr std::string_view kMoeGate = "kt.moe_gate";
constexpr std::string_view kEmbedding = "kt.embedding";
constexpr std::string_view kMla = "kt.mla";

#define KT_OPS "ktransformers.operators."
constexpr ReplaceEntry kReplaceClasses[] = {
    {"default", Kind::Default, "", ""},

    // kt op names map to themselves.
    {"kt.cpu_experts", Kind::Fixed, "kt.cpu_experts", kExperts},
    {"kt.gpu_experts", Kind::Fixed, "kt.gpu_experts", kExperts},
    {"kt.linear", Kind::Fixed, "kt.linear", kLinear},
    {"kt.marlin_linear", Kind::Fixed, "kt.marlin_linear", kLinear},
    {"kt.fp8_linear", Kind::Fixed, "kt.fp8_linear", kLinear},
    {"kt.lora_linear", Kind::Fixed, "kt.lora_linear", kLinear},
    {"kt.mla", Kind::Fixed, kMla, kModule},
    {"kt.rotary", Kind::Fixed, kRotary, kRotary},
    {"kt.rms_norm", Kind::Fixed, kRmsNorm, kRmsNorm},
    {"kt.moe_gate", Kind::Fixed, kMoeGate, kMoeGate},
    {"kt.module", Kind::Fixed, kModule, kModule},
    {"kt.embedding", Kind::Fixed, kEmbedding, kEmbedding},

    // Linear and routed experts: the op depends on kwargs.
    {KT_OPS "linear.KTransformersLinear", Kind::Linear, "", kLinear},
    {KT_OPS "experts.KTransformersExperts", Kind::Experts, "", kExperts},
    {KT_OPS "experts.KTransformersExpertsV2", Kind::Experts, "", kExperts},

    // MoE blocks with a custom forward: still containers.
    {KT_OPS "experts.KDeepseekV2MoE", Kind::Fixed, kModule, kModule},
    {KT_OPS "experts.KDeepseekV3MoE", Kind::Fixed, kModule, kModule},
    {KT_OPS "experts.KMistralSparseMoEBlock", Kind::Fixed, kModule, kModule},
    {KT_OPS "experts.KQwen2MoeSparseMoeBlock", Kind::Fixed, kModule, kModule},
    {KT_OPS "experts.KQwen2MoeSparseMoeBlockV2", Kind::Fixed, kModule, kModule},
    {KT_OPS "experts.KQwen3MoeSparseMoeBlockV2", Kind::Fixed, kModule, kModule},

    // Attention.
    {KT_OPS "attention.KDeepseekV2Attention", Kind::Fixed, kMla, kModule},
    {KT_OPS "balance_serve_attention.KDeepseekV2Attention", Kind::Fixed, kMla,
     kModule},
    {KT_OPS "balance_serve_attention.KQwen3MoeAttention", Kind::Fixed, kModule,
     kModule},
    {KT_OPS "balance_serve_attention.KQwen2MoeAttention", Kind::Fixed, kModule,
     kModule},
    {KT_OPS "attention.KLlamaAttention", Kind::Fixed, kModule, kModule},

    // Whole models (per_layer_prefill_intput_threshold, transfer_map).
    {KT_OPS "models.KDeepseekV2Model", Kind::Fixed, kModule, kModule},
    {KT_OPS "models.KQwen2MoeModel", Kind::Fixed, kModule, kModule},
    {KT_OPS "models.KQwen3MoeModel", Kind::Fixed, kModule, kModule},
    {KT_OPS "models.KLlamaModel", Kind::Fixed, kModule, kModule},
    {KT_OPS "models.KMixtralModel", Kind::Fixed, kModule, kModule},

    // Router, RoPE, norms, dense MLPs.
    {KT_OPS "gate.KMoEGate", Kind::Fixed, kMoeGate, kMoeGate},
    {KT_OPS "RoPE.RotaryEmbedding", Kind::Fixed, kRotary, kRotary},
    {KT_OPS "RoPE.RotaryEmbeddingV3", Kind::Fixed, kRotary, kRotary},
    {KT_OPS "RoPE.YarnRotaryEmbedding", Kind::Fixed, kRotary, kRotary},
    {KT_OPS "RoPE.YarnRotaryEmbeddingV3", Kind::Fixed, kRotary, kRotary},
    {KT_OPS "RoPE.DeepSeekV3YarnRotaryEmbedding", Kind::Fixed, kRotary,
     kRotary},
    {KT_OPS "layernorm.RMSNorm", Kind::Fixed, kRmsNorm, kRmsNorm},
    {KT_OPS "layernorm.KQwen3MoeRMSNorm", Kind::Fixed, kRmsNorm, kRmsNorm},
    {KT_OPS "layernorm.KDeepseekRMSNorm", Kind::Fixed, kRmsNorm, kRmsNorm},
    {KT_OPS "mlp.KQwen2MoeMLP", Kind::Fixed, kModule, kModule},
    {KT_OPS "mlp.KDeepseekV2MLP", Kind::Fixed, kModule, kModule},
};
#undef KT_OPS

const ReplaceEntry *findReplace(std::string_view path) {
  for (const ReplaceEntry &e : kReplaceClasses)
    if (e.path == path)
      return &e;
  return nullptr;
}

// generate_op -> op for KTransformersLinear. An absent generate_op means
// KLinearMarlin, KTransformersLinear's default in upstream's linear.py.
struct LinearOp {
  std::string_view name;
  std::string_view op;
};
constexpr LinearOp kLinearOps[] = {
    {"KLinearTorch", "kt.linear"},
    {"KLinearMarlin", "kt.marlin_linear"},
    {"VLinearMarlin", "kt.marlin_linear"},
    {"KLinearFP8", "kt.fp8_linear"},
};
constexpr std::string_view kExpertOps[] = {"KExpertsCPU", "KSFTExpertsCPU",
                                           "KExpertsTorch", "KExpertsMarlin"};
constexpr std::string_view kBackends[] = {"AMXInt8",   "AMXBF16", "AMXInt4",
                                          "llamafile", "AVX512",  "AVX2"};
constexpr std::string_view kDeviceKeys[] = {"generate_device", "prefill_device",
                                            "out_device", "device"};

template <typename Range, typename Fn>
std::string joinNames(const Range &range, Fn name) {
  std::string out;
  for (const auto &item : range) {
    if (!out.empty())
      out += ", ";
    out += name(item);
  }
  return out;
}

std::string_view identity(std::string_view s) { return s; }

/// The base kind of a module's current op: specialised ops count as the op
/// they specialise (kt.marlin_linear is a kt.linear), attention containers
/// as kt.module.
std::string_view baseKind(std::string_view op) {
  if (op == "kt.marlin_linear" || op == "kt.fp8_linear" ||
      op == "kt.lora_linear")
    return kLinear;
  if (op == "kt.cpu_experts" || op == "kt.gpu_experts")
    return kExperts;
  if (op == "kt.attention")
    return kModule;
  return op;
}

/// A string-valued kwarg: nullopt when absent or null; an error when present
/// with another type.
std::variant<std::optional<std::string>, ReplaceError>
stringKwarg(const json &kwargs, const std::string &key) {
  auto it = kwargs.find(key);
  if (it == kwargs.end() || it->is_null())
    return std::optional<std::string>();
  if (!it->is_string())
    return ReplaceError{key,
                        "'" + key + "' must be a string, got " + it->dump()};
  return std::optional<std::string>(it->get<std::string>());
}

std::optional<ReplaceError> checkDevices(const json &kwargs) {
  for (std::string_view keyView : kDeviceKeys) {
    std::string key(keyView);
    auto it = kwargs.find(key);
    if (it == kwargs.end())
      continue;
    if (!it->is_string() || !isValidDevice(it->get<std::string>()))
      return ReplaceError{key, "invalid device " + it->dump() + " for '" + key +
                                   "' (expected \"cpu\", \"cuda\" or "
                                   "\"cuda:N\")"};
  }
  auto it = kwargs.find("transfer_map");
  if (it == kwargs.end())
    return std::nullopt;
  if (!it->is_object())
    return ReplaceError{"transfer_map",
                        "'transfer_map' must be a mapping from layer index "
                        "to device"};
  for (auto &[layer, device] : it->items()) {
    bool isIndex = !layer.empty() && layer.size() <= 9 &&
                   std::all_of(layer.begin(), layer.end(),
                               [](char c) { return c >= '0' && c <= '9'; });
    std::string where = "transfer_map." + layer;
    if (!isIndex)
      return ReplaceError{where, "transfer_map key '" + layer +
                                     "' is not a layer index"};
    if (!device.is_string() || !isValidDevice(device.get<std::string>()))
      return ReplaceError{where, "invalid device " + device.dump() +
                                     " in transfer_map for layer " + layer};
  }
  return std::nullopt;
}

/// Experts: generate_device absent or cpu -> CPU experts.
bool expertsOnCpu(const std::optional<std::string> &device) {
  return !device || *device == "cpu";
}

std::optional<ReplaceError> checkExpertsKwargs(const json &kwargs,
                                               const ReplaceEntry &entry) {
  auto device = stringKwarg(kwargs, "generate_device");
  if (auto *err = std::get_if<ReplaceError>(&device))
    return *err;
  bool onCpu = expertsOnCpu(std::get<0>(device));
  if (entry.kind == Kind::Fixed) {
    if (entry.op == "kt.cpu_experts" && !onCpu)
      return ReplaceError{"generate_device",
                          "kt.cpu_experts needs generate_device \"cpu\""};
    if (entry.op == "kt.gpu_experts" && onCpu)
      return ReplaceError{"generate_device",
                          "kt.gpu_experts needs a cuda generate_device"};
  }
  for (const char *key : {"generate_op", "prefill_op"}) {
    auto op = stringKwarg(kwargs, key);
    if (auto *err = std::get_if<ReplaceError>(&op))
      return *err;
    const std::optional<std::string> &name = std::get<0>(op);
    if (!name)
      continue;
    if (std::find(std::begin(kExpertOps), std::end(kExpertOps), *name) ==
        std::end(kExpertOps))
      return ReplaceError{key, "unsupported " + std::string(key) + " '" +
                                   *name + "' for experts (supported: " +
                                   joinNames(kExpertOps, identity) + ")"};
    if (std::string_view(key) != "generate_op")
      continue;
    if ((*name == "KExpertsCPU" || *name == "KSFTExpertsCPU") && !onCpu)
      return ReplaceError{key, "generate_op '" + *name +
                                   "' runs on the CPU but generate_device is "
                                   "not \"cpu\""};
    if (*name == "KExpertsMarlin" && onCpu)
      return ReplaceError{key, "generate_op 'KExpertsMarlin' needs a cuda "
                               "generate_device"};
  }
  auto backend = stringKwarg(kwargs, "backend");
  if (auto *err = std::get_if<ReplaceError>(&backend))
    return *err;
  if (const auto &name = std::get<0>(backend);
      name && std::find(std::begin(kBackends), std::end(kBackends), *name) ==
                  std::end(kBackends))
    return ReplaceError{
        "backend", "unsupported backend '" + *name +
                       "' (supported: " + joinNames(kBackends, identity) + ")"};
  return std::nullopt;
}

const LinearOp *findLinearOp(std::string_view name) {
  for (const LinearOp &op : kLinearOps)
    if (op.name == name)
      return &op;
  return nullptr;
}

std::optional<ReplaceError> checkLinearKwargs(const json &kwargs) {
  for (const char *key : {"generate_op", "prefill_op"}) {
    auto op = stringKwarg(kwargs, key);
    if (auto *err = std::get_if<ReplaceError>(&op))
      return *err;
    const std::optional<std::string> &name = std::get<0>(op);
    if (name && !findLinearOp(*name))
      return ReplaceError{
          key,
          "unsupported " + std::string(key) + " '" + *name +
              "' for KTransformersLinear (supported: " +
              joinNames(kLinearOps, [](const LinearOp &o) { return o.name; }) +
              ")"};
  }
  return std::nullopt;
}

std::string unknownClassMessage(std::string_view replaceClass) {
  std::string message =
      "unknown replace class '" + std::string(replaceClass) + "'";
  std::string_view leaf = classLeaf(replaceClass);
  for (const ReplaceEntry &e : kReplaceClasses) {
    if (e.path != replaceClass && classLeaf(e.path) == leaf &&
        e.path.find('.') != std::string_view::npos) {
      message += "; did you mean '" + std::string(e.path) + "'?";
      return message;
    }
  }
  return message + " (expected \"default\", a kt op name or a "
                   "ktransformers.operators class path)";
}

} // namespace

bool kt::rules::isKnownReplaceClass(std::string_view replaceClass) {
  return findReplace(replaceClass) != nullptr;
}

std::optional<ReplaceError>
kt::rules::detail::checkReplace(std::string_view replaceClass,
                                const json &kwargs) {
  const ReplaceEntry *entry = findReplace(replaceClass);
  if (!entry)
    return ReplaceError{"", unknownClassMessage(replaceClass)};
  if (!kwargs.is_object())
    return ReplaceError{"", "replace.kwargs must be a mapping"};
  if (auto err = checkDevices(kwargs))
    return err;
  if (entry->kind == Kind::Linear)
    return checkLinearKwargs(kwargs);
  if (entry->kind == Kind::Experts ||
      (entry->kind == Kind::Fixed && entry->needs == kExperts))
    return checkExpertsKwargs(kwargs, *entry);
  return std::nullopt;
}

std::variant<Target, std::string>
kt::rules::resolveTarget(const Rule &r, std::string_view currentOp) {
  if (auto err = checkReplace(r.replaceClass, r.kwargs))
    return err->message;
  const ReplaceEntry &entry = *findReplace(r.replaceClass);
  if (entry.kind == Kind::Default)
    return Target{std::string(currentOp), ""};

  std::string_view base = baseKind(currentOp);
  bool fits = base == entry.needs ||
              (entry.op == kMla && base == kMla); // re-running on an MLA
  if (!fits)
    return r.replaceClass + " cannot replace a module of kind " +
           std::string(currentOp);

  bool isAlias = entry.path.substr(0, 3) != "kt.";
  std::string impl = isAlias ? std::string(classLeaf(entry.path)) : "";
  switch (entry.kind) {
  case Kind::Linear: {
    auto op = r.kwargs.find("generate_op");
    if (op == r.kwargs.end() || op->is_null())
      return Target{"kt.marlin_linear", "KLinearMarlin"};
    std::string name = op->get<std::string>();
    return Target{std::string(findLinearOp(name)->op), name};
  }
  case Kind::Experts: {
    auto device = r.kwargs.find("generate_device");
    bool onCpu = device == r.kwargs.end() || device->is_null() ||
                 device->get<std::string>() == "cpu";
    auto op = r.kwargs.find("generate_op");
    std::string name = op == r.kwargs.end() || op->is_null()
                           ? std::string()
                           : op->get<std::string>();
    return Target{onCpu ? "kt.cpu_experts" : "kt.gpu_experts", name};
  }
  default:
    return Target{std::string(entry.op), impl};
  }
}
