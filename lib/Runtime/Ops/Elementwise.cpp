//===- Elementwise.cpp - RMSNorm, add, SiLU gating, sigmoid gate ---------===//
//
// Simple loops the compiler vectorises; the semantics follow the Hugging Face
// modules (LlamaRMSNorm, ACT2FN["silu"], Qwen2MoE's shared_expert_gate).
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <cmath>

namespace kt::cpu {

void rmsNorm(const float *x, int64_t tokens, int64_t cols, const float *weight,
             int64_t groupSize, double eps, float *y) {
  if (groupSize <= 0)
    return;
  const int64_t groups = cols / groupSize;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      const float *xs = x + t * cols + g * groupSize;
      float *ys = y + t * cols + g * groupSize;
      // HF: variance = x.pow(2).mean(-1) in fp32; the sum is taken in
      // double here, at least as accurate as torch's reduction.
      double ss = 0;
      for (int64_t i = 0; i < groupSize; ++i)
        ss += static_cast<double>(xs[i]) * xs[i];
      const float var = static_cast<float>(ss / groupSize);
      // x * rsqrt(var + eps), then weight * (...), both in fp32.
      const float r = 1.0f / std::sqrt(var + static_cast<float>(eps));
      for (int64_t i = 0; i < groupSize; ++i)
        ys[i] = weight[i] * (xs[i] * r);
    }
}

void add(const float *a, const float *b, int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] + b[i];
}

void siluMul(const float *gate, const float *up, int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    y[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void sigmoidGate(const float *g, const float *x, int64_t tokens, int64_t cols,
                 float *y) {
  for (int64_t t = 0; t < tokens; ++t) {
    const float s = 1.0f / (1.0f + std::exp(-g[t]));
    for (int64_t i = 0; i < cols; ++i)
      y[t * cols + i] = s * x[t * cols + i];
  }
}

} // namespace kt::cpu
