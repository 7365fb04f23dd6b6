//===- ToolCommon.cpp - what kt-run and kt-quant share -------------------===//

#include "ToolCommon.h"

#include "kt/Transforms/Compile.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace kttools {

std::string cpuRuleFile(kt::ModelFamily f) {
  switch (f) {
  case kt::ModelFamily::DeepseekV2:
    return "deepseek-v2-lite-cpu.yaml";
  case kt::ModelFamily::DeepseekV3:
    return "deepseek-v3-cpu.yaml";
  case kt::ModelFamily::Qwen2Moe:
  case kt::ModelFamily::Qwen3Moe:
    return "qwen3-moe-cpu.yaml";
  case kt::ModelFamily::Mixtral:
    return "mixtral-cpu.yaml";
  default:
    return "";
  }
}

std::string rulesDir() {
  if (const char *env = std::getenv("KT_RULES_DIR"))
    return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path p : {exe.parent_path() / "rules",
                       exe.parent_path().parent_path() / "share/kt/rules"})
      if (fs::is_directory(p, ec))
        return p.string();
  }
  return KT_SOURCE_RULES_DIR;
}

std::string defaultCpuRules(kt::ModelFamily family) {
  std::string file = cpuRuleFile(family);
  return file.empty() ? "" : rulesDir() + "/" + file;
}

kt::Result<kt::ModelConfig> readModelConfig(const std::string &dir) {
  std::ifstream in(dir + "/config.json");
  if (!in)
    return kt::Error{dir + "/config.json: cannot open (is --model a Hugging "
                           "Face model directory?)"};
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded())
    return kt::Error{dir + "/config.json: not valid JSON"};
  return kt::parseModelConfig(j, dir + "/config.json");
}

kt::Result<kt::Plan> compileCpuPlan(const std::string &modelDir,
                                    const std::string &rulesPath) {
  kt::CompileOptions co;
  co.modelDir = modelDir;
  co.rulesPath = rulesPath;
  co.defaultDevice = "cpu";
  kt::CompileResult cr = kt::compileModel(co);
  if (!cr.plan) {
    std::string d = cr.diagnostics;
    while (!d.empty() && d.back() == '\n')
      d.pop_back();
    return kt::Error{"cannot compile " + modelDir + ":\n" + d};
  }
  if (!cr.diagnostics.empty())
    std::fputs(cr.diagnostics.c_str(), stderr);
  return std::move(*cr.plan);
}

} // namespace kttools
