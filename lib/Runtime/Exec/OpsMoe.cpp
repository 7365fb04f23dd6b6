//===- OpsMoe.cpp - routers and routed-expert runners --------------------===//

#include "ExecOps.h"

#include <algorithm>
#include <cctype>

namespace kt::exec {
namespace {

class TopkRouteRunner : public OpRunner {
public:
  int64_t topK = 0;
  bool norm = false;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &) override {
    const Value &logits = v[op.inputs[0]];
    Value &ids = v[op.outputs[0]];
    Value &w = v[op.outputs[1]];
    ids.shapeI64(logits.rows, topK);
    w.shapeF32(logits.rows, topK);
    cpu::topkSoftmax(logits.f.data(), logits.rows, logits.cols, topK, norm,
                     ids.i.data(), w.f.data());
  }
};

class MoeGateRunner : public OpRunner {
public:
  cpu::MoeGateParams params;
  HeldMatrix weight; // router weight, kept fp32 (routing is sensitive)
  std::vector<float> bias;
  std::vector<float> logits;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &ctx) override {
    const Value &x = v[op.inputs[0]];
    Value &ids = v[op.outputs[0]];
    Value &w = v[op.outputs[1]];
    logits.resize(static_cast<size_t>(x.rows * params.numExperts));
    cpu::linear(x.f.data(), x.rows, weight.view, nullptr, logits.data(),
                ctx.pool);
    ids.shapeI64(x.rows, params.topK);
    w.shapeF32(x.rows, params.topK);
    cpu::moeGate(params, logits.data(), bias.empty() ? nullptr : bias.data(),
                 x.rows, ids.i.data(), w.f.data());
  }
};

/// Routed experts. Two implementations: the exact fp32 reference over the
/// checkpoint's matrices (no backend, --dtype f32), and the packed kernels
/// of lib/Runtime/Kernels (a backend such as AMXInt8 / AMXInt4 / BF16, or
/// --dtype bf16), quantised once at load.
class ExpertsRunner : public OpRunner {
public:
  int64_t hidden = 0;
  std::vector<HeldMatrix> held;
  std::vector<cpu::ExpertWeights> experts;
  std::unique_ptr<kernels::MoeWeights> packed;
  /// Instead of `packed` when experts are split across NUMA nodes.
  std::unique_ptr<kernels::NumaMoe> numaPacked;
  bool int8FloatActivations = false; ///< ExecOptions::int8FloatActivations
  int int8ActBlock = -1;             ///< ExecOptions::int8ActBlock
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &ctx) override {
    const Value &x = v[op.inputs[0]];
    const Value &ids = v[op.inputs[1]];
    const Value &w = v[op.inputs[2]];
    Value &out = v[op.outputs[0]];
    out.shapeF32(x.rows, hidden);
    if (!packed && !numaPacked) {
      cpu::expertsReference(x.f.data(), x.rows, hidden, ids.i.data(),
                            w.f.data(), ids.cols, experts, out.f.data(),
                            ctx.pool);
      return;
    }
    kernels::MoeArgs args;
    args.tokens = static_cast<int>(x.rows);
    args.topK = static_cast<int>(ids.cols);
    args.x = x.f.data();
    args.xType = kernels::DType::F32;
    args.ids = ids.i.data();
    args.idType = kernels::IdType::I64;
    args.weights = w.f.data();
    args.out = out.f.data();
    args.outType = kernels::DType::F32;
    kernels::MoeOptions opts;
    opts.pool = ctx.pool;
    if (int8ActBlock >= 0)
      opts.int8PanelBlock = int8ActBlock;
    if (int8FloatActivations) { // INT8 and INT4 experts keep fp32 activations
      opts.int8Activations = kernels::Int8Activations::Float;
      opts.int4Activations = kernels::Int4Activations::Float;
    }
    if (numaPacked)
      kernels::moeForward(*numaPacked, args, *ctx.numa, opts);
    else
      kernels::moeForward(*packed, args, opts);
  }
};

Result<std::unique_ptr<OpRunner>> prepareExperts(const PlanOp &op,
                                                 LoadContext &ctx) {
  auto r = std::make_unique<ExpertsRunner>();
  r->int8FloatActivations = ctx.opts.int8FloatActivations;
  r->int8ActBlock = ctx.opts.int8ActBlock;
  if (!kernels::int8PanelBlockValid(r->int8ActBlock))
    return Error{"ExecOptions::int8ActBlock " +
                 std::to_string(r->int8ActBlock) +
                 " is not a multiple of 64 (activation elements per scale)"};
  auto quant =
      formatFor(attrStr(op, "backend"), ctx.opts.dtype == ComputeType::BF16);
  if (!ctx.opts.expertsDir.empty()) { // packed offline by kt-quant
    auto w = loadPackedExperts(op, ctx);
    if (!w.ok())
      return w.error();
    r->hidden = w->hidden;
    r->packed = std::make_unique<kernels::MoeWeights>(std::move(*w));
    ctx.ownedBytes += r->packed->memoryBytes();
    return std::unique_ptr<OpRunner>(std::move(r));
  }
  auto m = gatherExperts(op, ctx, quant.has_value());
  if (!m.ok())
    return m.error();
  r->hidden = m->hidden;
  if (!quant) {
    r->held = std::move(m->held);
    r->experts = std::move(m->experts);
    return std::unique_ptr<OpRunner>(std::move(r));
  }
  // The packed copy replaces the checkpoint's views (dropped with `m`).
  if (ctx.numa) { // split across NUMA nodes (docs/kernels.md, "NUMA split")
    auto src = expertSources(op, *m);
    if (!src.ok())
      return src.error();
    r->numaPacked = std::make_unique<kernels::NumaMoe>(kernels::packNumaMoe(
        src->second, src->first, static_cast<int>(m->hidden),
        static_cast<int>(m->intermediate), *quant, *ctx.numa));
    ctx.ownedBytes += r->numaPacked->memoryBytes();
    ++ctx.numaSplitOps;
    ctx.numaSlices = std::max(
        ctx.numaSlices, static_cast<int>(r->numaPacked->bounds.size()) - 1);
    ctx.numaBoundBytes += r->numaPacked->boundBytes;
    ctx.numaBindFailures += r->numaPacked->bindFailures;
    return std::unique_ptr<OpRunner>(std::move(r));
  }
  auto w = packExperts(op, *m, *quant, ctx.pool);
  if (!w.ok())
    return w.error();
  r->packed = std::make_unique<kernels::MoeWeights>(std::move(*w));
  ctx.ownedBytes += r->packed->memoryBytes();
  return std::unique_ptr<OpRunner>(std::move(r));
}

} // namespace

std::optional<kernels::QuantConfig> formatFor(std::string backend, bool bf16) {
  std::transform(backend.begin(), backend.end(), backend.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  kernels::QuantConfig cfg;
  if (backend.find("int8") != std::string::npos) {
    cfg.format = kernels::WeightFormat::INT8;
    return cfg;
  }
  if (backend.find("int4") != std::string::npos) {
    cfg.format = kernels::WeightFormat::INT4;
    cfg.groupSize = 64;
    cfg.asymmetric = true;
    return cfg;
  }
  if (backend.find("bf16") != std::string::npos || backend == "llamafile" ||
      bf16) {
    cfg.format = kernels::WeightFormat::BF16;
    return cfg;
  }
  return std::nullopt;
}

Result<ExpertMatrices> gatherExperts(const PlanOp &op, LoadContext &ctx,
                                     bool packable) {
  ExpertMatrices r;
  const int64_t numExperts = attrInt(op, "num_experts");
  r.hidden = attrInt(op, "hidden_size");
  const int64_t inter = attrInt(op, "intermediate_size");
  r.intermediate = inter;
  if (numExperts <= 0 || r.hidden <= 0 || inter <= 0)
    return Error{describe(op) + ": num_experts, hidden_size and "
                                "intermediate_size must be positive"};
  // Packing reads f32 or bf16 rows; f16 checkpoints are widened to bf16.
  auto load = [&](const PlanWeight &w) {
    return loadMatrix(op, w, ctx, packable && w.dtype == DType::F16);
  };
  auto fused = op.weights.find("gate_up_fused");
  if (fused != op.weights.end()) {
    auto down = op.weights.find("down_fused");
    if (down == op.weights.end())
      return Error{describe(op) + ": gate_up_fused without down_fused"};
    auto gu = load(fused->second);
    if (!gu.ok())
      return gu.error();
    auto dn = load(down->second);
    if (!dn.ok())
      return dn.error();
    if (gu->view.rows != numExperts * 2 * inter || gu->view.cols != r.hidden ||
        dn->view.rows != numExperts * r.hidden || dn->view.cols != inter)
      return Error{describe(op) + ": fused expert tensors do not match " +
                   std::to_string(numExperts) + " experts of " +
                   std::to_string(r.hidden) + "x" + std::to_string(inter)};
    for (int64_t e = 0; e < numExperts; ++e)
      r.experts.push_back({gu->view.rowRange(e * 2 * inter, inter),
                           gu->view.rowRange(e * 2 * inter + inter, inter),
                           dn->view.rowRange(e * r.hidden, r.hidden)});
    r.held.push_back(std::move(*gu));
    r.held.push_back(std::move(*dn));
  } else {
    auto g = op.weightLists.find("gate_proj");
    auto u = op.weightLists.find("up_proj");
    auto d = op.weightLists.find("down_proj");
    if (g == op.weightLists.end() || u == op.weightLists.end() ||
        d == op.weightLists.end() ||
        static_cast<int64_t>(g->second.size()) != numExperts ||
        u->second.size() != g->second.size() ||
        d->second.size() != g->second.size())
      return Error{describe(op) + ": needs " + std::to_string(numExperts) +
                   " gate_proj, up_proj and down_proj weights"};
    for (int64_t e = 0; e < numExperts; ++e) {
      cpu::ExpertWeights ew;
      for (auto [list, slot] : {std::pair{&g->second, &ew.gate},
                                {&u->second, &ew.up},
                                {&d->second, &ew.down}}) {
        auto m = load((*list)[e]);
        if (!m.ok())
          return m.error();
        *slot = m->view;
        r.held.push_back(std::move(*m));
      }
      if (ew.gate.rows != inter || ew.gate.cols != r.hidden ||
          ew.up.rows != inter || ew.up.cols != r.hidden ||
          ew.down.rows != r.hidden || ew.down.cols != inter)
        return Error{describe(op) + ": expert " + std::to_string(e) +
                     " has the wrong shape"};
      r.experts.push_back(ew);
    }
  }
  return r;
}

Result<std::pair<kernels::DType, std::vector<kernels::ExpertSource>>>
expertSources(const PlanOp &op, const ExpertMatrices &m) {
  // All matrices share one type after the loads of gatherExperts.
  kernels::DType src = m.experts[0].gate.type == cpu::WType::F32
                           ? kernels::DType::F32
                           : kernels::DType::BF16;
  std::vector<kernels::ExpertSource> sources;
  for (const auto &e : m.experts) {
    if ((e.gate.type == cpu::WType::F32) != (src == kernels::DType::F32))
      return Error{describe(op) + ": experts mix weight dtypes"};
    sources.push_back({e.gate.data, e.up.data, e.down.data});
  }
  return std::make_pair(src, std::move(sources));
}

Result<kernels::MoeWeights> packExperts(const PlanOp &op,
                                        const ExpertMatrices &m,
                                        const kernels::QuantConfig &cfg,
                                        cpu::ThreadPool *pool) {
  auto src = expertSources(op, m);
  if (!src.ok())
    return src.error();
  return kernels::packMoe(src->second, src->first, static_cast<int>(m.hidden),
                          static_cast<int>(m.intermediate), cfg, pool);
}

std::optional<Result<std::unique_ptr<OpRunner>>>
prepareMoeOp(const PlanOp &op, LoadContext &ctx) {
  using R = Result<std::unique_ptr<OpRunner>>;
  if (op.kind == "topk_route") {
    auto r = std::make_unique<TopkRouteRunner>();
    r->topK = attrInt(op, "top_k");
    r->norm = attrBool(op, "norm_topk_prob");
    if (r->topK <= 0)
      return R(Error{describe(op) + ": top_k must be positive"});
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  if (op.kind == "moe_gate") {
    auto r = std::make_unique<MoeGateRunner>();
    auto &p = r->params;
    p.topK = attrInt(op, "top_k");
    p.numExperts = attrInt(op, "num_experts");
    p.nGroup = attrInt(op, "n_group", 1);
    p.topkGroup = attrInt(op, "topk_group", 1);
    p.scoringFunc = attrStr(op, "scoring_func", "softmax");
    p.topkMethod = attrStr(op, "topk_method", "greedy");
    p.normTopkProb = attrBool(op, "norm_topk_prob");
    p.routedScalingFactor = attrFloat(op, "routed_scaling_factor", 1.0);
    auto w = loadMatrix(op, "weight", ctx, false);
    if (!w.ok())
      return R(w.error());
    r->weight = std::move(*w);
    if (r->weight.view.rows != p.numExperts)
      return R(Error{describe(op) + ": router weight has " +
                     std::to_string(r->weight.view.rows) + " rows for " +
                     std::to_string(p.numExperts) + " experts"});
    if (op.weights.count("score_bias")) {
      auto b = loadVector(op, "score_bias", ctx);
      if (!b.ok())
        return R(b.error());
      r->bias = std::move(*b);
    }
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  if (op.kind == "cpu_experts" || op.kind == "gpu_experts")
    return R(prepareExperts(op, ctx));
  return std::nullopt;
}

} // namespace kt::exec
