//===- OpsInternal.h - Shared helpers of the CPU ops ------------*- C++ -*-===//
//
// The per-path kernel table (scalar, AVX2, AVX512) behind the ops, and small
// helpers (f16/bf16 widening, parallel loops) used by several op files.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_OPS_OPSINTERNAL_H
#define KT_LIB_RUNTIME_OPS_OPSINTERNAL_H

#include "kt/Runtime/CpuOps.h"

#include <cstdint>
#include <cstring>

namespace kt::cpu::detail {

/// The vectorised primitives of one path. Every function accumulates in
/// fp32.
struct Kernels {
  /// y[t * ldy + r] = x[t * ldx + :] · w[r, :] (+ bias[r]) for tokens
  /// [0, tokens) and rows [r0, r1) of w.
  void (*gemm)(const float *x, int64_t ldx, int64_t tokens, const MatrixView &w,
               int64_t r0, int64_t r1, const float *bias, float *y,
               int64_t ldy);
  /// Σ a[i] * b[i].
  float (*dot)(const float *a, const float *b, int64_t n);
  /// y[i] += a * x[i].
  void (*axpy)(float a, const float *x, float *y, int64_t n);
  /// y[i] += a * w[i], w of type `type` (one weight row).
  void (*axpyW)(float a, const void *w, WType type, float *y, int64_t n);
};

const Kernels &scalarKernels();
const Kernels &avx2Kernels();
const Kernels &avx512Kernels();

/// The kernels of the active path.
const Kernels &kernels();

inline float f16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13); // inf / nan
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    u = sign;
  } else { // subnormal: normalise
    int e = -1;
    do {
      ++e;
      man <<= 1;
    } while (!(man & 0x400u));
    u = sign | static_cast<uint32_t>(112 - e) << 23 | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Element i of a row of type `type`, widened.
inline float loadW(const void *row, WType type, int64_t i) {
  switch (type) {
  case WType::F32:
    return static_cast<const float *>(row)[i];
  case WType::BF16:
    return kernels::bf16ToF32(static_cast<const uint16_t *>(row)[i]);
  case WType::F16:
    return f16ToF32(static_cast<const uint16_t *>(row)[i]);
  }
  return 0;
}

inline int64_t elementBytes(WType type) { return type == WType::F32 ? 4 : 2; }

/// Pointer to row r of w.
inline const void *rowPtr(const MatrixView &w, int64_t r) {
  return static_cast<const char *>(w.data) + r * w.cols * elementBytes(w.type);
}

/// Runs fn(task, thread) for task in [0, n) on `pool` (or inline).
template <typename Fn> void parallelFor(ThreadPool *pool, int64_t n, Fn &&fn) {
  if (n <= 0)
    return;
  if (!pool || pool->size() <= 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i)
      fn(i, 0);
    return;
  }
  pool->run(static_cast<int>(n),
            [&](int task, int thread) { fn(task, thread); });
}

/// In place softmax of s[0, n) in fp32 (max-subtracted, as torch).
void softmaxInPlace(float *s, int64_t n);

inline int poolThreads(ThreadPool *pool) { return pool ? pool->size() : 1; }

} // namespace kt::cpu::detail

#endif // KT_LIB_RUNTIME_OPS_OPSINTERNAL_H
