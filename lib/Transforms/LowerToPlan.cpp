//===- LowerToPlan.cpp - flatten the placed module tree into a plan -------===//
//
// The boundary between the compiler and the runtime: the placed kt module
// tree becomes a kt::Plan (include/kt/Runtime/Plan.h, docs/plan.md), a flat
// list of ops over numbered values. See the kt-lower-plan description in
// Passes.td.
//
//===----------------------------------------------------------------------===//
#include "kt/Runtime/Plan.h"
#include "kt/Transforms/Compile.h"
#include "kt/Transforms/Passes.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/ToolOutputFile.h"

#include <map>
#include <optional>
#include <set>

namespace mlir::kt {
#define GEN_PASS_DEF_LOWERTOPLAN
#include "kt/Transforms/Passes.h.inc"
} // namespace mlir::kt

using namespace mlir;
using namespace mlir::kt;

namespace {

std::string strAttr(Operation *op, StringRef key) {
  auto a = op->getAttrOfType<StringAttr>(key);
  return a ? a.getValue().str() : std::string();
}

bool isLinearLike(Operation *op) {
  return isa_and_nonnull<LinearOp, MarlinLinearOp, Fp8LinearOp, LoraLinearOp>(
      op);
}

/// Ops that become one plan op each (containers are flattened, kt.experts
/// is handled on its own).
bool isLeafOp(Operation *op) {
  return isa<EmbeddingOp, LinearOp, MarlinLinearOp, Fp8LinearOp, LoraLinearOp,
             RmsNormOp, RotaryOp, MoeGateOp, CpuExpertsOp, GpuExpertsOp, AddOp,
             SiluMulOp, SigmoidGateOp, TopkRouteOp, AttentionCoreOp, MlaCoreOp,
             SliceOp, TransferOp>(op);
}

/// Attributes that become plan fields (or nothing) rather than attrs.
bool isPlanField(StringRef name) {
  static const llvm::StringSet<> fields = {
      "name",         "module_class", "generate_device", "prefill_device",
      "kt.placed_by", "rule",         "kwargs",          "generate_from",
      "generate_to",  "prefill_from", "prefill_to"};
  return fields.contains(name);
}

/// A scalar attribute as JSON; nullopt for anything else.
std::optional<nlohmann::json> scalarToJson(Attribute a) {
  if (auto s = dyn_cast<StringAttr>(a))
    return nlohmann::json(s.getValue().str());
  if (auto b = dyn_cast<BoolAttr>(a))
    return nlohmann::json(b.getValue());
  if (auto i = dyn_cast<IntegerAttr>(a)) {
    if (i.getType().isInteger(1))
      return nlohmann::json(i.getValue().getBoolValue());
    return nlohmann::json(i.getValue().getSExtValue());
  }
  if (auto f = dyn_cast<FloatAttr>(a))
    return nlohmann::json(f.getValueAsDouble());
  return std::nullopt;
}

FailureOr<::kt::PlanWeight> toPlanWeight(WeightAttr w, Operation *op) {
  ::kt::PlanWeight out;
  out.tensor = w.getTensor().str();
  out.file = w.getFile().str();
  out.shape.assign(w.getShape().begin(), w.getShape().end());
  // The safetensors dtype name of the element type.
  static const std::pair<const char *, ::kt::DType> names[] = {
      {"F64", ::kt::DType::F64},         {"F32", ::kt::DType::F32},
      {"F16", ::kt::DType::F16},         {"BF16", ::kt::DType::BF16},
      {"F8_E4M3", ::kt::DType::F8_E4M3}, {"F8_E5M2", ::kt::DType::F8_E5M2},
      {"I64", ::kt::DType::I64},         {"I32", ::kt::DType::I32},
      {"I16", ::kt::DType::I16},         {"I8", ::kt::DType::I8},
      {"U8", ::kt::DType::U8},           {"BOOL", ::kt::DType::Bool}};
  for (auto &[name, dtype] : names) {
    if (elementTypeForSafetensors(op->getContext(), name) == w.getDtype()) {
      out.dtype = dtype;
      return out;
    }
  }
  return op->emitError() << "weight '" << w.getTensor() << "' has element type "
                         << w.getDtype() << ", which has no safetensors dtype";
}

/// Lowers one module; see the pass description.
class PlanLowering {
public:
  explicit PlanLowering(ModuleOp module) : module(module) {}

  FailureOr<::kt::Plan> run() {
    if (auto a = module->getAttrOfType<StringAttr>("kt.architecture"))
      plan.architecture = a.getValue().str();
    if (auto a = module->getAttrOfType<StringAttr>("kt.source"))
      plan.source = a.getValue().str();

    ModuleContainerOp root;
    for (Operation &op : module.getBody()->getOperations()) {
      auto m = dyn_cast<ModuleContainerOp>(op);
      if (!m || root)
        return op.emitError()
               << "cannot lower to a plan: the module must hold exactly one "
                  "root kt.module (the model) and nothing else";
      root = m;
    }
    if (!root)
      return module.emitError() << "cannot lower to a plan: no root kt.module";
    Block &body = root.getBody().front();
    if (root.getNumOperands() != 0 || body.getNumArguments() != 2 ||
        root.getNumResults() != 1)
      return root.emitError()
             << "cannot lower to a plan: the root kt.module must take (token "
                "ids, positions) as block arguments and yield the logits";
    for (BlockArgument arg : body.getArguments()) {
      FailureOr<int> id = define(arg, root);
      if (failed(id))
        return failure();
      if (plan.values[*id].type != ::kt::ValueType::I64 ||
          plan.values[*id].cols != 1)
        return root.emitError()
               << "cannot lower to a plan: root block argument "
               << arg.getArgNumber() << " must be a 1-D i64 tensor, not "
               << arg.getType();
    }
    plan.tokensValue = 0;
    plan.positionsValue = 1;

    if (failed(findDroppedKvProjections()) || failed(lowerBlock(body)))
      return failure();
    FailureOr<int> logits =
        lookup(body.getTerminator()->getOperand(0), body.getTerminator());
    if (failed(logits))
      return failure();
    plan.logitsValue = *logits;
    if (plan.values[plan.logitsValue].type != ::kt::ValueType::F32)
      return root.emitError() << "cannot lower to a plan: the logits are not "
                                 "a floating-point tensor";
    computeGenerateBytes();

    // The runtime trusts a plan that passed planFromJson; make sure this one
    // does (a failure here is a bug in this pass).
    auto checked = ::kt::planFromJson(::kt::planToJson(plan), "lowered plan");
    if (!checked.ok())
      return module.emitError()
             << "internal error: invalid plan: " << checked.error().message;
    return std::move(plan);
  }

private:
  ModuleOp module;
  ::kt::Plan plan;
  DenseMap<Value, int> ids;
  /// kv_b projections (and transfers of their output) folded into mla_core.
  DenseSet<Operation *> dropped;

  /// Gives `v` a new value id.
  FailureOr<int> define(Value v, Operation *op) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || type.getRank() < 1 || type.getRank() > 2)
      return op->emitError()
             << "cannot lower to a plan: value of type " << v.getType()
             << " is not a 1-D or 2-D tensor [rows, cols]";
    ::kt::PlanValue value;
    Type elem = type.getElementType();
    if (elem.isInteger(64))
      value.type = ::kt::ValueType::I64;
    else if (isa<FloatType>(elem))
      value.type = ::kt::ValueType::F32;
    else
      return op->emitError()
             << "cannot lower to a plan: value of type " << v.getType()
             << " has an element type that is neither i64 nor "
                "floating point";
    value.cols = type.getRank() == 2 ? type.getDimSize(1) : 1;
    if (ShapedType::isDynamic(value.cols) || value.cols < 1)
      return op->emitError() << "cannot lower to a plan: value of type "
                             << v.getType() << " has no static column count";
    int id = static_cast<int>(plan.values.size());
    plan.values.push_back(value);
    ids[v] = id;
    return id;
  }

  FailureOr<int> lookup(Value v, Operation *user) {
    auto it = ids.find(v);
    if (it == ids.end())
      return user->emitError()
             << "cannot lower to a plan: operand has no plan value (it is "
                "produced by an op the plan dropped)";
    return it->second;
  }

  /// The linear that produces mla_core's kv (through any transfers) and the
  /// ops between; fails when kv does not come from a linear.
  LogicalResult kvProducers(MlaCoreOp core,
                            SmallVectorImpl<Operation *> &chain) {
    Value v = core.getKv();
    while (auto t = v.getDefiningOp<TransferOp>()) {
      chain.push_back(t);
      v = t.getInput();
    }
    Operation *def = v.getDefiningOp();
    if (!isLinearLike(def))
      return core.emitError()
             << "cannot lower to a plan: the kv operand of kt.mla_core must "
                "be produced by the kv_b_proj linear (kt.linear or another "
                "linear kind) in the same container";
    chain.push_back(def);
    return success();
  }

  /// Marks each kv_b linear (and transfer of its output) whose only users
  /// are mla_core kv operands.
  LogicalResult findDroppedKvProjections() {
    WalkResult r = module.walk([&](MlaCoreOp core) {
      SmallVector<Operation *> chain;
      if (failed(kvProducers(core, chain)))
        return WalkResult::interrupt();
      for (Operation *op : chain) {
        bool onlyKv = llvm::all_of(op->getUses(), [&](OpOperand &use) {
          Operation *user = use.getOwner();
          if (dropped.contains(user))
            return true;
          return isa<MlaCoreOp>(user) && use.getOperandNumber() == 1;
        });
        if (!onlyKv)
          break;
        dropped.insert(op);
      }
      return WalkResult::advance();
    });
    return failure(r.wasInterrupted());
  }

  LogicalResult lowerBlock(Block &block) {
    for (Operation &op : block.without_terminator())
      if (failed(lowerOp(&op)))
        return failure();
    return success();
  }

  LogicalResult lowerOp(Operation *op) {
    if (dropped.contains(op))
      return success();
    if (isa<ModuleContainerOp, MlaOp>(op)) {
      Block &body = op->getRegion(0).front();
      for (auto [arg, operand] :
           llvm::zip_equal(body.getArguments(), op->getOperands())) {
        FailureOr<int> id = lookup(operand, op);
        if (failed(id))
          return failure();
        ids[arg] = *id;
      }
      if (failed(lowerBlock(body)))
        return failure();
      Operation *yield = body.getTerminator();
      for (auto [result, yielded] :
           llvm::zip_equal(op->getResults(), yield->getOperands())) {
        FailureOr<int> id = lookup(yielded, yield);
        if (failed(id))
          return failure();
        ids[result] = *id;
      }
      return success();
    }
    if (!isLeafOp(op) && !isa<ExpertsOp>(op))
      return op->emitError() << "cannot lower '" << op->getName()
                             << "' to a plan: the runtime has no such op";
    return lowerLeaf(op);
  }

  LogicalResult lowerLeaf(Operation *op) {
    ::kt::PlanOp p;
    p.kind = op->getName().stripDialect().str();
    if (auto m = dyn_cast<ModuleOpInterface>(op)) {
      p.name = m.getModuleName().str();
      p.moduleClass = m.getModuleClass().str();
    }
    if (failed(setDevices(op, p)))
      return failure();

    // Inputs (mla_core drops kv, which becomes its kv_b weight).
    for (OpOperand &operand : op->getOpOperands()) {
      if (isa<MlaCoreOp>(op) && operand.getOperandNumber() == 1)
        continue;
      FailureOr<int> id = lookup(operand.get(), op);
      if (failed(id))
        return failure();
      p.inputs.push_back(*id);
    }

    // Weights and scalar attributes.
    for (NamedAttribute na : op->getAttrs()) {
      StringRef key = na.getName().getValue();
      if (isPlanField(key))
        continue;
      if (auto w = dyn_cast<WeightAttr>(na.getValue())) {
        FailureOr<::kt::PlanWeight> pw = toPlanWeight(w, op);
        if (failed(pw))
          return failure();
        p.weights[key.str()] = *pw;
        continue;
      }
      if (auto arr = dyn_cast<ArrayAttr>(na.getValue())) {
        if (!arr.empty() && llvm::all_of(arr, llvm::IsaPred<WeightAttr>)) {
          std::vector<::kt::PlanWeight> &list = p.weightLists[key.str()];
          for (Attribute a : arr) {
            FailureOr<::kt::PlanWeight> pw =
                toPlanWeight(cast<WeightAttr>(a), op);
            if (failed(pw))
              return failure();
            list.push_back(*pw);
          }
        }
        continue;
      }
      if (std::optional<nlohmann::json> j = scalarToJson(na.getValue()))
        p.attrs[key.str()] = *j;
    }
    // The rule's kwargs, unless the op has an attribute of that name.
    if (auto kwargs = op->getAttrOfType<DictionaryAttr>("kwargs")) {
      for (NamedAttribute na : kwargs) {
        std::string key = na.getName().getValue().str();
        if (key == "generate_device" || key == "prefill_device" ||
            p.attrs.contains(key) || p.weights.count(key))
          continue;
        if (std::optional<nlohmann::json> j = scalarToJson(na.getValue()))
          p.attrs[key] = *j;
      }
    }

    if (auto core = dyn_cast<MlaCoreOp>(op)) {
      SmallVector<Operation *> chain;
      if (failed(kvProducers(core, chain)))
        return failure();
      Operation *kvB = chain.back();
      auto addWeight = [&](StringRef attr, StringRef role) -> LogicalResult {
        auto w = kvB->getAttrOfType<WeightAttr>(attr);
        if (!w)
          return success();
        FailureOr<::kt::PlanWeight> pw = toPlanWeight(w, kvB);
        if (failed(pw))
          return failure();
        p.weights[role.str()] = *pw;
        return success();
      };
      if (failed(addWeight("weight", "kv_b")) ||
          failed(addWeight("bias", "kv_b_bias")) ||
          failed(addWeight("weight_scale", "kv_b_scale")))
        return failure();
      auto mla = op->getParentOfType<MlaOp>();
      p.attrs["absorb"] = mla ? mla.getAbsorb() : false;
    }

    if (auto experts = dyn_cast<ExpertsOp>(op))
      if (failed(gatherExpertWeights(experts, p)))
        return failure();

    p.kernel = kernelFor(op, p);
    for (Value result : op->getResults()) {
      FailureOr<int> id = define(result, op);
      if (failed(id))
        return failure();
      p.outputs.push_back(*id);
    }
    plan.ops.push_back(std::move(p));
    return success();
  }

  LogicalResult setDevices(Operation *op, ::kt::PlanOp &p) {
    if (auto t = dyn_cast<TransferOp>(op)) {
      p.generateDevice = t.getGenerateTo().str();
      p.prefillDevice = t.getPrefillTo().str();
      p.generateFrom = t.getGenerateFrom().str();
      p.prefillFrom = t.getPrefillFrom().str();
      return success();
    }
    // A module op's own devices, else its enclosing module's.
    for (Operation *m = op; m; m = parentModule(m).getOperation()) {
      if (!isa<ModuleOpInterface>(m))
        continue;
      p.generateDevice = strAttr(m, "generate_device");
      p.prefillDevice = strAttr(m, "prefill_device");
      if (!p.generateDevice.empty() || !p.prefillDevice.empty())
        break;
    }
    if (p.generateDevice.empty() || p.prefillDevice.empty())
      return op->emitError()
             << "cannot lower to a plan: the op has no device in both phases "
                "(run kt-place first)";
    for (const std::string &d : {p.generateDevice, p.prefillDevice})
      if (d != "cpu" && StringRef(d).take_front(4) != "cuda")
        return op->emitError()
               << "cannot lower to a plan: unknown device '" << d << "'";
    return success();
  }

  static std::string kernelFor(Operation *op, const ::kt::PlanOp &p) {
    if (isa<TransferOp>(op))
      return "transfer";
    std::string family = p.generateDevice == "cpu" ? "cpu" : "cuda";
    if (isa<CpuExpertsOp>(op)) {
      std::string backend = strAttr(op, "backend");
      return "cpu.experts." + (backend.empty() ? "reference" : backend);
    }
    if (isa<ExpertsOp>(op))
      return family == "cpu" ? "cpu.experts.reference" : "cuda.experts";
    return family + "." + p.kind;
  }

  /// A kt.experts still holding one child per expert: gate, up and down
  /// weights of each (down(silu_mul(gate(x), up(x))) with plain linears).
  LogicalResult gatherExpertWeights(ExpertsOp experts, ::kt::PlanOp &p) {
    if (experts.getBody().empty())
      return success(); // fused form: gate_up_fused / down_fused attributes
    auto yield = cast<YieldOp>(experts.getBody().front().getTerminator());
    for (Value out : yield.getOperands()) {
      auto child = out.getDefiningOp<ModuleContainerOp>();
      auto fail = [&]() {
        return experts.emitError()
               << "cannot lower kt.experts '" << experts.getName()
               << "' to a plan: expert " << p.weightLists["down_proj"].size()
               << " is not down(silu(gate(x)) * up(x)) with plain linears "
                  "(replace the experts with kt.cpu_experts or "
                  "kt.gpu_experts)";
      };
      if (!child)
        return fail();
      Value result = child.getBody().front().getTerminator()->getOperand(0);
      auto down = result.getDefiningOp<LinearOp>();
      auto act = down ? down.getInput().getDefiningOp<SiluMulOp>() : nullptr;
      auto gate = act ? act.getGate().getDefiningOp<LinearOp>() : nullptr;
      auto up = act ? act.getUp().getDefiningOp<LinearOp>() : nullptr;
      if (!gate || !up || down.getBias() || gate.getBias() || up.getBias())
        return fail();
      for (auto [role, lin] :
           {std::pair<const char *, LinearOp>{"gate_proj", gate},
            {"up_proj", up},
            {"down_proj", down}}) {
        FailureOr<::kt::PlanWeight> pw = toPlanWeight(lin.getWeight(), lin);
        if (failed(pw))
          return failure();
        p.weightLists[role].push_back(*pw);
      }
    }
    return success();
  }

  /// Generate-phase weight bytes per device, as kt-memory-report counts
  /// them: module ops' weights, a tensor counted once per device.
  void computeGenerateBytes() {
    std::map<std::string, std::set<std::string>> seen;
    walkModules(module, [&](ModuleOpInterface m) {
      SmallVector<WeightAttr> weights;
      collectWeights(m, weights);
      std::string device = strAttr(m, "generate_device");
      if (device.empty())
        device = "unplaced";
      for (WeightAttr w : weights) {
        if (seen[device].insert(w.getTensor().str()).second)
          plan.generateBytes[device] += static_cast<int64_t>(w.getNumBytes());
      }
    });
  }
};

struct LowerToPlanPass
    : public mlir::kt::impl::LowerToPlanBase<LowerToPlanPass> {
  using LowerToPlanBase::LowerToPlanBase;

  void runOnOperation() override {
    FailureOr<::kt::Plan> plan = lowerToPlan(getOperation());
    if (failed(plan))
      return signalPassFailure();
    std::string error;
    auto out = openOutputFile(outputFile, &error);
    if (!out) {
      emitError(getOperation().getLoc()) << error;
      return signalPassFailure();
    }
    out->os() << ::kt::serializePlan(*plan);
    out->keep();
    markAllAnalysesPreserved();
  }
};

} // namespace

FailureOr<::kt::Plan> mlir::kt::lowerToPlan(ModuleOp module) {
  return PlanLowering(module).run();
}
