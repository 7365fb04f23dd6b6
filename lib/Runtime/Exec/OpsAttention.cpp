//===- OpsAttention.cpp - rotary, GQA attention and MLA runners ----------===//

#include "ExecOps.h"

namespace kt::exec {
namespace {

class RotaryRunner : public OpRunner {
public:
  cpu::RopeParams params;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &) override {
    const Value &pos = v[op.inputs[0]];
    Value &cos = v[op.outputs[0]];
    Value &sin = v[op.outputs[1]];
    cos.shapeF32(pos.rows, params.dim);
    sin.shapeF32(pos.rows, params.dim);
    cpu::ropeTables(params, pos.i.data(), pos.rows, cos.f.data(), sin.f.data());
  }
};

/// Capacity grows by doubling up to the context length; the cache layouts
/// put the position first, so growing keeps the filled prefix in place.
/// Grows `capacity` to hold `need` positions and resizes each buffer to
/// capacity * its row size ({buffer, row elements} pairs).
static void growCache(
    int64_t &capacity, int64_t need, int64_t limit,
    std::initializer_list<std::pair<std::vector<float> *, int64_t>> buffers) {
  if (need <= capacity)
    return;
  int64_t cap = capacity ? capacity : 256;
  while (cap < need)
    cap *= 2;
  capacity = std::min(cap, limit);
  for (auto [buf, row] : buffers)
    buf->resize(static_cast<size_t>(capacity * row));
}

class AttentionRunner : public OpRunner {
public:
  cpu::AttentionParams params;
  cpu::KvCache cache;
  int64_t limit = 0;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &ctx) override {
    const Value &q = v[op.inputs[0]];
    Value &out = v[op.outputs[0]];
    out.shapeF32(q.rows, params.numHeads * params.headDim);
    params.tokens = q.rows;
    cpu::attention(params, q.f.data(), v[op.inputs[1]].f.data(),
                   v[op.inputs[2]].f.data(), v[op.inputs[3]].f.data(),
                   v[op.inputs[4]].f.data(), cache, out.f.data(), ctx.pool);
  }
  void rewind(int64_t length) override {
    cache.length = std::min(cache.length, length);
  }
  void reserve(int64_t length) override {
    int64_t row = cache.kvHeads * cache.headDim;
    growCache(cache.capacity, length, limit,
              {{&cache.k, row}, {&cache.v, row}});
  }
};

class MlaRunner : public OpRunner {
public:
  cpu::MlaParams params;
  cpu::MlaCache cache;
  HeldMatrix kvB;
  int64_t limit = 0;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &ctx) override {
    const Value &q = v[op.inputs[0]];
    Value &out = v[op.outputs[0]];
    out.shapeF32(q.rows, params.numHeads * params.vHeadDim);
    params.tokens = q.rows;
    cpu::mla(params, q.f.data(), v[op.inputs[1]].f.data(),
             v[op.inputs[2]].f.data(), v[op.inputs[3]].f.data(),
             v[op.inputs[4]].f.data(), kvB.view, cache, out.f.data(), ctx.pool);
  }
  void rewind(int64_t length) override {
    cache.length = std::min(cache.length, length);
  }
  void reserve(int64_t length) override {
    growCache(cache.capacity, length, limit,
              {{&cache.latent, cache.kvLoraRank}, {&cache.kPe, cache.ropeDim}});
  }
};

} // namespace

std::optional<Result<std::unique_ptr<OpRunner>>>
prepareAttentionOp(const PlanOp &op, LoadContext &ctx) {
  using R = Result<std::unique_ptr<OpRunner>>;
  if (op.kind == "rotary") {
    auto r = std::make_unique<RotaryRunner>();
    auto &p = r->params;
    p.scaling = attrStr(op, "scaling", "default");
    p.dim = attrInt(op, "dim");
    p.base = attrFloat(op, "base", 10000);
    p.maxPosition = attrInt(op, "max_position");
    p.factor = attrFloat(op, "factor", 1);
    p.originalMaxPosition = attrInt(op, "original_max_position");
    p.betaFast = attrFloat(op, "beta_fast", 32);
    p.betaSlow = attrFloat(op, "beta_slow", 1);
    p.mscale = attrFloat(op, "mscale", 1);
    p.mscaleAllDim = attrFloat(op, "mscale_all_dim", 0);
    p.lowFreqFactor = attrFloat(op, "low_freq_factor", 1);
    p.highFreqFactor = attrFloat(op, "high_freq_factor", 4);
    if (p.dim <= 0 || p.dim % 2)
      return R(Error{describe(op) + ": rotary dim must be positive and even"});
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  if (op.kind == "attention_core") {
    auto r = std::make_unique<AttentionRunner>();
    auto &p = r->params;
    p.numHeads = attrInt(op, "num_heads");
    p.numKvHeads = attrInt(op, "num_kv_heads");
    p.headDim = attrInt(op, "head_dim");
    p.rotaryDim = attrInt(op, "rotary_dim", p.headDim);
    p.scale = attrFloat(op, "scale");
    p.interleaved = attrBool(op, "interleaved");
    p.slidingWindow = ctx.config.slidingWindow;
    if (p.numHeads <= 0 || p.numKvHeads <= 0 || p.headDim <= 0 ||
        p.numHeads % p.numKvHeads)
      return R(Error{describe(op) + ": bad head counts"});
    r->cache.kvHeads = p.numKvHeads;
    r->cache.headDim = p.headDim;
    r->limit = ctx.contextLength;
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  if (op.kind == "mla_core") {
    auto r = std::make_unique<MlaRunner>();
    auto &p = r->params;
    p.numHeads = attrInt(op, "num_heads");
    p.qkNopeHeadDim = attrInt(op, "qk_nope_head_dim");
    p.qkRopeHeadDim = attrInt(op, "qk_rope_head_dim");
    p.vHeadDim = attrInt(op, "v_head_dim");
    p.scale = attrFloat(op, "scale");
    p.interleaved = attrBool(op, "interleaved");
    p.absorb = attrBool(op, "absorb");
    if (op.inputs.size() != 5)
      return R(Error{describe(op) + ": expected inputs q, latent, k_pe, cos, "
                                    "sin (the plan's mla_core form)"});
    auto w = loadMatrix(op, "kv_b", ctx, false);
    if (!w.ok())
      return R(w.error());
    r->kvB = std::move(*w);
    p.kvLoraRank = r->kvB.view.cols;
    if (r->kvB.view.rows != p.numHeads * (p.qkNopeHeadDim + p.vHeadDim))
      return R(
          Error{describe(op) + ": kv_b_proj has " +
                std::to_string(r->kvB.view.rows) + " rows, expected " +
                std::to_string(p.numHeads * (p.qkNopeHeadDim + p.vHeadDim))});
    r->cache.kvLoraRank = p.kvLoraRank;
    r->cache.ropeDim = p.qkRopeHeadDim;
    r->limit = ctx.contextLength;
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  return std::nullopt;
}

} // namespace kt::exec
