//===- ModelBuilder.h - helpers shared by the importers ---------*- C++ -*-===//
#ifndef KT_LIB_TRANSFORMS_IMPORT_MODELBUILDER_H
#define KT_LIB_TRANSFORMS_IMPORT_MODELBUILDER_H

#include "kt/Dialect/KtDialect.h"
#include "kt/Runtime/ModelConfig.h"
#include "kt/Runtime/Safetensors.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <set>
#include <string>
#include <vector>

namespace mlir::kt {

/// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string joinName(llvm::StringRef prefix, llvm::StringRef child);

/// Builds module ops while checking every referenced checkpoint tensor.
/// Problems are collected (not fatal) so one run reports all of them.
class ModelBuilder {
public:
  ModelBuilder(MLIRContext *ctx, const ::kt::ModelDir &dir,
               const ::kt::ModelConfig &config, std::string classPrefix);

  OpBuilder b;
  Location loc;
  const ::kt::ModelDir &dir;
  const ::kt::ModelConfig &cfg;
  Type act; ///< activation element type (the checkpoint's torch dtype)

  std::string cls(llvm::StringRef leaf) const { return classPrefix + leaf.str(); }

  RankedTensorType acts(int64_t dim);
  RankedTensorType ids();
  RankedTensorType idsK(int64_t k);
  RankedTensorType f32s(int64_t dim);

  bool has(llvm::StringRef tensor) const;
  /// The tensor, checked to exist with `shape`; records an error otherwise.
  WeightAttr weight(llvm::StringRef tensor, llvm::ArrayRef<int64_t> shape);
  /// Like weight() but returns null without error when the tensor is absent.
  WeightAttr optionalWeight(llvm::StringRef tensor,
                            llvm::ArrayRef<int64_t> shape);

  Value linear(llvm::StringRef name, Value x, int64_t in, int64_t out,
               bool bias = false);
  Value rmsNorm(llvm::StringRef name, llvm::StringRef leafClass, Value x,
                int64_t dim);
  Value embedding(llvm::StringRef name, Value ids);

  using BodyFn = llvm::function_ref<SmallVector<Value>(ValueRange args)>;
  /// A kt.module container whose body is built by `body` from the block
  /// arguments (one per input).
  ValueRange container(llvm::StringRef name, llvm::StringRef fullClass,
                       ValueRange inputs, TypeRange results, BodyFn body);

  /// SiLU-gated MLP container: down(silu(gate(x)) * up(x)).
  Value gatedMlp(llvm::StringRef name, llvm::StringRef fullClass, Value x,
                 int64_t hidden, int64_t inter, llvm::StringRef gate = "gate_proj",
                 llvm::StringRef up = "up_proj", llvm::StringRef down = "down_proj",
                 bool bias = false);

  /// Routed experts, per-expert (children `name.N`) when the checkpoint has
  /// `name.0.<gate>.weight`, fused (`name.gate_up_proj`) otherwise.
  Value experts(llvm::StringRef name, llvm::StringRef expertClass,
                llvm::StringRef fusedClass, Value x, Value ids, Value weights,
                int64_t numExperts, int64_t hidden, int64_t inter,
                llvm::StringRef gate = "gate_proj", llvm::StringRef up = "up_proj",
                llvm::StringRef down = "down_proj");

  /// The ForCausalLM root at the insertion point: (ids, positions) -> logits,
  /// holding the `model` container (built by `modelBody` from ids and
  /// positions) and `lm_head` (tied to the embedding when the config says so
  /// and the checkpoint has no lm_head.weight).
  void root(llvm::StringRef rootClass, llvm::StringRef modelClass,
            llvm::function_ref<Value(Value ids, Value pos)> modelBody);

  /// Record a problem found while importing.
  void error(std::string message) { errors.push_back(std::move(message)); }

  std::vector<std::string> errors;
  std::set<std::string> used;

private:
  WeightAttr makeWeight(const ::kt::TensorInfo &info);
  std::string classPrefix;
};

/// DeepSeek's yarn_get_mscale: 0.1 * m * ln(scale) + 1 for scale > 1.
double yarnMscale(double scale, double m);
/// A kt.rotary module from the config's rope parameters.
Operation *buildRotary(ModelBuilder &mb, llvm::StringRef name,
                       llvm::StringRef fullClass, Value positions, int64_t dim,
                       bool interleaved);
/// "transformers.models.<m>.modeling_<m>." for a transformers family.
std::string transformersClassPrefix(::kt::ModelFamily f);

/// Per-family builders: each builds the root module op (the ForCausalLM,
/// taking token ids and positions, returning logits) at the insertion point.
void buildDeepseek(ModelBuilder &mb);
void buildTransformersFamily(ModelBuilder &mb);

} // namespace mlir::kt

#endif
