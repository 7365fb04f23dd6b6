//===- NumaMoeTest.cpp - topology, NUMA split, async MoE calls ------------===//
//
// The development machines have one NUMA node, so the split runs on
// *virtual* nodes (CpuTopology::split): the slicing, per-node packing,
// concurrent per-node forwards and the merge are exercised; page placement
// on distinct physical nodes is not (docs/kernels.md).
//
// Split vs unsplit tolerance: slices are cut at multiples of 128, so every
// packed value (INT8 down keeps its whole-row scales), every INT8
// activation block and every INT4 group is the same as in the unsplit
// weights, and gate, up and h are computed identically. Only the fp32
// summation order changes: down's dot product over I becomes per-slice
// sums added together, and the routing-weighted combine happens per slice.
// That is a few fp32 roundings of sums of O(I) terms, so the bound is
// 1e-6 of the output's largest magnitude (measured 1.4e-7 .. 1.9e-7).
// This holds for the row kernels, which the exact check forces. INT8
// experts with many tokens on the panel kernels (AMX / VNNI) quantise each
// h row with one scale over the slice's columns instead of the whole row,
// so there the split is checked against kSplitPanelInt8Tolerance (measured
// 1.7e-2 on the AMX machine).
//
//===----------------------------------------------------------------------===//

#include "NumaProblem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <future>
#include <memory>
#include <numeric>
#include <random>
#include <thread>
#include <tuple>

using namespace kt::kernels;
using namespace kt::kernels::testing_numa;

namespace {

//===----------------------------------------------------------------------===//
// NUMA split
//===----------------------------------------------------------------------===//

TEST(NumaMoe, SliceBounds) {
  using V = std::vector<int>;
  EXPECT_EQ(numaSliceBounds(200, 1), (V{0, 200}));
  EXPECT_EQ(numaSliceBounds(200, 2), (V{0, 128, 200}));
  EXPECT_EQ(numaSliceBounds(200, 3), (V{0, 128, 200}));
  EXPECT_EQ(numaSliceBounds(72, 3), (V{0, 72}));
  EXPECT_EQ(numaSliceBounds(328, 3), (V{0, 128, 256, 328}));
  EXPECT_EQ(numaSliceBounds(768, 2), (V{0, 384, 768}));
  EXPECT_EQ(numaSliceBounds(2048, 3), (V{0, 640, 1280, 2048}));
}

TEST(NumaMoe, ColumnSlicePacksTheSameValues) {
  Problem p = makeProblem(1, 72, 328, 1, 1, 7);
  const float *down = p.down.data(); // [H = 72, I = 328]
  for (const Fmt &f : kFormats) {
    PackedMatrix full = packMatrix(down, DType::F32, 72, 328, f.cfg);
    for (auto [c0, c1] : {std::pair{0, 128}, {128, 256}, {256, 328}}) {
      PackedMatrix s =
          packMatrixColumns(down, DType::F32, 72, 328, c0, c1, f.cfg);
      ASSERT_EQ(s.cols, c1 - c0);
      int diffs = 0;
      for (int r = 0; r < 72; ++r)
        for (int c = 0; c < c1 - c0; ++c)
          diffs += s.dequant(r, c) != full.dequant(r, c0 + c);
      EXPECT_EQ(diffs, 0) << f.name << " columns " << c0;
      if (f.cfg.format == WeightFormat::INT8)
        for (int r = 0; r < 72; ++r) {
          EXPECT_EQ(s.scales[r], full.scales[r]);
          EXPECT_EQ(s.rowSum[r * s.paddedCols / 128],
                    full.rowSum[(r * full.paddedCols + c0) / 128]);
        }
    }
  }
  EXPECT_THROW(
      packMatrixColumns(down, DType::F32, 72, 328, 64, 200, kFormats[0].cfg),
      std::invalid_argument);
}

class NumaSplit : public testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(NumaSplit, EqualsUnsplitAndIsDeterministic) {
  auto [fi, I, nodes] = GetParam();
  const Fmt &f = kFormats[fi];
  Problem p = makeProblem(6, 200, I, 9, 3, 100 + I);
  ThreadPool pool(2);
  const QuantConfig cfg = bothLayouts(f.cfg);
  MoeWeights full = packMoe(p.sources(), DType::F32, p.H, p.I, cfg, &pool);
  std::vector<float> ref;
  MoeOptions rowsOnly; // row kernels: exact split
  rowsOnly.path = rowPath(f.cfg.format);
  rowsOnly.vnniMinTokens = 1 << 30;
  MoeOptions o = rowsOnly;
  o.pool = &pool;
  moeForward(full, argsOf(p, ref), o);

  NumaPool pools(CpuTopology::host().split(nodes));
  ASSERT_EQ(pools.nodes(), nodes);
  NumaMoe split = packNumaMoe(p.sources(), DType::F32, p.H, p.I, cfg, pools);
  const std::vector<int> bounds = numaSliceBounds(I, nodes);
  ASSERT_EQ(split.bounds, bounds);
  ASSERT_EQ(split.slices.size() + 1, bounds.size());
  for (size_t k = 0; k < split.slices.size(); ++k)
    EXPECT_EQ(split.slices[k].intermediate, bounds[k + 1] - bounds[k]);
  // No copy of the whole weights per node: the slices add up to the
  // unsplit bytes (slices are cut at the 128-column padding), except that
  // each slice of an INT8 down keeps the H row scales (4 bytes each).
  const size_t extra = f.cfg.format == WeightFormat::INT8
                           ? (split.slices.size() - 1) * p.E * p.H * 4
                           : 0;
  EXPECT_EQ(split.bytes(), full.bytes() + extra);
  EXPECT_EQ(split.boundBytes, 0u); // one physical node: nothing to bind
  std::vector<float> scratch;
  EXPECT_EQ(moeFlops(split, argsOf(p, scratch)),
            moeFlops(full, argsOf(p, scratch)));

  std::vector<float> out;
  moeForward(split, argsOf(p, out), pools, rowsOnly);
  const double d = maxDiffRel(out, ref);
  // Default options (panel kernels where the CPU has them).
  {
    std::vector<float> refD, outD;
    MoeOptions od;
    od.pool = &pool;
    moeForward(full, argsOf(p, refD), od);
    moeForward(split, argsOf(p, outD), pools);
    const double dd = maxDiffRel(outD, refD);
    EXPECT_LE(dd, f.cfg.format == WeightFormat::INT8 ? kSplitPanelInt8Tolerance
                                                     : kSplitTolerance)
        << f.name << " (default kernels)";
  }
  if (split.slices.size() == 1)
    EXPECT_EQ(out, ref) << "one slice must be the unsplit call";
  else
    EXPECT_GT(d, 0.0) << "expected the fp32 summation order to differ";
  EXPECT_LE(d, kSplitTolerance) << f.name;
  std::printf("[ info ] %s I %d, %d nodes, %zu slices: max |split - "
              "unsplit| / max |unsplit| = %.2e\n",
              f.name, I, nodes, split.slices.size(), d);

  // Deterministic: again, and with other thread counts per node.
  std::vector<float> again;
  moeForward(split, argsOf(p, again), pools, rowsOnly);
  EXPECT_EQ(again, out);
  NumaPoolOptions po;
  po.threads = 5;
  NumaPool other(CpuTopology::host().split(nodes), po);
  moeForward(split, argsOf(p, again), other, rowsOnly);
  EXPECT_EQ(again, out);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, NumaSplit,
    testing::Combine(testing::Values(0, 1, 2, 3), testing::Values(72, 200, 328),
                     testing::Values(1, 2, 3)),
    [](const auto &info) {
      return std::string(kFormats[std::get<0>(info.param)].name) + "_I" +
             std::to_string(std::get<1>(info.param)) + "_nodes" +
             std::to_string(std::get<2>(info.param));
    });

TEST(NumaMoe, Bf16InputsAndOutputs) {
  Problem p = makeProblem(4, 200, 328, 5, 2, 9);
  std::vector<uint16_t> xb(p.x.size());
  for (size_t i = 0; i < xb.size(); ++i)
    xb[i] = f32ToBf16(p.x[i]);
  ThreadPool pool(2);
  // Row kernels (exact split; the panels' INT8 h scales per block of each
  // slice are not).
  const QuantConfig cfg{WeightFormat::INT8, 64, false, TilePacking::Never};
  MoeWeights full = packMoe(p.sources(), DType::F32, p.H, p.I, cfg, &pool);
  NumaPool pools(CpuTopology::host().split(3));
  NumaMoe split = packNumaMoe(p.sources(), DType::F32, p.H, p.I, cfg, pools);
  std::vector<uint16_t> a(size_t(p.T) * p.H), b(a.size());
  MoeArgs args{p.T,         p.K,          xb.data(), DType::BF16, p.ids.data(),
               IdType::I64, p.wts.data(), a.data(),  DType::BF16};
  MoeOptions o;
  o.pool = &pool;
  moeForward(full, args, o);
  args.out = b.data();
  moeForward(split, args, pools);
  // The fp32 results differ by ~1e-7 relative; rounding to bf16 can move
  // a value by one bf16 step (2^-8 relative) at most.
  for (size_t i = 0; i < a.size(); ++i) {
    const float x = bf16ToF32(a[i]), y = bf16ToF32(b[i]);
    EXPECT_LE(std::fabs(x - y), std::ldexp(std::fabs(x), -7) + 1e-30f) << i;
  }
}

// Tile-only weights split across nodes: no slice holds rows, the slices'
// memory adds up to the unsplit weights', the pages are bound like any
// other buffer, and the panel pipeline (emulated: it runs on every CPU) gives
// the unsplit result up to the split's own differences (INT8: h scales per
// block of each slice) and exactly the Always packing's.
TEST(NumaMoe, TileOnlySplit) {
  for (int fi : {0, 1}) {
    const Fmt &f = kFormats[fi];
    SCOPED_TRACE(f.name);
    Problem p = makeProblem(6, 200, 328, 9, 3, 31);
    QuantConfig only = f.cfg, both = f.cfg;
    only.tiles = TilePacking::Only;
    both.tiles = TilePacking::Always;
    ThreadPool pool(2);
    MoeWeights full = packMoe(p.sources(), DType::F32, p.H, p.I, only, &pool);
    NumaPool pools(CpuTopology::host().split(3));
    NumaMoe split = packNumaMoe(p.sources(), DType::F32, p.H, p.I, only, pools,
                                MemBind::Always);
    NumaMoe splitBoth =
        packNumaMoe(p.sources(), DType::F32, p.H, p.I, both, pools);
    ASSERT_EQ(split.slices.size(), 3u);
    for (const MoeWeights &s : split.slices) {
      EXPECT_FALSE(s.hasRows());
      EXPECT_TRUE(s.hasTiles());
    }
    // Each extra INT8 down slice keeps the H row scales.
    const size_t extra = f.cfg.format == WeightFormat::INT8
                             ? (split.slices.size() - 1) * p.E * p.H * 4
                             : 0;
    EXPECT_EQ(split.memoryBytes(), full.memoryBytes() + extra);
    EXPECT_EQ(split.bytes(), split.memoryBytes());
    std::printf("[ info ] tile-only split: %zu bytes bound, %d refused\n",
                split.boundBytes, split.bindFailures);
    MoeOptions o;
    o.path = KernelPath::Scalar;
    o.emulatePanels = true;
    o.amxMinTokens = 3; // both panel calls: >= 3 tokens, the rest
    std::vector<float> ref, out, outBoth;
    MoeOptions of = o;
    of.pool = &pool;
    moeForward(full, argsOf(p, ref), of);
    moeForward(split, argsOf(p, out), pools, o);
    EXPECT_LE(maxDiffRel(out, ref), f.cfg.format == WeightFormat::INT8
                                        ? kSplitPanelInt8Tolerance
                                        : kSplitTolerance);
    // Always: every expert in one call (rows exist); Only with threshold 1
    // is the same call.
    o.amxMinTokens = 1;
    moeForward(split, argsOf(p, out), pools, o);
    moeForward(splitBoth, argsOf(p, outBoth), pools, o);
    EXPECT_EQ(out, outBoth);
    // Row-kernel paths refuse the slices.
    MoeOptions rows;
    rows.path = KernelPath::Scalar;
    EXPECT_THROW(moeForward(split, argsOf(p, out), pools, rows),
                 std::invalid_argument);
  }
}

TEST(NumaMoe, EdgeCases) {
  Problem p = makeProblem(4, 200, 200, 3, 2, 10);
  NumaPool pools(CpuTopology::host().split(2));
  NumaMoe split =
      packNumaMoe(p.sources(), DType::F32, p.H, p.I, kFormats[1].cfg, pools);
  ASSERT_EQ(split.slices.size(), 2u);
  // All slots skipped: zeros.
  Problem q = p;
  std::fill(q.ids.begin(), q.ids.end(), -1);
  std::vector<float> out;
  moeForward(split, argsOf(q, out), pools);
  for (float v : out)
    EXPECT_EQ(v, 0.f);
  // No tokens: nothing to do, nothing touched.
  MoeArgs none = argsOf(p, out);
  none.tokens = 0;
  moeForward(split, none, pools);
  EXPECT_TRUE(std::isnan(out[0]));
  // Bad expert id: thrown after every slice stopped.
  q = p;
  q.ids[1] = 4;
  EXPECT_THROW(moeForward(split, argsOf(q, out), pools), std::invalid_argument);
  // Too few nodes in the pool for the slices.
  NumaPool one(CpuTopology::host().split(1));
  EXPECT_THROW(moeForward(split, argsOf(p, out), one), std::invalid_argument);
}

/// MemBind::Always asks hwloc to bind every slice buffer (to the one
/// physical node here). Whether the OS allows mbind depends on the
/// machine (containers may forbid it), so this checks that the attempt is
/// made and accounted for and that results do not change.
TEST(NumaMoe, ExplicitMemoryBinding) {
  Problem p = makeProblem(3, 200, 200, 4, 2, 12);
  NumaPool pools(CpuTopology::host().split(2));
  NumaMoe a = packNumaMoe(p.sources(), DType::F32, p.H, p.I, kFormats[1].cfg,
                          pools, MemBind::Always);
  NumaMoe b = packNumaMoe(p.sources(), DType::F32, p.H, p.I, kFormats[1].cfg,
                          pools, MemBind::Never);
  std::printf("[ info ] MemBind::Always: %zu bytes bound, %d buffers "
              "refused\n",
              a.boundBytes, a.bindFailures);
#ifdef KT_HAVE_HWLOC
  EXPECT_GT(a.boundBytes + a.bindFailures, 0u);
#else
  EXPECT_EQ(a.boundBytes, 0u);
  EXPECT_GT(a.bindFailures, 0);
#endif
  EXPECT_EQ(b.boundBytes + b.bindFailures, 0u);
  std::vector<float> x, y;
  moeForward(a, argsOf(p, x), pools);
  moeForward(b, argsOf(p, y), pools);
  EXPECT_EQ(x, y);
}

#ifdef KT_HAVE_HWLOC
/// A described machine of two physical nodes, one core each (PUs 0 and 1,
/// which every test machine has): its nodes are real, not virtual, so
/// MemBind::Auto binds each slice to its node; the host's split into
/// virtual nodes binds nothing. On a host without a node 1 the OS refuses
/// node 1's buffers, which is counted, and the results do not change.
TEST(NumaMoe, RealNodesBindTheirSlicesAndCountRefusals) {
  const CpuTopology two =
      CpuTopology::describedByHwloc("pack:2 [numa] core:1 pu:1");
  ASSERT_EQ(two.physicalNodes(), 2);
  ASSERT_FALSE(two.isVirtual);
  Problem p = makeProblem(3, 200, 200, 4, 2, 13);
  NumaPool real(two), virt(CpuTopology::host().split(2));
  NumaMoe a =
      packNumaMoe(p.sources(), DType::F32, p.H, p.I, kFormats[1].cfg, real);
  NumaMoe b =
      packNumaMoe(p.sources(), DType::F32, p.H, p.I, kFormats[1].cfg, virt);
  std::printf("[ info ] real nodes: %zu bytes bound, %d buffers refused\n",
              a.boundBytes, a.bindFailures);
  EXPECT_GT(a.boundBytes + a.bindFailures, 0u);
  if (CpuTopology::host().physicalNodes() < 2)
    EXPECT_GT(a.bindFailures, 0) << "node 1 does not exist here";
  EXPECT_EQ(b.boundBytes + b.bindFailures, 0u);
  std::vector<float> x, y;
  moeForward(a, argsOf(p, x), real);
  moeForward(b, argsOf(p, y), virt);
  EXPECT_EQ(x, y);
}
#endif

//===----------------------------------------------------------------------===//
// Async calls
//===----------------------------------------------------------------------===//

/// Holds a pool's driver thread until release().
struct Blocker {
  std::promise<void> gate;
  std::future<void> job;
  explicit Blocker(ThreadPool &pool) {
    std::shared_future<void> g = gate.get_future().share();
    job = pool.submit([g] { g.wait(); });
  }
  void release() {
    gate.set_value();
    job.get();
  }
};

/// Work for the caller while a call is pending.
double callerWork(int n) {
  double s = 0;
  for (int i = 1; i <= n; ++i)
    s += std::sqrt(double(i));
  return s;
}

TEST(MoeAsync, SubmitOverlapsTheCallerAndEqualsSync) {
  Problem p = makeProblem(6, 200, 200, 7, 3, 21);
  ThreadPool pool(2), other(2);
  MoeWeights w =
      packMoe(p.sources(), DType::F32, p.H, p.I, kFormats[1].cfg, &pool);
  MoeOptions o;
  o.pool = &pool;
  std::vector<float> async;
  MoeArgs a = argsOf(p, async);
  // The driver is held, so the call cannot have started when submitMoe
  // returns: submitting does not wait for the call.
  Blocker block(pool);
  MoeHandle h = submitMoe(w, a, o);
  EXPECT_TRUE(h.valid());
  EXPECT_FALSE(h.ready());
  // The caller computes the synchronous result meanwhile (other pool).
  std::vector<float> sync;
  MoeOptions so;
  so.pool = &other;
  moeForward(w, argsOf(p, sync), so);
  EXPECT_FALSE(h.ready());
  // Released, the call runs while the caller keeps working: the caller
  // never blocks until the handle says the call is done.
  block.release();
  long rounds = 0;
  double sink = 0;
  while (!h.ready()) {
    sink += callerWork(1000);
    ++rounds;
  }
  h.wait();
  EXPECT_FALSE(h.valid());
  std::printf("[ info ] caller did %ld work rounds while the call ran "
              "(%.0f)\n",
              rounds, sink);
  EXPECT_EQ(async, sync);
}

TEST(MoeAsync, NumaSubmitEqualsSync) {
  Problem p = makeProblem(6, 200, 328, 7, 3, 22);
  NumaPool pools(CpuTopology::host().split(3));
  NumaMoe w =
      packNumaMoe(p.sources(), DType::F32, p.H, p.I, kFormats[0].cfg, pools);
  ASSERT_EQ(w.slices.size(), 3u);
  std::vector<float> sync, async;
  moeForward(w, argsOf(p, sync), pools);
  Blocker block(pools.pool(0));
  MoeHandle h = submitMoe(w, argsOf(p, async), pools);
  EXPECT_FALSE(h.ready());
  block.release();
  while (!h.ready())
    callerWork(1000);
  h.wait();
  EXPECT_EQ(async, sync);
}

TEST(MoeAsync, ErrorsPropagateThroughWait) {
  Problem p = makeProblem(5, 200, 200, 3, 2, 23);
  ThreadPool pool(2);
  MoeWeights w =
      packMoe(p.sources(), DType::F32, p.H, p.I, kFormats[0].cfg, &pool);
  NumaPool pools(CpuTopology::host().split(2));
  NumaMoe nw =
      packNumaMoe(p.sources(), DType::F32, p.H, p.I, kFormats[0].cfg, pools);
  Problem bad = p;
  bad.ids[2] = 5; // numExperts
  MoeOptions o;
  o.pool = &pool;
  std::vector<float> out;
  MoeHandle h = submitMoe(w, argsOf(bad, out), o);
  EXPECT_THROW(h.wait(), std::invalid_argument);
  EXPECT_THROW(h.wait(), std::logic_error); // once
  MoeHandle hn = submitMoe(nw, argsOf(bad, out), pools);
  EXPECT_THROW(hn.wait(), std::invalid_argument);
  // Pools stay usable.
  std::vector<float> ok, ref;
  MoeHandle h2 = submitMoe(w, argsOf(p, ok), o);
  h2.wait();
  moeForward(w, argsOf(p, ref), o);
  EXPECT_EQ(ok, ref);
}

TEST(MoeAsync, HandleDestructorWaits) {
  Problem p = makeProblem(5, 200, 200, 3, 2, 24);
  ThreadPool pool(2);
  MoeWeights w =
      packMoe(p.sources(), DType::F32, p.H, p.I, kFormats[2].cfg, &pool);
  MoeOptions o;
  o.pool = &pool;
  std::vector<float> ref, out;
  moeForward(w, argsOf(p, ref), o);
  MoeArgs a = argsOf(p, out);
  auto block = std::make_shared<Blocker>(pool);
  {
    MoeHandle h = submitMoe(w, a, o);
    std::thread([block] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      block->release();
    }).detach();
  } // waits for the call: `out` is complete below
  EXPECT_EQ(out, ref);
}

} // namespace
