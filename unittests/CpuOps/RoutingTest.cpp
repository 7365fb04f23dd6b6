//===- RoutingTest.cpp - topkSoftmax and the DeepSeek MoE gates ----------===//
//
// Hand-checked small cases, ties, groups, and random data against a float64
// re-implementation of transformers' routers. Ids must match exactly (the
// random logits are far from ties); weights to 1e-6 of max|ref|.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <numeric>

using namespace kt::cpu;
using namespace kt::cpu::test;

namespace {

/// Indices sorted by (value desc, index asc), first k.
std::vector<int64_t> refTop(const std::vector<double> &v, int64_t k) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  idx.resize(k);
  return idx;
}

std::vector<double> refSoftmax(const float *l, int64_t n) {
  std::vector<double> p(n);
  double m = *std::max_element(l, l + n), s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += (p[i] = std::exp(l[i] - m));
  for (double &x : p)
    x /= s;
  return p;
}

TEST(CpuOpsTopkSoftmax, HandCheckedAndTies) {
  // softmax(ln[1, 4, 3, 2]) = [0.1, 0.4, 0.3, 0.2].
  std::vector<float> l = {0, std::log(4.0f), std::log(3.0f), std::log(2.0f)};
  int64_t ids[2];
  float w[2];
  topkSoftmax(l.data(), 1, 4, 2, false, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], 0.4, 1e-6);
  EXPECT_NEAR(w[1], 0.3, 1e-6);
  topkSoftmax(l.data(), 1, 4, 2, true, ids, w);
  EXPECT_NEAR(w[0], 0.4 / 0.7, 1e-6);
  EXPECT_NEAR(w[1], 0.3 / 0.7, 1e-6);
  // Ties: the lower index first.
  std::vector<float> tie = {1, 2, 2, 1, 2};
  int64_t ids3[3];
  float w3[3];
  topkSoftmax(tie.data(), 1, 5, 3, true, ids3, w3);
  EXPECT_EQ(ids3[0], 1);
  EXPECT_EQ(ids3[1], 2);
  EXPECT_EQ(ids3[2], 4);
  for (float x : w3)
    EXPECT_NEAR(x, 1.0 / 3, 1e-6);
}

TEST(CpuOpsTopkSoftmax, RandomAgainstFloat64) {
  const int64_t T = 5, E = 67, k = 6;
  std::vector<float> l = randomVec(T * E, 9, -4, 4);
  for (bool norm : {false, true}) {
    std::vector<int64_t> ids(T * k);
    std::vector<float> w(T * k);
    topkSoftmax(l.data(), T, E, k, norm, ids.data(), w.data());
    std::vector<double> ref(T * k);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> p = refSoftmax(l.data() + t * E, E);
      std::vector<int64_t> top = refTop(p, k);
      double s = 0;
      for (int64_t j = 0; j < k; ++j)
        s += p[top[j]];
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_EQ(ids[t * k + j], top[j]);
        ref[t * k + j] = norm ? p[top[j]] / s : p[top[j]];
      }
    }
    expectClose(w, ref, 1e-6, 0, norm ? "norm" : "raw");
  }
}

TEST(CpuOpsMoeGate, HandCheckedNoauxTc) {
  // 4 experts in 2 groups, keep 1 group, top-2, sigmoid. All logits 0 ->
  // scores 0.5; bias [0, 0, 0.5, 0] -> group sums 1.0 vs 1.5 -> group 1;
  // experts 2, 3; weights from the unbiased scores 0.5, 0.5, normalised
  // (0.5 each) and scaled by 2.5.
  MoeGateParams p;
  p.topK = 2;
  p.numExperts = 4;
  p.nGroup = 2;
  p.topkGroup = 1;
  p.scoringFunc = "sigmoid";
  p.topkMethod = "noaux_tc";
  p.normTopkProb = true;
  p.routedScalingFactor = 2.5;
  std::vector<float> l(4, 0.0f), bias = {0, 0, 0.5f, 0};
  int64_t ids[2];
  float w[2];
  moeGate(p, l.data(), bias.data(), 1, ids, w);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 3);
  EXPECT_FLOAT_EQ(w[0], 1.25f);
  EXPECT_FLOAT_EQ(w[1], 1.25f);
  // Without normalisation: 0.5 * 2.5.
  p.normTopkProb = false;
  moeGate(p, l.data(), bias.data(), 1, ids, w);
  EXPECT_FLOAT_EQ(w[0], 1.25f);
  // Without bias: tie everywhere -> group 0, experts 0, 1.
  moeGate(p, l.data(), nullptr, 1, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
}

TEST(CpuOpsMoeGate, NoauxTcMasksWithZeroLikeHF) {
  // HF masks the dropped groups with 0.0, not -inf: when the kept group's
  // biased scores are negative, a dropped expert (0.0) wins the top-k.
  MoeGateParams p;
  p.topK = 2;
  p.numExperts = 4;
  p.nGroup = 2;
  p.topkGroup = 1;
  p.scoringFunc = "sigmoid";
  p.topkMethod = "noaux_tc";
  std::vector<float> l = {0, 0, 2, 2}, bias = {-2, -2, -1.5f, -2};
  // choice = [-1.5, -1.5, -0.62, -1.12]; groups: -3 vs -1.74 -> group 1;
  // masked: [0, 0, -0.62, -1.12] -> experts 0 and 1 (ties, lower first).
  int64_t ids[2];
  float w[2];
  moeGate(p, l.data(), bias.data(), 1, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
  EXPECT_FLOAT_EQ(w[0], 0.5f); // unbiased sigmoid(0)
}

TEST(CpuOpsMoeGate, HandCheckedDeepSeekV2) {
  // softmax(ln[4, 1, 3, 2] ) = [0.4, 0.1, 0.3, 0.2]; groups {0,1}, {2,3}.
  MoeGateParams p;
  p.topK = 2;
  p.numExperts = 4;
  p.nGroup = 2;
  p.topkGroup = 1;
  p.scoringFunc = "softmax";
  p.topkMethod = "group_limited_greedy";
  p.normTopkProb = true; // HF's DeepseekV2Moe never renormalises
  p.routedScalingFactor = 1.5;
  std::vector<float> l = {std::log(4.0f), 0, std::log(3.0f), std::log(2.0f)};
  int64_t ids[2];
  float w[2];
  moeGate(p, l.data(), nullptr, 1, ids, w);
  EXPECT_EQ(ids[0], 0); // group max 0.4 > 0.3: group 0 only
  EXPECT_EQ(ids[1], 1);
  EXPECT_NEAR(w[0], 0.6, 1e-6);
  EXPECT_NEAR(w[1], 0.15, 1e-6);
  p.topkMethod = "greedy";
  moeGate(p, l.data(), nullptr, 1, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], 0.6, 1e-6);
  EXPECT_NEAR(w[1], 0.45, 1e-6);
}

/// Float64 DeepSeek router (HF semantics).
void refGate(const MoeGateParams &p, const float *l, const float *bias,
             std::vector<int64_t> &ids, std::vector<double> &w) {
  const int64_t E = p.numExperts, G = p.nGroup, per = E / G;
  std::vector<double> s(E);
  if (p.scoringFunc == "sigmoid")
    for (int64_t e = 0; e < E; ++e)
      s[e] = 1 / (1 + std::exp(-double(l[e])));
  else
    s = refSoftmax(l, E);
  const bool noaux = p.topkMethod == "noaux_tc";
  std::vector<double> c = s;
  if (noaux && bias)
    for (int64_t e = 0; e < E; ++e)
      c[e] += bias[e];
  if (p.topkMethod != "greedy") {
    std::vector<double> gs(G);
    for (int64_t g = 0; g < G; ++g) {
      std::vector<double> grp(c.begin() + g * per, c.begin() + (g + 1) * per);
      std::sort(grp.rbegin(), grp.rend());
      gs[g] = noaux ? grp[0] + grp[1] : grp[0];
    }
    std::vector<int64_t> keep = refTop(gs, p.topkGroup);
    for (int64_t e = 0; e < E; ++e)
      if (std::find(keep.begin(), keep.end(), e / per) == keep.end())
        c[e] = 0;
  }
  ids = refTop(c, p.topK);
  w.clear();
  double sum = 0;
  for (int64_t id : ids) {
    w.push_back(noaux ? s[id] : c[id]);
    sum += w.back();
  }
  for (double &x : w)
    x = (noaux && p.normTopkProb ? x / (sum + 1e-20) : x) *
        p.routedScalingFactor;
}

TEST(CpuOpsMoeGate, RandomGroupsAgainstFloat64) {
  const int64_t T = 7, E = 64;
  std::vector<float> l = randomVec(T * E, 5, -3, 3);
  std::vector<float> bias = randomVec(E, 6, -0.3f, 0.3f);
  struct Cfg {
    const char *method, *scoring;
    int64_t groups, keep, k;
    bool norm;
  };
  for (Cfg c : {Cfg{"noaux_tc", "sigmoid", 8, 4, 8, true},
                Cfg{"noaux_tc", "sigmoid", 8, 3, 6, false},
                Cfg{"noaux_tc", "sigmoid", 1, 1, 4, true},
                Cfg{"group_limited_greedy", "softmax", 8, 3, 6, false},
                Cfg{"greedy", "softmax", 1, 1, 6, false}}) {
    MoeGateParams p;
    p.topK = c.k;
    p.numExperts = E;
    p.nGroup = c.groups;
    p.topkGroup = c.keep;
    p.scoringFunc = c.scoring;
    p.topkMethod = c.method;
    p.normTopkProb = c.norm;
    p.routedScalingFactor = 2.5;
    std::vector<int64_t> ids(T * c.k);
    std::vector<float> w(T * c.k);
    moeGate(p, l.data(), bias.data(), T, ids.data(), w.data());
    std::vector<double> ref;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<int64_t> rid;
      std::vector<double> rw;
      refGate(p, l.data() + t * E, bias.data(), rid, rw);
      for (int64_t j = 0; j < c.k; ++j)
        EXPECT_EQ(ids[t * c.k + j], rid[j]) << c.method << " t" << t;
      ref.insert(ref.end(), rw.begin(), rw.end());
    }
    expectClose(w, ref, 1e-6, 0, c.method);
  }
}

} // namespace
