//===- Experts.cpp - Reference routed experts (dense, per expert) --------===//
//
// out[t] = Σ_j w[t,j] · down(silu(gate·x[t]) ⊙ up·x[t]). Tokens are grouped
// by expert and each group runs three linear() calls; contributions are
// added in increasing expert order, as transformers' MoE loops
// (index_add_ per expert).
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <algorithm>
#include <vector>

namespace kt::cpu {

using namespace detail;

void expertsReference(const float *x, int64_t tokens, int64_t hidden,
                      const int64_t *ids, const float *weights, int64_t k,
                      const std::vector<ExpertWeights> &experts, float *out,
                      ThreadPool *pool) {
  std::fill_n(out, tokens * hidden, 0.0f);
  const int64_t E = static_cast<int64_t>(experts.size());
  // Bucket the (token, slot) pairs by expert.
  std::vector<std::vector<int64_t>> slots(static_cast<size_t>(E));
  for (int64_t i = 0; i < tokens * k; ++i)
    if (ids[i] >= 0 && ids[i] < E)
      slots[ids[i]].push_back(i);
  std::vector<float> xg, g, u, d;
  for (int64_t e = 0; e < E; ++e) {
    const std::vector<int64_t> &s = slots[e];
    if (s.empty())
      continue;
    const ExpertWeights &ew = experts[e];
    const int64_t n = static_cast<int64_t>(s.size());
    const int64_t inter = ew.gate.rows;
    xg.resize(static_cast<size_t>(n * hidden));
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(x + (s[i] / k) * hidden, hidden, xg.data() + i * hidden);
    g.resize(static_cast<size_t>(n * inter));
    u.resize(g.size());
    d.resize(static_cast<size_t>(n * hidden));
    linear(xg.data(), n, ew.gate, nullptr, g.data(), pool);
    linear(xg.data(), n, ew.up, nullptr, u.data(), pool);
    siluMul(g.data(), u.data(), n * inter, g.data());
    linear(g.data(), n, ew.down, nullptr, d.data(), pool);
    for (int64_t i = 0; i < n; ++i) {
      const float w = weights[s[i]];
      float *o = out + (s[i] / k) * hidden;
      const float *di = d.data() + i * hidden;
      for (int64_t c = 0; c < hidden; ++c)
        o[c] += di[c] * w;
    }
  }
}

} // namespace kt::cpu
