//===- KtOps.cpp - kt op verifiers ----------------------------------------===//
#include "kt/Dialect/KtDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::kt;

namespace {
/// ODS returns I64Attr values as uint64_t; checks compare signed values.
int64_t sgn(uint64_t v) { return static_cast<int64_t>(v); }

/// The static size of the last dimension, or nullopt when unknown.
std::optional<int64_t> lastDim(Type type) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked || ranked.getRank() == 0 || ranked.isDynamicDim(ranked.getRank() - 1))
    return std::nullopt;
  return ranked.getShape().back();
}

/// Fails when the last dimension of `value` is known and is not `expected`.
LogicalResult expectLastDim(Operation *op, Type type, int64_t expected,
                            StringRef what) {
  std::optional<int64_t> dim = lastDim(type);
  if (dim && *dim != expected)
    return op->emitOpError() << what << " has last dimension " << *dim
                             << ", expected " << expected;
  return success();
}

LogicalResult verifyContainer(Operation *op) {
  Region &body = op->getRegion(0);
  Block &block = body.front();
  if (block.empty() || !block.mightHaveTerminator())
    return op->emitOpError() << "body must end with kt.yield";
  // The root module (directly under builtin.module) is the model's entry:
  // its block arguments are the model inputs (token ids, positions).
  bool isRoot = op->getNumOperands() == 0 && isa_and_nonnull<ModuleOp>(op->getParentOp());
  if (!isRoot && block.getNumArguments() != op->getNumOperands())
    return op->emitOpError() << "body takes " << block.getNumArguments()
                             << " arguments but the module has "
                             << op->getNumOperands() << " inputs";
  for (auto [arg, operand] :
       llvm::zip(block.getArguments(), op->getOperands()))
    if (arg.getType() != operand.getType())
      return op->emitOpError() << "body argument #" << arg.getArgNumber()
                               << " has type " << arg.getType()
                               << " but input has type " << operand.getType();
  auto yield = dyn_cast<YieldOp>(block.getTerminator());
  if (!yield)
    return op->emitOpError() << "body must end with kt.yield";
  if (yield.getValues().getTypes() != op->getResultTypes())
    return op->emitOpError() << "kt.yield types do not match the results";
  return success();
}

LogicalResult expectWeightShape(Operation *op, WeightAttr w, StringRef what,
                                ArrayRef<int64_t> expected) {
  if (w.getShape() != expected) {
    auto diag = op->emitOpError() << what << " '" << w.getTensor()
                                  << "' has shape [";
    llvm::interleaveComma(w.getShape(), diag);
    diag << "], expected [";
    llvm::interleaveComma(expected, diag);
    return diag << "]";
  }
  return success();
}
} // namespace

bool mlir::kt::isValidDeviceName(StringRef device) {
  if (device == "cpu" || device == "cuda")
    return true;
  if (!device.consume_front("cuda:") || device.empty())
    return false;
  return llvm::all_of(device, [](char c) { return c >= '0' && c <= '9'; });
}

LogicalResult mlir::kt::verifyModuleAttrs(Operation *op) {
  for (StringRef key : {"generate_device", "prefill_device"}) {
    auto dev = op->getAttrOfType<StringAttr>(key);
    if (dev && !isValidDeviceName(dev.getValue()))
      return op->emitOpError() << key << " '" << dev.getValue()
                               << "' is not a device (cpu, cuda, cuda:N)";
  }
  auto name = op->getAttrOfType<StringAttr>("name");
  if (!name)
    return op->emitOpError() << "needs a 'name'";
  StringRef n = name.getValue();
  if (n.starts_with(".") || n.ends_with(".") || n.contains(".."))
    return op->emitOpError() << "module name '" << n << "' is not dotted";
  return success();
}

LogicalResult ModuleContainerOp::verify() { return verifyContainer(*this); }

LogicalResult MlaOp::verify() {
  if (failed(verifyContainer(*this)))
    return failure();
  if (sgn(getNumHeads()) <= 0 || sgn(getKvLoraRank()) <= 0 || sgn(getQkRopeHeadDim()) <= 0 ||
      sgn(getQkRopeHeadDim()) % 2 != 0 || sgn(getVHeadDim()) <= 0 ||
      sgn(getQkNopeHeadDim()) < 0 || sgn(getQLoraRank()) < 0)
    return emitOpError() << "has invalid MLA dimensions";
  return success();
}

LogicalResult ExpertsOp::verify() {
  if (getOutput().getType() != getInput().getType())
    return emitOpError() << "output type must equal input type";
  int64_t e = sgn(getNumExperts()), h = sgn(getHiddenSize()), i = sgn(getIntermediateSize());
  if (e <= 0 || h <= 0 || i <= 0)
    return emitOpError() << "needs positive num_experts, hidden_size and "
                            "intermediate_size";
  if (failed(expectLastDim(*this, getInput().getType(), h, "input")))
    return failure();
  bool fused = getGateUpFused() || getDownFused();
  if (getBody().empty()) {
    if (!getGateUpFused() || !getDownFused())
      return emitOpError() << "without per-expert children needs both "
                              "gate_up_fused and down_fused weights";
    if (failed(expectWeightShape(*this, *getGateUpFused(), "gate_up_fused",
                                 {e, 2 * i, h})) ||
        failed(expectWeightShape(*this, *getDownFused(), "down_fused",
                                 {e, h, i})))
      return failure();
    return success();
  }
  if (fused)
    return emitOpError() << "has both per-expert children and fused weights";
  if (!getBody().hasOneBlock())
    return emitOpError() << "body must have a single block";
  Block &block = getBody().front();
  if (block.empty() || !block.mightHaveTerminator())
    return emitOpError() << "body must end with kt.yield";
  if (block.getNumArguments() != 1 ||
      block.getArgument(0).getType() != getInput().getType())
    return emitOpError() << "body must take one argument of the input type";
  auto yield = dyn_cast<YieldOp>(block.getTerminator());
  if (!yield || static_cast<int64_t>(yield.getValues().size()) != e)
    return emitOpError() << "body must yield one value per expert (" << e
                         << ")";
  return success();
}

LogicalResult EmbeddingOp::verify() {
  if (getWeight().getShape().size() != 2)
    return emitOpError() << "weight must be [vocab, hidden]";
  return expectLastDim(*this, getOutput().getType(),
                       getWeight().getShape()[1], "output");
}

template <typename LinearLike>
static LogicalResult verifyLinearLike(LinearLike op) {
  WeightAttr w = op.getWeight();
  if (w.getShape().size() != 2)
    return op.emitOpError() << "weight '" << w.getTensor()
                            << "' must be [out_features, in_features]";
  if (failed(expectLastDim(op, op.getInput().getType(), op.getInFeatures(),
                           "input")) ||
      failed(expectLastDim(op, op.getOutput().getType(), op.getOutFeatures(),
                           "output")))
    return failure();
  if (auto b = op.getBias())
    if (failed(expectWeightShape(op, *b, "bias", {op.getOutFeatures()})))
      return failure();
  return success();
}

LogicalResult LinearOp::verify() { return verifyLinearLike(*this); }
LogicalResult Fp8LinearOp::verify() { return verifyLinearLike(*this); }
LogicalResult MarlinLinearOp::verify() {
  if (sgn(getBits()) != 4 && sgn(getBits()) != 8)
    return emitOpError() << "supports 4 or 8 bits, got " << sgn(getBits());
  if (sgn(getGroupSize()) != -1 && sgn(getGroupSize()) <= 0)
    return emitOpError() << "group_size must be positive or -1";
  return verifyLinearLike(*this);
}
LogicalResult LoraLinearOp::verify() {
  if (sgn(getLoraRank()) <= 0)
    return emitOpError() << "lora_rank must be positive";
  if (auto a = getLoraA())
    if (failed(expectWeightShape(*this, *a, "lora_a",
                                 {sgn(getLoraRank()), getInFeatures()})))
      return failure();
  if (auto b = getLoraB())
    if (failed(expectWeightShape(*this, *b, "lora_b",
                                 {getOutFeatures(), sgn(getLoraRank())})))
      return failure();
  return verifyLinearLike(*this);
}

LogicalResult RmsNormOp::verify() {
  if (getWeight().getShape().size() != 1)
    return emitOpError() << "weight must be one-dimensional";
  if (getInput().getType() != getOutput().getType())
    return emitOpError() << "output type must equal input type";
  int64_t d = getWeight().getShape()[0];
  if (auto last = lastDim(getInput().getType()); last && (d == 0 || *last % d))
    return emitOpError() << "last dimension " << *last
                         << " is not a multiple of the norm size " << d;
  if (getEps().convertToDouble() <= 0)
    return emitOpError() << "eps must be positive";
  return success();
}

LogicalResult RotaryOp::verify() {
  if (sgn(getDim()) <= 0 || sgn(getDim()) % 2)
    return emitOpError() << "dim must be positive and even";
  StringRef s = getScaling();
  if (s != "default" && s != "linear" && s != "dynamic" && s != "yarn" &&
      s != "llama3")
    return emitOpError() << "unknown rope scaling '" << s << "'";
  if (failed(expectLastDim(*this, getCos().getType(), sgn(getDim()), "cos")) ||
      failed(expectLastDim(*this, getSin().getType(), sgn(getDim()), "sin")))
    return failure();
  return success();
}

LogicalResult MoeGateOp::verify() {
  int64_t e = sgn(getNumExperts());
  if (getWeight().getShape().size() != 2 || getWeight().getShape()[0] != e)
    return emitOpError() << "weight must be [num_experts, hidden]";
  if (sgn(getTopK()) <= 0 || sgn(getTopK()) > e)
    return emitOpError() << "top_k must be in [1, num_experts]";
  if (getScoringFunc() != "softmax" && getScoringFunc() != "sigmoid")
    return emitOpError() << "unknown scoring_func '" << getScoringFunc() << "'";
  StringRef m = getTopkMethod();
  if (m != "greedy" && m != "group_limited_greedy" && m != "noaux_tc")
    return emitOpError() << "unknown topk_method '" << m << "'";
  if (sgn(getNGroup()) <= 0 || e % sgn(getNGroup()) || sgn(getTopkGroup()) <= 0 ||
      sgn(getTopkGroup()) > sgn(getNGroup()))
    return emitOpError() << "n_group must divide num_experts and topk_group "
                            "must be in [1, n_group]";
  if (auto bias = getScoreBias())
    if (failed(expectWeightShape(*this, *bias, "score_bias", {e})))
      return failure();
  if (m == "noaux_tc" && !getScoreBias())
    return emitOpError() << "noaux_tc needs e_score_correction_bias";
  return success(succeeded(expectLastDim(*this, getIds().getType(), sgn(getTopK()),
                                         "ids")) &&
                 succeeded(expectLastDim(*this, getWeights().getType(),
                                         sgn(getTopK()), "weights")));
}

template <typename KernelOp>
static LogicalResult verifyExpertKernel(KernelOp op) {
  int64_t e = sgn(op.getNumExperts()), h = sgn(op.getHiddenSize()),
          i = sgn(op.getIntermediateSize());
  if (e <= 0 || h <= 0 || i <= 0)
    return op.emitOpError() << "needs positive expert dimensions";
  bool perExpert = op.getGateProj() || op.getUpProj() || op.getDownProj();
  bool fused = op.getGateUpFused() || op.getDownFused();
  if (perExpert == fused)
    return op.emitOpError()
           << "needs either per-expert weights or fused weights";
  if (fused) {
    if (!op.getGateUpFused() || !op.getDownFused())
      return op.emitOpError() << "needs both gate_up_fused and down_fused";
    if (failed(expectWeightShape(op, *op.getGateUpFused(), "gate_up_fused",
                                 {e, 2 * i, h})) ||
        failed(expectWeightShape(op, *op.getDownFused(), "down_fused",
                                 {e, h, i})))
      return failure();
  } else {
    if (!op.getGateProj() || !op.getUpProj() || !op.getDownProj())
      return op.emitOpError() << "needs gate_proj, up_proj and down_proj";
    struct Part {
      ArrayAttr arr;
      StringRef name;
      SmallVector<int64_t, 2> shape;
    } parts[] = {{*op.getGateProj(), "gate_proj", {i, h}},
                 {*op.getUpProj(), "up_proj", {i, h}},
                 {*op.getDownProj(), "down_proj", {h, i}}};
    for (Part &p : parts) {
      if (static_cast<int64_t>(p.arr.size()) != e)
        return op.emitOpError() << p.name << " has " << p.arr.size()
                                << " weights, expected " << e;
      for (Attribute a : p.arr)
        if (failed(expectWeightShape(op, cast<WeightAttr>(a), p.name, p.shape)))
          return failure();
    }
  }
  if (auto out = op.getOutDevice(); out && !isValidDeviceName(*out))
    return op.emitOpError() << "out_device '" << *out << "' is not a device";
  return expectLastDim(op, op.getInput().getType(), h, "input");
}

LogicalResult CpuExpertsOp::verify() { return verifyExpertKernel(*this); }
LogicalResult GpuExpertsOp::verify() { return verifyExpertKernel(*this); }

LogicalResult SigmoidGateOp::verify() {
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "result type must equal input type";
  return expectLastDim(*this, getGate().getType(), 1, "gate");
}

LogicalResult TopkRouteOp::verify() {
  if (sgn(getTopK()) <= 0)
    return emitOpError() << "top_k must be positive";
  if (auto e = lastDim(getLogits().getType()); e && *e < sgn(getTopK()))
    return emitOpError() << "top_k " << sgn(getTopK()) << " exceeds " << *e
                         << " experts";
  return success(
      succeeded(expectLastDim(*this, getIds().getType(), sgn(getTopK()), "ids")) &&
      succeeded(
          expectLastDim(*this, getWeights().getType(), sgn(getTopK()), "weights")));
}

LogicalResult AttentionCoreOp::verify() {
  int64_t h = sgn(getNumHeads()), kvh = sgn(getNumKvHeads()), d = sgn(getHeadDim());
  if (h <= 0 || kvh <= 0 || h % kvh)
    return emitOpError() << "num_heads must be a multiple of num_kv_heads";
  if (sgn(getRotaryDim()) < 0 || sgn(getRotaryDim()) > d || sgn(getRotaryDim()) % 2)
    return emitOpError() << "rotary_dim must be even and at most head_dim";
  if (failed(expectLastDim(*this, getQ().getType(), h * d, "q")) ||
      failed(expectLastDim(*this, getK().getType(), kvh * d, "k")) ||
      failed(expectLastDim(*this, getV().getType(), kvh * d, "v")) ||
      failed(expectLastDim(*this, getOutput().getType(), h * d, "output")))
    return failure();
  return success();
}

LogicalResult MlaCoreOp::verify() {
  int64_t h = sgn(getNumHeads()), nope = sgn(getQkNopeHeadDim()),
          rope = sgn(getQkRopeHeadDim()), v = sgn(getVHeadDim());
  if (failed(expectLastDim(*this, getQ().getType(), h * (nope + rope), "q")) ||
      failed(expectLastDim(*this, getKv().getType(), h * (nope + v), "kv")) ||
      failed(expectLastDim(*this, getKPe().getType(), rope, "k_pe")) ||
      failed(expectLastDim(*this, getOutput().getType(), h * v, "output")))
    return failure();
  return success();
}

LogicalResult SliceOp::verify() {
  if (sgn(getOffset()) < 0 || sgn(getSize()) <= 0)
    return emitOpError() << "needs offset >= 0 and size > 0";
  if (auto last = lastDim(getInput().getType());
      last && sgn(getOffset()) + sgn(getSize()) > *last)
    return emitOpError() << "slice [" << sgn(getOffset()) << ", "
                         << sgn(getOffset()) + sgn(getSize()) << ") exceeds " << *last;
  return expectLastDim(*this, getResult().getType(), sgn(getSize()), "result");
}

LogicalResult TransferOp::verify() {
  for (StringRef d : {getGenerateFrom(), getGenerateTo(), getPrefillFrom(),
                      getPrefillTo()})
    if (!isValidDeviceName(d))
      return emitOpError() << "'" << d << "' is not a device";
  if (getInput().getType() != getResult().getType())
    return emitOpError() << "result type must equal input type";
  return success();
}

#define GET_OP_CLASSES
#include "kt/Dialect/KtOps.cpp.inc"
