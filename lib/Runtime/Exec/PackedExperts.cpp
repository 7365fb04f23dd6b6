//===- PackedExperts.cpp - routed experts packed ahead of time ------------===//
//
// PackedExperts.h (shared with kt-quant) and the executor's loading of an
// op's packed experts from ExecOptions::expertsDir.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/PackedExperts.h"
#include "ExecOps.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sys/stat.h>

namespace fs = std::filesystem;

namespace kt {

//===----------------------------------------------------------------------===//
// manifest.json
//===----------------------------------------------------------------------===//

std::optional<Error> writeExpertsManifest(const std::string &dir,
                                          const ExpertsManifest &m) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const ExpertsManifestLayer &l : m.layers)
    layers.push_back(
        {{"op", l.op},
         {"file", l.file},
         {"num_experts", l.numExperts},
         {"hidden_size", l.hidden},
         {"intermediate_size", l.intermediate},
         {"fingerprint", kernels::formatFingerprint(l.fingerprint)},
         {"bytes", l.bytes}});
  nlohmann::ordered_json j = {
      {"kt_quant_manifest", m.version},
      {"layer_file_version", kernels::kQuantFileVersion},
      {"model", m.model},
      {"architecture", m.architecture},
      {"rules", m.rules},
      {"format", m.format},
      {"layers", layers}};
  const std::string path = dir + "/" + kExpertsManifestName;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return Error{tmp + ": cannot write"};
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Error{path + ": cannot rename " + tmp + " to it"};
  }
  return std::nullopt;
}

Result<ExpertsManifest> readExpertsManifest(const std::string &dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return Error{dir + ": not a directory (--experts-dir)"};
  const std::string path = dir + "/" + kExpertsManifestName;
  std::ifstream in(path);
  if (!in)
    return Error{path + ": missing (not a kt-quant output directory, or "
                        "kt-quant did not finish)"};
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error{path + ": not valid JSON"};
  auto version = j.find("kt_quant_manifest");
  if (version == j.end() || !version->is_number_integer())
    return Error{path + ": not a kt-quant manifest (no kt_quant_manifest "
                        "version)"};
  ExpertsManifest m;
  m.version = version->get<int>();
  if (m.version != kExpertsManifestVersion)
    return Error{path + ": version " + std::to_string(m.version) +
                 " not supported (this kt reads " +
                 std::to_string(kExpertsManifestVersion) + ")"};
  auto str = [&](const nlohmann::json &o, const char *key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : "";
  };
  m.model = str(j, "model");
  m.architecture = str(j, "architecture");
  m.rules = str(j, "rules");
  m.format = str(j, "format");
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array())
    return Error{path + ": 'layers' must be an array"};
  for (size_t i = 0; i < layers->size(); ++i) {
    const nlohmann::json &o = (*layers)[i];
    const std::string at = path + ": layers[" + std::to_string(i) + "]";
    if (!o.is_object())
      return Error{at + " is not an object"};
    ExpertsManifestLayer l;
    l.op = str(o, "op");
    l.file = str(o, "file");
    if (l.op.empty() || l.file.empty())
      return Error{at + " needs 'op' and 'file'"};
    if (l.file.find('/') != std::string::npos || l.file == "." ||
        l.file == "..")
      return Error{at + ": file '" + l.file + "' must be a plain file name"};
    for (auto [key, dst] : {std::pair{"num_experts", &l.numExperts},
                            {"hidden_size", &l.hidden},
                            {"intermediate_size", &l.intermediate}}) {
      auto it = o.find(key);
      if (it != o.end() && it->is_number_integer())
        *dst = it->get<int>();
    }
    if (auto it = o.find("bytes"); it != o.end() && it->is_number_unsigned())
      l.bytes = it->get<uint64_t>();
    std::string fp = str(o, "fingerprint");
    if (fp.size() > 2 && fp.compare(0, 2, "0x") == 0)
      l.fingerprint = std::strtoull(fp.c_str() + 2, nullptr, 16);
    m.layers.push_back(std::move(l));
  }
  return m;
}

std::string expertsLayerFileName(const std::string &opName) {
  return opName + ".ktq";
}

//===----------------------------------------------------------------------===//
// Plan ops
//===----------------------------------------------------------------------===//

bool isRoutedExperts(const PlanOp &op) {
  return op.kind == "cpu_experts" || op.kind == "gpu_experts" ||
         op.kind == "experts";
}

std::optional<ExpertsFormat> expertsFormat(const PlanOp &op,
                                           ComputeType dtype) {
  const std::string backend = exec::attrStr(op, "backend");
  if (auto cfg = exec::formatFor(backend, false))
    return ExpertsFormat{*cfg, "the rules' backend '" + backend + "'"};
  if (auto cfg = exec::formatFor(backend, dtype == ComputeType::BF16))
    return ExpertsFormat{*cfg, "--dtype bf16"};
  return std::nullopt;
}

Result<std::vector<kernels::SourceTensor>>
expertsSourceTensors(const PlanOp &op, const ModelDir &dir) {
  std::vector<const PlanWeight *> weights;
  auto fused = op.weights.find("gate_up_fused");
  auto down = op.weights.find("down_fused");
  if (fused != op.weights.end() && down != op.weights.end()) {
    weights = {&fused->second, &down->second};
  } else {
    auto g = op.weightLists.find("gate_proj");
    auto u = op.weightLists.find("up_proj");
    auto d = op.weightLists.find("down_proj");
    if (g == op.weightLists.end() || u == op.weightLists.end() ||
        d == op.weightLists.end() || u->second.size() != g->second.size() ||
        d->second.size() != g->second.size())
      return Error{exec::describe(op) +
                   ": needs gate_proj, up_proj and down_proj weights"};
    for (size_t e = 0; e < g->second.size(); ++e)
      for (const auto *list : {&g->second, &u->second, &d->second})
        weights.push_back(&(*list)[e]);
  }
  std::map<std::string, uint64_t> fileSizes;
  std::vector<kernels::SourceTensor> out;
  for (const PlanWeight *w : weights) {
    const TensorInfo *t = dir.find(w->tensor);
    if (!t)
      return Error{(w->file.empty() ? dir.path : w->file) + ": tensor '" +
                   w->tensor + "' is missing (needed by " + exec::describe(op) +
                   ")"};
    auto size = fileSizes.find(t->file);
    if (size == fileSizes.end()) {
      struct stat st {};
      if (::stat(dir.filePath(*t).c_str(), &st) != 0)
        return Error{t->file + ": cannot stat"};
      size =
          fileSizes.emplace(t->file, static_cast<uint64_t>(st.st_size)).first;
    }
    out.push_back({t->name, t->file, std::string(dtypeName(t->dtype)), t->shape,
                   size->second, t->fileOffset(), t->numBytes()});
  }
  return out;
}

Result<kernels::MoeWeights> packExpertsOp(const PlanOp &op,
                                          WeightFiles &weights,
                                          const kernels::QuantConfig &cfg,
                                          kernels::ThreadPool *pool) {
  static const ExecOptions opts;
  static const ModelConfig config;
  exec::LoadContext ctx{weights, opts, config, 0, {}, pool};
  auto m = exec::gatherExperts(op, ctx, true);
  if (!m.ok())
    return m.error();
  try {
    return exec::packExperts(op, *m, cfg, pool);
  } catch (const std::exception &e) {
    return Error{exec::describe(op) + ": " + e.what()};
  }
}

//===----------------------------------------------------------------------===//
// Loading in the executor
//===----------------------------------------------------------------------===//

Result<kernels::MoeWeights> exec::loadPackedExperts(const PlanOp &op,
                                                    LoadContext &ctx) {
  const std::string &dir = ctx.opts.expertsDir;
  auto format = expertsFormat(op, ctx.opts.dtype);
  if (!format)
    return Error{describe(op) +
                 " runs the fp32 reference (its rule sets no backend and "
                 "--dtype is f32), so it cannot use the packed experts of "
                 "--experts-dir " +
                 dir +
                 "; use rules whose experts have a backend (e.g. "
                 "rules/qwen3-moe-cpu-int8.yaml) or --dtype bf16"};
  auto manifest = readExpertsManifest(dir);
  if (!manifest.ok())
    return manifest.error();
  const ExpertsManifestLayer *entry = nullptr;
  for (const ExpertsManifestLayer &l : manifest->layers)
    if (l.op == op.name)
      entry = &l;
  if (!entry)
    return Error{dir + ": no packed layer for " + describe(op) +
                 " (the manifest lists " +
                 std::to_string(manifest->layers.size()) +
                 " layers, written from " + manifest->model + ")"};
  auto sources = expertsSourceTensors(op, ctx.weights.dir());
  if (!sources.ok())
    return sources.error();
  kernels::LayerExpectation x;
  x.layer = op.name;
  x.format = format->config.format;
  x.formatReason = format->reason;
  x.numExperts = static_cast<int>(attrInt(op, "num_experts"));
  x.hidden = static_cast<int>(attrInt(op, "hidden_size"));
  x.intermediate = static_cast<int>(attrInt(op, "intermediate_size"));
  x.fingerprint = kernels::sourceFingerprint(*sources);
  try {
    return kernels::readLayerFile(dir + "/" + entry->file, x,
                                  format->config.tiles, ctx.pool);
  } catch (const kernels::QuantFileError &e) {
    std::string msg = e.what();
    if (msg.find("different checkpoint") != std::string::npos)
      msg += "; run kt-quant on " + ctx.weights.dir().path;
    return Error{msg};
  }
}

} // namespace kt
