//===- Executor.cpp - loads a Plan and runs it on the CPU ----------------===//

#include "kt/Runtime/Executor.h"
#include "ExecOps.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace kt {

using exec::OpRunner;
using exec::Value;

struct Model::Impl {
  Plan plan;
  ModelConfig config;
  std::unique_ptr<WeightFiles> weights;
  std::vector<std::unique_ptr<OpRunner>> runners;
  /// Index of the last op reading each value (-1: never read).
  std::vector<int> lastUse;
  std::unique_ptr<cpu::ThreadPool> pool;
  /// Per-node pools of the NUMA-split experts (null: no split).
  std::unique_ptr<kernels::NumaPool> numa;
  int64_t position = 0, contextLength = 0;
  uint64_t residentBytes = 0;
  NumaSplitInfo numaSplit;
  ExecStats stats;
};

Result<std::unique_ptr<OpRunner>> exec::prepareOp(const PlanOp &op,
                                                  LoadContext &ctx) {
  if (auto r = prepareDenseOp(op, ctx))
    return std::move(*r);
  if (auto r = prepareAttentionOp(op, ctx))
    return std::move(*r);
  if (auto r = prepareMoeOp(op, ctx))
    return std::move(*r);
  if (op.kind == "marlin_linear" || op.kind == "fp8_linear")
    return Error{describe(op) + " is a CUDA kernel; the CPU runtime cannot "
                                "run it (place it on cuda or use kt.linear)"};
  return Error{describe(op) + ": the CPU runtime has no implementation of "
                              "kt." + op.kind};
}

/// The first device of `op` that is not the CPU, or "".
static std::string nonCpuDevice(const PlanOp &op) {
  for (const std::string *d : {&op.prefillDevice, &op.generateDevice,
                               &op.prefillFrom, &op.generateFrom})
    if (!d->empty() && *d != "cpu")
      return *d;
  return "";
}

/// Pool options that pin thread t to core t (one thread per core, cores
/// in topology order) when there are no more threads than cores. Thread 0
/// is the loading thread, which runs the ops. KT_NO_PIN=1 turns it off.
static kernels::ThreadPoolOptions pinnedPool(int threads) {
  kernels::ThreadPoolOptions o;
  const kernels::CpuTopology &topo = kernels::CpuTopology::host();
  std::vector<kernels::CpuCore> cores;
  for (const auto &node : topo.nodes)
    cores.insert(cores.end(), node.cores.begin(), node.cores.end());
  if (cores.empty() || threads > static_cast<int>(cores.size()) ||
      std::getenv("KT_NO_PIN"))
    return o;
  o.onStart = [cores](int t) { kernels::pinCurrentThread(cores[t]); };
  return o;
}

/// The NUMA nodes to split packed experts across (<= 1: no split).
static int numaNodes(const ExecOptions &opts) {
  if (opts.numaNodes >= 0)
    return opts.numaNodes;
  if (const char *env = std::getenv("KT_NUMA_NODES"))
    return std::atoi(env);
  return static_cast<int>(kernels::CpuTopology::host().nodes.size());
}

Result<std::unique_ptr<Model>> Model::load(const Plan &plan,
                                           const ExecOptions &opts) {
  auto impl = std::make_unique<Impl>();
  impl->plan = plan;
  std::string dirPath = opts.modelDir.empty() ? plan.source : opts.modelDir;
  // Name the first module placed off the CPU (transfers only follow from
  // such placements), and count them all.
  const PlanOp *offCpu = nullptr;
  int offCount = 0;
  for (const PlanOp &op : plan.ops) {
    if (nonCpuDevice(op).empty())
      continue;
    ++offCount;
    if (!offCpu || (offCpu->name.empty() && !op.name.empty()))
      offCpu = &op;
  }
  if (offCpu)
    return Error{exec::describe(*offCpu) + " is placed on " +
                 nonCpuDevice(*offCpu) + " (" + std::to_string(offCount) +
                 " ops are off the CPU), but this runtime runs on the CPU "
                 "only (no CUDA support yet); place every module on cpu"};
  auto dir = openModelDir(dirPath);
  if (!dir.ok())
    return dir.error();
  auto cfg = parseModelConfig(dir->config, dirPath + "/config.json");
  if (!cfg.ok())
    return cfg.error();
  impl->config = std::move(*cfg);
  impl->weights = std::make_unique<WeightFiles>(std::move(*dir));
  impl->contextLength = opts.maxContext > 0 ? opts.maxContext
                        : impl->config.maxPositionEmbeddings > 0
                            ? impl->config.maxPositionEmbeddings
                            : 4096;
  if (plan.tokensValue < 0 || plan.positionsValue < 0 || plan.logitsValue < 0)
    return Error{"plan from " + plan.source +
                 " lacks its tokens, positions or logits value"};

  int threads = opts.threads > 0
                    ? opts.threads
                    : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(threads, 1);
  impl->pool = std::make_unique<cpu::ThreadPool>(threads, pinnedPool(threads));
  if (int nodes = numaNodes(opts); nodes > 1) {
    kernels::NumaPoolOptions no;
    no.threads = threads;
    no.pin = !std::getenv("KT_NO_PIN");
    impl->numa = std::make_unique<kernels::NumaPool>(
        kernels::CpuTopology::host().split(nodes), no);
  }
  exec::LoadContext ctx{*impl->weights, opts, impl->config,
                        impl->contextLength};
  ctx.pool = impl->pool.get();
  ctx.numa = impl->numa.get();
  for (const PlanOp &op : plan.ops)
    if (op.kind == "topk_route")
      ctx.keepF32.insert(op.inputs[0]);
  for (const PlanOp &op : plan.ops) {
    auto r = exec::prepareOp(op, ctx);
    if (!r.ok())
      return r.error();
    impl->runners.push_back(std::move(*r));
  }
  impl->residentBytes = ctx.ownedBytes + ctx.mappedBytes;
  if (impl->numa && ctx.numaSplitOps > 0) {
    const kernels::CpuTopology &t = impl->numa->topology();
    impl->numaSplit = {impl->numa->nodes(), t.describe(),
                       t.isVirtual,         ctx.numaSlices,
                       t.physicalNodes(),   ctx.numaBoundBytes,
                       ctx.numaBindFailures};
  }
  impl->lastUse.assign(plan.values.size(), -1);
  for (size_t i = 0; i < plan.ops.size(); ++i)
    for (int in : plan.ops[i].inputs)
      impl->lastUse[in] = static_cast<int>(i);
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

Result<std::vector<float>> Model::forward(const std::vector<int64_t> &tokens,
                                          bool allLogits) {
  Impl &m = *impl_;
  auto t = static_cast<int64_t>(tokens.size());
  if (t == 0)
    return Error{"no tokens to run"};
  if (m.position + t > m.contextLength)
    return Error{std::to_string(m.position + t) +
                 " positions exceed the context length " +
                 std::to_string(m.contextLength) + " (" +
                 std::to_string(m.position) + " cached + " +
                 std::to_string(t) + " new tokens)"};
  for (int64_t id : tokens)
    if (id < 0 || id >= m.config.vocabSize)
      return Error{"token id " + std::to_string(id) +
                   " is outside the vocabulary [0, " +
                   std::to_string(m.config.vocabSize) + ")"};
  for (auto &r : m.runners)
    r->reserve(m.position + t);

  auto start = std::chrono::steady_clock::now();
  std::vector<Value> values(m.plan.values.size());
  Value &ids = values[m.plan.tokensValue];
  ids.shapeI64(t, 1);
  std::copy(tokens.begin(), tokens.end(), ids.i.begin());
  Value &pos = values[m.plan.positionsValue];
  pos.shapeI64(t, 1);
  for (int64_t i = 0; i < t; ++i)
    pos.i[i] = m.position + i;

  exec::RunContext ctx{m.pool.get(), m.numa.get(), m.position, !allLogits,
                       m.plan.logitsValue};
  for (size_t i = 0; i < m.plan.ops.size(); ++i) {
    const PlanOp &op = m.plan.ops[i];
    m.runners[i]->run(op, values, ctx);
    for (int in : op.inputs)
      if (m.lastUse[in] == static_cast<int>(i) && in != m.plan.logitsValue)
        values[in].release();
  }
  Value &logits = values[m.plan.logitsValue];
  int64_t vocab = logits.cols;
  std::vector<float> out;
  if (allLogits || logits.rows == 1)
    out = std::move(logits.f);
  else
    out.assign(logits.f.end() - vocab, logits.f.end());

  double secs = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  if (m.position == 0 || t > 1) {
    m.stats.prefillSeconds += secs;
    m.stats.prefillTokens += t;
  } else {
    m.stats.decodeSeconds += secs;
    m.stats.decodeTokens += t;
  }
  m.position += t;
  return out;
}

void Model::reset() { rewind(0); }

void Model::rewind(int64_t position) {
  if (position < 0 || position > impl_->position)
    return;
  for (auto &r : impl_->runners)
    r->rewind(position);
  impl_->position = position;
}

int64_t Model::position() const { return impl_->position; }
int64_t Model::contextLength() const { return impl_->contextLength; }
int64_t Model::vocabSize() const { return impl_->config.vocabSize; }
const ModelConfig &Model::config() const { return impl_->config; }
const ExecStats &Model::stats() const { return impl_->stats; }
uint64_t Model::residentBytes() const { return impl_->residentBytes; }
int Model::threads() const { return impl_->pool->size(); }
const NumaSplitInfo &Model::numaSplit() const { return impl_->numaSplit; }

} // namespace kt
