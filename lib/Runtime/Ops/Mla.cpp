//===- Mla.cpp - DeepSeek multi-head latent attention --------------------===//
//
// The cache keeps, per position, the compressed latent (after
// kv_a_layernorm) and the rotated shared rope key. Per head h, kv_b_proj
// holds qk_nope_head_dim rows of W_UK then v_head_dim rows of W_UV.
//
// Plain (absorb = false), as transformers' DeepseekV2/V3Attention:
//   k_nope[j], v[j] = split(kv_b_proj(latent[j])) for every cached j,
//   score = (q_nope·k_nope + q_pe·k_pe) * scale, softmax, out = p·v.
// Absorbed (absorb = true), algebraically the same:
//   q_lat = W_UKᵀ q_nope, score = (q_lat·latent + q_pe·k_pe) * scale,
//   o_lat = p·latent, out = W_UV o_lat.
//
//===----------------------------------------------------------------------===//

#include "OpsInternal.h"

#include <algorithm>
#include <vector>

namespace kt::cpu {

using namespace detail;

void MlaCache::reset(int64_t capacity, int64_t kvLoraRank, int64_t ropeDim) {
  this->capacity = capacity;
  this->kvLoraRank = kvLoraRank;
  this->ropeDim = ropeDim;
  length = 0;
  latent.assign(static_cast<size_t>(capacity * kvLoraRank), 0.0f);
  kPe.assign(static_cast<size_t>(capacity * ropeDim), 0.0f);
}

namespace {

void mlaPlain(const MlaParams &p, const float *qr, const MatrixView &kvB,
              const MlaCache &cache, int64_t pos0, float *out,
              ThreadPool *pool) {
  const int64_t T = p.tokens, H = p.numHeads, nope = p.qkNopeHeadDim;
  const int64_t rope = p.qkRopeHeadDim, vd = p.vHeadDim;
  const int64_t qHead = nope + rope, kvHead = nope + vd;
  const int64_t L = pos0 + T;
  // k_nope and v of every cached position.
  std::vector<float> kv(static_cast<size_t>(L * H * kvHead));
  linear(cache.latent.data(), L, kvB, nullptr, kv.data(), pool);

  const Kernels &kern = kernels();
  const float scale = static_cast<float>(p.scale);
  std::vector<std::vector<float>> scratch(poolThreads(pool));
  parallelFor(pool, T * H, [&](int64_t task, int thread) {
    const int64_t t = task / H, h = task % H, n = pos0 + t + 1;
    std::vector<float> &s = scratch[thread];
    if (static_cast<int64_t>(s.size()) < n)
      s.resize(static_cast<size_t>(n));
    const float *qn = qr + (t * H + h) * qHead, *qp = qn + nope;
    for (int64_t j = 0; j < n; ++j) {
      const float *kn = kv.data() + (j * H + h) * kvHead;
      s[j] = (kern.dot(qn, kn, nope) +
              kern.dot(qp, cache.kPe.data() + j * rope, rope)) *
             scale;
    }
    softmaxInPlace(s.data(), n);
    float *o = out + (t * H + h) * vd;
    std::fill_n(o, vd, 0.0f);
    for (int64_t j = 0; j < n; ++j)
      kern.axpy(s[j], kv.data() + (j * H + h) * kvHead + nope, o, vd);
  });
}

void mlaAbsorbed(const MlaParams &p, const float *qr, const MatrixView &kvB,
                 const MlaCache &cache, int64_t pos0, float *out,
                 ThreadPool *pool) {
  const int64_t T = p.tokens, H = p.numHeads, nope = p.qkNopeHeadDim;
  const int64_t rope = p.qkRopeHeadDim, vd = p.vHeadDim, R = p.kvLoraRank;
  const int64_t qHead = nope + rope, kvHead = nope + vd;
  const Kernels &kern = kernels();
  const float scale = static_cast<float>(p.scale);
  parallelFor(pool, H, [&](int64_t h, int) {
    std::vector<float> qLat(static_cast<size_t>(T * R), 0.0f);
    std::vector<float> oLat(static_cast<size_t>(T * R), 0.0f);
    std::vector<float> s(static_cast<size_t>(pos0 + T));
    const int64_t ukRow = h * kvHead;
    for (int64_t t = 0; t < T; ++t) {
      const float *qn = qr + (t * H + h) * qHead, *qp = qn + nope;
      float *ql = qLat.data() + t * R;
      for (int64_t i = 0; i < nope; ++i)
        kern.axpyW(qn[i], rowPtr(kvB, ukRow + i), kvB.type, ql, R);
      const int64_t n = pos0 + t + 1;
      for (int64_t j = 0; j < n; ++j)
        s[j] = (kern.dot(ql, cache.latent.data() + j * R, R) +
                kern.dot(qp, cache.kPe.data() + j * rope, rope)) *
               scale;
      softmaxInPlace(s.data(), n);
      float *ol = oLat.data() + t * R;
      for (int64_t j = 0; j < n; ++j)
        kern.axpy(s[j], cache.latent.data() + j * R, ol, R);
    }
    const MatrixView uv = kvB.rowRange(ukRow + nope, vd);
    kern.gemm(oLat.data(), R, T, uv, 0, vd, nullptr, out + h * vd, H * vd);
  });
}

} // namespace

void mla(const MlaParams &p, const float *q, const float *latent,
         const float *kPe, const float *cos, const float *sin,
         const MatrixView &kvB, MlaCache &cache, float *out, ThreadPool *pool) {
  const int64_t T = p.tokens, H = p.numHeads, R = p.kvLoraRank;
  const int64_t nope = p.qkNopeHeadDim, rope = p.qkRopeHeadDim;
  if (T <= 0 || H <= 0)
    return;
  const int64_t pos0 = cache.length;
  const int64_t qHead = nope + rope;

  // Rope on the last `rope` elements of each q head (a copy) and on k_pe.
  std::vector<float> qr(q, q + T * H * qHead);
  applyRope(qr.data() + nope, T, H, qHead, rope, cos, sin, p.interleaved);
  std::copy_n(latent, T * R, cache.latent.data() + pos0 * R);
  float *kp = cache.kPe.data() + pos0 * rope;
  std::copy_n(kPe, T * rope, kp);
  applyRope(kp, T, 1, rope, rope, cos, sin, p.interleaved);
  cache.length = pos0 + T;

  if (p.absorb)
    mlaAbsorbed(p, qr.data(), kvB, cache, pos0, out, pool);
  else
    mlaPlain(p, qr.data(), kvB, cache, pos0, out, pool);
}

} // namespace kt::cpu
