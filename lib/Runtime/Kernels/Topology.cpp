//===- Topology.cpp - NUMA nodes and cores: hwloc, sysfs or one node ------===//

#include "kt/Runtime/Kernels/Topology.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

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
/// An hwloc topology, loaded from this machine or from a description.
struct Hwloc {
  hwloc_topology_t topo = nullptr;
  /// setup(topo) points hwloc at a description before the load (returns
  /// 0, or non-zero when hwloc refused the description).
  template <class Setup> explicit Hwloc(Setup setup) {
    if (hwloc_topology_init(&topo) != 0) {
      topo = nullptr;
      return;
    }
    if (setup(topo) != 0 || hwloc_topology_load(topo) != 0) {
      hwloc_topology_destroy(topo);
      topo = nullptr;
    }
  }
  Hwloc(const Hwloc &) = delete;
  Hwloc &operator=(const Hwloc &) = delete;
  ~Hwloc() {
    if (topo)
      hwloc_topology_destroy(topo);
  }
};
Hwloc &hwloc() {
  static Hwloc h([](hwloc_topology_t) { return 0; });
  return h;
}

/// Memory an operating system exposes as a NUMA node of its own besides the
/// DRAM next to the cores (hwloc's subtypes: "HBM", "MCDRAM", "NVM",
/// "GPUMemory", "CXL-DRAM", ...). A PU's node is its DRAM node.
bool specialMemory(hwloc_obj_t node) {
  return node->subtype && std::string(node->subtype) != "DRAM";
}

bool fromHwloc(hwloc_topology_t topo, const std::vector<int> &allowed,
               CpuTopology &t) {
  if (!topo)
    return false;
  // PU -> the node whose memory it uses. A PU may lie in the cpuset of
  // several nodes (HBM or CXL memory attached to its package, a memory-only
  // node attached to the whole machine): DRAM before special memory, then
  // the most local node (fewest PUs), then the lowest OS index.
  std::map<int, std::tuple<bool, int, unsigned>> rank;
  std::map<int, int> node, core; // PU -> OS node index, core key
  const int numNodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < numNodes; ++i) {
    hwloc_obj_t n = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
    if (!n || !n->cpuset)
      continue;
    const std::tuple<bool, int, unsigned> r{
        specialMemory(n), hwloc_bitmap_weight(n->cpuset), n->os_index};
    int pu;
    hwloc_bitmap_foreach_begin(pu, n->cpuset) {
      auto it = rank.find(pu);
      if (it == rank.end() || r < it->second) {
        rank[pu] = r;
        node[pu] = static_cast<int>(n->os_index);
      }
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
  if (allowed.empty())
    for (const auto &[pu, key] : core)
      cpus.push_back(pu);
  for (int c : allowed)
    if (core.count(c))
      cpus.push_back(c);
  if (cpus.empty())
    return false;
  t.nodes = group(
      cpus, [&](int c) { return node.count(c) ? node[c] : 0; },
      [&](int c) { return core[c]; });
  t.source = hwloc_topology_is_thissystem(topo)
                 ? "hwloc"
                 : "hwloc, described: not this machine";
  return true;
}
#endif

/// Nodes and cores from the sysfs tree under root ("" = the host's).
bool fromSysfsTree(const std::string &root, const std::vector<int> &allowed,
                   CpuTopology &t) {
  const std::string nodeDir = root + "/sys/devices/system/node";
  std::map<int, int> node;
  DIR *d = opendir(nodeDir.c_str());
  if (!d)
    return false;
  while (dirent *e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("node", 0) != 0 || name.size() == 4 ||
        !std::all_of(name.begin() + 4, name.end(), ::isdigit))
      continue;
    // Memory-only nodes (HBM in flat mode, CXL) list no CPUs.
    const int os = std::stoi(name.substr(4));
    for (int c : parseCpuList(readLine(nodeDir + "/" + name + "/cpulist")))
      if (!node.count(c) || os < node[c])
        node[c] = os;
  }
  closedir(d);
  if (node.empty())
    return false;
  std::vector<int> cpus = allowed;
  if (cpus.empty())
    for (const auto &[c, os] : node)
      cpus.push_back(c);
  t.nodes = group(
      cpus, [&](int c) { return node.count(c) ? node[c] : 0; },
      [&](int c) {
        std::vector<int> sib = parseCpuList(
            readLine(root + "/sys/devices/system/cpu/cpu" + std::to_string(c) +
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
  if (fromHwloc(hwloc().topo, allowed, t))
    return t;
#endif
  if (fromSysfsTree("", allowed, t))
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

CpuTopology CpuTopology::describedByHwloc(const std::string &description,
                                          const std::vector<int> &allowed) {
  const std::string what =
      description.size() > 60 ? description.substr(0, 57) + "..." : description;
#ifdef KT_HAVE_HWLOC
  const bool xmlText = description.find('<') != std::string::npos;
  const bool xmlFile =
      !xmlText && description.size() > 4 &&
      description.compare(description.size() - 4, 4, ".xml") == 0;
  if (xmlFile && access(description.c_str(), R_OK) != 0)
    throw std::runtime_error(description + ": cannot read the hwloc XML file");
  Hwloc h([&](hwloc_topology_t topo) {
    if (xmlText)
      return hwloc_topology_set_xmlbuffer( // the size counts the final '\0'
          topo, description.c_str(), static_cast<int>(description.size()) + 1);
    if (xmlFile)
      return hwloc_topology_set_xml(topo, description.c_str());
    return hwloc_topology_set_synthetic(topo, description.c_str());
  });
  if (!h.topo)
    throw std::runtime_error(
        "hwloc could not read the topology " +
        std::string(xmlText   ? "XML"
                    : xmlFile ? "file " + description
                              : "description '" + what + "'") +
        (xmlFile ? "" : " (an hwloc XML document or synthetic description)"));
  CpuTopology t;
  if (!fromHwloc(h.topo, allowed, t))
    throw std::runtime_error("the topology '" + what +
                             "' has none of the allowed PUs");
  t.source = "hwloc, described";
  return t;
#else
  (void)allowed;
  throw std::runtime_error("cannot read the topology '" + what +
                           "': kt was built without hwloc");
#endif
}

CpuTopology CpuTopology::fromSysfs(const std::string &root,
                                   const std::vector<int> &allowed) {
  CpuTopology t;
  if (!fromSysfsTree(root == "/" ? "" : root, allowed, t))
    throw std::runtime_error(root + "/sys/devices/system/node: no NUMA node "
                                    "with CPUs listed");
  return t;
}

static cpu_set_t cpuSetOf(const CpuCore &core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int pu : core.pus)
    if (pu >= 0 && pu < CPU_SETSIZE)
      CPU_SET(pu, &set);
  return set;
}

bool pinCurrentThread(const CpuCore &core) {
  if (core.pus.empty())
    return false;
  const cpu_set_t set = cpuSetOf(core);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

ScopedPin::ScopedPin(const CpuCore &core) : saved_(sizeof(cpu_set_t)) {
  auto *old = reinterpret_cast<cpu_set_t *>(saved_.data());
  if (pthread_getaffinity_np(pthread_self(), sizeof(cpu_set_t), old) != 0)
    return;
  cpu_set_t want = cpuSetOf(core);
  if (!core.pus.empty() && CPU_EQUAL(&want, old)) {
    pinned_ = true; // already there: nothing to change or give back
    return;
  }
  pinned_ = restore_ = pinCurrentThread(core);
}

ScopedPin::~ScopedPin() {
  if (restore_)
    pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t),
                           reinterpret_cast<cpu_set_t *>(saved_.data()));
}

bool bindMemoryToNode(const void *p, std::size_t bytes, int osIndex) {
#ifdef KT_HAVE_HWLOC
  hwloc_topology_t topo = hwloc().topo;
  // A described topology (HWLOC_XMLFILE, HWLOC_SYNTHETIC) binds nothing:
  // hwloc reports success without calling the OS.
  if (!topo || !p || osIndex < 0 || !hwloc_topology_is_thissystem(topo))
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
