//===- NumaMoe.cpp - MoE experts split across NUMA nodes ------------------===//
//
// Packing: every slice is packed on its node's driver thread and workers
// (pinned to the node's cores), so first touch puts its pages on the node;
// with MemBind (hwloc) the pages are then bound to the node explicitly.
// Forward: slice 0 runs on node 0's pool from the calling thread, slices
// 1.. on their nodes' driver threads, all at once; each writes an fp32
// partial [T, H]; the partials are added in slice order.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/NumaMoe.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

namespace kt::kernels {

//===----------------------------------------------------------------------===//
// NumaPool
//===----------------------------------------------------------------------===//

NumaPool::NumaPool(const CpuTopology &topo, NumaPoolOptions opts)
    : topo_(topo), pinCaller_(opts.pin && opts.pinCaller) {
  const int k = static_cast<int>(topo_.nodes.size());
  if (k == 0)
    throw std::invalid_argument("NumaPool: topology without nodes");
  const int cores = std::max(1, topo_.cores());
  const int total = opts.threads > 0 ? opts.threads : cores;
  int before = 0; // cores of the nodes before this one
  for (int j = 0; j < k; ++j) {
    const NumaNodeInfo &node = topo_.nodes[j];
    const int mine = static_cast<int>(node.cores.size());
    // Proportional share: floor(total * cumulative cores / cores).
    const int64_t lo = int64_t(total) * before / cores;
    const int64_t hi = int64_t(total) * (before + mine) / cores;
    before += mine;
    ThreadPoolOptions po;
    po.schedule = opts.schedule;
    po.spinMicros = opts.spinMicros;
    po.hookCaller = false; // thread 0: the caller (node 0) or the driver
    if (opts.pin && !node.cores.empty())
      po.onStart = [cores = node.cores](int t) {
        pinCurrentThread(cores[t % cores.size()]);
      };
    pools_.push_back(std::make_unique<ThreadPool>(std::max<int64_t>(1, hi - lo),
                                                  std::move(po)));
  }
}

int NumaPool::threads() const {
  int n = 0;
  for (const auto &p : pools_)
    n += p->size();
  return n;
}

//===----------------------------------------------------------------------===//
// NumaMoe
//===----------------------------------------------------------------------===//

std::size_t NumaMoe::bytes() const {
  std::size_t b = 0;
  for (const MoeWeights &s : slices)
    b += s.bytes();
  return b;
}

std::size_t NumaMoe::memoryBytes() const {
  std::size_t b = 0;
  for (const MoeWeights &s : slices)
    b += s.memoryBytes();
  return b;
}

std::vector<int> numaSliceBounds(int intermediate, int nodes) {
  if (intermediate <= 0)
    throw std::invalid_argument("numaSliceBounds: intermediate must be > 0");
  const int blocks = (intermediate + 127) / 128;
  const int s = std::clamp(nodes, 1, blocks);
  std::vector<int> b(s + 1);
  for (int k = 0; k <= s; ++k)
    b[k] =
        std::min(intermediate, static_cast<int>(int64_t(blocks) * k / s) * 128);
  return b;
}

namespace {

/// Runs body(k) for k in [0, count) on node k's driver thread, all at once;
/// rethrows the first error in slice order after all have finished.
template <class Body> void onEachNode(NumaPool &pools, int count, Body body) {
  std::vector<std::future<void>> fs;
  fs.reserve(count);
  std::exception_ptr err;
  try {
    for (int k = 0; k < count; ++k)
      fs.push_back(pools.pool(k).submit([&body, k] { body(k); }));
  } catch (...) {
    err = std::current_exception();
  }
  for (auto &f : fs)
    try {
      f.get();
    } catch (...) {
      if (!err)
        err = std::current_exception();
    }
  if (err)
    std::rethrow_exception(err);
}

/// Binds every buffer of `m` to node `os`; counts bytes and failures.
void bindMatrix(const PackedMatrix &m, int os, std::size_t &bytes,
                int &failures) {
  auto one = [&](const void *p, std::size_t n) {
    if (!n)
      return;
    if (bindMemoryToNode(p, n, os))
      bytes += n;
    else
      ++failures;
  };
  one(m.bf16.data(), m.bf16.size() * 2);
  one(m.q8.data(), m.q8.size());
  one(m.rowSum.data(), m.rowSum.size() * 4);
  one(m.q4.data(), m.q4.size());
  one(m.scales.data(), m.scales.size() * 4);
  one(m.offsets.data(), m.offsets.size() * 4);
  one(m.q8Tiles.data(), m.q8Tiles.size());
  one(m.bf16Tiles.data(), m.bf16Tiles.size() * 2);
}

} // namespace

NumaMoe packNumaMoe(const std::vector<ExpertSource> &experts, DType srcType,
                    int hidden, int intermediate, const QuantConfig &cfg,
                    NumaPool &pools, MemBind bind) {
  if (hidden <= 0 || intermediate <= 0)
    throw std::invalid_argument("packNumaMoe: hidden and intermediate must "
                                "be positive");
  NumaMoe w;
  w.numExperts = static_cast<int>(experts.size());
  w.hidden = hidden;
  w.intermediate = intermediate;
  w.config = cfg;
  w.bounds = numaSliceBounds(intermediate, pools.nodes());
  const int slices = static_cast<int>(w.bounds.size()) - 1;
  w.slices.resize(slices);
  const bool doBind =
      bind == MemBind::Always ||
      (bind == MemBind::Auto && pools.topology().physicalNodes() > 1);
  std::vector<std::size_t> bound(slices, 0);
  std::vector<int> failures(slices, 0);
  const std::size_t elem = srcType == DType::F32 ? 4 : 2;
  const int E = w.numExperts;
  onEachNode(pools, slices, [&](int k) {
    const int i0 = w.bounds[k], i1 = w.bounds[k + 1];
    MoeWeights &m = w.slices[k];
    m.numExperts = E;
    m.hidden = hidden;
    m.intermediate = i1 - i0;
    m.config = cfg;
    m.gate.resize(E);
    m.up.resize(E);
    m.down.resize(E);
    std::vector<std::exception_ptr> errors(E);
    auto rows = [&](const void *p) -> const void * {
      return p ? static_cast<const char *>(p) +
                     static_cast<std::size_t>(i0) * hidden * elem
               : nullptr;
    };
    pools.pool(k).run(E, [&](int e, int) {
      try {
        const ExpertSource &s = experts[e];
        m.gate[e] = packMatrix(rows(s.gate), srcType, i1 - i0, hidden, cfg);
        m.up[e] = packMatrix(rows(s.up), srcType, i1 - i0, hidden, cfg);
        m.down[e] = packMatrixColumns(s.down, srcType, hidden, intermediate, i0,
                                      i1, cfg, downRotation(cfg));
      } catch (...) {
        errors[e] = std::current_exception();
      }
    });
    for (auto &err : errors)
      if (err)
        std::rethrow_exception(err);
    if (!doBind)
      return;
    const int os = pools.topology().nodes[k].osIndex;
    for (const auto *v : {&m.gate, &m.up, &m.down})
      for (const PackedMatrix &pm : *v)
        bindMatrix(pm, os, bound[k], failures[k]);
  });
  for (int k = 0; k < slices; ++k) {
    w.boundBytes += bound[k];
    w.bindFailures += failures[k];
  }
  return w;
}

void moeForward(const NumaMoe &w, const MoeArgs &args, NumaPool &pools,
                const MoeOptions &opts) {
  const int S = static_cast<int>(w.slices.size());
  if (S == 0)
    throw std::invalid_argument("moeForward: NumaMoe without slices");
  if (pools.nodes() < S)
    throw std::invalid_argument("moeForward: weights split in " +
                                std::to_string(S) + " slices, pool has " +
                                std::to_string(pools.nodes()) + " nodes");
  // This thread is node 0's thread 0: slice 0 and the merge run on it, so
  // it works on node 0's cores (and memory) for the call.
  std::optional<ScopedPin> pin;
  const CpuTopology &topo = pools.topology();
  if (pools.pinsCaller() && !topo.nodes[0].cores.empty())
    pin.emplace(topo.nodes[0].cores[0]);
  MoeOptions o = opts;
  o.pool = &pools.pool(0);
  if (S == 1 || args.tokens <= 0) { // also validates the arguments
    moeForward(w.slices[0], args, o);
    return;
  }
  if (!args.out)
    throw std::invalid_argument("moeForward: bad arguments");
  const int T = args.tokens, H = w.hidden;
  const std::size_t n = static_cast<std::size_t>(T) * H;
  std::vector<std::unique_ptr<float[]>> partial(S);
  auto runSlice = [&](int k) {
    partial[k].reset(new float[n]); // first written by node k's threads
    MoeArgs a = args;
    a.out = partial[k].get();
    a.outType = DType::F32;
    MoeOptions ok = opts;
    ok.pool = &pools.pool(k);
    moeForward(w.slices[k], a, ok);
  };
  std::vector<std::future<void>> fs;
  std::exception_ptr err;
  try {
    for (int k = 1; k < S; ++k)
      fs.push_back(pools.pool(k).submit([&runSlice, k] { runSlice(k); }));
    runSlice(0);
  } catch (...) {
    err = std::current_exception();
  }
  for (auto &f : fs)
    try {
      f.get();
    } catch (...) {
      if (!err)
        err = std::current_exception();
    }
  if (err)
    std::rethrow_exception(err);
  // Partial sums in slice order: ((p0 + p1) + p2) ..., per token.
  pools.pool(0).run(T, [&](int t, int) {
    float *acc = partial[0].get() + static_cast<std::size_t>(t) * H;
    for (int k = 1; k < S; ++k) {
      const float *p = partial[k].get() + static_cast<std::size_t>(t) * H;
      for (int i = 0; i < H; ++i)
        acc[i] += p[i];
    }
    if (args.outType == DType::F32) {
      std::copy(acc, acc + H,
                static_cast<float *>(args.out) +
                    static_cast<std::size_t>(t) * H);
    } else {
      uint16_t *out =
          static_cast<uint16_t *>(args.out) + static_cast<std::size_t>(t) * H;
      for (int i = 0; i < H; ++i)
        out[i] = f32ToBf16(acc[i]);
    }
  });
}

double moeFlops(const NumaMoe &w, const MoeArgs &args) {
  if (w.slices.empty() || w.slices[0].intermediate == 0)
    return 0;
  return moeFlops(w.slices[0], args) / w.slices[0].intermediate *
         w.intermediate;
}

double moeBytesRead(const NumaMoe &w, const MoeArgs &args) {
  double b = 0; // each node reads the activations too
  for (const MoeWeights &s : w.slices)
    b += moeBytesRead(s, args);
  return b;
}

} // namespace kt::kernels
