//===- ToolCommon.h - what kt-run and kt-quant share -----------*- C++ -*-===//
//
// The default rule file of a model family and where kt's rules/ directory
// is, reading a model directory's config.json, and compiling a model
// directory to a CPU plan with those defaults.
//
//===----------------------------------------------------------------------===//

#ifndef KT_TOOLS_COMMON_TOOLCOMMON_H
#define KT_TOOLS_COMMON_TOOLCOMMON_H

#include "kt/Runtime/ModelConfig.h"
#include "kt/Runtime/Plan.h"

#include <string>

namespace kttools {

/// The CPU rule file kt ships for a family ("" for dense models, which need
/// none), e.g. "qwen3-moe-cpu.yaml".
std::string cpuRuleFile(kt::ModelFamily family);

/// kt's rules/ directory: $KT_RULES_DIR, next to the executable (rules/ or
/// ../share/kt/rules), or the source tree it was built from.
std::string rulesDir();

/// rulesDir()/cpuRuleFile(family), or "" when the family needs none.
std::string defaultCpuRules(kt::ModelFamily family);

/// DIR/config.json, parsed; errors name the file.
kt::Result<kt::ModelConfig> readModelConfig(const std::string &dir);

/// Compiles `modelDir` with `rulesPath` ("" = no rules) to a plan whose
/// unplaced modules default to the CPU. Warnings go to stderr; errors come
/// back as "cannot compile DIR:\n<diagnostics>".
kt::Result<kt::Plan> compileCpuPlan(const std::string &modelDir,
                                    const std::string &rulesPath);

} // namespace kttools

#endif // KT_TOOLS_COMMON_TOOLCOMMON_H
