//===- DenseTest.cpp - linear, embedding, norms, elementwise, dispatch ---===//

#include "TestUtil.h"

#include <memory>

using namespace kt::cpu;
using namespace kt::cpu::test;

namespace {

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

TEST(CpuOpsDispatch, AutoResolvesToASupportedPath) {
  ASSERT_TRUE(setCpuOpsPath(OpsPath::Auto));
  OpsPath p = activeCpuOpsPath();
  EXPECT_NE(p, OpsPath::Auto);
  EXPECT_TRUE(setCpuOpsPath(p)); // the resolved path is supported
  EXPECT_TRUE(setCpuOpsPath(OpsPath::Scalar));
  EXPECT_EQ(activeCpuOpsPath(), OpsPath::Scalar);
  const auto &c = kt::kernels::cpuFeatures();
  bool has512 = c.avx512f && c.avx512bw && c.avx512vl;
  EXPECT_EQ(setCpuOpsPath(OpsPath::AVX512), has512);
  if (!has512)
    EXPECT_EQ(activeCpuOpsPath(), OpsPath::Scalar) << "a refused path changed "
                                                      "the active one";
  setCpuOpsPath(OpsPath::Auto);
}

TEST(CpuOpsDispatch, Names) {
  EXPECT_STREQ(toString(OpsPath::Auto), "auto");
  EXPECT_STREQ(toString(OpsPath::Scalar), "scalar");
  EXPECT_STREQ(toString(OpsPath::AVX2), "avx2");
  EXPECT_STREQ(toString(OpsPath::AVX512), "avx512");
}

TEST(CpuOpsDispatch, RowRange) {
  std::vector<uint16_t> d(7 * 5);
  MatrixView m{WType::BF16, d.data(), 7, 5};
  MatrixView r = m.rowRange(2, 3);
  EXPECT_EQ(r.data, d.data() + 10);
  EXPECT_EQ(r.rows, 3);
  EXPECT_EQ(r.cols, 5);
  EXPECT_EQ(r.type, WType::BF16);
}

//===----------------------------------------------------------------------===//
// linear: every path x weight type x token count, odd sizes
//===----------------------------------------------------------------------===//

class Linear : public PathTest {};

TEST_P(Linear, MatchesFloat64Reference) {
  // Tolerance: 1e-5 of max|ref| (fp32 accumulation over <= 131 products).
  for (WType type : {WType::F32, WType::BF16, WType::F16})
    for (int64_t tokens : {1, 2, 5, 13, 50})
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{67, 37},
                                {67, 131},
                                {3, 7},
                                {64, 16},
                                {9, 1}}) {
        Weights w(rows, cols, type, 17 + rows + cols);
        std::vector<float> x = randomVec(tokens * cols, 3 + tokens);
        std::vector<float> bias = randomVec(rows, 5);
        for (bool withBias : {false, true}) {
          std::vector<float> y(tokens * rows, 123.0f);
          linear(x.data(), tokens, w.view, withBias ? bias.data() : nullptr,
                 y.data(), nullptr);
          std::vector<double> ref(y.size());
          for (int64_t t = 0; t < tokens; ++t)
            for (int64_t r = 0; r < rows; ++r) {
              double s = withBias ? bias[r] : 0.0;
              for (int64_t c = 0; c < cols; ++c)
                s += static_cast<double>(x[t * cols + c]) * w.at(r, c);
              ref[t * rows + r] = s;
            }
          expectClose(y, ref, 1e-5, 1e-7,
                      std::string(typeName(type)) +
                          " T=" + std::to_string(tokens) + " " +
                          std::to_string(rows) + "x" + std::to_string(cols));
        }
      }
}

TEST_P(Linear, ThreadPoolGivesTheSameResult) {
  kt::kernels::ThreadPool pool(3);
  Weights w(203, 77, WType::BF16, 9);
  for (int64_t tokens : {1, 7}) {
    std::vector<float> x = randomVec(tokens * 77, 4);
    std::vector<float> a(tokens * 203), b(tokens * 203);
    linear(x.data(), tokens, w.view, nullptr, a.data(), nullptr);
    linear(x.data(), tokens, w.view, nullptr, b.data(), &pool);
    EXPECT_EQ(a, b); // the same kernel on the same rows: bitwise equal
  }
}

KT_INSTANTIATE_PATHS(Linear);

TEST(CpuOpsEmbedding, AllTypes) {
  for (WType type : {WType::F32, WType::BF16, WType::F16}) {
    Weights table(11, 9, type, 21);
    std::vector<int64_t> ids = {3, 0, 10, 3};
    std::vector<float> out(ids.size() * 9);
    embedding(ids.data(), 4, table.view, out.data());
    for (size_t t = 0; t < ids.size(); ++t)
      for (int64_t c = 0; c < 9; ++c)
        EXPECT_EQ(out[t * 9 + c], table.at(ids[t], c)) << typeName(type);
  }
}

TEST(CpuOpsEmbedding, F16SpecialValues) {
  // Subnormals, signed zero, the largest normal, infinity.
  std::vector<uint16_t> bits = {0x0001, 0x03ff, 0x8200, 0x8000,
                                0x7bff, 0x7c00, 0x3c00, 0xc000};
  std::vector<double> want = {std::ldexp(1.0, -24),
                              1023 * std::ldexp(1.0, -24),
                              -std::ldexp(1.0, -15),
                              -0.0,
                              65504.0,
                              INFINITY,
                              1.0,
                              -2.0};
  MatrixView m{WType::F16, bits.data(), 1, 8};
  int64_t id = 0;
  std::vector<float> out(8);
  embedding(&id, 1, m, out.data());
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(out[i], want[i]) << i;
  EXPECT_TRUE(std::signbit(out[3]));
}

//===----------------------------------------------------------------------===//
// RMSNorm and elementwise ops
//===----------------------------------------------------------------------===//

TEST(CpuOpsRmsNorm, WholeRowsAndGroupsAndInPlace) {
  // Tolerance: 2e-6 of max|ref|.
  const int64_t tokens = 5, cols = 67 * 3;
  std::vector<float> x = randomVec(tokens * cols, 1, -3, 3);
  for (int64_t group : {cols, int64_t{67}}) {
    std::vector<float> w = randomVec(group, 2, 0.5f, 1.5f);
    std::vector<double> ref(x.size());
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t g = 0; g < cols / group; ++g) {
        double ss = 0;
        for (int64_t i = 0; i < group; ++i)
          ss +=
              double(x[t * cols + g * group + i]) * x[t * cols + g * group + i];
        const double r = 1 / std::sqrt(ss / group + 1e-6);
        for (int64_t i = 0; i < group; ++i)
          ref[t * cols + g * group + i] =
              x[t * cols + g * group + i] * r * w[i];
      }
    std::vector<float> y(x.size());
    rmsNorm(x.data(), tokens, cols, w.data(), group, 1e-6, y.data());
    expectClose(y, ref, 2e-6, 0, "group " + std::to_string(group));
    std::vector<float> inPlace = x;
    rmsNorm(inPlace.data(), tokens, cols, w.data(), group, 1e-6,
            inPlace.data());
    EXPECT_EQ(inPlace, y);
  }
}

TEST(CpuOpsElementwise, AddSiluMulSigmoidGate) {
  // Tolerance: 1e-6 of max|ref|.
  const int64_t n = 67 * 5;
  std::vector<float> a = randomVec(n, 1, -8, 8), b = randomVec(n, 2, -2, 2);
  std::vector<float> y(n);
  std::vector<double> ref(n);
  add(a.data(), b.data(), n, y.data());
  for (int64_t i = 0; i < n; ++i)
    ref[i] = double(a[i]) + b[i];
  expectClose(y, ref, 1e-7, 0, "add");

  siluMul(a.data(), b.data(), n, y.data());
  for (int64_t i = 0; i < n; ++i)
    ref[i] = a[i] / (1 + std::exp(-double(a[i]))) * b[i];
  expectClose(y, ref, 1e-6, 0, "siluMul");

  const int64_t tokens = 5, cols = 67;
  std::vector<float> g = {-30, -1, 0, 0.5f, 30};
  sigmoidGate(g.data(), b.data(), tokens, cols, y.data());
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < cols; ++c)
      ref[t * cols + c] = b[t * cols + c] / (1 + std::exp(-double(g[t])));
  expectClose(y, ref, 1e-6, 0, "sigmoidGate");
}

//===----------------------------------------------------------------------===//
// Reference experts
//===----------------------------------------------------------------------===//

class Experts : public PathTest {};

TEST_P(Experts, MatchesFloat64Reference) {
  // Tolerance: 1e-5 of max|ref|.
  const int64_t hidden = 37, inter = 23, E = 5, tokens = 6, k = 2;
  for (WType type : {WType::F32, WType::BF16, WType::F16}) {
    std::vector<std::unique_ptr<Weights>> store;
    std::vector<ExpertWeights> experts;
    for (int e = 0; e < E; ++e) {
      store.push_back(std::make_unique<Weights>(inter, hidden, type, 100 + e));
      store.push_back(std::make_unique<Weights>(inter, hidden, type, 200 + e));
      store.push_back(std::make_unique<Weights>(hidden, inter, type, 300 + e));
      experts.push_back(
          {store[3 * e]->view, store[3 * e + 1]->view, store[3 * e + 2]->view});
    }
    std::vector<float> x = randomVec(tokens * hidden, 7);
    std::vector<int64_t> ids = {0, 4, 4, 0, 2, -1, 1, 2, 3, 3, 4, 1};
    std::vector<float> wts = randomVec(tokens * k, 8, 0, 1);
    std::vector<float> out(tokens * hidden, 5.0f);
    kt::kernels::ThreadPool pool(2);
    expertsReference(x.data(), tokens, hidden, ids.data(), wts.data(), k,
                     experts, out.data(), &pool);
    std::vector<double> ref(out.size(), 0.0);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t e = ids[t * k + j];
        if (e < 0)
          continue;
        std::vector<double> act(inter);
        for (int64_t i = 0; i < inter; ++i) {
          double g = 0, u = 0;
          for (int64_t c = 0; c < hidden; ++c) {
            g += store[3 * e]->at(i, c) * x[t * hidden + c];
            u += store[3 * e + 1]->at(i, c) * x[t * hidden + c];
          }
          act[i] = g / (1 + std::exp(-g)) * u;
        }
        for (int64_t c = 0; c < hidden; ++c) {
          double d = 0;
          for (int64_t i = 0; i < inter; ++i)
            d += store[3 * e + 2]->at(c, i) * act[i];
          ref[t * hidden + c] += wts[t * k + j] * d;
        }
      }
    expectClose(out, ref, 1e-5, 0, typeName(type));
  }
}

KT_INSTANTIATE_PATHS(Experts);

} // namespace
