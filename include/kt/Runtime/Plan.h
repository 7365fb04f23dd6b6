//===- Plan.h - the executable plan the compiler hands the runtime -*- C++ -*-===//
//
// The boundary between kt's compiler (MLIR) and its runtime (no MLIR). The
// lowering pass `kt-lower-plan` flattens a placed kt module tree into a Plan:
// a list of leaf and compute ops in execution order, each naming its input
// and output values by number, its devices, its kernel, its weights (tensor
// + file, never data) and its scalar attributes. Containers (kt.module,
// kt.mla, kt.experts) disappear: their block arguments and results become
// the values they stand for.
//
// A Plan is serialised as JSON (docs/plan.md has the schema); `kt-opt
// --plan=FILE` writes it, and `kt-run` lowers in memory. Plain C++: only
// nlohmann-json.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_PLAN_H
#define KT_RUNTIME_PLAN_H

#include "kt/Runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kt {

/// Version of the JSON schema; parsePlan refuses other versions.
inline constexpr int kPlanVersion = 1;

/// A weight tensor as the checkpoint stores it.
struct PlanWeight {
  std::string tensor; ///< name inside the safetensors file
  std::string file;   ///< file relative to the model directory
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

/// Element type of a plan value: activations are f32 [rows, cols], ids are
/// i64 [rows, cols] (token ids and positions have cols = 1).
enum class ValueType { F32, I64 };

struct PlanValue {
  ValueType type = ValueType::F32;
  int64_t cols = 0; ///< size of the last dimension (1 for a 1-D id vector)
};

struct PlanOp {
  /// The kt op without the dialect prefix: "embedding", "linear",
  /// "rms_norm", "rotary", "attention_core", "mla_core", "topk_route",
  /// "moe_gate", "cpu_experts", "gpu_experts", "marlin_linear",
  /// "fp8_linear", "lora_linear", "add", "silu_mul", "sigmoid_gate",
  /// "slice", "transfer".
  std::string kind;
  std::string name;        ///< module name; "" for compute ops
  std::string moduleClass; ///< original class; "" for compute ops
  /// Devices ("cpu", "cuda:0", ...). Compute ops take their enclosing
  /// module's. For "transfer": the destination of each phase.
  std::string generateDevice, prefillDevice;
  /// For "transfer": the source of each phase.
  std::string generateFrom, prefillFrom;
  /// Kernel family the runtime should use, e.g. "cpu.linear",
  /// "cpu.experts.reference", "cpu.experts.AMXInt8", "cuda.marlin".
  std::string kernel;
  std::vector<int> inputs, outputs; ///< value ids
  /// Single weights by role: "weight", "bias", "weight_scale", "score_bias",
  /// "kv_b" (mla_core: the kv_b_proj weight, for the latent cache and
  /// absorption), "gate_up_fused", "down_fused".
  std::map<std::string, PlanWeight> weights;
  /// Weight arrays by role: "gate_proj", "up_proj", "down_proj" (one per
  /// expert).
  std::map<std::string, std::vector<PlanWeight>> weightLists;
  /// Scalar attributes (ints, floats, bools, strings): the op's own
  /// attributes (eps, num_heads, top_k, ...) and the rule's kwargs. For
  /// mla_core, "absorb" (true inside an injected kt.mla).
  nlohmann::json attrs = nlohmann::json::object();
};

struct Plan {
  int version = kPlanVersion;
  std::string architecture; ///< config.json architectures[0]
  std::string source;       ///< model directory the plan was made from
  std::vector<PlanValue> values;
  int tokensValue = -1;    ///< value id of the input token ids (i64 [T,1])
  int positionsValue = -1; ///< value id of the positions (i64 [T,1])
  int logitsValue = -1;    ///< value id of the output logits (f32 [T,V])
  std::vector<PlanOp> ops; ///< in execution order
  /// Bytes of weights per device and phase, e.g. {"cpu": 123, "cuda:0": 45}
  /// for the generate phase (the memory report's figures).
  std::map<std::string, int64_t> generateBytes;
};

/// JSON round trip. parsePlan checks the schema (version, value ids in
/// range, each value defined once before use, known dtypes) and returns an
/// Error naming `displayName` and the op index on failure.
nlohmann::json planToJson(const Plan &plan);
Result<Plan> planFromJson(const nlohmann::json &j,
                          const std::string &displayName);
std::string serializePlan(const Plan &plan); ///< pretty JSON text
Result<Plan> parsePlan(const std::string &text, const std::string &displayName);

} // namespace kt

#endif // KT_RUNTIME_PLAN_H
