//===- Moe.cpp - The MoE operator: routing, fused gate/up, down -----------===//
//
// One call runs in four parallel phases over a ThreadPool:
//  1. prepare activations (fp32 padded rows; INT8: per-token u8 rows);
//  2. tasks (expert, block of 64 intermediate rows): gate and up for every
//     token routed to the expert, h = silu(gate) * up, written per routed
//     (token, expert) pair;
//  3. INT8: quantise each h row to u8;
//  4. tasks (expert, block of 128 hidden rows): down for every pair;
//  5. per token: out = sum_j w_j * y_j in fp32, in slot order.
// Tokens are grouped by expert, so an expert's weights are read once per call.
// On the AMX path each expert's kernel is chosen by its token count: AMX
// tiles from MoeOptions::amxMinTokens tokens on, else the row kernels
// (VNNI for INT8, AVX512-BF16 for BF16).
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace kt::kernels {

using detail::ActRows;
using detail::KernelSet;
using detail::RowsKernel;

ThreadPool &detail::sharedPool(int threads) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto &p = pools[threads];
  if (!p)
    p = std::make_unique<ThreadPool>(threads);
  return *p;
}

namespace {

constexpr int kGateUpBlock = 64; // intermediate rows per phase-2 task
constexpr int kDownBlock = 128;  // hidden rows per phase-4 task

/// The row kernel of a path (AMX: its kernel for experts with few tokens).
RowsKernel pickKernel(KernelPath path, WeightFormat f) {
  KernelSet ks;
  switch (path) {
  case KernelPath::AMX:
  case KernelPath::AVX512BF16:
    ks = detail::avx512Kernels();
    ks.bf16 = detail::avx512Bf16Kernel();
    break;
  case KernelPath::AVX512: ks = detail::avx512Kernels(); break;
  case KernelPath::AVX2: ks = detail::avx2Kernels(); break;
  default: ks = detail::scalarKernels(); break;
  }
  switch (f) {
  case WeightFormat::BF16: return ks.bf16;
  case WeightFormat::INT8: return ks.int8;
  case WeightFormat::INT4: return ks.int4;
  }
  return nullptr;
}

inline float silu(float v) { return v / (1.f + std::exp(-v)); }

struct Routing {
  std::vector<int> offsets;  // [E + 1] pairs of expert e: offsets[e]..
  std::vector<int> token;    // [A] token of each pair
  std::vector<int> slotPair; // [T * k] pair of each slot, -1 if skipped
  std::vector<int> active;   // experts with at least one pair
};

Routing route(const MoeWeights &w, const MoeArgs &args) {
  const int T = args.tokens, K = args.topK, E = w.numExperts;
  Routing r;
  r.offsets.assign(E + 1, 0);
  r.slotPair.assign(static_cast<std::size_t>(T) * K, -1);
  auto idAt = [&](std::size_t i) -> int64_t {
    return args.idType == IdType::I32
               ? static_cast<const int32_t *>(args.ids)[i]
               : static_cast<const int64_t *>(args.ids)[i];
  };
  for (std::size_t i = 0; i < r.slotPair.size(); ++i) {
    int64_t e = idAt(i);
    if (e < 0)
      continue;
    if (e >= E)
      throw std::invalid_argument("moeForward: expert id " + std::to_string(e) +
                                  " out of range (" + std::to_string(E) +
                                  " experts)");
    ++r.offsets[e + 1];
  }
  for (int e = 0; e < E; ++e) {
    if (r.offsets[e + 1])
      r.active.push_back(e);
    r.offsets[e + 1] += r.offsets[e];
  }
  r.token.resize(r.offsets[E]);
  std::vector<int> fill(r.offsets.begin(), r.offsets.end() - 1);
  for (std::size_t i = 0; i < r.slotPair.size(); ++i) {
    int64_t e = idAt(i);
    if (e < 0)
      continue;
    int p = fill[e]++;
    r.token[p] = static_cast<int>(i / K);
    r.slotPair[i] = p;
  }
  return r;
}

} // namespace

double moeFlops(const MoeWeights &w, const MoeArgs &args) {
  std::size_t pairs = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(args.tokens) * args.topK;
       ++i) {
    int64_t e = args.idType == IdType::I32
                    ? static_cast<const int32_t *>(args.ids)[i]
                    : static_cast<const int64_t *>(args.ids)[i];
    pairs += e >= 0;
  }
  return 6.0 * w.hidden * w.intermediate * static_cast<double>(pairs);
}

double moeBytesRead(const MoeWeights &w, const MoeArgs &args) {
  std::vector<char> seen(w.numExperts, 0);
  double bytes = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(args.tokens) * args.topK;
       ++i) {
    int64_t e = args.idType == IdType::I32
                    ? static_cast<const int32_t *>(args.ids)[i]
                    : static_cast<const int64_t *>(args.ids)[i];
    if (e < 0 || e >= w.numExperts || seen[e])
      continue;
    seen[e] = 1;
    bytes += w.gate[e].bytes() + w.up[e].bytes() + w.down[e].bytes();
  }
  double xb = args.xType == DType::F32 ? 4 : 2;
  double ib = args.idType == IdType::I32 ? 4 : 8;
  bytes += static_cast<double>(args.tokens) *
           (w.hidden * xb + args.topK * (ib + 4));
  return bytes;
}

void moeForward(const MoeWeights &w, const MoeArgs &args,
                const MoeOptions &opts) {
  const int T = args.tokens, K = args.topK, H = w.hidden, I = w.intermediate;
  if (T < 0 || K < 0 || (T > 0 && (!args.x || !args.out)) ||
      (T > 0 && K > 0 && (!args.ids || !args.weights)))
    throw std::invalid_argument("moeForward: bad arguments");
  if (T == 0)
    return;
  const WeightFormat fmt = w.config.format;
  KernelPath path = opts.path == KernelPath::Auto ? bestPath(fmt) : opts.path;
  const bool tiles = w.hasTiles();
  if (opts.path == KernelPath::Auto && path == KernelPath::AMX && !tiles)
    path = fmt == WeightFormat::BF16 ? KernelPath::AVX512BF16
                                     : KernelPath::AVX512;
  std::string missing = missingFeature(path, fmt);
  if (!missing.empty())
    throw std::invalid_argument(std::string("moeForward: path ") +
                                toString(path) + " unavailable: " + missing);
  if (path == KernelPath::AMX && !tiles)
    throw std::invalid_argument("moeForward: the AMX path needs weights "
                                "packed with the tile layout "
                                "(QuantConfig::tiles)");
  RowsKernel kern = pickKernel(path, fmt);
  // AMX: experts with >= minTokens tokens use `big`.
  RowsKernel big = nullptr;
  if (path == KernelPath::AMX)
    big = fmt == WeightFormat::INT8 ? detail::amxInt8Kernel()
                                    : detail::amxBf16Kernel();
  const int minTokens =
      opts.amxMinTokens > 0                ? opts.amxMinTokens
      : fmt == WeightFormat::INT8 ? kAmxMinTokensInt8
                                           : kAmxMinTokensBf16;
  auto kernelFor = [&](int n) { return big && n >= minTokens ? big : kern; };
  ThreadPool &pool =
      opts.pool ? *opts.pool : detail::sharedPool(std::max(1, opts.threads));

  Routing rt = route(w, args);
  const int A = static_cast<int>(rt.token.size());
  const int PH = (H + 127) / 128 * 128, PI = (I + 127) / 128 * 128;
  const bool int8 = fmt == WeightFormat::INT8;
  const bool s16 = int8 && detail::int8NeedsS16(path);
  const bool b16 = fmt == WeightFormat::BF16 &&
                   (path == KernelPath::AVX512BF16 || path == KernelPath::AMX);

  // Phase 1: activations.
  std::vector<float> xf(static_cast<std::size_t>(T) * PH, 0.f);
  std::vector<uint8_t> xq(int8 ? static_cast<std::size_t>(T) * PH : 0);
  std::vector<float> xs(int8 ? static_cast<std::size_t>(T) * PH / detail::kActBlock : 0);
  std::vector<int16_t> x16(s16 ? static_cast<std::size_t>(T) * PH : 0);
  std::vector<uint16_t> xb(b16 ? static_cast<std::size_t>(T) * PH : 0);
  pool.run(T, [&](int t, int) {
    float *dst = &xf[static_cast<std::size_t>(t) * PH];
    if (args.xType == DType::F32) {
      const float *src = static_cast<const float *>(args.x) + static_cast<std::size_t>(t) * H;
      std::copy(src, src + H, dst);
    } else {
      const uint16_t *src = static_cast<const uint16_t *>(args.x) + static_cast<std::size_t>(t) * H;
      for (int i = 0; i < H; ++i)
        dst[i] = bf16ToF32(src[i]);
    }
    if (int8)
      detail::quantizeRowU8(dst, H, PH, &xq[static_cast<std::size_t>(t) * PH],
                            &xs[static_cast<std::size_t>(t) * PH / detail::kActBlock]);
    if (s16)
      for (int i = 0; i < PH; ++i)
        x16[static_cast<std::size_t>(t) * PH + i] =
            static_cast<int16_t>(xq[static_cast<std::size_t>(t) * PH + i] - 128);
    if (b16)
      for (int i = 0; i < PH; ++i)
        xb[static_cast<std::size_t>(t) * PH + i] = f32ToBf16(dst[i]);
  });
  ActRows xa{PH, xf.data(), int8 ? xq.data() : nullptr, int8 ? xs.data() : nullptr,
             s16 ? x16.data() : nullptr, b16 ? xb.data() : nullptr};

  // Phase 2: fused gate/up -> h [A, PI].
  std::vector<float> h(static_cast<std::size_t>(A) * PI, 0.f);
  struct Task { int expert, r0, r1; };
  std::vector<Task> tasks;
  for (int e : rt.active)
    for (int r0 = 0; r0 < I; r0 += kGateUpBlock)
      tasks.push_back({e, r0, std::min(I, r0 + kGateUpBlock)});
  int maxPairs = 0;
  for (int e : rt.active)
    maxPairs = std::max(maxPairs, rt.offsets[e + 1] - rt.offsets[e]);
  // Per-thread gate/up tiles, allocated here: tasks must not throw.
  std::vector<std::vector<float>> scratch(
      pool.size(), std::vector<float>(static_cast<std::size_t>(2) * maxPairs * kGateUpBlock));
  pool.run(static_cast<int>(tasks.size()), [&](int ti, int th) {
    const Task &tk = tasks[ti];
    const int p0 = rt.offsets[tk.expert], n = rt.offsets[tk.expert + 1] - p0;
    const int rows = tk.r1 - tk.r0;
    float *g = scratch[th].data(), *u = g + static_cast<std::size_t>(maxPairs) * kGateUpBlock;
    const int *idx = &rt.token[p0];
    RowsKernel k = kernelFor(n);
    k(w.gate[tk.expert], tk.r0, tk.r1, xa, idx, n, g, kGateUpBlock);
    k(w.up[tk.expert], tk.r0, tk.r1, xa, idx, n, u, kGateUpBlock);
    for (int j = 0; j < n; ++j) {
      float *hr = &h[static_cast<std::size_t>(p0 + j) * PI + tk.r0];
      for (int r = 0; r < rows; ++r)
        hr[r] = silu(g[j * kGateUpBlock + r]) * u[j * kGateUpBlock + r];
    }
  });

  // Phase 3: INT8 quantisation of h (bf16 activations: rounding of h).
  std::vector<uint8_t> hq(int8 ? static_cast<std::size_t>(A) * PI : 0);
  std::vector<float> hs(int8 ? static_cast<std::size_t>(A) * PI / detail::kActBlock : 0);
  std::vector<int16_t> h16(s16 ? static_cast<std::size_t>(A) * PI : 0);
  std::vector<uint16_t> hb(b16 ? static_cast<std::size_t>(A) * PI : 0);
  if (b16)
    pool.run(A, [&](int p, int) {
      const std::size_t o = static_cast<std::size_t>(p) * PI;
      for (int i = 0; i < PI; ++i)
        hb[o + i] = f32ToBf16(h[o + i]);
    });
  if (int8)
    pool.run(A, [&](int p, int) {
      const std::size_t o = static_cast<std::size_t>(p) * PI;
      detail::quantizeRowU8(&h[o], I, PI, &hq[o], &hs[o / detail::kActBlock]);
      if (s16)
        for (int i = 0; i < PI; ++i)
          h16[o + i] = static_cast<int16_t>(hq[o + i] - 128);
    });
  ActRows ha{PI, h.data(), int8 ? hq.data() : nullptr, int8 ? hs.data() : nullptr,
             s16 ? h16.data() : nullptr, b16 ? hb.data() : nullptr};

  // Phase 4: down -> y [A, H].
  std::vector<float> y(static_cast<std::size_t>(A) * H);
  std::vector<int> pairIdx(A);
  for (int p = 0; p < A; ++p)
    pairIdx[p] = p;
  tasks.clear();
  for (int e : rt.active)
    for (int r0 = 0; r0 < H; r0 += kDownBlock)
      tasks.push_back({e, r0, std::min(H, r0 + kDownBlock)});
  pool.run(static_cast<int>(tasks.size()), [&](int ti, int) {
    const Task &tk = tasks[ti];
    const int p0 = rt.offsets[tk.expert], n = rt.offsets[tk.expert + 1] - p0;
    kernelFor(n)(w.down[tk.expert], tk.r0, tk.r1, ha, &pairIdx[p0], n,
         &y[static_cast<std::size_t>(p0) * H + tk.r0], H);
  });

  // Phase 5: weighted sum per token.
  pool.run(T, [&](int t, int) {
    float *acc = &xf[static_cast<std::size_t>(t) * PH]; // reuse as fp32 sum
    std::fill(acc, acc + H, 0.f);
    for (int j = 0; j < K; ++j) {
      int p = rt.slotPair[static_cast<std::size_t>(t) * K + j];
      if (p < 0)
        continue;
      float wt = args.weights[static_cast<std::size_t>(t) * K + j];
      const float *yr = &y[static_cast<std::size_t>(p) * H];
      for (int i = 0; i < H; ++i)
        acc[i] += wt * yr[i];
    }
    if (args.outType == DType::F32) {
      float *o = static_cast<float *>(args.out) + static_cast<std::size_t>(t) * H;
      std::copy(acc, acc + H, o);
    } else {
      uint16_t *o = static_cast<uint16_t *>(args.out) + static_cast<std::size_t>(t) * H;
      for (int i = 0; i < H; ++i)
        o[i] = f32ToBf16(acc[i]);
    }
  });
}

} // namespace kt::kernels
