//===- Moe.cpp - The MoE operator: routing, fused gate/up, down -----------===//
//
// Tokens are grouped by expert, so an expert's weights are read once per
// call. Each expert goes one of two ways, by its token count:
//  * many tokens, on a path with a panel kernel (AMX tiles; AVX512-VNNI on
//    the tile layout for INT8): the expert-major pipeline of MoeTiled.cpp,
//    which adds its results straight into an fp32 accumulator per token;
//  * few tokens (decode): on the AMX path the same pipeline with the
//    VNNI / AVX512-BF16 panel kernels (one packed layout: the tiles); on
//    the other paths the row kernels, in phases over a ThreadPool:
//    1. activations (fp32 padded rows; INT8: u8 rows, a scale per 128);
//    2. tasks (expert, 64 intermediate rows): gate and up for every token of
//       the expert, h = silu(gate) * up per routed (token, expert) pair;
//    3. INT8: h rows to u8; BF16 activations: h rounded to bf16;
//    4. tasks (expert, 128 hidden rows): down for every pair -> y;
//  5. per token: out = accumulator + sum_j w_j * y_j in fp32.
// Scratch buffers live in a per-thread Workspace reused across calls.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace kt::kernels {

using detail::ActRows;
using detail::KernelSet;
using detail::RowsKernel;
using detail::Routing;

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
RowsKernel pickKernel(KernelPath path, WeightFormat f, bool int8Float,
                      bool int4Float) {
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
  case WeightFormat::INT8:
    return int8Float ? ks.int8Float : ks.int8;
  case WeightFormat::INT4:
    return int4Float ? ks.int4Float : ks.int4;
  }
  return nullptr;
}

inline float silu(float v) { return v / (1.f + std::exp(-v)); }

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
  r.weight.resize(r.offsets[E]);
  r.expert.resize(r.offsets[E]);
  std::vector<int> fill(r.offsets.begin(), r.offsets.end() - 1);
  for (std::size_t i = 0; i < r.slotPair.size(); ++i) {
    int64_t e = idAt(i);
    if (e < 0)
      continue;
    int p = fill[e]++;
    r.token[p] = static_cast<int>(i / K);
    r.weight[p] = args.weights[i];
    r.expert[p] = static_cast<int>(e);
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

namespace {

/// The panel kernel a call may use for experts with many tokens, and from
/// how many tokens on; and the one for the other experts where they also run
/// on the tile layout (AMX path), instead of the row kernels.
struct PanelChoice {
  detail::PanelKernel kernel;
  int minTokens = 0; // 0: no panel kernel
  detail::PanelKernel small; // micro null: the row kernels
};

PanelChoice choosePanel(const MoeWeights &w, KernelPath path,
                        const MoeOptions &opts) {
  const WeightFormat fmt = w.config.format;
  PanelChoice pc;
  const bool int8Float = fmt == WeightFormat::INT8 &&
                         opts.int8Activations == Int8Activations::Float;
  if (int8Float && path == KernelPath::AMX &&
      !(cpuFeatures().amxBf16 && cpuFeatures().avx512bf16))
    return pc; // W8A16 without AMX-BF16: the fp32 row kernels
  if (fmt == WeightFormat::INT4 || (int8Float && w.hasTiles())) {
    // No tile layout of the format's own (INT4), or INT8 weights for bf16
    // activations: blocks are dequantised to bf16 tiles per task.
    // INT8 tile-only weights have no rows: their small experts also run on
    // dequantised tiles (AVX512-BF16 broadcast kernel); INT4 keeps its rows.
    const bool noRows = !w.hasRows();
    if (opts.emulatePanels) {
      pc.kernel = detail::scalarPanel(false);
      pc.kernel.dequant = detail::scalarDequant();
      pc.minTokens = opts.amxMinTokens > 0 ? opts.amxMinTokens : 1;
      if (noRows)
        pc.small = pc.kernel;
    } else if (path == KernelPath::AMX) {
      pc.kernel = detail::amxBf16Panel();
      pc.kernel.dequant = detail::avx512Dequant();
      pc.minTokens =
          opts.amxMinTokens > 0 ? opts.amxMinTokens : kAmxMinTokensInt4;
      if (noRows) {
        pc.small = detail::avx512Bf16Panel();
        pc.small.dequant = detail::avx512Dequant();
      }
    }
    return pc;
  }
  if (!w.hasTiles())
    return pc;
  const bool int8 = fmt == WeightFormat::INT8;
  if (opts.emulatePanels) {
    pc.kernel = detail::scalarPanel(int8);
    pc.minTokens = opts.amxMinTokens > 0 ? opts.amxMinTokens : 1;
    if (!w.hasRows()) // tile-only: as the AMX path, no expert on rows
      pc.small = pc.kernel;
  } else if (path == KernelPath::AMX) {
    pc.kernel = int8 ? detail::amxInt8Panel() : detail::amxBf16Panel();
    pc.minTokens = opts.amxMinTokens > 0 ? opts.amxMinTokens
                   : int8              ? kAmxMinTokensInt8
                                       : kAmxMinTokensBf16;
    pc.small = int8 ? detail::vnniInt8Panel() : detail::avx512Bf16Panel();
  } else if (path == KernelPath::AVX512 && int8 &&
             cpuFeatures().avx512vnni) {
    pc.kernel = detail::vnniInt8Panel();
    pc.minTokens =
        opts.vnniMinTokens > 0 ? opts.vnniMinTokens : kVnniPanelMinTokens;
  }
  return pc;
}

} // namespace

void moeForward(const MoeWeights &w, const MoeArgs &args,
                const MoeOptions &opts) {
  const int T = args.tokens, K = args.topK, H = w.hidden, I = w.intermediate;
  if (T < 0 || K < 0 || (T > 0 && (!args.x || !args.out)) ||
      (T > 0 && K > 0 && (!args.ids || !args.weights)))
    throw std::invalid_argument("moeForward: bad arguments");
  if (!int8PanelBlockValid(opts.int8PanelBlock))
    throw std::invalid_argument("moeForward: int8PanelBlock " +
                                std::to_string(opts.int8PanelBlock) +
                                " is not a multiple of 64");
  if (T == 0)
    return;
  // h is rotated once per pair for every expert alike (phase 3).
  const int rot0 = w.down.empty() ? 0 : w.down[0].rotation;
  for (const PackedMatrix &d : w.down)
    if (d.rotation != rot0 || rot0 < 0 || rot0 > 128 || (rot0 & (rot0 - 1)))
      throw std::invalid_argument(
          "moeForward: down matrices with different or invalid rotations (" +
          std::to_string(d.rotation) + " vs " + std::to_string(rot0) + ")");
  const WeightFormat fmt = w.config.format;
  KernelPath path = opts.path == KernelPath::Auto ? bestPath(fmt) : opts.path;
  // INT4 has no tile layout: the AMX path dequantises it per task.
  const bool tiles = w.hasTiles() || fmt == WeightFormat::INT4;
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
  const bool int8Float = fmt == WeightFormat::INT8 &&
                         opts.int8Activations == Int8Activations::Float;
  const bool int4Float = fmt == WeightFormat::INT4 &&
                         opts.int4Activations == Int4Activations::Float;
  const RowsKernel kern = pickKernel(path, fmt, int8Float, int4Float);
  const PanelChoice panel = choosePanel(w, path, opts);
  if (!panel.small.micro && !w.hasRows())
    throw std::invalid_argument(std::string("moeForward: path ") +
                                toString(path) +
                                " needs the row layout; these weights were "
                                "packed tile-only (TilePacking::Only)");
  ThreadPool &pool =
      opts.pool ? *opts.pool : detail::sharedPool(std::max(1, opts.threads));
  thread_local detail::Workspace ws;
  ws.reset();
  using Clock = std::chrono::steady_clock;
  auto mark = Clock::now();
  MoeStats *st = opts.stats;
  if (st)
    *st = MoeStats{};
  auto lap = [&](double MoeStats::*field) {
    if (!st)
      return;
    auto now = Clock::now();
    st->*field += std::chrono::duration<double>(now - mark).count();
    mark = now;
  };

  Routing rt = route(w, args);
  // Experts with many tokens go to the panel pipeline, the rest to the
  // small-expert panel kernel (`tiny`) or else the row kernels (`small`,
  // whose pairs get compact indices).
  std::vector<int> big, tiny, small;
  for (int e : rt.active)
    (panel.minTokens > 0 && rt.count(e) >= panel.minTokens ? big
     : panel.small.micro                                   ? tiny
                                                           : small)
        .push_back(e);
  std::vector<int> smallBase(w.numExperts + 1, -1);
  int AS = 0; // pairs of small experts
  for (int e : small) {
    smallBase[e] = AS;
    AS += rt.count(e);
  }
  const int PH = (H + 127) / 128 * 128, PI = (I + 127) / 128 * 128;
  // Row kernels on quantised activations (u8 + per-128 scales), decided by
  // the kernel picked: the VNNI INT4 kernel takes them too, and it and the
  // AVX2 INT8 kernel read s8 copies.
  const bool int4q = AS > 0 && kern == detail::avx512VnniInt4Kernel();
  const bool int8 =
      (fmt == WeightFormat::INT8 && !int8Float && AS > 0) || int4q;
  const bool s8 = int8 && (int4q || kern == detail::avx2Kernels().int8);
  const bool b16 = fmt == WeightFormat::BF16 && AS > 0 &&
                   (path == KernelPath::AVX512BF16 || path == KernelPath::AMX);
  const std::size_t TPH = static_cast<std::size_t>(T) * PH;

  // Phase 1: activations (fp32 rows for both ways; row-kernel formats only
  // when small experts exist), and the panel pipeline's accumulator. Rows
  // that need no padding are not copied: fp32 input is read in place, and
  // bf16 input is not widened at all where no kernel reads fp32 rows (the
  // BF16 panels copy its rows as they are).
  const bool inPlace = args.xType == DType::F32 && PH == H;
  const bool bf16Rows = args.xType == DType::BF16 && PH == H;
  const bool needF32 = !bf16Rows || AS > 0 ||
                       (!big.empty() && panel.kernel.int8) ||
                       (!tiny.empty() && panel.small.int8);
  float *xf = inPlace || !needF32 ? nullptr : ws.take<float>(TPH);
  const float *xin = inPlace ? static_cast<const float *>(args.x) : xf;
  const uint16_t *xbIn =
      bf16Rows ? static_cast<const uint16_t *>(args.x) : nullptr;
  uint8_t *xq = int8 ? ws.take<uint8_t>(TPH) : nullptr;
  float *xs = int8 ? ws.take<float>(TPH / detail::kActBlock) : nullptr;
  int8_t *x8 = s8 ? ws.take<int8_t>(TPH) : nullptr;
  // The row kernels' bf16 rows: bf16 input rows as they are, else rounded.
  uint16_t *xb = b16 && !bf16Rows ? ws.take<uint16_t>(TPH) : nullptr;
  const uint16_t *xbRows = b16 ? (bf16Rows ? xbIn : xb) : nullptr;
  const std::size_t AH = detail::accumStride(H);
  float *accum = big.empty() && tiny.empty()
                     ? nullptr
                     : ws.take<float>(static_cast<std::size_t>(T) * AH);
  pool.run(T, [&](int t, int) {
    const std::size_t o = static_cast<std::size_t>(t) * PH;
    if (xf) {
      float *dst = xf + o;
      if (args.xType == DType::F32) {
        const float *src = static_cast<const float *>(args.x) +
                           static_cast<std::size_t>(t) * H;
        std::copy(src, src + H, dst);
      } else {
        const uint16_t *src = static_cast<const uint16_t *>(args.x) +
                              static_cast<std::size_t>(t) * H;
        for (int i = 0; i < H; ++i)
          dst[i] = bf16ToF32(src[i]);
      }
      std::fill(dst + H, dst + PH, 0.f);
    }
    const float *row = xin ? xin + o : nullptr;
    if (int8)
      detail::quantizeRowU8(row, H, PH, xq + o, xs + o / detail::kActBlock);
    if (s8)
      for (int i = 0; i < PH; ++i)
        x8[o + i] = static_cast<int8_t>(xq[o + i] - 128);
    if (xb)
      for (int i = 0; i < PH; ++i)
        xb[o + i] = f32ToBf16(row[i]);
    if (accum)
      std::fill_n(accum + t * AH, H, 0.f);
  });

  if (st) {
    st->panelExperts = static_cast<int>(big.size() + tiny.size());
    st->rowExperts = static_cast<int>(small.size());
  }
  lap(&MoeStats::prepare);

  // Experts on the tile layout; both calls add into accum (each takes its
  // own scratch from ws).
  if (!big.empty())
    detail::runPanelExperts(w, rt, big, panel.kernel, xin, xbIn, T, pool, ws,
                            accum, opts);
  if (!tiny.empty())
    detail::runPanelExperts(w, rt, tiny, panel.small, xin, xbIn, T, pool, ws,
                            accum, opts);
  mark = Clock::now();

  // Experts with few tokens: phases 2-4 with the row kernels.
  float *y = nullptr;
  if (AS > 0) {
    ActRows xa{PH, xin, xq, xs, x8, xbRows};
    const std::size_t API = static_cast<std::size_t>(AS) * PI;
    float *h = ws.take<float>(API);

    // Phase 2: fused gate/up -> h [AS, PI].
    struct Task { int expert, r0, r1; };
    std::vector<Task> tasks;
    for (int e : small)
      for (int r0 = 0; r0 < I; r0 += kGateUpBlock)
        tasks.push_back({e, r0, std::min(I, r0 + kGateUpBlock)});
    int maxPairs = 0;
    for (int e : small)
      maxPairs = std::max(maxPairs, rt.count(e));
    const std::size_t scratchFloats =
        static_cast<std::size_t>(2) * maxPairs * kGateUpBlock;
    float *scratch = ws.take<float>(scratchFloats * pool.size());
    pool.run(static_cast<int>(tasks.size()), [&](int ti, int th) {
      const Task &tk = tasks[ti];
      const int p0 = rt.offsets[tk.expert], n = rt.count(tk.expert);
      const int q0 = smallBase[tk.expert], rows = tk.r1 - tk.r0;
      float *g = scratch + scratchFloats * th;
      float *u = g + static_cast<std::size_t>(maxPairs) * kGateUpBlock;
      const int *idx = &rt.token[p0];
      kern(w.gate[tk.expert], tk.r0, tk.r1, xa, idx, n, g, kGateUpBlock);
      kern(w.up[tk.expert], tk.r0, tk.r1, xa, idx, n, u, kGateUpBlock);
      for (int j = 0; j < n; ++j) {
        float *hr = h + static_cast<std::size_t>(q0 + j) * PI;
        for (int r = 0; r < rows; ++r)
          hr[tk.r0 + r] =
              silu(g[j * kGateUpBlock + r]) * u[j * kGateUpBlock + r];
        if (tk.r1 == I)
          std::fill(hr + I, hr + PI, 0.f);
      }
    });

    // Phase 3: h rotated as the down weights are (INT8), then INT8
    // quantisation of h (bf16 activations: rounding of h).
    uint8_t *hq = int8 ? ws.take<uint8_t>(API) : nullptr;
    float *hs = int8 ? ws.take<float>(API / detail::kActBlock) : nullptr;
    int8_t *h8 = s8 ? ws.take<int8_t>(API) : nullptr;
    uint16_t *hb = b16 ? ws.take<uint16_t>(API) : nullptr;
    const int rot = w.down[small[0]].rotation;
    if (int8 || b16 || rot)
      pool.run(AS, [&](int q, int) {
        const std::size_t o = static_cast<std::size_t>(q) * PI;
        hadamardRotate(h + o, I, rot);
        if (b16)
          for (int i = 0; i < PI; ++i)
            hb[o + i] = f32ToBf16(h[o + i]);
        if (int8)
          detail::quantizeRowU8(h + o, I, PI, hq + o,
                                hs + o / detail::kActBlock);
        if (s8)
          for (int i = 0; i < PI; ++i)
            h8[o + i] = static_cast<int8_t>(hq[o + i] - 128);
      });
    ActRows ha{PI, h, hq, hs, h8, hb};

    // Phase 4: down -> y [AS, H].
    y = ws.take<float>(static_cast<std::size_t>(AS) * H);
    std::vector<int> pairIdx(AS);
    for (int q = 0; q < AS; ++q)
      pairIdx[q] = q;
    tasks.clear();
    for (int e : small)
      for (int r0 = 0; r0 < H; r0 += kDownBlock)
        tasks.push_back({e, r0, std::min(H, r0 + kDownBlock)});
    pool.run(static_cast<int>(tasks.size()), [&](int ti, int) {
      const Task &tk = tasks[ti];
      const int q0 = smallBase[tk.expert], n = rt.count(tk.expert);
      kern(w.down[tk.expert], tk.r0, tk.r1, ha, &pairIdx[q0], n,
           y + static_cast<std::size_t>(q0) * H + tk.r0, H);
    });
  }

  lap(&MoeStats::rows);

  // Phase 5: per token, the accumulator plus the weighted y of small
  // experts, in slot order (without small experts: the accumulator alone).
  float *sums = AS > 0
                    ? ws.take<float>(static_cast<std::size_t>(H) * pool.size())
                    : nullptr;
  pool.run(T, [&](int t, int th) {
    const float *acc = accum ? accum + t * AH : nullptr;
    if (AS > 0) {
      float *sum = sums + static_cast<std::size_t>(H) * th;
      if (acc)
        std::copy_n(acc, H, sum);
      else
        std::fill(sum, sum + H, 0.f);
      for (int j = 0; j < K; ++j) {
        const int p = rt.slotPair[static_cast<std::size_t>(t) * K + j];
        if (p < 0)
          continue;
        const int e = rt.expert[p];
        if (smallBase[e] < 0)
          continue; // added by the panel pipeline
        const float wt = rt.weight[p];
        const float *yr =
            y + static_cast<std::size_t>(smallBase[e] + p - rt.offsets[e]) * H;
        for (int i = 0; i < H; ++i)
          sum[i] += wt * yr[i];
      }
      acc = sum;
    }
    if (args.outType == DType::F32) {
      float *o =
          static_cast<float *>(args.out) + static_cast<std::size_t>(t) * H;
      if (acc)
        std::copy_n(acc, H, o);
      else // every slot masked
        std::fill(o, o + H, 0.f);
    } else {
      uint16_t *o =
          static_cast<uint16_t *>(args.out) + static_cast<std::size_t>(t) * H;
      for (int i = 0; i < H; ++i)
        o[i] = acc ? f32ToBf16(acc[i]) : 0;
    }
  });
  lap(&MoeStats::combine);
}

} // namespace kt::kernels
