//===- Options.h - kt-run command line -------------------------*- C++ -*-===//

#ifndef KT_TOOLS_KTRUN_OPTIONS_H
#define KT_TOOLS_KTRUN_OPTIONS_H

#include "kt/Runtime/Executor.h"
#include "kt/Runtime/Sampler.h"

#include <optional>
#include <string>
#include <vector>

namespace ktrun {

struct RunOptions {
  std::string model, rules, planFile;
  std::string expertsDir; ///< --experts-dir: routed experts from kt-quant
  bool int8FloatActivations = false; ///< --int8-activations float
  std::optional<int> int8ActBlock;   ///< --int8-act-block
  kt::ComputeType dtype = kt::ComputeType::F32;
  std::optional<std::string> prompt, tokenize;
  std::optional<std::vector<int64_t>> promptIds;
  int64_t maxNewTokens = 128;
  kt::SamplingOptions sampling;
  std::vector<std::string> stops;
  bool printIds = false, chat = false, ignoreEos = false, quiet = false;
  std::string dumpLogits;
  int threads = 0;
  int64_t context = 0;
  std::string system; ///< system prompt for --chat
};

/// Parses argv. On error returns a message (to print after "kt-run: ");
/// sets `help` for --help.
std::optional<std::string> parseOptions(int argc, char **argv,
                                        RunOptions &opts, bool &help);
extern const char *kUsage;

} // namespace ktrun

#endif
