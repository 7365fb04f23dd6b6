//===- Topology.cpp - NUMA nodes and cores: hwloc, sysfs or one node ------===//

#include "kt/Runtime/Kernels/Topology.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#ifdef KT_HAVE_HWLOC
#include <hwloc.h>
#endif

namespace kt::kernels {

int CpuTopology::cores() const {
  int n = 0;
  for (const NumaNodeInfo &node : nodes)
    n += static_cast<int>(node.cores.size());
  return n;
}

int CpuTopology::pus() const {
  int n = 0;
  for (const NumaNodeInfo &node : nodes)
    for (const CpuCore &c : node.cores)
      n += static_cast<int>(c.pus.size());
  return n;
}

int CpuTopology::physicalNodes() const {
  std::set<int> os;
  for (const NumaNodeInfo &node : nodes)
    os.insert(node.osIndex);
  return static_cast<int>(os.size());
}

CpuTopology CpuTopology::split(int k) const {
  if (k <= 0 || (!isVirtual && k == static_cast<int>(nodes.size())))
    return *this;
  std::vector<std::pair<const CpuCore *, int>> all; // core, its node's osIndex
  for (const NumaNodeInfo &node : nodes)
    for (const CpuCore &c : node.cores)
      all.push_back({&c, node.osIndex});
  CpuTopology t;
  t.source = isVirtual ? source : "virtual, " + source;
  t.isVirtual = true;
  t.nodes.resize(k);
  const int n = static_cast<int>(all.size());
  for (int j = 0; j < k; ++j) {
    NumaNodeInfo &node = t.nodes[j];
    if (n == 0)
      continue;
    if (k > n) {
      node.cores.push_back(*all[j % n].first);
      node.osIndex = all[j % n].second;
      continue;
    }
    const int b = static_cast<int>(int64_t(n) * j / k);
    const int e = static_cast<int>(int64_t(n) * (j + 1) / k);
    node.osIndex = all[b].second;
    for (int i = b; i < e; ++i)
      node.cores.push_back(*all[i].first);
  }
  return t;
}

std::string CpuTopology::describe() const {
  std::ostringstream os;
  os << nodes.size() << (nodes.size() == 1 ? " node" : " nodes") << " ("
     << source << ")";
  for (size_t i = 0; i < nodes.size(); ++i)
    os << (i ? ", " : ": ") << "node " << i << ": " << nodes[i].cores.size()
       << " cores";
  return os.str();
}

namespace {

/// "0-3,8,10-11" -> {0, 1, 2, 3, 8, 10, 11}.
std::vector<int> parseCpuList(const std::string &s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item == "\n")
      continue;
    int a = 0, b = 0;
    const auto dash = item.find('-');
    try {
      a = std::stoi(item.substr(0, dash));
      b = dash == std::string::npos ? a : std::stoi(item.substr(dash + 1));
    } catch (...) {
      continue;
    }
    for (int i = a; i <= b; ++i)
      out.push_back(i);
  }
  return out;
}

std::string readLine(const std::string &path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

/// CPUs the process may run on.
std::vector<int> allowedCpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set))
        out.push_back(i);
  }
  if (out.empty())
    for (unsigned i = 0; i < std::max(1u, std::thread::hardware_concurrency());
         ++i)
      out.push_back(static_cast<int>(i));
  return out;
}

/// Groups `cpus` into cores per node. nodeOf / coreOf give the OS node
/// index and a core key (the core's first PU) of each CPU.
template <class NodeOf, class CoreOf>
std::vector<NumaNodeInfo> group(const std::vector<int> &cpus, NodeOf nodeOf,
                                CoreOf coreOf) {
  std::map<int, std::map<int, CpuCore>> byNode; // os node -> core key -> PUs
  for (int c : cpus)
    byNode[nodeOf(c)][coreOf(c)].pus.push_back(c);
  std::vector<NumaNodeInfo> nodes;
  for (auto &[os, cores] : byNode) {
    NumaNodeInfo n;
    n.osIndex = os;
    for (auto &[key, core] : cores)
      n.cores.push_back(std::move(core));
    nodes.push_back(std::move(n));
  }
  return nodes;
}

#ifdef KT_HAVE_HWLOC
struct Hwloc {
  hwloc_topology_t topo = nullptr;
  Hwloc() {
    if (hwloc_topology_init(&topo) != 0)
      topo = nullptr;
    else if (hwloc_topology_load(topo) != 0) {
      hwloc_topology_destroy(topo);
      topo = nullptr;
    }
  }
  ~Hwloc() {
    if (topo)
      hwloc_topology_destroy(topo);
  }
};
Hwloc &hwloc() {
  static Hwloc h;
  return h;
}

bool fromHwloc(const std::vector<int> &allowed, CpuTopology &t) {
  hwloc_topology_t topo = hwloc().topo;
  if (!topo)
    return false;
  std::map<int, int> node, core; // PU -> OS node index, core key
  const int numNodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < numNodes; ++i) {
    hwloc_obj_t n = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
    if (!n || !n->cpuset)
      continue;
    int pu;
    hwloc_bitmap_foreach_begin(pu, n->cpuset) {
      if (!node.count(pu))
        node[pu] = static_cast<int>(n->os_index);
    }
    hwloc_bitmap_foreach_end();
  }
  const hwloc_obj_type_t coreType =
      hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE
                                                         : HWLOC_OBJ_PU;
  const int numCores = hwloc_get_nbobjs_by_type(topo, coreType);
  for (int i = 0; i < numCores; ++i) {
    hwloc_obj_t c = hwloc_get_obj_by_type(topo, coreType, i);
    if (!c || !c->cpuset)
      continue;
    const int first = hwloc_bitmap_first(c->cpuset);
    int pu;
    hwloc_bitmap_foreach_begin(pu, c->cpuset) { core[pu] = first; }
    hwloc_bitmap_foreach_end();
  }
  std::vector<int> cpus;
  for (int c : allowed)
    if (core.count(c))
      cpus.push_back(c);
  if (cpus.empty())
    return false;
  t.nodes = group(
      cpus, [&](int c) { return node.count(c) ? node[c] : 0; },
      [&](int c) { return core[c]; });
  t.source = "hwloc";
  return true;
}
#endif

bool fromSysfs(const std::vector<int> &allowed, CpuTopology &t) {
  std::map<int, int> node;
  DIR *d = opendir("/sys/devices/system/node");
  if (!d)
    return false;
  while (dirent *e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("node", 0) != 0 || name.size() == 4 ||
        !std::all_of(name.begin() + 4, name.end(), ::isdigit))
      continue;
    const int os = std::stoi(name.substr(4));
    for (int c : parseCpuList(
             readLine("/sys/devices/system/node/" + name + "/cpulist")))
      node[c] = os;
  }
  closedir(d);
  if (node.empty())
    return false;
  t.nodes = group(
      allowed, [&](int c) { return node.count(c) ? node[c] : 0; },
      [&](int c) {
        std::vector<int> sib = parseCpuList(
            readLine("/sys/devices/system/cpu/cpu" + std::to_string(c) +
                     "/topology/thread_siblings_list"));
        return sib.empty() ? c : *std::min_element(sib.begin(), sib.end());
      });
  t.source = "sysfs";
  return true;
}

CpuTopology detect() {
  CpuTopology t;
  const std::vector<int> allowed = allowedCpus();
#ifdef KT_HAVE_HWLOC
  if (fromHwloc(allowed, t))
    return t;
#endif
  if (fromSysfs(allowed, t))
    return t;
  t.nodes = group(
      allowed, [](int) { return 0; }, [](int c) { return c; });
  t.source = "default";
  return t;
}

} // namespace

const CpuTopology &CpuTopology::host() {
  static const CpuTopology t = detect();
  return t;
}

bool pinCurrentThread(const CpuCore &core) {
  if (core.pus.empty())
    return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int pu : core.pus)
    if (pu >= 0 && pu < CPU_SETSIZE)
      CPU_SET(pu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

bool bindMemoryToNode(const void *p, std::size_t bytes, int osIndex) {
#ifdef KT_HAVE_HWLOC
  hwloc_topology_t topo = hwloc().topo;
  if (!topo || !p || osIndex < 0)
    return false;
  // Whole pages inside the buffer only: the edge pages may hold other
  // allocations (they stay where first touch put them).
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto lo = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const auto hi = (reinterpret_cast<uintptr_t>(p) + bytes) / page * page;
  if (hi <= lo)
    return true; // nothing page-sized to bind
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  hwloc_bitmap_only(set, static_cast<unsigned>(osIndex));
  const int rc = hwloc_set_area_membind(
      topo, reinterpret_cast<const void *>(lo), hi - lo, set,
      HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_MIGRATE | HWLOC_MEMBIND_BYNODESET);
  hwloc_bitmap_free(set);
  return rc == 0;
#else
  (void)p;
  (void)bytes;
  (void)osIndex;
  return false;
#endif
}

} // namespace kt::kernels
