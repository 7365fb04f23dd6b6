//===- Routing.cpp - MoE routers (softmax top-k, DeepSeek gates) ---------===//
//
// topkSoftmax: Mixtral / Qwen2-MoE / Qwen3-MoE (softmax in fp32, top-k,
// optional renormalisation by the plain sum).
// moeGate: transformers' DeepseekV2Moe.route_tokens_to_experts (greedy,
// group_limited_greedy: never renormalised, always times
// routed_scaling_factor) and DeepseekV3TopkRouter / DeepseekV3MoE (noaux_tc:
// selection on scores + e_score_correction_bias, weights gathered from the
// unbiased scores, renormalised by sum + 1e-20 when norm_topk_prob, then
// times routed_scaling_factor).
// Ties pick the lower index first, like torch.topk on CPU.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace kt::cpu {

using namespace detail;

namespace {

/// The k best indices of v[0, n) by value, ties to the lower index.
void topIndices(const float *v, int64_t n, int64_t k, int64_t *out) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int64_t a, int64_t b) {
                      if (v[a] != v[b])
                        return v[a] > v[b];
                      return a < b;
                    });
  std::copy_n(idx.begin(), k, out);
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

} // namespace

void topkSoftmax(const float *logits, int64_t tokens, int64_t experts,
                 int64_t k, bool normTopk, int64_t *ids, float *weights) {
  std::vector<float> p(static_cast<size_t>(experts));
  for (int64_t t = 0; t < tokens; ++t) {
    std::copy_n(logits + t * experts, experts, p.data());
    softmaxInPlace(p.data(), experts);
    int64_t *id = ids + t * k;
    float *w = weights + t * k;
    topIndices(p.data(), experts, k, id);
    float sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      w[j] = p[id[j]];
      sum += w[j];
    }
    if (normTopk)
      for (int64_t j = 0; j < k; ++j)
        w[j] /= sum;
  }
}

void moeGate(const MoeGateParams &p, const float *logits,
             const float *scoreBias, int64_t tokens, int64_t *ids,
             float *weights) {
  const int64_t E = p.numExperts, K = p.topK;
  const int64_t G = std::max<int64_t>(1, p.nGroup);
  const int64_t perGroup = E / G;
  const bool sigmoidScores = p.scoringFunc == "sigmoid";
  const bool noaux = p.topkMethod == "noaux_tc";
  const bool grouped = noaux || p.topkMethod == "group_limited_greedy";
  std::vector<float> scores(static_cast<size_t>(E)), choice(scores.size());
  std::vector<float> groupScore(static_cast<size_t>(G));
  std::vector<int64_t> keptGroups(static_cast<size_t>(G));
  std::vector<char> keep(static_cast<size_t>(G));
  for (int64_t t = 0; t < tokens; ++t) {
    const float *l = logits + t * E;
    if (sigmoidScores) {
      for (int64_t e = 0; e < E; ++e)
        scores[e] = sigmoid(l[e]);
    } else {
      std::copy_n(l, E, scores.data());
      softmaxInPlace(scores.data(), E);
    }
    // Selection scores: + e_score_correction_bias for noaux_tc only.
    for (int64_t e = 0; e < E; ++e)
      choice[e] = scores[e] + (noaux && scoreBias ? scoreBias[e] : 0.0f);
    if (grouped && G > 1 && perGroup > 0) {
      for (int64_t g = 0; g < G; ++g) {
        const float *c = choice.data() + g * perGroup;
        if (noaux) { // sum of the group's top-2
          int64_t top[2] = {0, 0};
          const int64_t n = std::min<int64_t>(2, perGroup);
          topIndices(c, perGroup, n, top);
          groupScore[g] = n == 2 ? c[top[0]] + c[top[1]] : c[top[0]];
        } else { // max of the group
          groupScore[g] = *std::max_element(c, c + perGroup);
        }
      }
      const int64_t kg = std::min(std::max<int64_t>(1, p.topkGroup), G);
      topIndices(groupScore.data(), G, kg, keptGroups.data());
      std::fill(keep.begin(), keep.end(), 0);
      for (int64_t i = 0; i < kg; ++i)
        keep[keptGroups[i]] = 1;
      // masked_fill(~mask, 0.0) as HF (not -inf).
      for (int64_t e = 0; e < E; ++e)
        if (!keep[std::min(e / perGroup, G - 1)])
          choice[e] = 0.0f;
    }
    int64_t *id = ids + t * K;
    float *w = weights + t * K;
    topIndices(choice.data(), E, K, id);
    for (int64_t j = 0; j < K; ++j) {
      // greedy / group_limited_greedy take the (masked) selection score,
      // which equals the score unless a masked expert had to be chosen.
      w[j] = noaux ? scores[id[j]] : choice[id[j]];
    }
    if (noaux && p.normTopkProb) {
      float sum = 0;
      for (int64_t j = 0; j < K; ++j)
        sum += w[j];
      const float denom = sum + 1e-20f;
      for (int64_t j = 0; j < K; ++j)
        w[j] /= denom;
    }
    const float scale = static_cast<float>(p.routedScalingFactor);
    for (int64_t j = 0; j < K; ++j)
      w[j] *= scale;
  }
}

} // namespace kt::cpu
