//===- Generate.h - the generation loop of kt-run --------------*- C++ -*-===//

#ifndef KT_TOOLS_KTRUN_GENERATE_H
#define KT_TOOLS_KTRUN_GENERATE_H

#include "Options.h"
#include "kt/Runtime/Executor.h"
#include "kt/Runtime/Tokenizer.h"

#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace ktrun {

struct Generation {
  std::vector<int64_t> ids; ///< generated ids (the stop token included)
  std::string text;         ///< decoded text, cut before a stop string
  std::string stoppedBy;    ///< "eos", "stop string", "max tokens", "context"
};

/// Feeds `prompt` (continuing what the model has cached when `cachedPrefix`
/// of its ids are already there) and generates. Text streams to `out`
/// (null: no streaming). `promptLogits` (optional) receives the logits of
/// every prompt position.
kt::Result<Generation> generate(kt::Model &model, const kt::Tokenizer *tok,
                                const RunOptions &opts,
                                const std::set<int64_t> &eos,
                                const std::vector<int64_t> &prompt,
                                int64_t cachedPrefix, std::FILE *out,
                                std::vector<float> *promptLogits);

/// EOS ids from config.json, generation_config.json and the tokenizer.
std::set<int64_t> eosIds(const kt::Model &model, const kt::Tokenizer *tok,
                         const std::string &modelDir);

} // namespace ktrun

#endif
