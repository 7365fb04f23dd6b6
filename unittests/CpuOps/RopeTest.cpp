//===- RopeTest.cpp - ropeTables against HF formulas, applyRope ----------===//
//
// The references re-derive transformers' modeling_rope_utils formulas in
// float64. ropeTables mimics torch's fp32 steps, whose angle carries an
// error of a few ulps of the angle, so the tolerance is
// |Δ| <= attention_factor * (4e-7 * |angle| + 2e-6) per element.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

using namespace kt::cpu;
using namespace kt::cpu::test;

namespace {

const std::vector<int64_t> Positions = {0, 1, 2, 7, 100, 999, 4095, 5000};

std::vector<double> refDefault(double base, int64_t dim) {
  std::vector<double> inv(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i)
    inv[i] = 1.0 / std::pow(base, double(2 * i) / dim);
  return inv;
}

double getMscale(double scale, double m) {
  return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
}

/// Compares ropeTables(p) with cos/sin(pos * inv) * attention.
void check(const RopeParams &p, const std::vector<double> &inv,
           double attention, const std::vector<int64_t> &pos = Positions) {
  const int64_t T = pos.size(), dim = p.dim;
  std::vector<float> c(T * dim), s(T * dim);
  ropeTables(p, pos.data(), T, c.data(), s.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < dim; ++i) {
      const double a = pos[t] * inv[i % (dim / 2)];
      const double tol = attention * (4e-7 * a + 2e-6);
      EXPECT_NEAR(c[t * dim + i], std::cos(a) * attention, tol)
          << p.scaling << " pos " << pos[t] << " i " << i;
      EXPECT_NEAR(s[t * dim + i], std::sin(a) * attention, tol)
          << p.scaling << " pos " << pos[t] << " i " << i;
    }
}

TEST(CpuOpsRope, Default) {
  RopeParams p;
  p.dim = 64;
  p.base = 10000;
  check(p, refDefault(10000, 64), 1.0);
  p.dim = 6; // small odd head count of pairs
  p.base = 1e6;
  check(p, refDefault(1e6, 6), 1.0);
}

TEST(CpuOpsRope, Linear) {
  RopeParams p;
  p.scaling = "linear";
  p.dim = 32;
  p.factor = 4;
  std::vector<double> inv = refDefault(10000, 32);
  for (double &f : inv)
    f /= 4;
  check(p, inv, 1.0);
}

TEST(CpuOpsRope, DynamicGrowsBaseBeyondMaxPosition) {
  RopeParams p;
  p.scaling = "dynamic";
  p.dim = 32;
  p.factor = 2;
  p.maxPosition = 4096;
  // Within max_position_embeddings: the plain frequencies.
  check(p, refDefault(10000, 32), 1.0, {0, 5, 4095});
  // Largest position 5000 -> seq_len 5001.
  const double seq = 5001, dim = 32;
  const double base = 10000 * std::pow(2 * seq / 4096 - 1, dim / (dim - 2));
  check(p, refDefault(base, 32), 1.0, {3, 5000, 17});
}

std::vector<double> refYarn(double base, int64_t dim, double factor,
                            double original, double betaFast, double betaSlow,
                            bool truncate) {
  auto corr = [&](double rot) {
    return dim * std::log(original / (rot * 2 * M_PI)) / (2 * std::log(base));
  };
  double low = corr(betaFast), high = corr(betaSlow);
  if (truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high)
    high += 0.001;
  std::vector<double> inv(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double posFreq = std::pow(base, double(2 * i) / dim);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double extra = 1 - ramp;
    inv[i] = (1 / (factor * posFreq)) * (1 - extra) + (1 / posFreq) * extra;
  }
  return inv;
}

TEST(CpuOpsRope, YarnDeepSeekV3) {
  // DeepSeek-V3: qk_rope_head_dim 64, theta 10000, factor 40, original
  // 4096, beta 32/1, mscale = mscale_all_dim = 1 -> attention factor 1.
  RopeParams p;
  p.scaling = "yarn";
  p.dim = 64;
  p.base = 10000;
  p.factor = 40;
  p.maxPosition = 163840;
  p.originalMaxPosition = 4096;
  p.betaFast = 32;
  p.betaSlow = 1;
  p.mscale = 1;
  p.mscaleAllDim = 1;
  std::vector<double> inv = refYarn(10000, 64, 40, 4096, 32, 1, true);
  // The ramp really mixes: the first pairs extrapolate, the last ones
  // interpolate (factor 40).
  EXPECT_DOUBLE_EQ(inv[0], 1.0);
  EXPECT_NEAR(inv[31] * 40, 1 / std::pow(10000.0, 62.0 / 64), 1e-12);
  check(p, inv, 1.0);
  EXPECT_DOUBLE_EQ(getMscale(40, 1) / getMscale(40, 1), 1.0);

  // Without mscale_all_dim: attention factor = 0.1 ln(40) + 1.
  p.mscaleAllDim = 0;
  check(p, inv, getMscale(40, 1));
  // mscale != mscale_all_dim: their ratio.
  p.mscale = 0.707;
  p.mscaleAllDim = 1;
  check(p, inv, getMscale(40, 0.707) / getMscale(40, 1));
  // An explicit attention_factor wins.
  p.attentionFactor = 0.5;
  check(p, inv, 0.5);
}

TEST(CpuOpsRope, YarnTruncateFalseAndOriginalDefault) {
  RopeParams p;
  p.scaling = "yarn";
  p.dim = 48;
  p.base = 150000;
  p.factor = 32;
  p.maxPosition = 4096; // original 0: max_position_embeddings is used
  p.truncate = false;
  check(p, refYarn(150000, 48, 32, 4096, 32, 1, false), getMscale(32, 1));
  p.truncate = true;
  check(p, refYarn(150000, 48, 32, 4096, 32, 1, true), getMscale(32, 1));
}

TEST(CpuOpsRope, Llama3) {
  // Llama 3.1: theta 500000, factor 8, low 1, high 4, original 8192.
  RopeParams p;
  p.scaling = "llama3";
  p.dim = 128;
  p.base = 500000;
  p.factor = 8;
  p.lowFreqFactor = 1;
  p.highFreqFactor = 4;
  p.originalMaxPosition = 8192;
  p.maxPosition = 131072;
  std::vector<double> inv = refDefault(500000, 128);
  const double lowWl = 8192 / 1.0, highWl = 8192 / 4.0;
  int medium = 0, low = 0, high = 0;
  for (double &f : inv) {
    const double wl = 2 * M_PI / f;
    if (wl < highWl) {
      ++high;
    } else if (wl > lowWl) {
      f /= 8;
      ++low;
    } else {
      const double s = (8192 / wl - 1) / (4 - 1);
      f = (1 - s) * f / 8 + s * f;
      ++medium;
    }
  }
  EXPECT_GT(medium, 0); // all three bands are exercised
  EXPECT_GT(low, 0);
  EXPECT_GT(high, 0);
  check(p, inv, 1.0);
}

TEST(CpuOpsRope, ApplyRopeHalvesInterleavedAndPartial) {
  // Tolerance: 1e-6 of max|ref|.
  const int64_t T = 5, H = 3, hd = 10;
  for (int64_t rot : {int64_t{10}, int64_t{6}})
    for (bool inter : {false, true}) {
      std::vector<float> cos, sin;
      simpleTables(3, T, rot, cos, sin);
      std::vector<float> x = randomVec(T * H * hd, 11);
      std::vector<double> ref(x.begin(), x.end());
      refRope(ref, T, H, hd, 0, rot, cos, sin, inter);
      applyRope(x.data(), T, H, hd, rot, cos.data(), sin.data(), inter);
      expectClose(x, ref, 1e-6, 0,
                  "rot " + std::to_string(rot) + (inter ? " interleaved" : ""));
      // Dims past rotaryDim are untouched.
      for (int64_t i = 0; i < T * H; ++i)
        for (int64_t d = rot; d < hd; ++d)
          EXPECT_EQ(x[i * hd + d], float(ref[i * hd + d]));
    }
}

TEST(CpuOpsRope, InterleavedMatchesHalvesOnPermutedInput) {
  // DeepSeek's HF code de-interleaves (x[0::2], x[1::2]) and then uses
  // rotate_half: the same rotation as pairs (2i, 2i+1).
  const int64_t T = 2, hd = 8;
  std::vector<float> cos, sin;
  simpleTables(5, T, hd, cos, sin);
  std::vector<float> x = randomVec(T * hd, 12), perm(x.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < hd / 2; ++i) {
      perm[t * hd + i] = x[t * hd + 2 * i];
      perm[t * hd + hd / 2 + i] = x[t * hd + 2 * i + 1];
    }
  applyRope(x.data(), T, 1, hd, hd, cos.data(), sin.data(), true);
  applyRope(perm.data(), T, 1, hd, hd, cos.data(), sin.data(), false);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < hd / 2; ++i) {
      EXPECT_EQ(x[t * hd + 2 * i], perm[t * hd + i]);
      EXPECT_EQ(x[t * hd + 2 * i + 1], perm[t * hd + hd / 2 + i]);
    }
}

} // namespace
