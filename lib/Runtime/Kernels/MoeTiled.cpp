//===- MoeTiled.cpp - Expert-major prefill for experts with many tokens ---===//
//
// Experts routed many tokens (prefill) run here, on a panel kernel (AMX
// tiles, or VNNI / AVX512-BF16 with broadcast activations) over the
// weights' tile layout; on the AMX path every expert does (decode too):
//
//  1. panels: each expert's token rows are gathered once into a contiguous
//     panel (rows padded to 16 for the AMX kernels, stride = row bytes + 64
//     so that the 16 rows of an A tile do not fall into the same L1 sets).
//     INT8 activations are quantised with one scale per block of
//     MoeOptions::int8PanelBlock elements (256; or per token row), and the
//     micro-kernels run once per block: each block's int32 sums are scaled
//     into fp32 (PanelEpilogue::scaleAdd) before the next is added.
//  2. gate/up: tasks (expert, kPanelGateRows intermediate rows), token
//     panels outside and weight blocks inside; each micro-kernel call
//     computes 16 gate and the same 16 up rows for 32 tokens, and the
//     epilogue writes h = silu(gate) * up (BF16: straight into the down
//     panel as bf16; INT8: fp32, quantised per pair in step 3).
//  3. INT8 weights: each pair's h row is rotated as the down weights are
//     (PackedMatrix::rotation); INT8 activations: quantised to 8 bits per
//     block, as x.
//  4. down: tasks own kPanelDownRows rows of the hidden dimension (and, with
//     many tokens per expert, one of up to 4 token ranges) and loop over
//     every expert, adding weight * y into accum[token] directly: no
//     per-pair y buffer and no separate combine pass for these experts.
//     accum rows are padded (accumStride) so that they spread over the
//     cache sets.
// Phases smaller than kInlineElements run on the calling thread.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace kt::kernels::detail {

char *Workspace::take(std::size_t bytes) {
  if (next_ == blocks_.size()) {
    blocks_.emplace_back();
    caps_.push_back(0);
  }
  std::size_t i = next_++;
  if (caps_[i] < bytes + 64) {
    caps_[i] = bytes + 64;
    blocks_[i].reset(new char[caps_[i]]);
  }
  return reinterpret_cast<char *>(
      (reinterpret_cast<uintptr_t>(blocks_[i].get()) + 63) & ~uintptr_t(63));
}

void Workspace::reset() { next_ = 0; }

int accumStride(int hidden) { return (hidden + 15) / 16 * 16 + 16; }

namespace {

constexpr int kPanelRows = 32; // tokens per micro-kernel call
constexpr int kTileBytesAll = kTileRows * kTileBytes; // 1 KiB
/// Most 16-row weight blocks per task (gate/up or down task rows / 16).
constexpr int kMaxTaskBlocks = 64;
/// Down tasks: one token split per this many pairs per expert, at most
/// kMaxDownSplits (see step 4).
constexpr int kDownSplitPairs = 128;
constexpr int kMaxDownSplits = 4;

inline int pad16(int n) { return (n + 15) / 16 * 16; }

/// Runs fn(i, 0) for i in [0, n) on the calling thread when the whole
/// phase touches fewer than kInlineElements elements (decode: a few pairs),
/// else on the pool: a pool run costs more than such a phase.
constexpr std::size_t kInlineElements = 64 * 1024;
template <class Fn>
void forEach(ThreadPool &pool, int n, std::size_t elements, const Fn &fn) {
  if (elements < kInlineElements) {
    for (int i = 0; i < n; ++i)
      fn(i, 0);
    return;
  }
  pool.run(n, fn);
}

struct Layout {
  int esz;          // bytes per activation element
  long xStride;     // bytes per x panel row
  long hStride;     // bytes per h panel row
  int xChunks;      // 64-byte chunks of an x row (gate/up K)
  int hChunks;      // of an h row (down K)
  std::vector<int> base; // first panel row of each listed expert
  int rows = 0;          // panel rows in all
};

const char *tileBlock(const PackedMatrix &m, int rowBlock) {
  const int chunks =
      m.paddedCols * (m.format == WeightFormat::INT8 ? 1 : 2) / kTileBytes;
  const std::size_t off =
      static_cast<std::size_t>(rowBlock) * chunks * kTileBytesAll;
  return m.format == WeightFormat::INT8
             ? reinterpret_cast<const char *>(m.q8Tiles.data()) + off
             : reinterpret_cast<const char *>(m.bf16Tiles.data()) + off;
}

} // namespace

void runPanelExperts(const MoeWeights &w, const Routing &rt,
                     const std::vector<int> &experts, const PanelKernel &k,
                     const float *xf, const uint16_t *xb, int tokens,
                     ThreadPool &pool, Workspace &ws, float *accum,
                     const MoeOptions &opts) {
  MoeStats *stats = opts.stats;
  // Task heights (MoeOptions; at most kMaxTaskBlocks weight blocks).
  const int gateRows =
      std::min(opts.panelGateRows > 0 ? (opts.panelGateRows + 15) / 16 * 16
                                      : kPanelGateRows,
               16 * kMaxTaskBlocks);
  const int downRows =
      std::min(opts.panelDownRows > 0 ? (opts.panelDownRows + 31) / 32 * 32
                                      : kPanelDownRows,
               16 * kMaxTaskBlocks);
  using Clock = std::chrono::steady_clock;
  auto mark = Clock::now();
  auto lap = [&](double MoeStats::*field) {
    if (!stats)
      return;
    auto now = Clock::now();
    stats->*field += std::chrono::duration<double>(now - mark).count();
    mark = now;
  };
  if (experts.empty())
    return;
  // With stats: each thread's time inside the tasks of a phase (timed(fn)
  // wraps a task function), summed up per phase by addBusy.
  std::vector<double> busy(stats ? pool.size() : 0);
  auto timed = [&](auto fn) {
    return [&busy, stats, fn](int ti, int th) {
      if (!stats)
        return fn(ti, th);
      const auto t0 = Clock::now();
      fn(ti, th);
      busy[th] += std::chrono::duration<double>(Clock::now() - t0).count();
    };
  };
  auto addBusy = [&](double MoeStats::*mean, double MoeStats::*max) {
    if (!stats)
      return;
    double sum = 0, top = 0;
    for (double &b : busy) {
      sum += b;
      top = std::max(top, b);
      b = 0;
    }
    stats->*mean += sum / static_cast<double>(busy.size());
    stats->*max += top;
  };
  const int H = w.hidden, I = w.intermediate;
  const std::size_t AH = accumStride(H);
  const int PH = w.gate[experts[0]].paddedCols; // x row stride (elements)
  const int PI = w.down[experts[0]].paddedCols;
  const bool int8 = k.int8;
  const PanelEpilogue &epi = k.epi;
  Layout L;
  L.esz = int8 ? 1 : 2;
  L.xStride = static_cast<long>(PH) * L.esz + 64;
  L.hStride = static_cast<long>(PI) * L.esz + 64;
  L.xChunks = PH * L.esz / kTileBytes;
  L.hChunks = PI * L.esz / kTileBytes;
  const int NE = static_cast<int>(experts.size());
  L.base.resize(NE + 1);
  for (int i = 0; i < NE; ++i) {
    L.base[i] = L.rows;
    L.rows += k.tileA ? pad16(rt.count(experts[i])) : rt.count(experts[i]);
  }
  L.base[NE] = L.rows;

  char *xp = ws.take(static_cast<std::size_t>(L.rows) * L.xStride);
  // kPanelRows rows of slack: a down task's panel may start at any row (a
  // token split, step 4) and the AMX kernel reads whole 16-row tiles.
  char *hp = ws.take(static_cast<std::size_t>(L.rows + kPanelRows) * L.hStride);
  // INT8 activation blocks (MoeOptions::int8PanelBlock): bx / bh chunks
  // of an x / h row share one scale; nbx / nbh blocks per row.
  const int blk =
      opts.int8PanelBlock > 0 ? opts.int8PanelBlock / kTileBytes : 1 << 20;
  const int bx = std::min(blk, L.xChunks), bh = std::min(blk, L.hChunks);
  const int nbx = int8 ? (L.xChunks + bx - 1) / bx : 1;
  const int nbh = int8 ? (L.hChunks + bh - 1) / bh : 1;
  float *xs = ws.take<float>(static_cast<std::size_t>(L.rows) * nbx);
  float *hs = ws.take<float>(static_cast<std::size_t>(L.rows) * nbh);
  float *hf = int8 ? ws.take<float>(static_cast<std::size_t>(L.rows) * PI)
                   : nullptr;
  // Quantises row x (n values, stride elements) per block of `b` chunks into
  // dst, one scale per block into sc.
  auto quantize = [&](const float *x, int n, int stride, int b, char *dst,
                      float *sc) {
    for (int i = 0, c0 = 0; c0 < stride; c0 += b * kTileBytes, ++i) {
      const int width = std::min(b * kTileBytes, stride - c0);
      sc[i] = epi.quantize(x + c0, std::clamp(n - c0, 0, width), width,
                           k.unsignedA, dst + c0);
    }
  };

  // The micro-kernel over the whole input dimension (kChunks) into fp32 F:
  // BF16 directly; INT8 once per activation block of b chunks, whose int32
  // sums are scaled by the block's activation scales (as[m * nb + block])
  // and the weight rows' scales (wsc, 16 or 32) and added up.
  auto product = [&](const char *A, long aStride, int M, const char *B0,
                     const char *B1, int kChunks, int b, const float *as,
                     int nb, const float *wsc, float *F) {
    if (!int8)
      return k.micro(A, aStride, M, B0, B1, kChunks, F);
    alignas(64) int32_t ci[kPanelRows * 32];
    for (int i = 0; i < nb; ++i) {
      const long c0 = static_cast<long>(i) * b;
      k.micro(A + c0 * kTileBytes, aStride, M, B0 + c0 * kTileBytesAll,
              B1 ? B1 + c0 * kTileBytesAll : nullptr,
              std::min<int>(b, kChunks - c0), ci);
      epi.scaleAdd(ci, M, B1 ? 32 : 16, as + i, nb, wsc, i == 0, F);
    }
  };
  // A weight block's row scales (INT8), 0 past the matrix's rows.
  auto rowScales = [](const PackedMatrix &m, int r0, int n, float *dst) {
    for (int c = 0; c < n; ++c)
      dst[c] = r0 + c < m.rows ? m.scales[r0 + c] : 0.f;
  };

  // 1. Panels. Each token row is quantised / rounded once, then copied into
  // the panel of every expert it is routed to (16-row groups of pairs).
  // Bf16 rows from the caller are copied as they are.
  const long xBytes = static_cast<long>(PH) * L.esz;
  const bool given = !int8 && xb;
  if (!given && !xf)
    throw std::logic_error("runPanelExperts: no activations for the kernel");
  char *xc =
      given ? nullptr : ws.take(static_cast<std::size_t>(tokens) * xBytes);
  const char *xt = given ? reinterpret_cast<const char *>(xb) : xc;
  float *xts = ws.take<float>(static_cast<std::size_t>(tokens) * nbx);
  const int pairs = L.rows; // panel rows (pairs, padded for tileA)
  if (!given)
    forEach(pool, tokens, static_cast<std::size_t>(tokens) * PH,
            [&](int t, int) {
              const float *x = xf + static_cast<std::size_t>(t) * PH;
              char *d = xc + static_cast<long>(t) * xBytes;
              if (int8)
                quantize(x, H, PH, bx, d, xts + static_cast<long>(t) * nbx);
              else
                epi.toBf16(x, PH, reinterpret_cast<uint16_t *>(d));
            });
  struct Group { int i, j0; };
  std::vector<Group> groups;
  for (int i = 0; i < NE; ++i)
    for (int j0 = 0; j0 < rt.count(experts[i]); j0 += 16)
      groups.push_back({i, j0});
  const int zeroByte = int8 && k.unsignedA ? 128 : 0;
  forEach(pool, static_cast<int>(groups.size()),
          static_cast<std::size_t>(pairs) * PH, [&](int gi, int) {
            const Group g = groups[gi];
            const int e = experts[g.i], n = rt.count(e), p0 = rt.offsets[e];
            const int j1 = k.tileA ? g.j0 + 16 : std::min(n, g.j0 + 16);
            for (int j = g.j0; j < j1; ++j) {
              const long row = L.base[g.i] + j;
              char *xd = xp + row * L.xStride;
              char *hd = hp + row * L.hStride;
              if (j >= n) { // padding rows: zero activations, zero scales
                std::memset(xd, zeroByte, L.xStride);
                std::memset(hd, zeroByte, L.hStride);
                std::fill_n(xs + row * nbx, nbx, 0.f);
                std::fill_n(hs + row * nbh, nbh, 0.f);
                continue;
              }
              const int tok = rt.token[p0 + j];
              std::memcpy(xd, xt + static_cast<long>(tok) * xBytes, xBytes);
              std::copy_n(xts + static_cast<long>(tok) * nbx, int8 ? nbx : 0,
                          xs + row * nbx);
              if (!int8) {
                // h columns I .. PI stay zero (the gate/up epilogue writes <
                // I).
                std::memset(hd + static_cast<long>(I) * 2, 0,
                            static_cast<std::size_t>(PI - I) * 2);
              }
            }
          });

  lap(&MoeStats::panels);

  // Weight blocks of formats without a tile layout (k.dequant): each thread
  // dequantises the 16-row blocks of its task into its own scratch (gate/up:
  // gateRows / 16 gate and as many up blocks; down: downRows / 16 blocks).
  const std::size_t gateBlock = static_cast<std::size_t>(kTileRows) * PH;
  const std::size_t downBlock = static_cast<std::size_t>(kTileRows) * PI;
  const std::size_t dqPerThread =
      std::max(static_cast<std::size_t>(2 * gateRows / kTileRows) * gateBlock,
               static_cast<std::size_t>(downRows / kTileRows) * downBlock);
  uint16_t *dqAll =
      k.dequant ? ws.take<uint16_t>(dqPerThread * pool.size()) : nullptr;
  // The task's weight blocks rb0 / 16 .. rb1 / 16 - 1 of m (scratch: room
  // for them when dequantising).
  auto blocks = [&](const PackedMatrix &m, int rb0, int rb1, uint16_t *scratch,
                    const char **out) {
    for (int rb = rb0; rb < rb1; rb += kTileRows) {
      if (k.dequant) {
        k.dequant(m, rb / kTileRows, scratch);
        out[(rb - rb0) / kTileRows] = reinterpret_cast<const char *>(scratch);
        scratch += static_cast<std::size_t>(kTileRows) * m.paddedCols;
      } else {
        out[(rb - rb0) / kTileRows] = tileBlock(m, rb / kTileRows);
      }
    }
  };

  // 2. Gate/up: tasks (expert, gateRows intermediate rows). Token panels
  // outside, weight blocks inside: each 32-token panel is read once (L3 ->
  // L2) for all the task's rows, and the task's weight blocks stay in L2.
  struct Task { int i, r0; };
  std::vector<Task> tasks;
  const int iTileRows = w.gate[experts[0]].tileRows();
  for (int i = 0; i < NE; ++i)
    for (int r0 = 0; r0 < iTileRows; r0 += gateRows)
      tasks.push_back({i, r0});
  pool.run(
      static_cast<int>(tasks.size()), timed([&](int ti, int th) {
        const Task t = tasks[ti];
        const int e = experts[t.i], n = rt.count(e);
        const int r1 = std::min(t.r0 + gateRows, iTileRows);
        const PackedMatrix &G = w.gate[e], &U = w.up[e];
        alignas(64) float cbuf[kPanelRows * 32];
        uint16_t *dq = dqAll ? dqAll + dqPerThread * th : nullptr;
        const char *gb[kMaxTaskBlocks], *ub[kMaxTaskBlocks];
        blocks(G, t.r0, r1, dq, gb);
        blocks(U, t.r0, r1,
               dq ? dq + (r1 - t.r0) / kTileRows * gateBlock : nullptr, ub);
        // INT8: each weight block's gate | up row scales, once per task.
        alignas(64) float wsc[kMaxTaskBlocks][32];
        if (int8)
          for (int rb = t.r0; rb < r1; rb += kTileRows) {
            const int q = (rb - t.r0) / kTileRows;
            rowScales(G, rb, 16, wsc[q]);
            rowScales(U, rb, 16, wsc[q] + 16);
          }
        for (int j0 = 0; j0 < n; j0 += kPanelRows) {
          const int M = std::min(kPanelRows, n - j0);
          const long row0 = L.base[t.i] + j0;
          for (int rb = t.r0; rb < r1; rb += kTileRows) {
            const int q = (rb - t.r0) / kTileRows;
            product(xp + row0 * L.xStride, L.xStride, M, gb[q], ub[q],
                    L.xChunks, bx, xs + row0 * nbx, nbx, wsc[q], cbuf);
            const int nc = std::min(kTileRows, I - rb);
            epi.gateUp(
                cbuf, M, nc, int8 ? hf + row0 * PI + rb : nullptr,
                int8 ? nullptr
                     : reinterpret_cast<uint16_t *>(hp + row0 * L.hStride) + rb,
                int8 ? PI : L.hStride / 2);
          }
        }
      }));

  lap(&MoeStats::gateUp);
  addBusy(&MoeStats::gateUpBusyMean, &MoeStats::gateUpBusyMax);

  // 3. Each pair's h row rotated as the down weights are (INT8 weights),
  // and INT8: quantised (padding rows were zeroed in 1).
  const int rot = w.down[experts[0]].rotation;
  if (int8 || rot)
    forEach(pool, static_cast<int>(groups.size()),
            static_cast<std::size_t>(pairs) * PI, [&](int gi, int) {
              const Group g = groups[gi];
              const int n = rt.count(experts[g.i]);
              std::vector<float> tmp(int8 ? 0 : I);
              for (int j = g.j0; j < std::min(n, g.j0 + 16); ++j) {
                const long row = L.base[g.i] + j;
                if (int8) {
                  hadamardRotate(hf + row * PI, I, rot);
                  quantize(hf + row * PI, I, PI, bh, hp + row * L.hStride,
                           hs + row * nbh);
                  continue;
                }
                // bf16 h (INT8 weights for bf16 activations): rotated in
                // fp32, rounded back.
                auto *hb = reinterpret_cast<uint16_t *>(hp + row * L.hStride);
                for (int c = 0; c < I; ++c)
                  tmp[c] = bf16ToF32(hb[c]);
                hadamardRotate(tmp.data(), I, rot);
                for (int c = 0; c < I; ++c)
                  hb[c] = f32ToBf16(tmp[c]);
              }
            });

  lap(&MoeStats::quantH);

  // 4. Down: tasks own downRows hidden rows and loop over the experts; per
  // expert, token panels outside and weight block pairs inside (each h
  // panel read once for all the task's rows).
  const int hTileRows = w.down[experts[0]].tileRows();
  const int rowTasks = (hTileRows + downRows - 1) / downRows;
  // Token splits: task (row block, split s) handles the pairs whose token
  // is in [s, s + 1) * tokens / S, a contiguous range of each expert's
  // panel (pairs are in token order). Tasks then write disjoint accum rows
  // and there are S times as many to balance over the threads, but each
  // reads its weight blocks for fewer tokens: S = pairs per expert /
  // kDownSplitPairs, 1 to kMaxDownSplits (docs/performance.md, "token
  // splits"). Dequantising kernels keep S = 1 (each task would dequantise
  // its blocks again). Tasks are numbered split-major: the pool hands each
  // thread a contiguous range of tasks, so the S splits of one row block
  // start on S different threads at once and read its weights from memory
  // about once (row-major numbering ran them one after another on one
  // thread, each reading them again; docs/performance.md, "task order").
  const int S =
      k.dequant ? 1
                : std::clamp(pairs / (NE * kDownSplitPairs), 1, kMaxDownSplits);
  std::vector<int> cut(static_cast<std::size_t>(NE) * (S + 1));
  for (int i = 0; i < NE; ++i) {
    const int e = experts[i];
    const int *tok = rt.token.data() + rt.offsets[e];
    for (int s = 0; s <= S; ++s)
      cut[i * (S + 1) + s] =
          static_cast<int>(std::lower_bound(tok, tok + rt.count(e),
                                            static_cast<long>(tokens) * s / S) -
                           tok);
  }
  pool.run(
      rowTasks * S, timed([&](int ti, int th) {
        const int r0 = ti % rowTasks * downRows, s = ti / rowTasks;
        const int r1 = std::min(r0 + downRows, hTileRows);
        alignas(64) float cbuf[kPanelRows * 32];
        uint16_t *dq = dqAll ? dqAll + dqPerThread * th : nullptr;
        const char *db[kMaxTaskBlocks];
        alignas(64) float wsc[kMaxTaskBlocks / 2][32]; // INT8: per block pair
        for (int i = 0; i < NE; ++i) {
          const int e = experts[i], p0 = rt.offsets[e];
          const int jb = cut[i * (S + 1) + s], n = cut[i * (S + 1) + s + 1];
          if (jb == n)
            continue;
          const PackedMatrix &D = w.down[e];
          blocks(D, r0, r1, dq, db);
          if (int8)
            for (int rb = r0; rb < r1; rb += 2 * kTileRows)
              rowScales(D, rb, 32, wsc[(rb - r0) / (2 * kTileRows)]);
          for (int j0 = jb; j0 < n; j0 += kPanelRows) {
            const int M = std::min(kPanelRows, n - j0);
            const long row0 = L.base[i] + j0;
            // Each token's factor and accum row (at column r0).
            float f[kPanelRows], *o[kPanelRows];
            for (int m = 0; m < M; ++m) {
              const int p = p0 + j0 + m;
              f[m] = rt.weight[p];
              o[m] = accum + rt.token[p] * AH + r0;
            }
            for (int rb = r0; rb < r1; rb += 2 * kTileRows) {
              const int q = (rb - r0) / kTileRows;
              product(hp + row0 * L.hStride, L.hStride, M, db[q],
                      rb + kTileRows < r1 ? db[q + 1] : nullptr, L.hChunks, bh,
                      hs + row0 * nbh, nbh, wsc[q / 2], cbuf);
              epi.down(cbuf, M, std::min(2 * kTileRows, H - rb), f, o);
              for (int m = 0; m < M; ++m)
                o[m] += 2 * kTileRows;
            }
          }
        }
      }));
  lap(&MoeStats::down);
  addBusy(&MoeStats::downBusyMean, &MoeStats::downBusyMax);
}

} // namespace kt::kernels::detail
