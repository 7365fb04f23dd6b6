//===- MemoryReport.cpp - weight bytes per device -------------------------===//
#include "kt/Transforms/Passes.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/ToolOutputFile.h"

#include <map>
#include <set>

namespace mlir::kt {
#define GEN_PASS_DEF_MEMORYREPORT
#include "kt/Transforms/Passes.h.inc"
} // namespace mlir::kt

using namespace mlir;
using namespace mlir::kt;

namespace {
struct Footprint {
  std::set<std::string> tensors;
  uint64_t bytes = 0;
  void add(WeightAttr w) {
    if (tensors.insert(w.getTensor().str()).second)
      bytes += w.getNumBytes();
  }
};

std::string human(uint64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return llvm::formatv("{0:F2} {1}", v, units[u]).str();
}

struct MemoryReportPass : public mlir::kt::impl::MemoryReportBase<MemoryReportPass> {
  using MemoryReportBase::MemoryReportBase;
  void runOnOperation() override {
    std::map<std::string, Footprint> generate, prefill;
    uint64_t total = 0;
    std::set<std::string> all;
    walkModules(getOperation(), [&](ModuleOpInterface m) {
      SmallVector<WeightAttr> weights;
      collectWeights(m, weights);
      auto gen = m->getAttrOfType<StringAttr>("generate_device");
      auto pre = m->getAttrOfType<StringAttr>("prefill_device");
      for (WeightAttr w : weights) {
        if (all.insert(w.getTensor().str()).second)
          total += w.getNumBytes();
        generate[gen ? gen.getValue().str() : "unplaced"].add(w);
        prefill[pre ? pre.getValue().str() : "unplaced"].add(w);
      }
    });
    std::string error;
    auto out = openOutputFile(outputFile, &error);
    if (!out) {
      emitError(getOperation().getLoc()) << error;
      return signalPassFailure();
    }
    llvm::raw_ostream &os = out->os();
    os << "weight bytes per device (from the IR, checkpoint dtypes)\n";
    os << llvm::formatv("{0,-10} {1,18} {2,12} {3,18} {4,12}\n", "device",
                        "generate bytes", "generate", "prefill bytes",
                        "prefill");
    std::set<std::string> devices;
    for (auto &[d, f] : generate)
      devices.insert(d);
    for (auto &[d, f] : prefill)
      devices.insert(d);
    for (const std::string &d : devices) {
      uint64_t g = generate.count(d) ? generate[d].bytes : 0;
      uint64_t p = prefill.count(d) ? prefill[d].bytes : 0;
      os << llvm::formatv("{0,-10} {1,18} {2,12} {3,18} {4,12}\n", d, g,
                          human(g), p, human(p));
    }
    os << llvm::formatv("{0,-10} {1,18} {2,12}\n", "total", total,
                        human(total));
    out->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
