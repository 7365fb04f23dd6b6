//===- KernelsScalar.cpp - Portable fallback kernels ---------------------===//
//
// Plain loops, fp32 accumulation; the reference for the SIMD paths.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <vector>

namespace kt::cpu::detail {
namespace {

void gemm(const float *x, int64_t ldx, int64_t tokens, const MatrixView &w,
          int64_t r0, int64_t r1, const float *bias, float *y, int64_t ldy) {
  const int64_t k = w.cols;
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = r0; r < r1; ++r) {
    const void *src = rowPtr(w, r);
    for (int64_t i = 0; i < k; ++i)
      row[i] = loadW(src, w.type, i);
    const float b = bias ? bias[r] : 0.0f;
    for (int64_t t = 0; t < tokens; ++t) {
      const float *xt = x + t * ldx;
      float acc = 0;
      for (int64_t i = 0; i < k; ++i)
        acc += xt[i] * row[i];
      y[t * ldy + r] = acc + b;
    }
  }
}

float dot(const float *a, const float *b, int64_t n) {
  float acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc += a[i] * b[i];
  return acc;
}

void axpy(float a, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * x[i];
}

void axpyW(float a, const void *w, WType type, float *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * loadW(w, type, i);
}

} // namespace

const Kernels &scalarKernels() {
  static const Kernels k{gemm, dot, axpy, axpyW};
  return k;
}

} // namespace kt::cpu::detail
