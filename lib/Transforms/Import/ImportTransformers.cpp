//===- ImportTransformers.cpp - Qwen2/3(-MoE), Mixtral, Llama, Mistral ----===//
//
// Module names and classes follow transformers' modeling code. MoE blocks are
// named after the checkpoint's tensors: Mixtral hub checkpoints use
// `block_sparse_moe` with experts.N.{w1,w2,w3}; transformers-5 saves use `mlp`
// with fused experts.{gate_up_proj,down_proj}.
//
//===----------------------------------------------------------------------===//
#include "ModelBuilder.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kt;

namespace {
using ::kt::ModelFamily;

class TransformersImporter {
public:
  TransformersImporter(ModelBuilder &mb, std::string base)
      : mb(mb), b(mb.b), c(mb.cfg), base(std::move(base)) {}

  void build() {
    mb.root(k("ForCausalLM"), k("Model"),
            [&](Value ids, Value pos) { return model(ids, pos); });
  }

private:
  ModelBuilder &mb;
  OpBuilder &b;
  const ::kt::ModelConfig &c;
  std::string base; ///< class stem: "Qwen3Moe", "Mixtral", ...

  std::string k(StringRef leaf) { return mb.cls(base + leaf.str()); }
  bool hasQkNorm() const {
    return c.family == ModelFamily::Qwen3 || c.family == ModelFamily::Qwen3Moe;
  }
  int64_t rotaryDim() const {
    return static_cast<int64_t>(c.headDim * c.rope.partialRotaryFactor);
  }

  Value model(Value ids, Value pos) {
    Value h = mb.embedding("model.embed_tokens", ids);
    Operation *rot = buildRotary(mb, "model.rotary_emb", k("RotaryEmbedding"),
                                 pos, rotaryDim(), /*interleaved=*/false);
    Value cos = rot->getResult(0), sin = rot->getResult(1);
    h = mb.container("model.layers", "torch.nn.ModuleList", {h, cos, sin},
                     {h.getType()}, [&](ValueRange a) -> SmallVector<Value> {
                       Value x = a[0];
                       for (int64_t l = 0; l < c.numLayers; ++l)
                         x = layer(l, x, a[1], a[2]);
                       return {x};
                     })[0];
    return mb.rmsNorm("model.norm", base + "RMSNorm", h, c.hiddenSize);
  }

  bool isMoeLayer(int64_t l) const {
    if (c.numExperts == 0)
      return false;
    if (llvm::is_contained(c.mlpOnlyLayers, l))
      return false;
    return (l + 1) % std::max<int64_t>(c.decoderSparseStep, 1) == 0;
  }

  Value layer(int64_t l, Value h, Value cos, Value sin) {
    std::string name = "model.layers." + std::to_string(l);
    return mb.container(
        name, k("DecoderLayer"), {h, cos, sin}, {h.getType()},
        [&](ValueRange a) -> SmallVector<Value> {
          Value x = mb.rmsNorm(joinName(name, "input_layernorm"),
                               base + "RMSNorm", a[0], c.hiddenSize);
          Value attn =
              attention(l, joinName(name, "self_attn"), x, a[1], a[2]);
          Value h1 = b.create<AddOp>(mb.loc, a[0], attn);
          Value y = mb.rmsNorm(joinName(name, "post_attention_layernorm"),
                               base + "RMSNorm", h1, c.hiddenSize);
          Value m;
          if (isMoeLayer(l)) {
            std::string blockName = joinName(name, "mlp");
            if (mb.has(joinName(name, "block_sparse_moe.gate.weight")))
              blockName = joinName(name, "block_sparse_moe");
            m = moe(blockName, y);
          } else {
            m = mb.gatedMlp(joinName(name, "mlp"), k("MLP"), y, c.hiddenSize,
                            c.intermediateSize, "gate_proj", "up_proj",
                            "down_proj", c.mlpBias);
          }
          return {b.create<AddOp>(mb.loc, h1, m)};
        })[0];
  }

  Value attention(int64_t l, const std::string &name, Value x, Value cos,
                  Value sin) {
    int64_t H = c.hiddenSize, hd = c.headDim, nh = c.numHeads,
            nkv = c.numKvHeads;
    bool bias = c.attentionBias;
    return mb.container(
        name, k("Attention"), {x, cos, sin}, {x.getType()},
        [&](ValueRange a) -> SmallVector<Value> {
          Value q = mb.linear(joinName(name, "q_proj"), a[0], H, nh * hd, bias);
          Value kk =
              mb.linear(joinName(name, "k_proj"), a[0], H, nkv * hd, bias);
          Value v = mb.linear(joinName(name, "v_proj"), a[0], H, nkv * hd, bias);
          if (hasQkNorm()) {
            q = mb.rmsNorm(joinName(name, "q_norm"), base + "RMSNorm", q, hd);
            kk = mb.rmsNorm(joinName(name, "k_norm"), base + "RMSNorm", kk, hd);
          }
          Value o = b.create<AttentionCoreOp>(
              mb.loc, mb.acts(nh * hd), q, kk, v, a[1], a[2],
              b.getI64IntegerAttr(nh), b.getI64IntegerAttr(nkv),
              b.getI64IntegerAttr(hd), b.getI64IntegerAttr(rotaryDim()),
              b.getF64FloatAttr(1.0 / std::sqrt(static_cast<double>(hd))),
              b.getI64IntegerAttr(l), b.getBoolAttr(false));
          return {mb.linear(joinName(name, "o_proj"), o, nh * hd, H,
                            c.family == ModelFamily::Llama && c.attentionBias)};
        })[0];
  }

  Value moe(const std::string &name, Value x) {
    int64_t E = c.numExperts, topk = c.numExpertsPerTok, H = c.hiddenSize;
    bool mixtral = c.family == ModelFamily::Mixtral;
    int64_t inter = mixtral ? c.intermediateSize : c.moeIntermediateSize;
    return mb.container(
        name, k("SparseMoeBlock"), {x}, {x.getType()},
        [&](ValueRange a) -> SmallVector<Value> {
          Value logits = mb.linear(joinName(name, "gate"), a[0], H, E);
          auto route = b.create<TopkRouteOp>(
              mb.loc, TypeRange{mb.idsK(topk), mb.f32s(topk)}, logits,
              b.getI64IntegerAttr(topk),
              b.getBoolAttr(mixtral || c.normTopkProb));
          std::string expertsName = joinName(name, "experts");
          bool hubMixtral = mixtral && mb.has(expertsName + ".0.w1.weight");
          Value r = hubMixtral
                        ? mb.experts(expertsName, k("BlockSparseTop2MLP"),
                                     k("Experts"), a[0], route.getIds(),
                                     route.getWeights(), E, H, inter, "w1",
                                     "w3", "w2")
                        : mb.experts(expertsName, k("MLP"), k("Experts"), a[0],
                                     route.getIds(), route.getWeights(), E, H,
                                     inter);
          if (c.family == ModelFamily::Qwen2Moe &&
              c.sharedExpertIntermediateSize > 0) {
            Value s = mb.gatedMlp(joinName(name, "shared_expert"), k("MLP"),
                                  a[0], H, c.sharedExpertIntermediateSize);
            Value g =
                mb.linear(joinName(name, "shared_expert_gate"), a[0], H, 1);
            s = b.create<SigmoidGateOp>(mb.loc, s.getType(), g, s);
            r = b.create<AddOp>(mb.loc, r, s);
          }
          return {r};
        })[0];
  }
};

struct FamilyInfo {
  const char *base;
  const char *module; ///< transformers.models.<module>.modeling_<module>
};

FamilyInfo familyInfo(ModelFamily f) {
  switch (f) {
  case ModelFamily::Qwen2Moe: return {"Qwen2Moe", "qwen2_moe"};
  case ModelFamily::Qwen3Moe: return {"Qwen3Moe", "qwen3_moe"};
  case ModelFamily::Mixtral: return {"Mixtral", "mixtral"};
  case ModelFamily::Qwen2: return {"Qwen2", "qwen2"};
  case ModelFamily::Qwen3: return {"Qwen3", "qwen3"};
  case ModelFamily::Mistral: return {"Mistral", "mistral"};
  default: return {"Llama", "llama"};
  }
}
} // namespace

namespace mlir::kt {
std::string transformersClassPrefix(::kt::ModelFamily f) {
  FamilyInfo info = familyInfo(f);
  return std::string("transformers.models.") + info.module + ".modeling_" +
         info.module + ".";
}

void buildTransformersFamily(ModelBuilder &mb) {
  TransformersImporter(mb, familyInfo(mb.cfg.family).base).build();
}
} // namespace mlir::kt
