//===- MlaTest.cpp - DeepSeek MLA, plain and absorbed --------------------===//
//
// Both modes against a float64 reference of transformers'
// DeepseekV2/V3Attention, and against each other, for prefill and for
// token-by-token decode. Tolerance: 1e-5 of max|ref| (2e-5 between modes).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

using namespace kt::cpu;
using namespace kt::cpu::test;

namespace {

struct Shape {
  int64_t H = 3, nope = 12, rope = 8, vd = 10, rank = 37;
};

std::vector<double>
reference(const Shape &s, int64_t T, const std::vector<float> &q,
          const std::vector<float> &lat, const std::vector<float> &kPe,
          const std::vector<float> &cos, const std::vector<float> &sin,
          const Weights &w, double scale, bool interleaved) {
  const int64_t qh = s.nope + s.rope, kvh = s.nope + s.vd;
  std::vector<double> qd(q.begin(), q.end()), kp(kPe.begin(), kPe.end());
  refRope(qd, T, s.H, qh, s.nope, s.rope, cos, sin, interleaved);
  refRope(kp, T, 1, s.rope, 0, s.rope, cos, sin, interleaved);
  // kv_b_proj(latent): [T, H, nope + v].
  std::vector<double> kv(T * s.H * kvh, 0.0);
  for (int64_t j = 0; j < T; ++j)
    for (int64_t r = 0; r < s.H * kvh; ++r)
      for (int64_t c = 0; c < s.rank; ++c)
        kv[j * s.H * kvh + r] += w.at(r, c) * lat[j * s.rank + c];
  std::vector<double> out(T * s.H * s.vd, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < s.H; ++h) {
      std::vector<double> sc(t + 1);
      double m = -INFINITY;
      for (int64_t j = 0; j <= t; ++j) {
        double d = 0;
        for (int64_t i = 0; i < s.nope; ++i)
          d += qd[(t * s.H + h) * qh + i] * kv[(j * s.H + h) * kvh + i];
        for (int64_t i = 0; i < s.rope; ++i)
          d += qd[(t * s.H + h) * qh + s.nope + i] * kp[j * s.rope + i];
        sc[j] = d * scale;
        m = std::max(m, sc[j]);
      }
      double sum = 0;
      for (double &x : sc)
        sum += (x = std::exp(x - m));
      for (int64_t j = 0; j <= t; ++j)
        for (int64_t i = 0; i < s.vd; ++i)
          out[(t * s.H + h) * s.vd + i] +=
              sc[j] / sum * kv[(j * s.H + h) * kvh + s.nope + i];
    }
  return out;
}

class Mla : public PathTest {};

TEST_P(Mla, PlainAndAbsorbedMatchReference) {
  const Shape s;
  const int64_t T = 6;
  for (WType type : {WType::F32, WType::BF16, WType::F16})
    for (bool interleaved : {true, false}) {
      const std::string what =
          std::string(typeName(type)) + (interleaved ? " interleaved" : "");
      Weights w(s.H * (s.nope + s.vd), s.rank, type, 31);
      std::vector<float> q = randomVec(T * s.H * (s.nope + s.rope), 1, -2, 2);
      std::vector<float> lat = randomVec(T * s.rank, 2, -2, 2);
      std::vector<float> kPe = randomVec(T * s.rope, 3, -2, 2);
      std::vector<float> cos, sin;
      simpleTables(0, T, s.rope, cos, sin);
      MlaParams p;
      p.numHeads = s.H;
      p.qkNopeHeadDim = s.nope;
      p.qkRopeHeadDim = s.rope;
      p.vHeadDim = s.vd;
      p.kvLoraRank = s.rank;
      p.scale = 0.7 / std::sqrt(double(s.nope + s.rope));
      p.interleaved = interleaved;
      std::vector<double> ref =
          reference(s, T, q, lat, kPe, cos, sin, w, p.scale, interleaved);

      std::vector<float> outs[2][2]; // [absorb][decode]
      kt::kernels::ThreadPool pool(2);
      for (bool absorb : {false, true}) {
        p.absorb = absorb;
        const std::string mode = absorb ? " absorbed" : " plain";
        // Prefill.
        MlaCache cache;
        cache.reset(T, s.rank, s.rope);
        std::vector<float> &out = outs[absorb][0];
        out.resize(T * s.H * s.vd);
        p.tokens = T;
        mla(p, q.data(), lat.data(), kPe.data(), cos.data(), sin.data(), w.view,
            cache, out.data(), &pool);
        EXPECT_EQ(cache.length, T);
        expectClose(out, ref, 1e-5, 0, "prefill " + what + mode);
        // Decode: 2 then one at a time.
        MlaCache dc;
        dc.reset(T, s.rank, s.rope);
        std::vector<float> &o2 = outs[absorb][1];
        o2.resize(out.size());
        int64_t done = 0;
        for (int64_t n : {2, 1, 1, 1, 1}) {
          p.tokens = n;
          mla(p, q.data() + done * s.H * (s.nope + s.rope),
              lat.data() + done * s.rank, kPe.data() + done * s.rope,
              cos.data() + done * s.rope, sin.data() + done * s.rope, w.view,
              dc, o2.data() + done * s.H * s.vd, nullptr);
          done += n;
        }
        expectClose(o2, ref, 1e-5, 0, "decode " + what + mode);
      }
      for (int d = 0; d < 2; ++d) {
        std::vector<double> plain(outs[0][d].begin(), outs[0][d].end());
        expectClose(outs[1][d], plain, 2e-5, 0, "absorbed vs plain " + what);
      }
    }
}

KT_INSTANTIATE_PATHS(Mla);

} // namespace
