//===- ExecOps.h - plan op runners (internal to the executor) ---*- C++ -*-===//
//
// Each plan op kind has a runner, prepared once at load (weights looked up,
// converted or packed; caches sized) and run for every forward() call.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_EXEC_EXECOPS_H
#define KT_RUNTIME_EXEC_EXECOPS_H

#include "kt/Runtime/CpuOps.h"
#include "kt/Runtime/Executor.h"
#include "kt/Runtime/Kernels/NumaMoe.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kt::exec {

/// A plan value at run time: f32 or i64, [rows, cols] row-major.
struct Value {
  std::vector<float> f;
  std::vector<int64_t> i;
  int64_t rows = 0, cols = 0;
  void shapeF32(int64_t r, int64_t c) {
    rows = r;
    cols = c;
    f.resize(static_cast<size_t>(r * c));
  }
  void shapeI64(int64_t r, int64_t c) {
    rows = r;
    cols = c;
    i.resize(static_cast<size_t>(r * c));
  }
  void release() {
    std::vector<float>().swap(f);
    std::vector<int64_t>().swap(i);
  }
};

/// What runners need at load time.
struct LoadContext {
  WeightFiles &weights;
  const ExecOptions &opts;
  const ModelConfig &config;
  int64_t contextLength;
  /// Values that must be computed with fp32 weights even under --dtype
  /// bf16: router logits (a bf16 router flips near-tied expert choices).
  std::set<int> keepF32;
  cpu::ThreadPool *pool = nullptr; ///< for packing weights at load
  /// Per-node pools when routed experts are split across NUMA nodes.
  kernels::NumaPool *numa = nullptr;
  /// Expert ops split across NUMA nodes, their bytes bound to their node
  /// and buffers refused (NumaMoe::boundBytes / bindFailures).
  int numaSplitOps = 0, numaSlices = 0; // slices: the most of any op
  uint64_t numaBoundBytes = 0;
  int numaBindFailures = 0;
  /// Bytes of converted/packed weights and caches owned by runners.
  uint64_t ownedBytes = 0;
  uint64_t mappedBytes = 0;
};

/// What runners need at run time.
struct RunContext {
  cpu::ThreadPool *pool;
  kernels::NumaPool *numa; ///< as LoadContext::numa
  int64_t position;  ///< position of the first new token
  bool lastRowOnly;  ///< the logits op may compute only the last row
  int logitsValue;
};

class OpRunner {
public:
  virtual ~OpRunner() = default;
  /// Reads op.inputs from `values`, writes op.outputs.
  virtual void run(const PlanOp &op, std::vector<Value> &values,
                   RunContext &ctx) = 0;
  /// Keeps only the first `length` cached positions (0: a new sequence).
  virtual void rewind(int64_t length) { (void)length; }
  /// Grows caches so that `length` positions fit.
  virtual void reserve(int64_t length) { (void)length; }
};

/// Prepares the runner for `op`, or an Error naming the op and the cause.
Result<std::unique_ptr<OpRunner>> prepareOp(const PlanOp &op,
                                            LoadContext &ctx);

// Per family (OpsDense.cpp, OpsAttention.cpp, OpsMoe.cpp); return nullopt
// when the kind is not theirs.
std::optional<Result<std::unique_ptr<OpRunner>>>
prepareDenseOp(const PlanOp &op, LoadContext &ctx);
std::optional<Result<std::unique_ptr<OpRunner>>>
prepareAttentionOp(const PlanOp &op, LoadContext &ctx);
std::optional<Result<std::unique_ptr<OpRunner>>>
prepareMoeOp(const PlanOp &op, LoadContext &ctx);

//===----------------------------------------------------------------------===//
// Helpers shared by the runners (ExecWeights.cpp)
//===----------------------------------------------------------------------===//

/// "op 'model.layers.0.mlp.gate' (moe_gate)" for messages.
std::string describe(const PlanOp &op);

/// A weight matrix held for a CPU op: a zero-copy view of the checkpoint
/// when its dtype fits, else an owned converted copy.
struct HeldMatrix {
  Tensor tensor;
  cpu::MatrixView view;
};

/// Matrix for role `role` of `op` (2-D [rows, cols]; 3-D fused expert
/// tensors are viewed as [E*rows, cols]). `bf16` converts to bf16.
Result<HeldMatrix> loadMatrix(const PlanOp &op, const PlanWeight &w,
                              LoadContext &ctx, bool bf16);
Result<HeldMatrix> loadMatrix(const PlanOp &op, const std::string &role,
                              LoadContext &ctx, bool bf16);
/// A small weight (norm, bias, router bias) as fp32.
Result<std::vector<float>> loadVector(const PlanOp &op,
                                      const std::string &role,
                                      LoadContext &ctx);

/// Typed attribute access with defaults.
int64_t attrInt(const PlanOp &op, const char *name, int64_t dflt = 0);
double attrFloat(const PlanOp &op, const char *name, double dflt = 0);
bool attrBool(const PlanOp &op, const char *name, bool dflt = false);
std::string attrStr(const PlanOp &op, const char *name,
                    const std::string &dflt = "");

//===----------------------------------------------------------------------===//
// Routed experts (OpsMoe.cpp, PackedExperts.cpp)
//===----------------------------------------------------------------------===//

/// The packed format a backend name asks for (AMXInt8 -> INT8, AMXInt4 ->
/// INT4 g64 asymmetric, AMXBF16 / llamafile or `bf16` -> BF16); nullopt =
/// the fp32 reference.
std::optional<kernels::QuantConfig> formatFor(std::string backend, bool bf16);

/// The expert matrices of a routed-experts op: views of the checkpoint, or
/// converted copies (f16 widened to bf16 when `packable`).
struct ExpertMatrices {
  int64_t hidden = 0, intermediate = 0;
  std::vector<HeldMatrix> held;
  std::vector<cpu::ExpertWeights> experts;
};
Result<ExpertMatrices> gatherExperts(const PlanOp &op, LoadContext &ctx,
                                     bool packable);
/// The gathered matrices as packing sources, with their common dtype.
Result<std::pair<kernels::DType, std::vector<kernels::ExpertSource>>>
expertSources(const PlanOp &op, const ExpertMatrices &m);
/// Packs gathered matrices (what Model::load and kt-quant both run).
Result<kernels::MoeWeights> packExperts(const PlanOp &op,
                                        const ExpertMatrices &m,
                                        const kernels::QuantConfig &cfg,
                                        cpu::ThreadPool *pool);
/// The op's packed experts from ExecOptions::expertsDir (kt-quant's
/// output), checked against the op, its format and the checkpoint.
Result<kernels::MoeWeights> loadPackedExperts(const PlanOp &op,
                                              LoadContext &ctx);

} // namespace kt::exec

#endif // KT_RUNTIME_EXEC_EXECOPS_H
