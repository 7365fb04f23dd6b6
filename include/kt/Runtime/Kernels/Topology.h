//===- Topology.h - NUMA nodes and cores for the CPU kernels ----*- C++ -*-===//
//
// Which cores belong to which NUMA node, from hwloc when kt was built with it
// (KT_HAVE_HWLOC), else from /sys/devices/system/{node,cpu}, else one node
// holding every CPU the process may run on. Only CPUs in the process's
// affinity mask are listed. A core's node is its DRAM node: memory-only
// nodes (HBM in flat mode, CXL memory, GPU memory) hold no cores. split()
// makes *virtual* nodes (groups of cores) so that the NUMA code paths can be
// exercised on a single-node machine; describedByHwloc() and fromSysfs()
// read other machines' topologies (tests, planning).
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
  /// "hwloc", "sysfs" or "default" ("hwloc, described" from
  /// describedByHwloc; "hwloc, described: not this machine" when hwloc was
  /// pointed at a description by HWLOC_XMLFILE / HWLOC_SYNTHETIC); split()
  /// prepends "virtual, ".
  std::string source;
  bool isVirtual = false;

  int cores() const;
  int pus() const;
  /// Distinct osIndex values (physical nodes spanned).
  int physicalNodes() const;
  /// The machine's topology (detected once).
  static const CpuTopology &host();
  /// The topology of a machine described to hwloc rather than detected:
  /// an hwloc XML document (text holding '<'), the path of an hwloc XML file
  /// ending in ".xml" (`lstopo machine.xml` writes one), or an hwloc
  /// synthetic description such as "pack:2 [numa] core:8 pu:2". Lists the
  /// PUs in `allowed` (empty: all). Throws std::runtime_error naming the
  /// description when hwloc cannot read it, when it has none of the allowed
  /// PUs, or when kt was built without hwloc.
  static CpuTopology describedByHwloc(const std::string &description,
                                      const std::vector<int> &allowed = {});
  /// The topology a Linux sysfs tree under `root` describes
  /// (root/sys/devices/system/node/node<N>/cpulist and
  /// root/sys/devices/system/cpu/cpu<N>/topology/thread_siblings_list; the
  /// host's: "/"). Lists the CPUs in `allowed` (empty: every CPU a node
  /// lists). Throws std::runtime_error naming the directory when no node
  /// lists a CPU.
  static CpuTopology fromSysfs(const std::string &root,
                               const std::vector<int> &allowed = {});
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

/// Pins the calling thread to the PUs of `core` for its lifetime, then
/// gives the thread back the affinity it had. For a caller that works as
/// one node's thread for one call (moeForward on a NumaPool) without
/// keeping that pin. A thread already pinned to exactly that core is left
/// alone (one system call, not three). pinned() is false when the OS
/// refused (the thread then keeps its affinity).
class ScopedPin {
public:
  explicit ScopedPin(const CpuCore &core);
  ~ScopedPin();
  ScopedPin(const ScopedPin &) = delete;
  ScopedPin &operator=(const ScopedPin &) = delete;
  bool pinned() const { return pinned_; }

private:
  bool pinned_ = false;
  /// The affinity was changed and is given back.
  bool restore_ = false;
  std::vector<unsigned char> saved_; ///< the previous cpu_set_t
};

/// Binds the pages of [p, p + bytes) to physical NUMA node `osIndex` and
/// migrates those already placed elsewhere (hwloc_set_area_membind, BIND |
/// MIGRATE). False without hwloc, when the OS refuses (e.g. a container
/// that forbids mbind, or a node it does not have), or when hwloc was
/// pointed at a described machine (HWLOC_XMLFILE / HWLOC_SYNTHETIC without
/// HWLOC_THISSYSTEM=1), where hwloc would bind nothing.
bool bindMemoryToNode(const void *p, std::size_t bytes, int osIndex);

} // namespace kt::kernels

#endif // KT_RUNTIME_KERNELS_TOPOLOGY_H
