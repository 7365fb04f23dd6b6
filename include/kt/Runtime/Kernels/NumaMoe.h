//===- NumaMoe.h - MoE experts split across NUMA nodes ----------*- C++ -*-===//
//
// The intermediate dimension I of every expert is cut into slices, one per
// NUMA node: slice k holds rows [I_k, I_k+1) of gate and up and the same
// columns of down, packed by node k's threads (so its pages are on node k),
// and no node holds a full copy. A forward runs each slice on its node's
// pool concurrently; each writes an fp32 partial output (down over its
// columns, already weighted by the routing weights), and the partial sums
// are added in slice order (deterministic). docs/kernels.md ("NUMA split").
//
//===----------------------------------------------------------------------===//
#ifndef KT_RUNTIME_KERNELS_NUMAMOE_H
#define KT_RUNTIME_KERNELS_NUMAMOE_H

#include "kt/Runtime/Kernels/Moe.h"
#include "kt/Runtime/Kernels/Topology.h"

namespace kt::kernels {

struct NumaPoolOptions {
  /// Threads over all nodes (0: one per core). Each node gets a share
  /// proportional to its cores, at least one.
  int threads = 0;
  /// Pin thread t of node k to core t % cores(k) of node k; the driver
  /// thread (index 0) to its first core.
  bool pin = true;
  /// With `pin`: also pin the thread that calls moeForward, which is node
  /// 0's thread 0, to node 0's first core for the call (ScopedPin: it gets
  /// its own affinity back after). Off: the caller runs node 0's share
  /// wherever it is (a caller that places itself).
  bool pinCaller = true;
  Schedule schedule = Schedule::Stealing;
  /// Every node's pool: ThreadPoolOptions::spinMicros.
  int spinMicros = ThreadPoolOptions{}.spinMicros;
};

/// One ThreadPool per node of a topology. Thread 0 of node 0's pool is the
/// thread that calls moeForward (or its driver thread for submitMoe); thread
/// 0 of the other nodes' pools is their driver thread.
class NumaPool {
public:
  explicit NumaPool(const CpuTopology &topo, NumaPoolOptions opts = {});
  int nodes() const { return static_cast<int>(pools_.size()); }
  ThreadPool &pool(int node) { return *pools_[node]; }
  const CpuTopology &topology() const { return topo_; }
  /// NumaPoolOptions::pin && pinCaller: moeForward pins its caller.
  bool pinsCaller() const { return pinCaller_; }
  /// Threads over all pools.
  int threads() const;

private:
  CpuTopology topo_;
  bool pinCaller_ = true;
  std::vector<std::unique_ptr<ThreadPool>> pools_;
};

/// Whether packNumaMoe binds each slice's pages to its node explicitly
/// (hwloc_set_area_membind with MIGRATE) after first touch placed them.
enum class MemBind {
  Auto,   ///< when the pool's nodes span more than one physical node
  Always, ///< also on one physical node (tests)
  Never
};

struct NumaMoe {
  int numExperts = 0, hidden = 0, intermediate = 0;
  QuantConfig config;
  /// Slice k owns intermediate rows [bounds[k], bounds[k + 1]).
  std::vector<int> bounds;
  /// slices[k]: a MoeWeights with intermediate = bounds[k+1] - bounds[k],
  /// packed by (and placed on) node k of the NumaPool.
  std::vector<MoeWeights> slices;
  /// Bytes bound explicitly with hwloc, and buffers whose binding the OS
  /// refused (0 when MemBind::Never or not needed).
  std::size_t boundBytes = 0;
  int bindFailures = 0;

  std::size_t bytes() const;
  std::size_t memoryBytes() const;
};

/// The slice bounds for `nodes` nodes: multiples of 128 (so INT8
/// activation blocks and INT4 groups of down's columns stay aligned), as
/// even as that allows; min(nodes, ceil(I / 128)) slices.
std::vector<int> numaSliceBounds(int intermediate, int nodes);

/// Packs each slice on its node of `pools` (all nodes concurrently, each
/// with its own pool). The packed values are exactly those of packMoe:
/// packMatrixColumns keeps INT8 down's per-row scales of the whole row.
NumaMoe packNumaMoe(const std::vector<ExpertSource> &experts, DType srcType,
                    int hidden, int intermediate, const QuantConfig &cfg,
                    NumaPool &pools, MemBind bind = MemBind::Auto);

/// The MoE operator over the slices. opts.path and opts.amxMinTokens apply;
/// opts.pool / opts.threads are ignored (node k's pool runs slice k).
/// Equals moeForward on the unsplit weights up to the fp32 summation order
/// of down and of the per-token combine (one slice: bit-identical).
/// `pools` must have at least slices.size() nodes. Errors (bad expert id,
/// unavailable path) are thrown after every slice has stopped.
void moeForward(const NumaMoe &w, const MoeArgs &args, NumaPool &pools,
                const MoeOptions &opts = {});

/// moeForward(w, args, pools, opts) on node 0's driver thread; see
/// submitMoe(const MoeWeights &, ...) for the lifetime rules.
MoeHandle submitMoe(const NumaMoe &w, const MoeArgs &args, NumaPool &pools,
                    const MoeOptions &opts = {});

double moeFlops(const NumaMoe &w, const MoeArgs &args);
double moeBytesRead(const NumaMoe &w, const MoeArgs &args);

} // namespace kt::kernels

#endif // KT_RUNTIME_KERNELS_NUMAMOE_H
