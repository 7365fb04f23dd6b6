//===- Topology.h - NUMA nodes and cores for the CPU kernels ----*- C++ -*-===//
//
// Which cores belong to which NUMA node, from hwloc when kt was built with it
// (KT_HAVE_HWLOC), else from /sys/devices/system/{node,cpu}, else one node
// holding every CPU the process may run on. Only CPUs in the process's
// affinity mask are listed. split() makes *virtual* nodes (groups of cores)
// so that the NUMA code paths can be exercised on a single-node machine.
//
//===----------------------------------------------------------------------===//
#ifndef KT_RUNTIME_KERNELS_TOPOLOGY_H
#define KT_RUNTIME_KERNELS_TOPOLOGY_H

#include <cstddef>
#include <string>
#include <vector>

namespace kt::kernels {

/// One physical core: the OS indices of its hardware threads (PUs).
struct CpuCore {
  std::vector<int> pus;
};

struct NumaNodeInfo {
  /// The OS index of the physical node whose memory this node uses (for a
  /// virtual node: the node of its first core).
  int osIndex = 0;
  std::vector<CpuCore> cores;
};

struct CpuTopology {
  std::vector<NumaNodeInfo> nodes;
  /// "hwloc", "sysfs" or "default"; split() prepends "virtual, ".
  std::string source;
  bool isVirtual = false;

  int cores() const;
  int pus() const;
  /// Distinct osIndex values (physical nodes spanned).
  int physicalNodes() const;
  /// The machine's topology (detected once).
  static const CpuTopology &host();
  /// `k` virtual nodes: the cores, in order, cut into k contiguous groups
  /// whose sizes differ by at most one. When k exceeds the number of cores,
  /// node j gets core j % cores (nodes share cores). k <= 0 or k equal to
  /// the number of real nodes returns *this.
  CpuTopology split(int k) const;
  /// "2 nodes (hwloc): node 0: 8 cores, node 1: 8 cores".
  std::string describe() const;
};

/// Binds the calling thread to the PUs of `core` (sched affinity). False
/// when the OS refuses.
bool pinCurrentThread(const CpuCore &core);

/// Binds the pages of [p, p + bytes) to physical NUMA node `osIndex` and
/// migrates those already placed elsewhere (hwloc_set_area_membind, BIND |
/// MIGRATE). False without hwloc, or when the OS refuses (e.g. a container
/// that forbids mbind).
bool bindMemoryToNode(const void *p, std::size_t bytes, int osIndex);

} // namespace kt::kernels

#endif // KT_RUNTIME_KERNELS_TOPOLOGY_H
