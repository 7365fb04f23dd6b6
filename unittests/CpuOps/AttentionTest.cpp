//===- AttentionTest.cpp - GQA attention against a float64 reference -----===//
//
// Tolerance: 1e-5 of max|ref| against float64; decode through the cache
// must equal prefill to 1e-6 of max|out|.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

using namespace kt::cpu;
using namespace kt::cpu::test;

namespace {

struct Case {
  int64_t H, KvH, hd, rot, window;
  bool interleaved;
};

/// Causal attention in double over all T positions (q/k/v pre-rope).
std::vector<double> reference(const Case &c, int64_t T,
                              const std::vector<float> &q,
                              const std::vector<float> &k,
                              const std::vector<float> &v,
                              const std::vector<float> &cos,
                              const std::vector<float> &sin, double scale) {
  std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end());
  refRope(qd, T, c.H, c.hd, 0, c.rot, cos, sin, c.interleaved);
  refRope(kd, T, c.KvH, c.hd, 0, c.rot, cos, sin, c.interleaved);
  std::vector<double> out(T * c.H * c.hd, 0.0);
  const int64_t rep = c.H / c.KvH;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t g = h / rep; // repeat_kv
      std::vector<double> s;
      double m = -INFINITY;
      for (int64_t j = 0; j <= t; ++j) {
        double d = 0;
        for (int64_t i = 0; i < c.hd; ++i)
          d += qd[(t * c.H + h) * c.hd + i] * kd[(j * c.KvH + g) * c.hd + i];
        bool visible = c.window == 0 || t - j < c.window;
        s.push_back(visible ? d * scale : -INFINITY);
        m = std::max(m, s.back());
      }
      double sum = 0;
      for (double &x : s)
        sum += (x = std::exp(x - m));
      for (int64_t j = 0; j <= t; ++j)
        for (int64_t i = 0; i < c.hd; ++i)
          out[(t * c.H + h) * c.hd + i] +=
              s[j] / sum * v[(j * c.KvH + g) * c.hd + i];
    }
  return out;
}

class Attention : public PathTest {};

TEST_P(Attention, PrefillAndDecodeMatchReference) {
  const std::vector<Case> cases = {
      {3, 1, 67, 67 - 1, 0, false}, // GQA 3:1, odd head dim
      {4, 2, 16, 16, 0, true},      // interleaved pairs
      {6, 3, 20, 8, 0, false},      // partial rotary
      {2, 2, 24, 24, 3, false},     // sliding window 3
  };
  const int64_t T = 7;
  for (const Case &c : cases) {
    const std::string what =
        "H" + std::to_string(c.H) + " KvH" + std::to_string(c.KvH) + " hd" +
        std::to_string(c.hd) + " rot" + std::to_string(c.rot) + " win" +
        std::to_string(c.window);
    std::vector<float> q = randomVec(T * c.H * c.hd, 1, -2, 2);
    std::vector<float> k = randomVec(T * c.KvH * c.hd, 2, -2, 2);
    std::vector<float> v = randomVec(T * c.KvH * c.hd, 3);
    std::vector<float> cos, sin;
    simpleTables(0, T, c.rot, cos, sin);
    AttentionParams p;
    p.numHeads = c.H;
    p.numKvHeads = c.KvH;
    p.headDim = c.hd;
    p.rotaryDim = c.rot;
    p.scale = 1 / std::sqrt(double(c.hd));
    p.interleaved = c.interleaved;
    p.slidingWindow = c.window;
    std::vector<double> ref = reference(c, T, q, k, v, cos, sin, p.scale);

    // Prefill all T at once (with a pool).
    kt::kernels::ThreadPool pool(2);
    KvCache prefill;
    prefill.reset(T + 2, c.KvH, c.hd);
    std::vector<float> out(T * c.H * c.hd);
    p.tokens = T;
    attention(p, q.data(), k.data(), v.data(), cos.data(), sin.data(), prefill,
              out.data(), &pool);
    EXPECT_EQ(prefill.length, T);
    expectClose(out, ref, 1e-5, 0, "prefill " + what);

    // Prefill 3, then decode one token at a time.
    KvCache dec;
    dec.reset(T, c.KvH, c.hd);
    std::vector<float> out2(out.size());
    int64_t done = 0;
    for (int64_t n : {3, 1, 1, 1, 1}) {
      p.tokens = n;
      attention(p, q.data() + done * c.H * c.hd, k.data() + done * c.KvH * c.hd,
                v.data() + done * c.KvH * c.hd, cos.data() + done * c.rot,
                sin.data() + done * c.rot, dec, out2.data() + done * c.H * c.hd,
                nullptr);
      done += n;
    }
    EXPECT_EQ(dec.length, T);
    std::vector<double> outD(out.begin(), out.end());
    expectClose(out2, outD, 1e-6, 0, "decode vs prefill " + what);
  }
}

KT_INSTANTIATE_PATHS(Attention);

} // namespace
