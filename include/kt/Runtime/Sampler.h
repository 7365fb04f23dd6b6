//===- Sampler.h - next-token selection from logits ------------*- C++ -*-===//
//
// Hugging Face generate()'s logits processors, in its order: repetition
// penalty (a seen token's logit is divided by the penalty when positive,
// multiplied when negative), temperature, top-k, top-p (nucleus: keep the
// smallest set of most likely tokens whose probability reaches top_p), then
// a draw from the softmax with a seeded generator. Temperature 0 is greedy
// (argmax, lowest id on ties), after the repetition penalty.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_SAMPLER_H
#define KT_RUNTIME_SAMPLER_H

#include <cstdint>
#include <random>
#include <vector>

namespace kt {

struct SamplingOptions {
  double temperature = 0; ///< 0 = greedy
  int64_t topK = 0;       ///< 0 = off
  double topP = 1.0;      ///< 1 = off
  double repetitionPenalty = 1.0; ///< 1 = off
  uint64_t seed = 0;
};

class Sampler {
public:
  explicit Sampler(const SamplingOptions &opts);
  /// Picks the next token from logits [vocab], given the ids seen so far
  /// (prompt and generated) for the repetition penalty.
  int64_t next(const float *logits, int64_t vocab,
               const std::vector<int64_t> &seen);

private:
  SamplingOptions opts_;
  std::mt19937_64 rng_;
  std::vector<float> work_;
  std::vector<int64_t> order_;
  std::vector<char> penalised_; ///< per vocab id, all 0 between calls
};

} // namespace kt

#endif // KT_RUNTIME_SAMPLER_H
