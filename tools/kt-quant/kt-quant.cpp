//===- kt-quant.cpp - pack a model's routed experts offline --------------===//
//
// kt-quant --model DIR --format int8|int4|bf16 --out DIR: finds the routed
// experts through the same plan kt-run compiles, packs them one MoE layer at
// a time (map the layer's tensors, pack on a thread pool, write, free), and
// writes manifest.json last. docs/kt-quant.md.
//
//===----------------------------------------------------------------------===//

#include "Options.h"
#include "OutputDir.h"
#include "ToolCommon.h"

#include "kt/Runtime/PackedExperts.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <malloc.h>
#include <set>
#include <thread>

using namespace ktquant;
namespace kn = kt::kernels;

static int fail(const std::string &msg) {
  std::fprintf(stderr, "kt-quant: error: %s\n", msg.c_str());
  return 1;
}

/// A "VmXXX:" field of /proc/self/status in bytes (0 if unavailable).
static uint64_t procStatusBytes(const char *field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.compare(0, key.size(), key) == 0)
      return std::strtoull(line.c_str() + key.size(), nullptr, 10) * 1024;
  return 0;
}

static double mib(uint64_t bytes) { return bytes / (1024.0 * 1024.0); }

/// The routed-experts ops of the plan, checked to have distinct names.
static kt::Result<std::vector<const kt::PlanOp *>>
expertOps(const kt::Plan &plan, const std::string &model,
          const std::string &rules) {
  std::vector<const kt::PlanOp *> ops;
  std::set<std::string> names;
  for (const kt::PlanOp &op : plan.ops) {
    if (!kt::isRoutedExperts(op))
      continue;
    if (op.name.empty() || !names.insert(op.name).second)
      return kt::Error{"routed-experts op '" + op.name +
                       "' has no name or a duplicate one"};
    ops.push_back(&op);
  }
  if (ops.empty())
    return kt::Error{model + " has no routed experts to pack (architecture " +
                     plan.architecture + ", rules " +
                     (rules.empty() ? std::string("none") : rules) + ")"};
  return ops;
}

/// Warns once when the rules ask for another format than --format: kt-run
/// with those rules would refuse the files.
static void warnFormatMismatch(const std::vector<const kt::PlanOp *> &ops,
                               const kn::QuantConfig &cfg,
                               const std::string &rules) {
  for (const kt::PlanOp *op : ops) {
    auto f = kt::expertsFormat(*op, kt::ComputeType::F32);
    if (f && f->config.format != cfg.format) {
      std::fprintf(stderr,
                   "kt-quant: warning: %s gives %s %s (%s); kt-run with "
                   "these rules will refuse %s files\n",
                   rules.c_str(), op->name.c_str(), f->reason.c_str(),
                   kn::toString(f->config.format), kn::toString(cfg.format));
      return;
    }
  }
}

struct LayerResult {
  kt::ExpertsManifestLayer entry;
  uint64_t sourceBytes = 0;
  std::string sourceDtype;
};

/// Packs and writes one layer; everything it maps or allocates is freed on
/// return.
static kt::Result<LayerResult>
quantLayer(const kt::PlanOp &op, const kt::ModelDir &dir,
           const kn::QuantConfig &cfg, kn::ThreadPool &pool, OutputDir &out) {
  auto sources = kt::expertsSourceTensors(op, dir);
  if (!sources.ok())
    return sources.error();
  LayerResult r;
  for (const kn::SourceTensor &t : *sources)
    r.sourceBytes += t.bytes;
  r.sourceDtype = sources->empty() ? "" : sources->front().dtype;
  r.entry.op = op.name;
  r.entry.file = kt::expertsLayerFileName(op.name);
  r.entry.fingerprint = kn::sourceFingerprint(*sources);
  {
    kt::WeightFiles weights(dir); // mapped for this layer only
    auto w = kt::packExpertsOp(op, weights, cfg, &pool);
    if (!w.ok())
      return w.error();
    r.entry.numExperts = w->numExperts;
    r.entry.hidden = w->hidden;
    r.entry.intermediate = w->intermediate;
    out.wrote(r.entry.file);
    try {
      kn::writeLayerFile(out.file(r.entry.file), *w, op.name,
                         r.entry.fingerprint);
    } catch (const kn::QuantFileError &e) {
      return kt::Error{e.what()};
    }
  }
  malloc_trim(0); // hand the layer's buffers back before the next one
  r.entry.bytes = kn::readLayerFileInfo(out.file(r.entry.file)).fileBytes;
  return r;
}

int main(int argc, char **argv) {
  QuantOptions o;
  bool help = false;
  if (auto err = parseOptions(argc, argv, o, help)) {
    std::fprintf(stderr, "kt-quant: error: %s\n%s", err->c_str(), kUsage);
    return 1;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [](auto since) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         since)
        .count();
  };
  auto cfg = kttools::readModelConfig(o.model);
  if (!cfg.ok())
    return fail(cfg.error().message);
  const std::string rules =
      o.rules.empty() ? kttools::defaultCpuRules(cfg->family) : o.rules;
  auto plan = kttools::compileCpuPlan(o.model, rules);
  if (!plan.ok())
    return fail(plan.error().message);
  auto ops = expertOps(*plan, o.model, rules);
  if (!ops.ok())
    return fail(ops.error().message);
  warnFormatMismatch(*ops, o.config, rules);
  auto dir = kt::openModelDir(o.model);
  if (!dir.ok())
    return fail(dir.error().message);

  OutputDir out;
  if (auto err = out.prepare(o.out))
    return fail(*err);
  int threads = o.threads > 0
                    ? o.threads
                    : static_cast<int>(std::thread::hardware_concurrency());
  kn::ThreadPool pool(threads > 0 ? threads : 1);
  const std::string format = kn::describeFormat(
      o.config.format, o.config.groupSize, o.config.asymmetric);
  kt::ExpertsManifest manifest;
  manifest.model = o.model;
  manifest.architecture = plan->architecture;
  manifest.rules = rules;
  manifest.format = format;
  uint64_t sourceBytes = 0, packedBytes = 0;
  for (size_t i = 0; i < ops->size(); ++i) {
    const kt::PlanOp &op = *(*ops)[i];
    const auto t0 = std::chrono::steady_clock::now();
    auto r = quantLayer(op, *dir, o.config, pool, out);
    if (!r.ok()) {
      out.discard();
      return fail(r.error().message);
    }
    sourceBytes += r->sourceBytes;
    packedBytes += r->entry.bytes;
    if (!o.quiet)
      std::fprintf(stderr,
                   "kt-quant: [%zu/%zu] %s: %d experts, hidden %d, "
                   "intermediate %d: %.2f MiB %s -> %.2f MiB %s in %.2f s "
                   "(RSS %.1f MiB)\n",
                   i + 1, ops->size(), op.name.c_str(), r->entry.numExperts,
                   r->entry.hidden, r->entry.intermediate, mib(r->sourceBytes),
                   r->sourceDtype.c_str(), mib(r->entry.bytes), format.c_str(),
                   seconds(t0), mib(procStatusBytes("VmRSS")));
    manifest.layers.push_back(std::move(r->entry));
  }
  if (auto err = kt::writeExpertsManifest(o.out, manifest)) {
    out.discard();
    return fail(err->message);
  }
  std::fprintf(stderr,
               "kt-quant: wrote %zu layers to %s: %.2f MiB %s from %.2f MiB "
               "of source in %.2f s, %d threads; peak RSS %.1f MiB\n",
               manifest.layers.size(), o.out.c_str(), mib(packedBytes),
               format.c_str(), mib(sourceBytes), seconds(start), pool.size(),
               mib(procStatusBytes("VmHWM")));
  return 0;
}
