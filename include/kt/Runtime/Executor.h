//===- Executor.h - runs a Plan on the CPU ---------------------*- C++ -*-===//
//
// Model = a Plan + its weights (mmap'd, converted or packed once at load) +
// per-layer caches. forward() runs the plan's ops in order for a batch of
// new tokens that continue the cached sequence:
//
//   auto model = Model::load(plan, opts);          // checks every weight
//   auto logits = model->forward(promptIds, true);  // prefill, all rows
//   auto next = model->forward({id}, false);        // decode, last row
//
// Prefill (more than one new token, or the first call) runs each op on its
// prefill device, decode on its generate device. This runtime executes CPU
// ops; a plan that puts an op on a cuda device is refused at load with an
// error naming the op.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_EXECUTOR_H
#define KT_RUNTIME_EXECUTOR_H

#include "kt/Runtime/ModelConfig.h"
#include "kt/Runtime/Plan.h"
#include "kt/Runtime/Tensor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kt {

/// Storage precision of the large matrices.
enum class ComputeType {
  F32,  ///< weights as the checkpoint has them (f32/bf16/f16 read as is)
  BF16, ///< linear, embedding, lm_head and expert weights held in bf16
};

struct ExecOptions {
  ComputeType dtype = ComputeType::F32;
  int threads = 0;        ///< 0: one per core
  int64_t maxContext = 0; ///< 0: the model's max_position_embeddings
  std::string modelDir;   ///< "" = plan.source
  /// Routed experts packed offline by kt-quant (PackedExperts.h): loaded
  /// from this directory instead of packed at load; "" = pack at load.
  std::string expertsDir;
  /// Packed routed experts split across NUMA nodes (docs/kernels.md, "NUMA
  /// split"): < 0: the KT_NUMA_NODES environment variable if set, else the
  /// machine's nodes; 0 or 1: off; K >= 2: K nodes (virtual ones, cut from
  /// the cores in order, unless the machine has exactly K).
  int numaNodes = -1;
  /// INT8 routed experts: multiply unquantised activations (W8A16: the
  /// weights' rounding only, prefill at about BF16 speed) instead of 8-bit
  /// ones (W8A8, the default: fastest). INT4 experts on an AVX512-VNNI CPU
  /// likewise keep fp32 activations on the row kernels
  /// (Int4Activations::Float). kt-run --int8-activations float.
  bool int8FloatActivations = false;
  /// INT8 W8A8 experts on the panel kernels: activation elements per 8-bit
  /// scale (kernels::MoeOptions::int8PanelBlock; 0: one per token; < 0:
  /// the kernels' default, kInt8PanelBlock). kt-run --int8-act-block.
  int int8ActBlock = -1;
};

/// Routed experts split across NUMA nodes (ExecOptions::numaNodes).
struct NumaSplitInfo {
  int nodes = 0; ///< 0: not split (no split asked, or no packed experts)
  /// The nodes used (kernels::CpuTopology::describe(): "2 nodes (hwloc):
  /// node 0: 8 cores, node 1: 8 cores"; "virtual, ..." for virtual ones).
  std::string topology;
  bool virtualNodes = false;
  /// Slices of the intermediate dimension (multiples of 128 columns, one
  /// per node at most: fewer nodes are used when I is small).
  int slices = 0;
  int physicalNodes = 0; ///< distinct memory nodes behind them
  /// Packed expert bytes bound to their node's memory (mbind), and buffers
  /// the OS refused to bind (they stay where first touch put them: the
  /// node's own threads packed them). Binding is tried when the nodes span
  /// more than one memory node.
  uint64_t boundBytes = 0;
  int bindFailures = 0;
};

/// Wall time and token counts of the calls so far.
struct ExecStats {
  double prefillSeconds = 0, decodeSeconds = 0;
  int64_t prefillTokens = 0, decodeTokens = 0;
};

class Model {
public:
  static Result<std::unique_ptr<Model>> load(const Plan &plan,
                                             const ExecOptions &opts);
  ~Model();

  /// Runs `tokens` at positions position() ... and appends them to the
  /// caches. Returns logits [tokens, vocab] when allLogits, else [1, vocab]
  /// for the last token. Errors (context full, token id out of range) leave
  /// the caches unchanged.
  Result<std::vector<float>> forward(const std::vector<int64_t> &tokens,
                                     bool allLogits);
  /// Forgets the cached sequence.
  void reset();
  /// Keeps the first `position` cached positions (a shared prompt prefix);
  /// ignored unless 0 <= position <= position().
  void rewind(int64_t position);

  int64_t position() const;
  int64_t contextLength() const;
  int64_t vocabSize() const;
  const ModelConfig &config() const;
  const ExecStats &stats() const;
  /// Bytes of weights and caches held (mmap'd views count as weights).
  uint64_t residentBytes() const;
  int threads() const;
  /// How the routed experts are split across NUMA nodes (nodes = 0: not).
  const NumaSplitInfo &numaSplit() const;

  struct Impl;

private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace kt

#endif // KT_RUNTIME_EXECUTOR_H
