//===- RopeBuilder.cpp - kt.rotary from a config's rope parameters --------===//
#include "ModelBuilder.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kt;

namespace mlir::kt {
double yarnMscale(double scale, double m) {
  if (scale <= 1)
    return 1.0;
  return 0.1 * m * std::log(scale) + 1.0;
}

Operation *buildRotary(ModelBuilder &mb, StringRef name, StringRef fullClass,
                       Value positions, int64_t dim, bool interleaved) {
  const ::kt::RopeConfig &r = mb.cfg.rope;
  OpBuilder &b = mb.b;
  auto op = b.create<RotaryOp>(
      mb.loc, TypeRange{mb.f32s(dim), mb.f32s(dim)}, b.getStringAttr(name),
      b.getStringAttr(fullClass), nullptr, nullptr, nullptr, nullptr, nullptr,
      positions, b.getI64IntegerAttr(dim), b.getF64FloatAttr(r.theta),
      b.getI64IntegerAttr(mb.cfg.maxPositionEmbeddings),
      b.getStringAttr(r.type), b.getF64FloatAttr(r.factor),
      b.getI64IntegerAttr(r.originalMaxPosition), b.getF64FloatAttr(r.betaFast),
      b.getF64FloatAttr(r.betaSlow), b.getF64FloatAttr(r.mscale),
      b.getF64FloatAttr(r.mscaleAllDim), b.getF64FloatAttr(r.lowFreqFactor),
      b.getF64FloatAttr(r.highFreqFactor), b.getBoolAttr(interleaved));
  return op;
}
} // namespace mlir::kt
