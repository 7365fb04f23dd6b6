//===- RotationTest.cpp - the rotated down projection (INT8) --------------===//
//
// hadamardRotate against a float64 Hadamard matrix built by Sylvester's
// recursion (not by butterflies); packing with a rotation; and what the
// rotation buys: INT8 W8A8 error vs the original weights with and without it.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/Moe.h"
#include "kt/Runtime/Kernels/ThreadPool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using namespace kt::kernels;

namespace {

/// Sylvester's Hadamard matrix of order n (a power of two), entries +-1.
std::vector<int> sylvester(int n) {
  std::vector<int> h{1};
  for (int m = 1; m < n; m *= 2) {
    std::vector<int> g(4 * m * m);
    for (int r = 0; r < m; ++r)
      for (int c = 0; c < m; ++c) {
        const int v = h[r * m + c];
        g[r * 2 * m + c] = v;
        g[r * 2 * m + c + m] = v;
        g[(r + m) * 2 * m + c] = v;
        g[(r + m) * 2 * m + c + m] = -v;
      }
    h = std::move(g);
  }
  return h;
}

std::vector<float> gaussian(int n, unsigned seed, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.f, sd);
  std::vector<float> v(n);
  for (float &f : v)
    f = n01(rng);
  return v;
}

TEST(Rotation, MatchesSylvesterHadamard) {
  for (int block : {4, 16, 64, 128}) {
    const int n = 3 * block + block / 2 + 1; // whole blocks, then a tail
    const std::vector<float> v = gaussian(n, block);
    std::vector<float> r = v;
    hadamardRotate(r.data(), n, block);
    const std::vector<int> h = sylvester(block);
    for (int b0 = 0; b0 + block <= n; b0 += block)
      for (int i = 0; i < block; ++i) {
        double want = 0;
        for (int j = 0; j < block; ++j)
          want += double(h[i * block + j]) * v[b0 + j];
        want /= std::sqrt(double(block));
        ASSERT_NEAR(r[b0 + i], want, 1e-5 * std::sqrt(double(block)))
            << "block " << block << " element " << b0 + i;
      }
    // The tail (block / 2 + 1): one rotated piece of block / 2, then a
    // single element, which no rotation changes.
    const int t0 = n / block * block, piece = block / 2;
    const std::vector<int> hp = sylvester(piece);
    for (int i = 0; i < piece; ++i) {
      double want = 0;
      for (int j = 0; j < piece; ++j)
        want += double(hp[i * piece + j]) * v[t0 + j];
      ASSERT_NEAR(r[t0 + i], want / std::sqrt(double(piece)), 1e-4)
          << "tail of block " << block;
    }
    EXPECT_EQ(r[n - 1], v[n - 1]);
    // Orthogonal and symmetric: twice is the identity; norms are kept.
    double n0 = 0, n1 = 0;
    for (int i = 0; i < n; ++i) {
      n0 += double(v[i]) * v[i];
      n1 += double(r[i]) * r[i];
    }
    EXPECT_NEAR(n1 / n0, 1.0, 1e-6);
    hadamardRotate(r.data(), n, block);
    for (int i = 0; i < n; ++i)
      ASSERT_NEAR(r[i], v[i], 1e-6) << "block " << block;
  }
  std::vector<float> v = gaussian(10, 1), r = v;
  hadamardRotate(r.data(), 10, 0); // no rotation
  EXPECT_EQ(r, v);
}

// The SIMD versions of the 128 block (AVX512, AVX2: whichever this CPU
// runs) add and subtract the same pairs in the same order as plain float
// butterflies, so the bits agree.
TEST(Rotation, SameBitsAsFloatButterflies) {
  const int n = 5 * 128;
  std::vector<float> v = gaussian(n, 3), want = v;
  for (int b0 = 0; b0 < n; b0 += 128) {
    float *x = &want[b0];
    for (int h = 1; h < 128; h *= 2)
      for (int i = 0; i < 128; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          const float a = x[j], b = x[j + h];
          x[j] = a + b;
          x[j + h] = a - b;
        }
    for (int i = 0; i < 128; ++i)
      x[i] *= 1.f / std::sqrt(128.f);
  }
  hadamardRotate(v.data(), n, 128);
  EXPECT_EQ(v, want);
}

TEST(Rotation, PackedDownRowsComeBackUnrotated) {
  const int rows = 40, cols = 3 * 128 + 72; // a tail of 72: pieces 64, 8
  const std::vector<float> w = gaussian(rows * cols, 7);
  QuantConfig cfg{WeightFormat::INT8, 0, false, TilePacking::Never};
  ASSERT_EQ(downRotation(cfg), kRotationBlock);
  PackedMatrix m =
      packMatrix(w.data(), DType::F32, rows, cols, cfg, downRotation(cfg));
  EXPECT_EQ(m.rotation, kRotationBlock);
  std::vector<float> row(cols), stored(cols);
  double err = 0, ref = 0, rotatedDiff = 0;
  for (int r = 0; r < rows; ++r) {
    m.dequantRow(r, row.data());
    for (int c = 0; c < cols; ++c) {
      err += std::fabs(row[c] - w[r * cols + c]);
      ref += std::fabs(w[r * cols + c]);
      rotatedDiff += std::fabs(m.dequant(r, c) - w[r * cols + c]);
    }
  }
  // dequantRow undoes the rotation: INT8 rounding only (~0.5% of |w|); the
  // stored values are the rotated ones, nothing like the source.
  EXPECT_LT(err / ref, 0.01);
  EXPECT_GT(rotatedDiff / ref, 0.5);
  // Other formats and rotateDown = false are not rotated.
  cfg.rotateDown = false;
  EXPECT_EQ(downRotation(cfg), 0);
  EXPECT_EQ(downRotation({WeightFormat::BF16}), 0);
  EXPECT_EQ(downRotation({WeightFormat::INT4, 64, false}), 0);
  EXPECT_THROW(packMatrix(w.data(), DType::F32, rows, cols, cfg, 48),
               std::invalid_argument);
}

TEST(Rotation, MixedRotationsAreRefused) {
  const int E = 2, H = 64, I = 256;
  const std::vector<float> g = gaussian(E * I * H, 1),
                           d = gaussian(E * H * I, 2), x = gaussian(H, 3);
  std::vector<ExpertSource> src;
  for (int e = 0; e < E; ++e)
    src.push_back(
        {&g[size_t(e) * I * H], &g[size_t(e) * I * H], &d[size_t(e) * H * I]});
  MoeWeights w = packMoe(src, DType::F32, H, I,
                         {WeightFormat::INT8, 0, false, TilePacking::Never});
  w.down[1].rotation = 0;
  std::vector<int32_t> ids{0, 1};
  std::vector<float> wts{0.5f, 0.5f}, out(H);
  MoeArgs a;
  a.tokens = 1;
  a.topK = 2;
  a.x = x.data();
  a.ids = ids.data();
  a.weights = wts.data();
  a.out = out.data();
  MoeOptions o;
  o.path = KernelPath::Scalar;
  try {
    moeForward(w, a, o);
    ADD_FAILURE() << "mixed rotations accepted";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("different or invalid rotations"),
              std::string::npos)
        << e.what();
  }
}

// One INT8 expert layer at Qwen3-30B-A3B's expert shape (H 2048, I 768),
// Gaussian weights and inputs, run on the scalar row kernels (8-bit
// activations per 128 elements) and on the emulated panel pipeline (8-bit
// activations per 256): the rotation must lower the error against the
// float64 result of the original weights, on both.
TEST(Rotation, LowersInt8ErrorAtARealShape) {
  const int E = 8, H = 2048, I = 768, T = 16, K = 4;
  // Weights as a model's initialisation scales them (the scale matters:
  // silu is not linear), inputs N(0, 1).
  const float sh = 1 / std::sqrt(float(H)), si = 1 / std::sqrt(float(I));
  const std::vector<float> gate = gaussian(E * I * H, 1, sh),
                           up = gaussian(E * I * H, 2, sh),
                           down = gaussian(E * H * I, 3, si),
                           x = gaussian(T * H, 4);
  std::vector<ExpertSource> src(E);
  for (int e = 0; e < E; ++e)
    src[e] = {&gate[size_t(e) * I * H], &up[size_t(e) * I * H],
              &down[size_t(e) * H * I]};
  std::vector<int64_t> ids(T * K);
  std::vector<float> wts(T * K, 1.f / K);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k)
      ids[t * K + k] = (t + 3 * k) % E;
  // float64 reference, original weights.
  std::vector<double> ref(size_t(T) * H, 0.0);
  std::vector<double> h(I);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {
      const size_t e = ids[t * K + k];
      for (int i = 0; i < I; ++i) {
        double g = 0, u = 0;
        for (int c = 0; c < H; ++c) {
          g += double(gate[(e * I + i) * H + c]) * x[t * H + c];
          u += double(up[(e * I + i) * H + c]) * x[t * H + c];
        }
        h[i] = g / (1 + std::exp(-g)) * u;
      }
      for (int r = 0; r < H; ++r) {
        double y = 0;
        for (int i = 0; i < I; ++i)
          y += double(down[(e * H + r) * I + i]) * h[i];
        ref[size_t(t) * H + r] += wts[t * K + k] * y;
      }
    }
  ThreadPool pool(2);
  auto error = [&](bool rotate, bool panels) {
    QuantConfig cfg{WeightFormat::INT8, 0, false, TilePacking::Always};
    cfg.rotateDown = rotate;
    MoeWeights w = packMoe(src, DType::F32, H, I, cfg, &pool);
    std::vector<float> out(size_t(T) * H);
    MoeArgs a;
    a.tokens = T;
    a.topK = K;
    a.x = x.data();
    a.ids = ids.data();
    a.idType = IdType::I64;
    a.weights = wts.data();
    a.out = out.data();
    MoeOptions o;
    o.path = KernelPath::Scalar;
    o.pool = &pool;
    o.emulatePanels = panels;
    o.amxMinTokens = panels ? 1 : 1 << 30;
    moeForward(w, a, o);
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      num += std::fabs(out[i] - ref[i]);
      den += std::fabs(ref[i]);
    }
    return num / den;
  };
  for (bool panels : {false, true}) {
    const double plain = error(false, panels), rotated = error(true, panels);
    std::printf("[ info ] int8 %s: %.4f unrotated, %.4f rotated down\n",
                panels ? "panels (per-256 activations)"
                       : "rows (per-128 activations)",
                plain, rotated);
    EXPECT_LT(rotated, 0.93 * plain) << (panels ? "panels" : "rows");
  }
}

} // namespace
