//===- OpsDense.cpp - embedding, linear, norm and elementwise runners ----===//

#include "ExecOps.h"

#include <cstring>

namespace kt::exec {
namespace {

class EmbeddingRunner : public OpRunner {
public:
  HeldMatrix table;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &) override {
    const Value &ids = v[op.inputs[0]];
    Value &out = v[op.outputs[0]];
    out.shapeF32(ids.rows, table.view.cols);
    cpu::embedding(ids.i.data(), ids.rows, table.view, out.f.data());
  }
};

class LinearRunner : public OpRunner {
public:
  HeldMatrix weight;
  std::vector<float> bias;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &ctx) override {
    const Value &x = v[op.inputs[0]];
    Value &y = v[op.outputs[0]];
    int64_t first = 0, rows = x.rows;
    // Generation needs only the last position's logits.
    if (ctx.lastRowOnly && op.outputs[0] == ctx.logitsValue && rows > 1) {
      first = rows - 1;
      rows = 1;
    }
    y.shapeF32(rows, weight.view.rows);
    cpu::linear(x.f.data() + first * x.cols, rows, weight.view,
                bias.empty() ? nullptr : bias.data(), y.f.data(), ctx.pool);
  }
};

class RmsNormRunner : public OpRunner {
public:
  std::vector<float> weight;
  double eps = 1e-6;
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &) override {
    const Value &x = v[op.inputs[0]];
    Value &y = v[op.outputs[0]];
    y.shapeF32(x.rows, x.cols);
    cpu::rmsNorm(x.f.data(), x.rows, x.cols, weight.data(),
                 static_cast<int64_t>(weight.size()), eps, y.f.data());
  }
};

class ElementwiseRunner : public OpRunner {
public:
  std::string kind;
  int64_t offset = 0, size = 0; // slice
  void run(const PlanOp &op, std::vector<Value> &v, RunContext &) override {
    const Value &a = v[op.inputs[0]];
    Value &y = v[op.outputs[0]];
    if (kind == "slice") {
      y.shapeF32(a.rows, size);
      for (int64_t r = 0; r < a.rows; ++r)
        std::memcpy(&y.f[r * size], &a.f[r * a.cols + offset],
                    sizeof(float) * size);
      return;
    }
    if (kind == "transfer") { // cpu -> cpu: a copy keeps values separate
      y = a;
      return;
    }
    const Value &b = v[op.inputs[1]];
    if (kind == "sigmoid_gate") { // inputs: gate [T,1], x [T,C]
      y.shapeF32(b.rows, b.cols);
      cpu::sigmoidGate(a.f.data(), b.f.data(), b.rows, b.cols, y.f.data());
      return;
    }
    y.shapeF32(a.rows, a.cols);
    if (kind == "add")
      cpu::add(a.f.data(), b.f.data(), a.rows * a.cols, y.f.data());
    else
      cpu::siluMul(a.f.data(), b.f.data(), a.rows * a.cols, y.f.data());
  }
};

} // namespace

std::optional<Result<std::unique_ptr<OpRunner>>>
prepareDenseOp(const PlanOp &op, LoadContext &ctx) {
  using R = Result<std::unique_ptr<OpRunner>>;
  bool bf16 = ctx.opts.dtype == ComputeType::BF16;
  if (op.kind == "embedding") {
    auto r = std::make_unique<EmbeddingRunner>();
    auto w = loadMatrix(op, "weight", ctx, bf16);
    if (!w.ok())
      return R(w.error());
    r->table = std::move(*w);
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  if (op.kind == "linear" || op.kind == "lora_linear") {
    auto r = std::make_unique<LinearRunner>();
    auto w = loadMatrix(op, "weight", ctx,
                        bf16 && !ctx.keepF32.count(op.outputs[0]));
    if (!w.ok())
      return R(w.error());
    r->weight = std::move(*w);
    if (op.weights.count("weight_scale"))
      return R(Error{describe(op) +
                     ": block-scaled fp8 weights are not supported by the "
                     "CPU runtime yet"});
    if (op.weights.count("bias")) {
      auto b = loadVector(op, "bias", ctx);
      if (!b.ok())
        return R(b.error());
      r->bias = std::move(*b);
      if (static_cast<int64_t>(r->bias.size()) != r->weight.view.rows)
        return R(Error{describe(op) + ": bias size does not match weight"});
    }
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  if (op.kind == "rms_norm") {
    auto r = std::make_unique<RmsNormRunner>();
    auto w = loadVector(op, "weight", ctx);
    if (!w.ok())
      return R(w.error());
    if (w->empty())
      return R(Error{describe(op) + ": empty norm weight"});
    r->weight = std::move(*w);
    r->eps = attrFloat(op, "eps", 1e-6);
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  if (op.kind == "add" || op.kind == "silu_mul" || op.kind == "sigmoid_gate" ||
      op.kind == "slice" || op.kind == "transfer") {
    auto r = std::make_unique<ElementwiseRunner>();
    r->kind = op.kind;
    r->offset = attrInt(op, "offset");
    r->size = attrInt(op, "size");
    return R(std::unique_ptr<OpRunner>(std::move(r)));
  }
  return std::nullopt;
}

} // namespace kt::exec
