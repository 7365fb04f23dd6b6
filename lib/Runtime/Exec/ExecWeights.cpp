//===- ExecWeights.cpp - weight loading and attribute helpers ------------===//

#include "ExecOps.h"

namespace kt::exec {

std::string describe(const PlanOp &op) {
  if (op.name.empty())
    return "op kt." + op.kind;
  return "op '" + op.name + "' (kt." + op.kind + ")";
}

static Result<Tensor> fetch(const PlanOp &op, const PlanWeight &w,
                            LoadContext &ctx) {
  auto t = ctx.weights.get(w.tensor, w.file, w.dtype, w.shape);
  if (!t.ok())
    return Error{t.error().message + " (needed by " + describe(op) + ")"};
  return t;
}

Result<HeldMatrix> loadMatrix(const PlanOp &op, const PlanWeight &w,
                              LoadContext &ctx, bool bf16) {
  auto t = fetch(op, w, ctx);
  if (!t.ok())
    return t.error();
  Tensor tensor = std::move(*t);
  if (tensor.shape().size() < 2)
    return Error{w.file + ": tensor '" + w.tensor + "' of " + describe(op) +
                 " must be a matrix, has shape " +
                 formatShape(tensor.shape())};
  DType dt = tensor.dtype();
  bool fits = bf16 ? dt == DType::BF16
                   : (dt == DType::F32 || dt == DType::BF16 || dt == DType::F16);
  if (!fits) {
    auto c = tensor.convertTo(bf16 ? DType::BF16 : DType::F32,
                              w.file + ": tensor '" + w.tensor + "'");
    if (!c.ok())
      return c.error();
    tensor = std::move(*c);
    ctx.ownedBytes += tensor.numBytes();
  } else {
    ctx.mappedBytes += tensor.numBytes();
  }
  HeldMatrix m;
  m.view.type = tensor.dtype() == DType::F32    ? cpu::WType::F32
                : tensor.dtype() == DType::BF16 ? cpu::WType::BF16
                                                : cpu::WType::F16;
  m.view.data = tensor.raw();
  m.view.cols = tensor.cols();
  m.view.rows = tensor.rows();
  m.tensor = std::move(tensor);
  return m;
}

Result<HeldMatrix> loadMatrix(const PlanOp &op, const std::string &role,
                              LoadContext &ctx, bool bf16) {
  auto it = op.weights.find(role);
  if (it == op.weights.end())
    return Error{describe(op) + " has no '" + role + "' weight in the plan"};
  return loadMatrix(op, it->second, ctx, bf16);
}

Result<std::vector<float>> loadVector(const PlanOp &op,
                                      const std::string &role,
                                      LoadContext &ctx) {
  auto it = op.weights.find(role);
  if (it == op.weights.end())
    return Error{describe(op) + " has no '" + role + "' weight in the plan"};
  auto t = fetch(op, it->second, ctx);
  if (!t.ok())
    return t.error();
  auto c = t->convertTo(DType::F32, it->second.file + ": tensor '" +
                                        it->second.tensor + "'");
  if (!c.ok())
    return c.error();
  ctx.ownedBytes += c->numBytes();
  return std::vector<float>(c->data<float>(),
                            c->data<float>() + c->numElements());
}

int64_t attrInt(const PlanOp &op, const char *name, int64_t dflt) {
  auto it = op.attrs.find(name);
  if (it == op.attrs.end() || !it->is_number())
    return dflt;
  return it->is_number_integer() ? it->get<int64_t>()
                                 : static_cast<int64_t>(it->get<double>());
}

double attrFloat(const PlanOp &op, const char *name, double dflt) {
  auto it = op.attrs.find(name);
  if (it == op.attrs.end() || !it->is_number())
    return dflt;
  return it->get<double>();
}

bool attrBool(const PlanOp &op, const char *name, bool dflt) {
  auto it = op.attrs.find(name);
  if (it == op.attrs.end() || !it->is_boolean())
    return dflt;
  return it->get<bool>();
}

std::string attrStr(const PlanOp &op, const char *name,
                    const std::string &dflt) {
  auto it = op.attrs.find(name);
  if (it == op.attrs.end() || !it->is_string())
    return dflt;
  return it->get<std::string>();
}

} // namespace kt::exec
