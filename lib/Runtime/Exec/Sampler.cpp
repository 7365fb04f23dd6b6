//===- Sampler.cpp - next-token selection from logits --------------------===//

#include "kt/Runtime/Sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kt {

Sampler::Sampler(const SamplingOptions &opts) : opts_(opts), rng_(opts.seed) {}

int64_t Sampler::next(const float *logits, int64_t vocab,
                      const std::vector<int64_t> &seen) {
  work_.assign(logits, logits + vocab);
  if (opts_.repetitionPenalty != 1.0) {
    // Each seen id is penalised once; the flags are cleared again below so
    // a call costs O(seen), not O(vocab).
    auto penalty = static_cast<float>(opts_.repetitionPenalty);
    penalised_.resize(static_cast<size_t>(vocab), 0);
    for (int64_t id : seen) {
      if (id < 0 || id >= vocab || penalised_[id])
        continue;
      penalised_[id] = 1;
      work_[id] = work_[id] > 0 ? work_[id] / penalty : work_[id] * penalty;
    }
    for (int64_t id : seen)
      if (id >= 0 && id < vocab)
        penalised_[id] = 0;
  }
  if (opts_.temperature <= 0) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (work_[i] > work_[best])
        best = i;
    return best;
  }
  auto invT = 1.0 / opts_.temperature;
  order_.resize(static_cast<size_t>(vocab));
  std::iota(order_.begin(), order_.end(), 0);
  auto byLogit = [&](int64_t a, int64_t b) {
    return work_[a] > work_[b] || (work_[a] == work_[b] && a < b);
  };
  int64_t keep = vocab;
  if (opts_.topK > 0 && opts_.topK < vocab) {
    keep = opts_.topK;
    std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(),
                      byLogit);
  } else {
    std::sort(order_.begin(), order_.end(), byLogit);
  }
  // Softmax over the kept tokens (in double, max-subtracted).
  std::vector<double> p(static_cast<size_t>(keep));
  double maxL = work_[order_[0]] * invT, sum = 0;
  for (int64_t i = 0; i < keep; ++i) {
    p[i] = std::exp(work_[order_[i]] * invT - maxL);
    sum += p[i];
  }
  for (double &x : p)
    x /= sum;
  if (opts_.topP < 1.0) {
    // Keep the most likely tokens until their mass reaches top_p (at
    // least one).
    double mass = 0;
    int64_t n = 0;
    while (n < keep) {
      mass += p[n++];
      if (mass >= opts_.topP)
        break;
    }
    keep = n;
    p.resize(static_cast<size_t>(keep));
    double s = std::accumulate(p.begin(), p.end(), 0.0);
    for (double &x : p)
      x /= s;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng_), acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (r < acc)
      return order_[i];
  }
  return order_[keep - 1];
}

} // namespace kt
