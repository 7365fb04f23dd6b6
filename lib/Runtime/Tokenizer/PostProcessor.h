//===- PostProcessor.h - tokenizer.json post-processors ---------*- C++ -*-===//
//
// TemplateProcessing (the "single" template), ByteLevel (nothing to do on
// ids), BertProcessing / RobertaProcessing (cls $A sep) and Sequence. They
// run only when encode() is asked to add special tokens.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_POSTPROCESSOR_H
#define KT_LIB_RUNTIME_TOKENIZER_POSTPROCESSOR_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kt::tok {

class PostProcessor {
public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int64_t> &ids) const = 0;
  /// The ids this processor puts before the text (e.g. BOS).
  virtual std::vector<int64_t> prefixIds() const { return {}; }
};

std::unique_ptr<PostProcessor> parsePostProcessor(const nlohmann::json &j,
                                                  std::string &error);

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_POSTPROCESSOR_H
