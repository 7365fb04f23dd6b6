//===- Rotate.cpp - the down projection's Hadamard rotation ---------------===//
//
// hadamardRotate (Moe.h): the normalised Walsh-Hadamard transform on blocks
// of a row. INT8 down weights are stored rotated (packMatrix) and every
// pair's h row is rotated before it is quantised (moeForward), so this runs
// once per (token, expert) pair per call: 128-element blocks have AVX512
// and AVX2 versions (all 128 values in registers: butterflies between
// registers for the large strides, a permute and a masked add / subtract
// within a register for the small ones); other sizes and the tails use the
// scalar butterflies. All versions add and subtract the same pairs in the
// same order, so they give the same bits.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <immintrin.h>

#include <cmath>

namespace kt::kernels {
namespace {

/// Butterflies over log2(n) stages, then one scaling by 1/sqrt(n).
void walshHadamard(float *x, int n) {
  for (int h = 1; h < n; h *= 2)
    for (int i = 0; i < n; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  const float norm = 1.f / std::sqrt(static_cast<float>(n));
  for (int i = 0; i < n; ++i)
    x[i] *= norm;
}

/// 1 / sqrt(128), computed as walshHadamard computes its factor.
inline float norm128() { return 1.f / std::sqrt(128.f); }

/// Stage h < 16 within one register: lanes j and j + h (j & h == 0) become
/// x_j + x_{j+h} and x_j - x_{j+h}; `t` holds every lane's partner.
__attribute__((target("avx512f"))) inline __m512 inLane512(__m512 x, __m512 t,
                                                           __mmask16 upper) {
  return _mm512_mask_sub_ps(_mm512_add_ps(x, t), upper, t, x);
}

__attribute__((target("avx512f"))) void hadamard128Avx512(float *p, int n) {
  for (int b0 = 0; b0 + 128 <= n; b0 += 128) {
    float *x = p + b0;
    __m512 v[8];
    for (int r = 0; r < 8; ++r) {
      __m512 a = _mm512_loadu_ps(x + 16 * r);
      a = inLane512(a, _mm512_permute_ps(a, 0xB1), 0xAAAA);          // h 1
      a = inLane512(a, _mm512_permute_ps(a, 0x4E), 0xCCCC);          // h 2
      a = inLane512(a, _mm512_shuffle_f32x4(a, a, 0xB1), 0xF0F0);    // h 4
      v[r] = inLane512(a, _mm512_shuffle_f32x4(a, a, 0x4E), 0xFF00); // h 8
    }
    for (int d = 1; d < 8; d *= 2) // h 16, 32, 64: between registers
      for (int r = 0; r < 8; ++r)
        if (!(r & d)) {
          const __m512 a = v[r], b = v[r + d];
          v[r] = _mm512_add_ps(a, b);
          v[r + d] = _mm512_sub_ps(a, b);
        }
    const __m512 norm = _mm512_set1_ps(norm128());
    for (int r = 0; r < 8; ++r)
      _mm512_storeu_ps(x + 16 * r, _mm512_mul_ps(v[r], norm));
  }
}

template <int Upper>
__attribute__((target("avx2"))) inline __m256 inLane256(__m256 x, __m256 t) {
  return _mm256_blend_ps(_mm256_add_ps(x, t), _mm256_sub_ps(t, x), Upper);
}

__attribute__((target("avx2"))) void hadamard128Avx2(float *p, int n) {
  for (int b0 = 0; b0 + 128 <= n; b0 += 128) {
    float *x = p + b0;
    __m256 v[16];
    for (int r = 0; r < 16; ++r) {
      __m256 a = _mm256_loadu_ps(x + 8 * r);
      a = inLane256<0xAA>(a, _mm256_permute_ps(a, 0xB1));         // h 1
      a = inLane256<0xCC>(a, _mm256_permute_ps(a, 0x4E));         // h 2
      v[r] = inLane256<0xF0>(a, _mm256_permute2f128_ps(a, a, 1)); // h 4
    }
    for (int d = 1; d < 16; d *= 2) // h 8 .. 64: between registers
      for (int r = 0; r < 16; ++r)
        if (!(r & d)) {
          const __m256 a = v[r], b = v[r + d];
          v[r] = _mm256_add_ps(a, b);
          v[r + d] = _mm256_sub_ps(a, b);
        }
    const __m256 norm = _mm256_set1_ps(norm128());
    for (int r = 0; r < 16; ++r)
      _mm256_storeu_ps(x + 8 * r, _mm256_mul_ps(v[r], norm));
  }
}

} // namespace

void hadamardRotate(float *v, int n, int block) {
  if (block <= 1)
    return;
  int b0 = 0;
  if (block == 128 && n >= 128) {
    const CpuFeatures &cpu = cpuFeatures();
    if (cpu.avx512f)
      hadamard128Avx512(v, n);
    else if (cpu.avx2)
      hadamard128Avx2(v, n);
    if (cpu.avx512f || cpu.avx2)
      b0 = n / 128 * 128;
  }
  for (; b0 + block <= n; b0 += block)
    walshHadamard(v + b0, block);
  for (int piece = block / 2; piece > 1; piece /= 2) // the tail
    if (b0 + piece <= n) {
      walshHadamard(v + b0, piece);
      b0 += piece;
    }
}

} // namespace kt::kernels
