//===- ImportDeepseek.cpp - DeepSeek-V2 / V3 (and Kimi-K2) ----------------===//
//
// Module names and classes follow the checkpoints' own modeling_deepseek.py
// (DeepseekV2MoE, MoEGate, DeepseekV2Attention, DeepseekV2YarnRotaryEmbedding,
// per-expert experts.N.{gate,up,down}_proj), which upstream rule files match.
//
//===----------------------------------------------------------------------===//
#include "ModelBuilder.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kt;

namespace {
class DeepseekImporter {
public:
  explicit DeepseekImporter(ModelBuilder &mb)
      : mb(mb), b(mb.b), c(mb.cfg),
        v(c.family == ::kt::ModelFamily::DeepseekV3 ? "V3" : "V2") {}

  void build() {
    mb.root(ds("ForCausalLM"), ds("Model"),
            [&](Value ids, Value pos) { return model(ids, pos); });
  }

private:
  ModelBuilder &mb;
  OpBuilder &b;
  const ::kt::ModelConfig &c;
  std::string v;

  std::string cls(StringRef leaf) { return mb.cls(leaf); }
  std::string ds(StringRef leaf) { return cls(("Deepseek" + v + leaf).str()); }

  Value model(Value ids, Value pos) {
    Value h = mb.embedding("model.embed_tokens", ids);
    h = mb.container("model.layers", "torch.nn.ModuleList", {h, pos},
                     {h.getType()}, [&](ValueRange a) -> SmallVector<Value> {
                       Value x = a[0];
                       for (int64_t l = 0; l < c.numLayers; ++l)
                         x = layer(l, x, a[1]);
                       return {x};
                     })[0];
    return mb.rmsNorm("model.norm", "Deepseek" + v + "RMSNorm", h,
                      c.hiddenSize);
  }

  bool isMoeLayer(int64_t l) const {
    return c.numExperts > 0 && l >= c.firstKDenseReplace &&
           l % std::max<int64_t>(c.moeLayerFreq, 1) == 0;
  }

  Value layer(int64_t l, Value h, Value pos) {
    std::string name = "model.layers." + std::to_string(l);
    return mb.container(
        name, ds("DecoderLayer"), {h, pos}, {h.getType()},
        [&](ValueRange a) -> SmallVector<Value> {
          std::string normCls = "Deepseek" + v + "RMSNorm";
          Value x = mb.rmsNorm(joinName(name, "input_layernorm"), normCls,
                               a[0], c.hiddenSize);
          Value attn = attention(l, joinName(name, "self_attn"), x, a[1]);
          Value h1 = b.create<AddOp>(mb.loc, a[0], attn);
          Value y = mb.rmsNorm(joinName(name, "post_attention_layernorm"),
                               normCls, h1, c.hiddenSize);
          std::string mlpName = joinName(name, "mlp");
          Value m = isMoeLayer(l) ? moe(mlpName, y)
                                  : mb.gatedMlp(mlpName, ds("MLP"), y,
                                                c.hiddenSize,
                                                c.intermediateSize);
          return {b.create<AddOp>(mb.loc, h1, m)};
        })[0];
  }

  std::string rotaryClass() {
    const std::string &t = c.rope.type;
    if (t == "yarn")
      return ds("YarnRotaryEmbedding");
    if (t == "linear")
      return ds("LinearScalingRotaryEmbedding");
    if (t == "dynamic")
      return ds("DynamicNTKScalingRotaryEmbedding");
    return ds("RotaryEmbedding");
  }

  double softmaxScale() {
    double qhd = static_cast<double>(c.qkNopeHeadDim + c.qkRopeHeadDim);
    double scale = 1.0 / std::sqrt(qhd);
    if (c.rope.type == "yarn" && c.rope.mscaleAllDim != 0) {
      double m = yarnMscale(c.rope.factor, c.rope.mscaleAllDim);
      scale *= m * m;
    }
    return scale;
  }

  Value attention(int64_t l, const std::string &name, Value x, Value pos) {
    int64_t heads = c.numHeads, nope = c.qkNopeHeadDim,
            rope = c.qkRopeHeadDim, vd = c.vHeadDim, H = c.hiddenSize;
    int64_t qhd = nope + rope;
    return mb.container(
        name, ds("Attention"), {x, pos}, {x.getType()},
        [&](ValueRange a) -> SmallVector<Value> {
          Value q;
          if (c.qLoraRank == 0) {
            q = mb.linear(joinName(name, "q_proj"), a[0], H, heads * qhd);
          } else {
            Value qa = mb.linear(joinName(name, "q_a_proj"), a[0], H,
                                 c.qLoraRank);
            qa = mb.rmsNorm(joinName(name, "q_a_layernorm"),
                            "Deepseek" + v + "RMSNorm", qa, c.qLoraRank);
            q = mb.linear(joinName(name, "q_b_proj"), qa, c.qLoraRank,
                          heads * qhd);
          }
          Value ckv = mb.linear(joinName(name, "kv_a_proj_with_mqa"), a[0], H,
                                c.kvLoraRank + rope);
          Value latent = b.create<SliceOp>(mb.loc, mb.acts(c.kvLoraRank), ckv,
                                           b.getI64IntegerAttr(0),
                                           b.getI64IntegerAttr(c.kvLoraRank));
          Value kpe = b.create<SliceOp>(mb.loc, mb.acts(rope), ckv,
                                        b.getI64IntegerAttr(c.kvLoraRank),
                                        b.getI64IntegerAttr(rope));
          latent = mb.rmsNorm(joinName(name, "kv_a_layernorm"),
                              "Deepseek" + v + "RMSNorm", latent,
                              c.kvLoraRank);
          Value kv = mb.linear(joinName(name, "kv_b_proj"), latent,
                               c.kvLoraRank, heads * (nope + vd));
          Operation *rot = buildRotary(mb, joinName(name, "rotary_emb"),
                                       rotaryClass(), a[1], rope,
                                       c.rope.interleaved);
          Value o = b.create<MlaCoreOp>(
              mb.loc, mb.acts(heads * vd), q, kv, latent, kpe,
              rot->getResult(0), rot->getResult(1),
              b.getI64IntegerAttr(heads), b.getI64IntegerAttr(nope),
              b.getI64IntegerAttr(rope), b.getI64IntegerAttr(vd),
              b.getF64FloatAttr(softmaxScale()), b.getI64IntegerAttr(l),
              b.getBoolAttr(c.rope.interleaved));
          return {mb.linear(joinName(name, "o_proj"), o, heads * vd, H)};
        })[0];
  }

  Value moe(const std::string &name, Value x) {
    int64_t E = c.numExperts, k = c.numExpertsPerTok, H = c.hiddenSize;
    return mb.container(
        name, ds("MoE"), {x}, {x.getType()},
        [&](ValueRange a) -> SmallVector<Value> {
          std::string gate = joinName(name, "gate");
          WeightAttr gw = mb.weight(joinName(gate, "weight"), {E, H});
          WeightAttr bias;
          if (c.topkMethod == "noaux_tc")
            bias = mb.weight(joinName(gate, "e_score_correction_bias"), {E});
          auto g = b.create<MoeGateOp>(
              mb.loc, TypeRange{mb.idsK(k), mb.f32s(k)}, b.getStringAttr(gate),
              b.getStringAttr(cls("MoEGate")), nullptr, nullptr, nullptr,
              nullptr, nullptr, a[0], gw, bias, b.getI64IntegerAttr(k),
              b.getI64IntegerAttr(E), b.getStringAttr(c.scoringFunc),
              b.getStringAttr(c.topkMethod), b.getI64IntegerAttr(c.nGroup),
              b.getI64IntegerAttr(c.topkGroup), b.getBoolAttr(c.normTopkProb),
              b.getF64FloatAttr(c.routedScalingFactor));
          Value r = mb.experts(joinName(name, "experts"), ds("MLP"),
                               ds("Experts"), a[0], g.getIds(),
                               g.getWeights(), E, H, c.moeIntermediateSize);
          if (c.numSharedExperts > 0) {
            Value s = mb.gatedMlp(joinName(name, "shared_experts"), ds("MLP"),
                                  a[0], H,
                                  c.moeIntermediateSize * c.numSharedExperts);
            r = b.create<AddOp>(mb.loc, r, s);
          }
          return {r};
        })[0];
  }
};
} // namespace

void mlir::kt::buildDeepseek(ModelBuilder &mb) {
  DeepseekImporter(mb).build();
}
