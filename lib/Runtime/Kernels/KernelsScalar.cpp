//===- KernelsScalar.cpp - Portable reference kernels --------------------===//
//
// Plain C++ (fp32 accumulation; INT8 accumulates exactly in int32). These
// define the numerics the SIMD kernels reproduce.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <algorithm>
#include <cmath>

namespace kt::kernels::detail {
namespace {

void bf16Rows(const PackedMatrix &w, int r0, int r1, const ActRows &a,
              const int *idx, int n, float *out, int outStride) {
  const int P = w.paddedCols;
  for (int r = r0; r < r1; ++r) {
    const uint16_t *wr = &w.bf16[static_cast<std::size_t>(r) * P];
    for (int j = 0; j < n; ++j) {
      const float *x = a.f32 + static_cast<std::size_t>(idx[j]) * a.stride;
      float acc = 0;
      for (int k = 0; k < P; ++k)
        acc += bf16ToF32(wr[k]) * x[k];
      out[j * outStride + (r - r0)] = acc;
    }
  }
}

void int8Rows(const PackedMatrix &w, int r0, int r1, const ActRows &a,
              const int *idx, int n, float *out, int outStride) {
  const int P = w.paddedCols;
  for (int r = r0; r < r1; ++r) {
    const int8_t *wr = &w.q8[static_cast<std::size_t>(r) * P];
    for (int j = 0; j < n; ++j) {
      const uint8_t *x = a.u8 + static_cast<std::size_t>(idx[j]) * a.stride;
      const float *xs = a.scale + static_cast<std::size_t>(idx[j]) * (a.stride / kActBlock);
      float acc = 0;
      for (int b = 0; b < P / kActBlock; ++b) {
        int32_t s = 0;
        for (int k = b * kActBlock; k < (b + 1) * kActBlock; ++k)
          s += (static_cast<int32_t>(x[k]) - 128) * wr[k];
        acc += static_cast<float>(s) * xs[b];
      }
      out[j * outStride + (r - r0)] = acc * w.scales[r];
    }
  }
}

// INT8 weights times fp32 activations (Int8Activations::Float).
void int8FloatRows(const PackedMatrix &w, int r0, int r1, const ActRows &a,
                   const int *idx, int n, float *out, int outStride) {
  const int P = w.paddedCols;
  for (int r = r0; r < r1; ++r) {
    const int8_t *wr = &w.q8[static_cast<std::size_t>(r) * P];
    for (int j = 0; j < n; ++j) {
      const float *x = a.f32 + static_cast<std::size_t>(idx[j]) * a.stride;
      float acc = 0;
      for (int k = 0; k < P; ++k)
        acc += static_cast<float>(wr[k]) * x[k];
      out[j * outStride + (r - r0)] = acc * w.scales[r];
    }
  }
}

void int4Rows(const PackedMatrix &w, int r0, int r1, const ActRows &a,
              const int *idx, int n, float *out, int outStride) {
  const int P = w.paddedCols, G = w.groupsPerRow(), gs = w.groupSize;
  std::vector<float> row(P);
  for (int r = r0; r < r1; ++r) {
    const uint8_t *q = &w.q4[static_cast<std::size_t>(r) * P / 2];
    for (int blk = 0; blk < P / 32; ++blk)
      for (int e = 0; e < 16; ++e) {
        uint8_t b = q[blk * 16 + e];
        row[blk * 32 + e] = b & 15;
        row[blk * 32 + 16 + e] = b >> 4;
      }
    for (int g = 0; g < G; ++g) {
      float s = w.scales[static_cast<std::size_t>(r) * G + g];
      float o = w.offsets[static_cast<std::size_t>(r) * G + g];
      for (int k = g * gs; k < (g + 1) * gs; ++k)
        row[k] = row[k] * s + o;
    }
    for (int j = 0; j < n; ++j) {
      const float *x = a.f32 + static_cast<std::size_t>(idx[j]) * a.stride;
      float acc = 0;
      for (int k = 0; k < P; ++k)
        acc += row[k] * x[k];
      out[j * outStride + (r - r0)] = acc;
    }
  }
}

} // namespace

KernelSet scalarKernels() {
  return {bf16Rows, int8Rows, int4Rows, int8FloatRows, int4Rows};
}

void quantizeRowU8(const float *x, int n, int stride, uint8_t *q,
                   float *scales) {
  for (int b = 0; b < stride / kActBlock; ++b) {
    int k0 = b * kActBlock, k1 = std::min(n, k0 + kActBlock);
    float amax = 0;
    for (int i = k0; i < k1; ++i)
      amax = std::max(amax, std::fabs(x[i]));
    float s = amax / 127.f;
    float inv = s != 0 ? 1.f / s : 0.f;
    for (int i = k0; i < k1; ++i) {
      int v = static_cast<int>(std::nearbyint(x[i] * inv));
      q[i] = static_cast<uint8_t>(std::clamp(v, -127, 127) + 128);
    }
    for (int i = std::max(k0, k1); i < k0 + kActBlock; ++i)
      q[i] = 128;
    scales[b] = s;
  }
}

namespace {

/// Reference of the AMX panel micro-kernels: reads the tile layout element
/// by element (s8 x s8 -> int32, or bf16 x bf16 -> fp32).
template <bool Int8>
void scalarPanelMicro(const char *A, long aStride, int M, const char *B0,
                      const char *B1, int kChunks, void *C) {
  constexpr int per = Int8 ? 4 : 2; // elements per 4 bytes
  const int K = kChunks * 16 * per;
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < (B1 ? 32 : 16); ++c) {
      const char *B = c < 16 ? B0 : B1;
      const int n = c % 16;
      int32_t iacc = 0;
      float facc = 0;
      for (int k = 0; k < K; ++k) {
        const int kc = k / (16 * per), kk = (k % (16 * per)) / per,
                  j = k % per;
        const long off = static_cast<long>(kc) * 1024 + kk * 64 + n * 4;
        if constexpr (Int8) {
          iacc += static_cast<int32_t>(static_cast<int8_t>(A[m * aStride + k])) *
                  static_cast<int8_t>(B[off + j]);
        } else {
          uint16_t a, b;
          __builtin_memcpy(&a, A + m * aStride + 2 * k, 2);
          __builtin_memcpy(&b, B + off + 2 * j, 2);
          facc += bf16ToF32(a) * bf16ToF32(b);
        }
      }
      if constexpr (Int8)
        static_cast<int32_t *>(C)[m * 32 + c] = iacc;
      else
        static_cast<float *>(C)[m * 32 + c] = facc;
    }
}

} // namespace

PanelKernel scalarPanel(bool int8) {
  return {int8 ? scalarPanelMicro<true> : scalarPanelMicro<false>, int8, false,
          scalarEpilogue()};
}

} // namespace kt::kernels::detail
