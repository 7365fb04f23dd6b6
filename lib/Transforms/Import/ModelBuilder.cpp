//===- ModelBuilder.cpp - helpers shared by the importers -----------------===//
#include "ModelBuilder.h"

using namespace mlir;
using namespace mlir::kt;

std::string mlir::kt::joinName(StringRef prefix, StringRef child) {
  if (prefix.empty())
    return child.str();
  return (prefix + "." + child).str();
}

static Type activationType(MLIRContext *ctx, const std::string &dtype) {
  Builder b(ctx);
  if (dtype == "float32")
    return b.getF32Type();
  if (dtype == "float16")
    return b.getF16Type();
  return b.getBF16Type(); // bfloat16, and what fp8 checkpoints compute in
}

ModelBuilder::ModelBuilder(MLIRContext *ctx, const ::kt::ModelDir &dir,
                           const ::kt::ModelConfig &config,
                           std::string classPrefix)
    : b(ctx), loc(FileLineColLoc::get(ctx, dir.path + "/config.json", 0, 0)),
      dir(dir), cfg(config), act(activationType(ctx, config.torchDtype)),
      classPrefix(std::move(classPrefix)) {}

RankedTensorType ModelBuilder::acts(int64_t dim) {
  return RankedTensorType::get({ShapedType::kDynamic, dim}, act);
}
RankedTensorType ModelBuilder::ids() {
  return RankedTensorType::get({ShapedType::kDynamic}, b.getI64Type());
}
RankedTensorType ModelBuilder::idsK(int64_t k) {
  return RankedTensorType::get({ShapedType::kDynamic, k}, b.getI64Type());
}
RankedTensorType ModelBuilder::f32s(int64_t dim) {
  return RankedTensorType::get({ShapedType::kDynamic, dim}, b.getF32Type());
}

bool ModelBuilder::has(StringRef tensor) const {
  return dir.find(tensor) != nullptr;
}

WeightAttr ModelBuilder::makeWeight(const ::kt::TensorInfo &info) {
  Type dtype =
      elementTypeForSafetensors(b.getContext(), ::kt::dtypeName(info.dtype));
  return WeightAttr::get(b.getContext(), info.name, dtype, info.shape,
                         info.file);
}

WeightAttr ModelBuilder::optionalWeight(StringRef tensor,
                                        ArrayRef<int64_t> shape) {
  if (!has(tensor))
    return {};
  return weight(tensor, shape);
}

WeightAttr ModelBuilder::weight(StringRef tensor, ArrayRef<int64_t> shape) {
  const ::kt::TensorInfo *info = dir.find(tensor);
  std::vector<int64_t> want(shape.begin(), shape.end());
  if (!info) {
    error("missing tensor '" + tensor.str() + "' (expected shape " +
          ::kt::formatShape(want) + ")");
    return WeightAttr::get(b.getContext(), tensor, b.getF32Type(), shape,
                           "<missing>");
  }
  used.insert(info->name);
  if (info->shape != want)
    error(info->file + ": tensor '" + info->name + "' has shape " +
          ::kt::formatShape(info->shape) + ", expected " +
          ::kt::formatShape(want));
  switch (info->dtype) {
  case ::kt::DType::F32:
  case ::kt::DType::F16:
  case ::kt::DType::BF16:
  case ::kt::DType::F8_E4M3:
    break;
  default:
    error(info->file + ": tensor '" + info->name + "' has unsupported dtype " +
          std::string(::kt::dtypeName(info->dtype)) +
          " (kt reads F32, F16, BF16 and F8_E4M3 weights)");
  }
  // Shape errors are reported; build with the expected shape so the
  // remaining import can go on and find every other problem.
  WeightAttr w = makeWeight(*info);
  if (info->shape != want)
    w = WeightAttr::get(b.getContext(), w.getTensor(), w.getDtype(), shape,
                        w.getFile());
  return w;
}

Value ModelBuilder::linear(StringRef name, Value x, int64_t in, int64_t out,
                           bool bias) {
  WeightAttr w = weight(joinName(name, "weight"), {out, in});
  WeightAttr bw = bias ? weight(joinName(name, "bias"), {out}) : WeightAttr();
  WeightAttr scale;
  if (w.getDtype().isFloat8E4M3FN()) {
    // Block-scaled FP8 (DeepSeek-V3): one scale per block of the weight.
    int64_t block0 = 128, block1 = 128;
    if (cfg.weightBlockSize.size() == 2) {
      block0 = cfg.weightBlockSize[0];
      block1 = cfg.weightBlockSize[1];
    }
    scale = weight(joinName(name, "weight_scale_inv"),
                   {(out + block0 - 1) / block0, (in + block1 - 1) / block1});
  }
  auto op = b.create<LinearOp>(loc, acts(out), b.getStringAttr(name),
                               b.getStringAttr("torch.nn.Linear"), nullptr,
                               nullptr, nullptr, nullptr, nullptr, x, w, bw,
                               scale);
  return op.getOutput();
}

Value ModelBuilder::rmsNorm(StringRef name, StringRef leafClass, Value x,
                            int64_t dim) {
  WeightAttr w = weight(joinName(name, "weight"), {dim});
  auto op = b.create<RmsNormOp>(loc, x.getType(), b.getStringAttr(name),
                                b.getStringAttr(cls(leafClass)), nullptr,
                                nullptr, nullptr, nullptr, nullptr, x, w,
                                b.getF64FloatAttr(cfg.rmsNormEps));
  return op.getOutput();
}

Value ModelBuilder::embedding(StringRef name, Value idsValue) {
  WeightAttr w =
      weight(joinName(name, "weight"), {cfg.vocabSize, cfg.hiddenSize});
  auto op = b.create<EmbeddingOp>(loc, acts(cfg.hiddenSize),
                                  b.getStringAttr(name),
                                  b.getStringAttr("torch.nn.Embedding"),
                                  nullptr, nullptr, nullptr, nullptr, nullptr,
                                  idsValue, w);
  return op.getOutput();
}

ValueRange ModelBuilder::container(StringRef name, StringRef fullClass,
                                   ValueRange inputs, TypeRange results,
                                   BodyFn body) {
  auto op = b.create<ModuleContainerOp>(
      loc, results, b.getStringAttr(name), b.getStringAttr(fullClass), nullptr,
      nullptr, nullptr, nullptr, nullptr, inputs);
  Block *block = new Block();
  op.getBody().push_back(block);
  for (Value v : inputs)
    block->addArgument(v.getType(), loc);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(block);
  SmallVector<Value> outs = body(block->getArguments());
  b.create<YieldOp>(loc, outs);
  return op.getResults();
}

Value ModelBuilder::gatedMlp(StringRef name, StringRef fullClass, Value x,
                             int64_t hidden, int64_t inter, StringRef gate,
                             StringRef up, StringRef down, bool bias) {
  return container(name, fullClass, {x}, {x.getType()},
                   [&](ValueRange args) -> SmallVector<Value> {
                     Value g = linear(joinName(name, gate), args[0], hidden,
                                      inter, bias);
                     Value u = linear(joinName(name, up), args[0], hidden,
                                      inter, bias);
                     Value h = b.create<SiluMulOp>(loc, g, u);
                     return {linear(joinName(name, down), h, inter, hidden,
                                    bias)};
                   })[0];
}

Value ModelBuilder::experts(StringRef name, StringRef expertClass,
                            StringRef fusedClass, Value x, Value idsValue,
                            Value weights, int64_t numExperts, int64_t hidden,
                            int64_t inter, StringRef gate, StringRef up,
                            StringRef down) {
  bool perExpert = has(joinName(joinName(name, "0"), gate) + ".weight");
  WeightAttr gateUp, downFused;
  if (!perExpert) {
    gateUp = weight(joinName(name, "gate_up_proj"),
                    {numExperts, 2 * inter, hidden});
    downFused = weight(joinName(name, "down_proj"), {numExperts, hidden, inter});
  }
  auto op = b.create<ExpertsOp>(
      loc, x.getType(), b.getStringAttr(name),
      b.getStringAttr(perExpert ? "torch.nn.ModuleList" : fusedClass), nullptr,
      nullptr, nullptr, nullptr, nullptr, x, idsValue, weights,
      b.getI64IntegerAttr(numExperts), b.getI64IntegerAttr(hidden),
      b.getI64IntegerAttr(inter), b.getStringAttr("silu"), gateUp, downFused);
  if (!perExpert)
    return op.getOutput();
  Block *block = new Block();
  op.getBody().push_back(block);
  block->addArgument(x.getType(), loc);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(block);
  SmallVector<Value> outs;
  for (int64_t e = 0; e < numExperts; ++e)
    outs.push_back(gatedMlp(joinName(name, std::to_string(e)), expertClass,
                            block->getArgument(0), hidden, inter, gate, up,
                            down));
  b.create<YieldOp>(loc, outs);
  return op.getOutput();
}

void ModelBuilder::root(StringRef rootClass, StringRef modelClass,
                        function_ref<Value(Value, Value)> modelBody) {
  auto rootOp = b.create<ModuleContainerOp>(
      loc, TypeRange{acts(cfg.vocabSize)}, b.getStringAttr(""),
      b.getStringAttr(rootClass), nullptr, nullptr, nullptr, nullptr, nullptr,
      ValueRange{});
  Block *block = new Block();
  rootOp.getBody().push_back(block);
  Value idsArg = block->addArgument(ids(), loc);
  Value posArg = block->addArgument(ids(), loc);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(block);
  Value h = container("model", modelClass, {idsArg, posArg},
                      {acts(cfg.hiddenSize)},
                      [&](ValueRange a) -> SmallVector<Value> {
                        return {modelBody(a[0], a[1])};
                      })[0];
  Value logits;
  if (!has("lm_head.weight") && cfg.tieWordEmbeddings) {
    WeightAttr w =
        weight("model.embed_tokens.weight", {cfg.vocabSize, cfg.hiddenSize});
    logits = b.create<LinearOp>(loc, acts(cfg.vocabSize),
                                b.getStringAttr("lm_head"),
                                b.getStringAttr("torch.nn.Linear"), nullptr,
                                nullptr, nullptr, nullptr, nullptr, h, w,
                                nullptr, nullptr)
                 .getOutput();
  } else {
    logits = linear("lm_head", h, cfg.hiddenSize, cfg.vocabSize);
  }
  b.create<YieldOp>(loc, logits);
}
