//===- PackedExperts.h - routed experts packed ahead of time ----*- C++ -*-===//
//
// The pieces `kt-quant` and the executor share to pack a model's routed
// experts once, offline, and load them later instead of quantising at load:
//
//   * which plan ops hold routed experts, and what packed format an op runs
//     at (its rule's `backend`, or --dtype bf16);
//   * packing one op from the checkpoint exactly as Model::load does;
//   * the source fingerprint of an op (safetensors headers + file sizes);
//   * the output directory: one layer file per op (QuantFile.h) and a
//     manifest.json listing them, written last.
//
// docs/kt-quant.md describes the directory and the checks.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_PACKEDEXPERTS_H
#define KT_RUNTIME_PACKEDEXPERTS_H

#include "kt/Runtime/Executor.h"
#include "kt/Runtime/Kernels/QuantFile.h"

#include <optional>
#include <string>
#include <vector>

namespace kt {

/// Version of manifest.json this build writes and reads.
inline constexpr int kExpertsManifestVersion = 1;
inline constexpr const char *kExpertsManifestName = "manifest.json";

struct ExpertsManifestLayer {
  std::string op;   ///< plan op name, e.g. model.layers.3.mlp.experts
  std::string file; ///< layer file name inside the directory
  int numExperts = 0, hidden = 0, intermediate = 0;
  uint64_t fingerprint = 0; ///< sourceFingerprint of the op's tensors
  uint64_t bytes = 0;       ///< size of the layer file
};

/// manifest.json: what kt-quant wrote. The layer files carry their own
/// checked headers; the manifest says the directory is complete and which
/// file holds which op.
struct ExpertsManifest {
  int version = kExpertsManifestVersion;
  std::string model;        ///< --model as given
  std::string architecture; ///< config.json architectures[0]
  std::string rules;        ///< rule file used to find the experts
  std::string format;       ///< describeFormat(), e.g. "int4 g64 asym"
  std::vector<ExpertsManifestLayer> layers;
};

/// Writes DIR/manifest.json through DIR/manifest.json.tmp and a rename.
std::optional<Error> writeExpertsManifest(const std::string &dir,
                                          const ExpertsManifest &manifest);
/// Reads and checks DIR/manifest.json (version, fields, plain file names).
Result<ExpertsManifest> readExpertsManifest(const std::string &dir);

/// The layer file name kt-quant gives op `opName`: "<opName>.ktq".
std::string expertsLayerFileName(const std::string &opName);

/// Whether `op` holds routed experts (kt.cpu_experts, kt.gpu_experts, or a
/// kt.experts no rule replaced).
bool isRoutedExperts(const PlanOp &op);

/// The packed format the executor runs `op` at, and why ("the rules'
/// backend 'AMXInt8'", "--dtype bf16"); nullopt when it runs the fp32
/// reference (no backend, --dtype f32).
struct ExpertsFormat {
  kernels::QuantConfig config;
  std::string reason;
};
std::optional<ExpertsFormat> expertsFormat(const PlanOp &op, ComputeType dtype);

/// The op's source tensors as the checkpoint describes them, in the order
/// the fingerprint uses (gate, up, down per expert; or the fused tensors).
Result<std::vector<kernels::SourceTensor>>
expertsSourceTensors(const PlanOp &op, const ModelDir &dir);

/// Packs `op`'s experts from `weights` with `cfg`, exactly as Model::load
/// packs them (same conversions, same checks, same bytes).
Result<kernels::MoeWeights> packExpertsOp(const PlanOp &op,
                                          WeightFiles &weights,
                                          const kernels::QuantConfig &cfg,
                                          kernels::ThreadPool *pool);

} // namespace kt

#endif // KT_RUNTIME_PACKEDEXPERTS_H
