//===- Attention.cpp - Causal GQA attention over a KV cache --------------===//
//
// Mirrors transformers' eager_attention_forward: scores = q·kᵀ * scale with
// keys repeated per group (repeat_kv: query head h reads kv head
// h / (H / KvH)), causal mask (plus an optional sliding window: key j is
// visible from query i when i - window < j <= i), softmax in fp32, then
// p·v. Rope is applied to copies of q and k; k and v are appended to the
// cache first, so prefill and token-by-token decode compute the same thing.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kt::cpu {

using namespace detail;

void KvCache::reset(int64_t capacity, int64_t kvHeads, int64_t headDim) {
  this->capacity = capacity;
  this->kvHeads = kvHeads;
  this->headDim = headDim;
  length = 0;
  k.assign(static_cast<size_t>(capacity * kvHeads * headDim), 0.0f);
  v.assign(static_cast<size_t>(capacity * kvHeads * headDim), 0.0f);
}

namespace detail {

/// In place softmax of s[0, n) in fp32 (max-subtracted, as torch).
void softmaxInPlace(float *s, int64_t n) {
  float m = -INFINITY;
  for (int64_t j = 0; j < n; ++j)
    m = std::max(m, s[j]);
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j)
    s[j] *= inv;
}

} // namespace detail

void attention(const AttentionParams &p, const float *q, const float *k,
               const float *v, const float *cos, const float *sin,
               KvCache &cache, float *out, ThreadPool *pool) {
  const int64_t T = p.tokens, H = p.numHeads, KvH = p.numKvHeads;
  const int64_t hd = p.headDim;
  if (T <= 0 || H <= 0 || KvH <= 0)
    return;
  const int64_t pos0 = cache.length;
  const int64_t qCols = H * hd, kvCols = KvH * hd;

  // Rope on copies of q and k; k and v go straight into the cache.
  std::vector<float> qr(q, q + T * qCols);
  applyRope(qr.data(), T, H, hd, p.rotaryDim, cos, sin, p.interleaved);
  float *kc = cache.k.data() + pos0 * kvCols;
  std::copy_n(k, T * kvCols, kc);
  applyRope(kc, T, KvH, hd, p.rotaryDim, cos, sin, p.interleaved);
  std::copy_n(v, T * kvCols, cache.v.data() + pos0 * kvCols);
  cache.length = pos0 + T;

  const Kernels &kern = kernels();
  const int64_t group = std::max<int64_t>(1, H / KvH);
  const float scale = static_cast<float>(p.scale);
  std::vector<std::vector<float>> scratch(poolThreads(pool));
  parallelFor(pool, T * H, [&](int64_t task, int thread) {
    const int64_t t = task / H, h = task % H, kvh = h / group;
    const int64_t pos = pos0 + t;
    const int64_t first = p.slidingWindow > 0
                              ? std::max<int64_t>(0, pos - p.slidingWindow + 1)
                              : 0;
    const int64_t n = pos + 1 - first;
    std::vector<float> &s = scratch[thread];
    if (static_cast<int64_t>(s.size()) < n)
      s.resize(static_cast<size_t>(n));
    const float *qh = qr.data() + t * qCols + h * hd;
    for (int64_t j = 0; j < n; ++j)
      s[j] =
          kern.dot(qh, cache.k.data() + (first + j) * kvCols + kvh * hd, hd) *
          scale;
    softmaxInPlace(s.data(), n);
    float *o = out + t * qCols + h * hd;
    std::fill_n(o, hd, 0.0f);
    for (int64_t j = 0; j < n; ++j)
      kern.axpy(s[j], cache.v.data() + (first + j) * kvCols + kvh * hd, o, hd);
  });
}

} // namespace kt::cpu
