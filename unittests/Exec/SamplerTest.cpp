//===- SamplerTest.cpp - next-token selection ----------------------------===//

#include "kt/Runtime/Sampler.h"

#include <gtest/gtest.h>

#include <map>

using namespace kt;

TEST(Sampler, GreedyTakesArgmaxLowestIdOnTies) {
  Sampler s({});
  std::vector<float> l = {0.5f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(s.next(l.data(), 4, {}), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingOptions o;
  o.repetitionPenalty = 2.0;
  Sampler s(o);
  // Token 0 (3.0) seen -> 1.5 < 2.0 of token 1: greedy moves to 1.
  std::vector<float> l = {3.0f, 2.0f, -0.5f};
  EXPECT_EQ(s.next(l.data(), 3, {0}), 1);
  // A negative logit gets more negative: -0.5 * 2 = -1 stays below -0.9.
  std::vector<float> m = {-5.0f, -0.9f, -0.5f};
  EXPECT_EQ(s.next(m.data(), 3, {2}), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplingOptions o;
  o.temperature = 1.5;
  o.topK = 1;
  o.seed = 7;
  Sampler s(o);
  std::vector<float> l = {0.1f, 0.3f, 0.2f};
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(s.next(l.data(), 3, {}), 1);
}

TEST(Sampler, TinyTopPKeepsTheMostLikelyToken) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.topP = 1e-6;
  Sampler s(o);
  std::vector<float> l = {0.0f, 5.0f, 4.9f};
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(s.next(l.data(), 3, {}), 1);
}

TEST(Sampler, SeedMakesDrawsReproducibleAndFrequenciesFollowSoftmax) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 42;
  Sampler a(o), b(o);
  std::vector<float> l = {0.0f, std::log(3.0f)}; // p = 0.25, 0.75
  std::map<int64_t, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    int64_t x = a.next(l.data(), 2, {});
    EXPECT_EQ(x, b.next(l.data(), 2, {}));
    ++count[x];
  }
  // Binomial sd = sqrt(n p q) ~ 61: 5 sd bound.
  EXPECT_NEAR(count[1], 0.75 * n, 310);
}

TEST(Sampler, TopKRestrictsTheSupport) {
  SamplingOptions o;
  o.temperature = 10.0; // nearly uniform over the kept tokens
  o.topK = 2;
  o.seed = 3;
  Sampler s(o);
  std::vector<float> l = {1.0f, 3.0f, 2.0f, 0.0f};
  for (int i = 0; i < 200; ++i) {
    int64_t x = s.next(l.data(), 4, {});
    EXPECT_TRUE(x == 1 || x == 2) << x;
  }
}
