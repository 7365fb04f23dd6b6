//===- InjectRules.cpp - apply YAML injection rules -----------------------===//
#include "kt/Transforms/Passes.h"
#include "kt/Transforms/Rules.h"

#include "mlir/IR/Builders.h"

namespace mlir::kt {
#define GEN_PASS_DEF_INJECTRULES
#include "kt/Transforms/Passes.h.inc"
} // namespace mlir::kt

using namespace mlir;
using namespace mlir::kt;

namespace {
/// kwargs as typed attributes: ints, floats, bools, strings, maps, lists.
Attribute jsonToAttr(Builder &b, const nlohmann::json &j) {
  if (j.is_boolean())
    return b.getBoolAttr(j.get<bool>());
  if (j.is_number_integer() || j.is_number_unsigned())
    return b.getI64IntegerAttr(j.get<int64_t>());
  if (j.is_number_float())
    return b.getF64FloatAttr(j.get<double>());
  if (j.is_string())
    return b.getStringAttr(j.get<std::string>());
  if (j.is_object()) {
    SmallVector<NamedAttribute> entries;
    for (auto it = j.begin(); it != j.end(); ++it)
      entries.push_back(b.getNamedAttr(it.key(), jsonToAttr(b, it.value())));
    return b.getDictionaryAttr(entries);
  }
  if (j.is_array()) {
    SmallVector<Attribute> items;
    for (const nlohmann::json &e : j)
      items.push_back(jsonToAttr(b, e));
    return b.getArrayAttr(items);
  }
  return b.getUnitAttr(); // null
}

/// The kwarg as a number, or `fallback`.
double numberKwarg(const nlohmann::json &kw, std::initializer_list<const char *> keys,
                   double fallback) {
  for (const char *k : keys)
    if (kw.contains(k) && kw[k].is_number())
      return kw[k].get<double>();
  return fallback;
}

class Injector {
public:
  Injector(const ::kt::rules::RuleSet &rules) : rules(rules) {}
  LogicalResult visit(Operation *op);

private:
  const ::kt::rules::RuleSet &rules;

  InFlightDiagnostic ruleError(Operation *op, const ::kt::rules::Rule &r) {
    Location loc = FileLineColLoc::get(op->getContext(), rules.fileName(),
                                       r.replaceClassLine ? r.replaceClassLine
                                                          : r.line,
                                       1);
    return emitError(loc);
  }
  FailureOr<Operation *> replace(Operation *op, const ::kt::rules::Rule &r,
                                 const ::kt::rules::Target &t);
};

/// A new op named `opName` with `op`'s operands, results, attributes and
/// regions (moved), replacing `op`.
Operation *retag(Operation *op, StringRef opName, ArrayRef<NamedAttribute> extra,
                 bool keepRegions) {
  OpBuilder b(op);
  OperationState state(op->getLoc(), opName);
  state.addOperands(op->getOperands());
  state.addTypes(op->getResultTypes());
  state.addAttributes(op->getAttrs());
  for (const NamedAttribute &na : extra)
    state.attributes.set(na.getName(), na.getValue());
  if (keepRegions)
    for (Region &r : op->getRegions())
      state.addRegion()->takeBody(r);
  Operation *created = b.create(state);
  op->replaceAllUsesWith(created->getResults());
  op->erase();
  return created;
}

/// gate, up and down weights of one expert container (down(silu(gate) * up)).
LogicalResult expertWeights(Operation *expert, WeightAttr &gate, WeightAttr &up,
                            WeightAttr &down) {
  if (!expert || expert->getNumRegions() != 1 || expert->getRegion(0).empty())
    return failure();
  auto yield = dyn_cast<YieldOp>(expert->getRegion(0).front().getTerminator());
  if (!yield || yield.getValues().size() != 1)
    return failure();
  auto downOp = yield.getValues()[0].getDefiningOp<LinearOp>();
  if (!downOp)
    return failure();
  auto act = downOp.getInput().getDefiningOp<SiluMulOp>();
  if (!act)
    return failure();
  auto gateOp = act.getGate().getDefiningOp<LinearOp>();
  auto upOp = act.getUp().getDefiningOp<LinearOp>();
  if (!gateOp || !upOp)
    return failure();
  gate = gateOp.getWeight();
  up = upOp.getWeight();
  down = downOp.getWeight();
  return success();
}
} // namespace

FailureOr<Operation *> Injector::replace(Operation *op,
                                         const ::kt::rules::Rule &r,
                                         const ::kt::rules::Target &t) {
  StringRef target = t.op;
  if (target == op->getName().getStringRef())
    return op;
  Builder b(op->getContext());
  const nlohmann::json &kw = r.kwargs;
  auto strKwarg = [&](const char *key) -> Attribute {
    if (kw.contains(key) && kw[key].is_string())
      return b.getStringAttr(kw[key].get<std::string>());
    return {};
  };
  if (target == "kt.marlin_linear") {
    return retag(op, target,
                 {b.getNamedAttr("bits", b.getI64IntegerAttr(static_cast<int64_t>(
                                             numberKwarg(kw, {"bits"}, 4)))),
                  b.getNamedAttr("group_size",
                                 b.getI64IntegerAttr(static_cast<int64_t>(
                                     numberKwarg(kw, {"group_size"}, 128))))},
                 false);
  }
  if (target == "kt.fp8_linear")
    return retag(op, target, {}, false);
  if (target == "kt.lora_linear") {
    double rank = numberKwarg(kw, {"lora_rank", "r", "rank"}, 8);
    double alpha = numberKwarg(kw, {"lora_alpha", "alpha"}, 2 * rank);
    return retag(op, target,
                 {b.getNamedAttr("lora_rank",
                                 b.getI64IntegerAttr(static_cast<int64_t>(rank))),
                  b.getNamedAttr("lora_alpha", b.getF64FloatAttr(alpha)),
                  b.getNamedAttr("lora_dropout",
                                 b.getF64FloatAttr(numberKwarg(
                                     kw, {"lora_dropout", "dropout"}, 0.0)))},
                 false);
  }
  if (target == "kt.cpu_experts" || target == "kt.gpu_experts") {
    auto experts = cast<ExpertsOp>(op);
    SmallVector<NamedAttribute> extra;
    if (experts.getBody().empty()) {
      // Fused weights are already attributes.
    } else {
      auto yield = cast<YieldOp>(experts.getBody().front().getTerminator());
      SmallVector<Attribute> gates, ups, downs;
      for (Value v : yield.getValues()) {
        WeightAttr g, u, d;
        if (failed(expertWeights(v.getDefiningOp(), g, u, d))) {
          ruleError(op, r) << "cannot collect the expert weights of '"
                           << experts.getName()
                           << "' (an expert was already replaced by an "
                              "earlier rule)";
          return failure();
        }
        gates.push_back(g);
        ups.push_back(u);
        downs.push_back(d);
      }
      extra.push_back(b.getNamedAttr("gate_proj", b.getArrayAttr(gates)));
      extra.push_back(b.getNamedAttr("up_proj", b.getArrayAttr(ups)));
      extra.push_back(b.getNamedAttr("down_proj", b.getArrayAttr(downs)));
    }
    for (const char *key : {"backend", "generate_op", "prefill_op"})
      if (Attribute a = strKwarg(key))
        extra.push_back(b.getNamedAttr(key, a));
    if (kw.contains("out_device") && kw["out_device"].is_string())
      extra.push_back(b.getNamedAttr(
          "out_device", b.getStringAttr(::kt::rules::normalizeDevice(
                            kw["out_device"].get<std::string>()))));
    // KTransformersExperts' own defaults when the rule gives no device:
    // decode on the CPU, prefill on the GPU.
    if (!r.kwargs.contains("generate_device"))
      op->setAttr("generate_device",
                  b.getStringAttr(target == "kt.cpu_experts" ? "cpu" : "cuda:0"));
    if (!r.kwargs.contains("prefill_device"))
      op->setAttr("prefill_device", b.getStringAttr("cuda:0"));
    op->removeAttr("act");
    return retag(op, target, extra, false);
  }
  if (target == "kt.mla") {
    MlaCoreOp core;
    int64_t qLoraRank = 0;
    op->walk([&](Operation *inner) {
      if (auto c = dyn_cast<MlaCoreOp>(inner))
        core = c;
      if (auto l = dyn_cast<LinearOp>(inner))
        if (l.getName().ends_with(".q_a_proj"))
          qLoraRank = l.getOutFeatures();
    });
    if (!core) {
      ruleError(op, r) << "'" << r.replaceClass
                       << "' needs a DeepSeek MLA attention module, but '"
                       << cast<ModuleOpInterface>(op).getModuleName()
                       << "' is a " << cast<ModuleOpInterface>(op).getModuleClass();
      return failure();
    }
    auto latentType = cast<RankedTensorType>(core.getLatent().getType());
    return retag(
        op, target,
        {b.getNamedAttr("num_heads", core.getNumHeadsAttr()),
         b.getNamedAttr("q_lora_rank", b.getI64IntegerAttr(qLoraRank)),
         b.getNamedAttr("kv_lora_rank",
                        b.getI64IntegerAttr(latentType.getShape().back())),
         b.getNamedAttr("qk_nope_head_dim", core.getQkNopeHeadDimAttr()),
         b.getNamedAttr("qk_rope_head_dim", core.getQkRopeHeadDimAttr()),
         b.getNamedAttr("v_head_dim", core.getVHeadDimAttr()),
         b.getNamedAttr("softmax_scale", core.getScaleAttr()),
         b.getNamedAttr("absorb",
                        b.getBoolAttr(kw.contains("absorb") &&
                                              kw["absorb"].is_boolean()
                                          ? kw["absorb"].get<bool>()
                                          : true))},
        true);
  }
  ruleError(op, r) << "cannot turn " << op->getName() << " '"
                   << cast<ModuleOpInterface>(op).getModuleName() << "' into "
                   << target;
  return failure();
}

LogicalResult Injector::visit(Operation *op) {
  bool recursive = true;
  if (auto module = dyn_cast<ModuleOpInterface>(op)) {
    std::optional<size_t> idx =
        rules.firstMatch(module.getModuleName().str(), module.getModuleClass().str());
    if (idx) {
      const ::kt::rules::Rule &r = rules.rules()[*idx];
      auto target =
          ::kt::rules::resolveTarget(r, op->getName().getStringRef().str());
      if (auto *msg = std::get_if<std::string>(&target)) {
        ruleError(op, r) << *msg << " (module '" << module.getModuleName()
                         << "')";
        return failure();
      }
      const auto &t = std::get<::kt::rules::Target>(target);
      Builder b(op->getContext());
      op->setAttr("rule", b.getI64IntegerAttr(static_cast<int64_t>(*idx)));
      if (!t.impl.empty())
        op->setAttr("impl", b.getStringAttr(t.impl));
      if (!r.kwargs.empty())
        op->setAttr("kwargs", jsonToAttr(b, r.kwargs));
      for (const char *key : {"generate_device", "prefill_device"})
        if (r.kwargs.contains(key) && r.kwargs[key].is_string())
          op->setAttr(key, b.getStringAttr(::kt::rules::normalizeDevice(
                               r.kwargs[key].get<std::string>())));
      FailureOr<Operation *> replaced = replace(op, r, t);
      if (failed(replaced))
        return failure();
      op = *replaced;
      recursive = r.recursive;
    }
  }
  if (!recursive)
    return success();
  for (Region &region : op->getRegions())
    for (Block &block : region) {
      SmallVector<Operation *> children;
      for (Operation &child : block)
        children.push_back(&child);
      for (Operation *child : children)
        if (failed(visit(child)))
          return failure();
    }
  return success();
}

namespace {
struct InjectRulesPass : public mlir::kt::impl::InjectRulesBase<InjectRulesPass> {
  using InjectRulesBase::InjectRulesBase;
  void runOnOperation() override {
    auto parsed = ::kt::rules::RuleSet::parseFile(rulesFile);
    if (auto *diag = std::get_if<::kt::rules::Diagnostic>(&parsed)) {
      emitError(FileLineColLoc::get(&getContext(), diag->file, diag->line,
                                    diag->column))
          << diag->message;
      return signalPassFailure();
    }
    Injector injector(std::get<::kt::rules::RuleSet>(parsed));
    for (Operation &op : llvm::make_early_inc_range(getOperation().getBody()->getOperations()))
      if (failed(injector.visit(&op)))
        return signalPassFailure();
  }
};
} // namespace
