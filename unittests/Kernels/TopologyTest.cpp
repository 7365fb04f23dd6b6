//===- TopologyTest.cpp - NUMA nodes and cores, virtual and described ----===//
//
// The development machines have one NUMA node and no SMT siblings visible,
// so multi-node machines are *described*: to hwloc (synthetic descriptions
// and XML, CpuTopology::describedByHwloc) and as sysfs trees written into a
// temporary directory (CpuTopology::fromSysfs). The described machines
// below are two-socket servers with SMT, HBM nodes in flat mode and CXL
// memory, the layouts that a "first node that lists the CPU" rule gets
// wrong.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Kernels/Topology.h"
#include "kt/Runtime/Kernels/NumaMoe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

#include <sched.h>

using namespace kt::kernels;
namespace fs = std::filesystem;

namespace {

TEST(Topology, HostIsConsistentWithTheOs) {
  const CpuTopology &t = CpuTopology::host();
  std::printf("[ info ] %s, %d cores, %d PUs\n", t.describe().c_str(),
              t.cores(), t.pus());
  ASSERT_GE(t.nodes.size(), 1u);
  EXPECT_FALSE(t.isVirtual);
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  std::set<int> seen;
  for (const NumaNodeInfo &n : t.nodes) {
    EXPECT_FALSE(n.cores.empty());
    for (const CpuCore &c : n.cores) {
      EXPECT_FALSE(c.pus.empty());
      for (int pu : c.pus) {
        EXPECT_TRUE(seen.insert(pu).second) << "PU " << pu << " twice";
        EXPECT_TRUE(CPU_ISSET(pu, &allowed)) << "PU " << pu;
      }
    }
  }
  EXPECT_EQ(t.pus(), CPU_COUNT(&allowed));
  EXPECT_LE(t.cores(), t.pus());
  // Every CPU the process may use is listed; when it may use every online
  // CPU that is what hardware_concurrency reports.
  if (CPU_COUNT(&allowed) ==
      static_cast<int>(std::thread::hardware_concurrency()))
    EXPECT_EQ(t.pus(), static_cast<int>(std::thread::hardware_concurrency()));
  else
    EXPECT_LT(t.pus(), static_cast<int>(std::thread::hardware_concurrency()));
}

CpuTopology synthetic(int cores) {
  CpuTopology t;
  t.source = "test";
  t.nodes.resize(1);
  for (int c = 0; c < cores; ++c)
    t.nodes[0].cores.push_back({{c}});
  return t;
}

TEST(Topology, VirtualSplit) {
  CpuTopology t = synthetic(7);
  CpuTopology s = t.split(3);
  ASSERT_EQ(s.nodes.size(), 3u);
  EXPECT_TRUE(s.isVirtual);
  EXPECT_EQ(s.physicalNodes(), 1);
  // Contiguous groups of 2, 2, 3 cores in order.
  std::vector<std::vector<int>> want = {{0, 1}, {2, 3}, {4, 5, 6}};
  for (int k = 0; k < 3; ++k) {
    std::vector<int> got;
    for (const CpuCore &c : s.nodes[k].cores)
      got.push_back(c.pus[0]);
    EXPECT_EQ(got, want[k]) << "node " << k;
  }
  EXPECT_EQ(t.split(1).nodes.size(), 1u);
  EXPECT_FALSE(t.split(1).isVirtual); // as many nodes as the machine
  // More nodes than cores: nodes share cores, each has one.
  CpuTopology many = synthetic(2).split(3);
  ASSERT_EQ(many.nodes.size(), 3u);
  for (const NumaNodeInfo &n : many.nodes)
    EXPECT_EQ(n.cores.size(), 1u);
  EXPECT_EQ(many.nodes[2].cores[0].pus[0], 0);
  // The host split into 2 keeps every core once.
  const CpuTopology &h = CpuTopology::host();
  CpuTopology h2 = h.split(2);
  EXPECT_EQ(h2.nodes.size(), 2u);
  if (h.cores() >= 2)
    EXPECT_EQ(h2.cores(), h.cores());
}

TEST(Topology, PinCurrentThread) {
  const CpuTopology &t = CpuTopology::host();
  const CpuCore &last = t.nodes.back().cores.back();
  bool pinned = false;
  int cpu = -1;
  std::thread([&] {
    pinned = pinCurrentThread(last);
    cpu = sched_getcpu();
  }).join();
  ASSERT_TRUE(pinned);
  EXPECT_NE(std::find(last.pus.begin(), last.pus.end(), cpu), last.pus.end())
      << "ran on CPU " << cpu;
}

/// ScopedPin pins for its scope, then gives the thread its own affinity
/// back; moeForward on a NumaPool pins its caller to node 0 this way.
TEST(Topology, ScopedPinGivesTheAffinityBack) {
  const CpuTopology &t = CpuTopology::host();
  const CpuCore &last = t.nodes.back().cores.back();
  std::thread([&] {
    cpu_set_t before, during, after;
    ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
    {
      ScopedPin pin(last);
      ASSERT_TRUE(pin.pinned());
      ASSERT_EQ(sched_getaffinity(0, sizeof during, &during), 0);
      EXPECT_EQ(CPU_COUNT(&during), static_cast<int>(last.pus.size()));
      for (int pu : last.pus)
        EXPECT_TRUE(CPU_ISSET(pu, &during));
      {
        ScopedPin again(last); // already there: left alone
        EXPECT_TRUE(again.pinned());
      }
      cpu_set_t still;
      ASSERT_EQ(sched_getaffinity(0, sizeof still, &still), 0);
      EXPECT_TRUE(CPU_EQUAL(&still, &during));
    }
    ASSERT_EQ(sched_getaffinity(0, sizeof after, &after), 0);
    EXPECT_TRUE(CPU_EQUAL(&before, &after));
  }).join();
}

TEST(Topology, NumaPoolThreadsPerNode) {
  CpuTopology t = synthetic(6).split(3);
  NumaPoolOptions o;
  o.pin = false; // synthetic cores
  o.threads = 7;
  NumaPool p(t, o);
  ASSERT_EQ(p.nodes(), 3);
  EXPECT_EQ(p.threads(), 7);
  EXPECT_EQ(p.pool(0).size() + p.pool(1).size() + p.pool(2).size(), 7);
  for (int n = 0; n < p.nodes(); ++n) // the default spin budget
    EXPECT_EQ(p.pool(n).spinMicros(), ThreadPoolOptions{}.spinMicros);
  o.threads = 2; // fewer threads than nodes: one each
  o.spinMicros = 0;
  NumaPool q(t, o);
  EXPECT_EQ(q.threads(), 3);
  for (int n = 0; n < q.nodes(); ++n) // the given one
    EXPECT_EQ(q.pool(n).spinMicros(), 0);
}

/// Each node's cores as lists of PUs, with the node's OS index first.
std::vector<std::vector<std::vector<int>>> layout(const CpuTopology &t,
                                                  std::vector<int> &os) {
  std::vector<std::vector<std::vector<int>>> out;
  os.clear();
  for (const NumaNodeInfo &n : t.nodes) {
    os.push_back(n.osIndex);
    out.emplace_back();
    for (const CpuCore &c : n.cores)
      out.back().push_back(c.pus);
  }
  return out;
}

using Layout = std::vector<std::vector<std::vector<int>>>;

#ifdef KT_HAVE_HWLOC

/// Two sockets, each its own NUMA node, 4 cores of 2 hardware threads
/// (hwloc numbers a synthetic machine's PUs in order: core c holds PUs 2c
/// and 2c + 1).
constexpr const char *kTwoSocketsSmt = "pack:2 [numa] l3:1 core:4 pu:2";

TEST(Topology, DescribedTwoSocketsWithSmt) {
  const CpuTopology t = CpuTopology::describedByHwloc(kTwoSocketsSmt);
  std::vector<int> os;
  const Layout want = {{{0, 1}, {2, 3}, {4, 5}, {6, 7}},
                       {{8, 9}, {10, 11}, {12, 13}, {14, 15}}};
  EXPECT_EQ(layout(t, os), want);
  EXPECT_EQ(os, (std::vector<int>{0, 1}));
  EXPECT_EQ(t.cores(), 8);
  EXPECT_EQ(t.pus(), 16);
  EXPECT_EQ(t.physicalNodes(), 2);
  EXPECT_FALSE(t.isVirtual);
  EXPECT_EQ(t.describe(),
            "2 nodes (hwloc, described): node 0: 4 cores, node 1: 4 cores");
  // As many nodes as the machine: the real ones. Four: each socket's cores
  // cut in two, each half on its socket's memory.
  EXPECT_FALSE(t.split(2).isVirtual);
  const CpuTopology four = t.split(4);
  EXPECT_TRUE(four.isVirtual);
  EXPECT_EQ(layout(four, os), (Layout{{{0, 1}, {2, 3}},
                                      {{4, 5}, {6, 7}},
                                      {{8, 9}, {10, 11}},
                                      {{12, 13}, {14, 15}}}));
  EXPECT_EQ(os, (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(four.physicalNodes(), 2);
  // One virtual node over both sockets keeps its first core's memory.
  const CpuTopology one = t.split(1);
  ASSERT_EQ(one.nodes.size(), 1u);
  EXPECT_EQ(one.nodes[0].cores.size(), 8u);
  EXPECT_EQ(one.nodes[0].osIndex, 0);
}

/// A process confined to some CPUs (taskset, cgroups) sees only those: a
/// core with one allowed hardware thread lists that one, a node with none
/// is left out.
TEST(Topology, DescribedAllowedSubset) {
  const CpuTopology t =
      CpuTopology::describedByHwloc(kTwoSocketsSmt, {9, 10, 11, 15});
  std::vector<int> os;
  EXPECT_EQ(layout(t, os), (Layout{{{9}, {10, 11}, {15}}}));
  EXPECT_EQ(os, (std::vector<int>{1}));
  EXPECT_EQ(t.physicalNodes(), 1);
  EXPECT_THROW(CpuTopology::describedByHwloc(kTwoSocketsSmt, {16, 17}),
               std::runtime_error);
}

/// hwloc XML of a two-socket machine with HBM in flat mode and CXL memory:
/// each socket lists its HBM node (subtype "HBM") before its DRAM node, and
/// the CXL node has no subtype (as hwloc 2.9 reports such memory) and spans
/// every CPU. The OS indices are chosen so that each rule of the choice
/// decides something: the first node listed, or the lowest index, is the
/// CXL node (0); by locality alone socket 0 would take its HBM node (1);
/// by subtype alone both would take the CXL node. Written by hand in
/// lstopo's format: hwloc 2.9 needs the complete_* sets, and its own parser
/// (a static libhwloc has no libxml2) one element per line.
std::string hbmCxlXml() {
  auto obj = [](const char *type, int os, const char *cpus,
                const std::string &nodes, const std::string &end) {
    std::string s = std::string("<object type=\"") + type + "\" os_index=\"" +
                    std::to_string(os) + "\" cpuset=\"" + cpus +
                    "\" complete_cpuset=\"" + cpus + "\"";
    if (!nodes.empty())
      s += " nodeset=\"" + nodes + "\" complete_nodeset=\"" + nodes + "\"";
    return s + end;
  };
  auto numa = [&](int os, const char *cpus, const char *nodes,
                  const std::string &subtype) {
    return obj("NUMANode", os, cpus, nodes,
               (subtype.empty() ? "" : " subtype=\"" + subtype + "\"") +
                   " local_memory=\"17179869184\"/>");
  };
  auto core = [&](int os, const char *cpus, int pu0, const char *b0,
                  const char *b1) {
    return obj("Core", os, cpus, "", ">") + obj("PU", pu0, b0, "", "/>") +
           obj("PU", pu0 + 1, b1, "", "/>") + "</object>";
  };
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\"><topology version=\"2.0\">" +
      obj("Machine", 0, "0xff", "0x1f", ">") + numa(0, "0xff", "0x01", "") +
      obj("Package", 0, "0x0f", "0x0a", ">") + numa(1, "0x0f", "0x02", "HBM") +
      numa(3, "0x0f", "0x08", "") + core(0, "0x03", 0, "0x01", "0x02") +
      core(1, "0x0c", 2, "0x04", "0x08") + "</object>" +
      obj("Package", 1, "0xf0", "0x14", ">") + numa(2, "0xf0", "0x04", "HBM") +
      numa(4, "0xf0", "0x10", "DRAM") + core(0, "0x30", 4, "0x10", "0x20") +
      core(1, "0xc0", 6, "0x40", "0x80") + "</object></object></topology>";
  for (std::size_t i = 0; (i = xml.find("><", i)) != std::string::npos; i += 2)
    xml.insert(i + 1, "\n");
  return xml;
}

TEST(Topology, MemoryOnlyNodesHoldNoCores) {
  const std::string xml = hbmCxlXml();
  std::vector<int> os;
  const Layout want = {{{0, 1}, {2, 3}}, {{4, 5}, {6, 7}}};
  const CpuTopology t = CpuTopology::describedByHwloc(xml);
  EXPECT_EQ(layout(t, os), want);
  EXPECT_EQ(os, (std::vector<int>{3, 4})) << "cores on their DRAM nodes";
  // The same machine from an XML file.
  const fs::path file = fs::temp_directory_path() /
                        ("kt-topo-" + std::to_string(getpid()) + ".xml");
  std::ofstream(file) << xml;
  const CpuTopology f = CpuTopology::describedByHwloc(file.string());
  fs::remove(file);
  EXPECT_EQ(layout(f, os), want);
  EXPECT_EQ(os, (std::vector<int>{3, 4}));
  // Nodes of equal standing (no subtype, same CPUs): the lowest OS index.
  const CpuTopology two =
      CpuTopology::describedByHwloc("pack:2 [numa] [numa] core:2 pu:1");
  EXPECT_EQ(layout(two, os), (Layout{{{0}, {1}}, {{2}, {3}}}));
  EXPECT_EQ(os, (std::vector<int>{0, 2}));
}

TEST(Topology, UnreadableDescriptionsAreNamed) {
  auto message = [](const std::string &d) -> std::string {
    try {
      CpuTopology::describedByHwloc(d);
    } catch (const std::runtime_error &e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message("pack:2 [numa] core:x").find("'pack:2 [numa] core:x'"),
            std::string::npos)
      << message("pack:2 [numa] core:x");
  EXPECT_NE(message("/nonexistent/machine.xml")
                .find("/nonexistent/machine.xml: cannot read"),
            std::string::npos);
  EXPECT_NE(message("<topology version=\"2.0\">").find("XML"),
            std::string::npos);
}

#else

TEST(Topology, DescriptionsNeedHwloc) {
  EXPECT_THROW(CpuTopology::describedByHwloc("pack:2 [numa] core:2 pu:1"),
               std::runtime_error);
}

#endif // KT_HAVE_HWLOC

/// A sysfs tree under a temporary root: nodes with their CPU lists (""
/// for a memory-only node) and each CPU's hardware-thread siblings.
struct SysfsTree {
  fs::path root;
  SysfsTree() {
    root = fs::temp_directory_path() /
           ("kt-sysfs-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
  }
  ~SysfsTree() { fs::remove_all(root); }
  void write(const fs::path &rel, const std::string &text) {
    const fs::path p = root / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
  }
  void node(int os, const std::string &cpus) {
    write("sys/devices/system/node/node" + std::to_string(os) + "/cpulist",
          cpus);
  }
  void siblings(int cpu, const std::string &list) {
    write("sys/devices/system/cpu/cpu" + std::to_string(cpu) +
              "/topology/thread_siblings_list",
          list);
  }
};

/// Linux numbers a two-socket SMT machine's CPUs socket by socket, the
/// second hardware threads after all the first ones: core c of 8 holds
/// CPUs c and c + 8. Node 2 is memory only (HBM in flat mode).
TEST(Topology, SysfsTwoSocketsWithSmtAndMemoryOnlyNode) {
  SysfsTree s;
  s.node(0, "0-3,8-11");
  s.node(1, "4-7,12-15");
  s.node(2, "");
  s.write("sys/devices/system/node/possible", "0-2"); // not a node
  for (int c = 0; c < 8; ++c) {
    const std::string pair = std::to_string(c) + "," + std::to_string(c + 8);
    s.siblings(c, pair);
    s.siblings(c + 8, pair);
  }
  const CpuTopology t = CpuTopology::fromSysfs(s.root.string());
  std::vector<int> os;
  EXPECT_EQ(layout(t, os), (Layout{{{0, 8}, {1, 9}, {2, 10}, {3, 11}},
                                   {{4, 12}, {5, 13}, {6, 14}, {7, 15}}}));
  EXPECT_EQ(os, (std::vector<int>{0, 1}));
  EXPECT_EQ(t.source, "sysfs");
  EXPECT_EQ(t.physicalNodes(), 2);
  // Confined to some CPUs; a CPU without a siblings file is its own core.
  const CpuTopology sub = CpuTopology::fromSysfs(s.root.string(), {5, 13, 3});
  EXPECT_EQ(layout(sub, os), (Layout{{{3}}, {{5, 13}}}));
  EXPECT_EQ(os, (std::vector<int>{0, 1}));
  for (const char *cpu : {"cpu3", "cpu11"})
    fs::remove(s.root / "sys/devices/system/cpu" / cpu /
               "topology/thread_siblings_list");
  EXPECT_EQ(layout(CpuTopology::fromSysfs(s.root.string(), {3, 11}), os),
            (Layout{{{3}, {11}}}));
}

TEST(Topology, SysfsWithoutNodesIsNamed) {
  SysfsTree s;
  s.node(0, ""); // memory only: no CPU anywhere
  try {
    CpuTopology::fromSysfs(s.root.string());
    FAIL() << "no error";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find(s.root.string() +
                                         "/sys/devices/system/node"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(CpuTopology::fromSysfs((s.root / "missing").string()),
               std::runtime_error);
}

/// The host read through sysfs agrees with the host's topology on which
/// CPUs exist (hwloc, when kt has it, may group them differently only if
/// the machine has SMT or several nodes, which sysfs reports too).
TEST(Topology, SysfsOfTheHostMatchesTheHost) {
  const CpuTopology &h = CpuTopology::host();
  std::vector<int> allowed;
  for (const NumaNodeInfo &n : h.nodes)
    for (const CpuCore &c : n.cores)
      allowed.insert(allowed.end(), c.pus.begin(), c.pus.end());
  std::sort(allowed.begin(), allowed.end());
  if (!fs::exists("/sys/devices/system/node/node0")) {
    EXPECT_THROW(CpuTopology::fromSysfs("/", allowed), std::runtime_error);
    return;
  }
  const CpuTopology s = CpuTopology::fromSysfs("/", allowed);
  std::vector<int> os, hos;
  EXPECT_EQ(layout(s, os), layout(h, hos));
  EXPECT_EQ(os, hos);
}

} // namespace
