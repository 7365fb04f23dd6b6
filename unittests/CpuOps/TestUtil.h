//===- TestUtil.h - Helpers of the CPU op tests -----------------*- C++ -*-===//
//
// Random data, weight encodings, the per-path fixture and the comparison
// used by every test: |got - ref| <= rel * max|ref| + abs over a tensor,
// with the reference computed in float64.
//
//===----------------------------------------------------------------------===//

#ifndef KT_UNITTESTS_CPUOPS_TESTUTIL_H
#define KT_UNITTESTS_CPUOPS_TESTUTIL_H

#include "kt/Runtime/CpuOps.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace kt::cpu::test {

inline std::vector<float> randomVec(size_t n, uint32_t seed, float lo = -1,
                                    float hi = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// Random values k / 1024 with 1 <= |k| < 1024: exact in f32, f16 and (after
/// rounding to 8 bits) bf16, so one float64 reference serves all types.
inline std::vector<float> randomWeights(size_t n, uint32_t seed, WType type) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(1, 1023), s(0, 1);
  std::vector<float> v(n);
  for (float &x : v) {
    int k = d(rng);
    if (type == WType::BF16)
      k = std::max(8, k & ~7); // 7 significant bits at most
    x = (s(rng) ? -1.0f : 1.0f) * static_cast<float>(k) / 1024.0f;
  }
  return v;
}

inline uint16_t bf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(u >> 16); // exact for randomWeights values
}

/// f16 bits of a normal value exactly representable in f16.
inline uint16_t f16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t exp = (u >> 23) & 0xffu;
  if (exp == 0)
    return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | ((exp - 112) << 10) |
                               ((u >> 13) & 0x3ffu));
}

/// Storage for a weight matrix in one of the three types.
struct Weights {
  std::vector<float> f32;     ///< the values (exact in every type)
  std::vector<uint16_t> bits; ///< bf16/f16 storage
  MatrixView view;
  Weights(int64_t rows, int64_t cols, WType type, uint32_t seed)
      : f32(randomWeights(static_cast<size_t>(rows * cols), seed, type)) {
    view.type = type;
    view.rows = rows;
    view.cols = cols;
    if (type == WType::F32) {
      view.data = f32.data();
    } else {
      bits.resize(f32.size());
      for (size_t i = 0; i < f32.size(); ++i)
        bits[i] = type == WType::BF16 ? bf16Bits(f32[i]) : f16Bits(f32[i]);
      view.data = bits.data();
    }
  }
  double at(int64_t r, int64_t c) const { return f32[r * view.cols + c]; }
};

inline const char *typeName(WType t) {
  return t == WType::F32 ? "f32" : t == WType::BF16 ? "bf16" : "f16";
}

/// Expects |got[i] - ref[i]| <= rel * max|ref| + abs for all i.
inline void expectClose(const std::vector<float> &got,
                        const std::vector<double> &ref, double rel,
                        double abs = 0, const std::string &what = "") {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double m = 0;
  for (double r : ref)
    m = std::max(m, std::fabs(r));
  const double tol = rel * m + abs;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - ref[i]) <= tol) && bad++ < 5)
      ADD_FAILURE() << what << " [" << i << "] got " << got[i] << " want "
                    << ref[i] << " (tol " << tol << ")";
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size()
                     << " elements outside tolerance";
}

/// Fixture parameterised by the ops path; skips paths the CPU lacks.
class PathTest : public ::testing::TestWithParam<OpsPath> {
protected:
  void SetUp() override {
    if (!setCpuOpsPath(GetParam()))
      GTEST_SKIP() << "CPU lacks "
                   << (GetParam() == OpsPath::AVX512 ? "AVX512"
                                                     : "AVX2/FMA/F16C")
                   << ": path " << toString(GetParam()) << " not tested";
  }
  void TearDown() override { setCpuOpsPath(OpsPath::Auto); }
};

inline std::string pathName(const ::testing::TestParamInfo<OpsPath> &i) {
  return toString(i.param);
}

#define KT_INSTANTIATE_PATHS(Suite)                                            \
  INSTANTIATE_TEST_SUITE_P(                                                    \
      Paths, Suite,                                                            \
      ::testing::Values(OpsPath::Scalar, OpsPath::AVX2, OpsPath::AVX512),      \
      ::kt::cpu::test::pathName)

/// Rotates pairs in double as the reference for applyRope.
inline void refRope(std::vector<double> &x, int64_t tokens, int64_t heads,
                    int64_t headDim, int64_t offset, int64_t rotaryDim,
                    const std::vector<float> &cos,
                    const std::vector<float> &sin, bool interleaved) {
  const int64_t half = rotaryDim / 2;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      double *v = x.data() + (t * heads + h) * headDim + offset;
      std::vector<double> o(v, v + rotaryDim);
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = interleaved ? 2 * i : i;
        const int64_t b = interleaved ? 2 * i + 1 : i + half;
        const double c = cos[t * rotaryDim + i], s = sin[t * rotaryDim + i];
        o[a] = v[a] * c - v[b] * s;
        o[b] = v[b] * c + v[a] * s;
      }
      std::copy(o.begin(), o.end(), v);
    }
}

/// cos/sin [tokens, dim] for positions pos0.. with default inv_freq, built
/// in double (the layout of ropeTables: cat(freqs, freqs)).
inline void simpleTables(int64_t pos0, int64_t tokens, int64_t dim,
                         std::vector<float> &cos, std::vector<float> &sin) {
  cos.resize(tokens * dim);
  sin.resize(tokens * dim);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < dim / 2; ++i) {
      const double a = (pos0 + t) * std::pow(10000.0, -2.0 * i / dim);
      cos[t * dim + i] = cos[t * dim + i + dim / 2] = std::cos(a);
      sin[t * dim + i] = sin[t * dim + i + dim / 2] = std::sin(a);
    }
}

} // namespace kt::cpu::test

#endif // KT_UNITTESTS_CPUOPS_TESTUTIL_H
