//===- PostProcessor.cpp - tokenizer.json post-processors -----------------===//

#include "PostProcessor.h"

#include "JsonUtil.h"

namespace kt::tok {

namespace {

class NoOpProcessor : public PostProcessor {
public:
  void process(std::vector<int64_t> &) const override {}
};

/// Fixed ids around the text: prefix + $A + suffix.
class WrapProcessor : public PostProcessor {
public:
  WrapProcessor(std::vector<int64_t> prefix, std::vector<int64_t> suffix)
      : prefix(std::move(prefix)), suffix(std::move(suffix)) {}
  void process(std::vector<int64_t> &ids) const override {
    ids.insert(ids.begin(), prefix.begin(), prefix.end());
    ids.insert(ids.end(), suffix.begin(), suffix.end());
  }
  std::vector<int64_t> prefixIds() const override { return prefix; }

private:
  std::vector<int64_t> prefix, suffix;
};

class SequenceProcessor : public PostProcessor {
public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts(std::move(parts)) {}
  void process(std::vector<int64_t> &ids) const override {
    for (const auto &p : parts)
      p->process(ids);
  }
  std::vector<int64_t> prefixIds() const override {
    std::vector<int64_t> all;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      auto p = (*it)->prefixIds();
      all.insert(all.begin(), p.begin(), p.end());
    }
    return all;
  }

private:
  std::vector<std::unique_ptr<PostProcessor>> parts;
};

std::unique_ptr<PostProcessor> parseTemplate(const json &j,
                                             std::string &error) {
  auto single = j.find("single");
  if (single == j.end() || !single->is_array()) {
    error = "post_processor TemplateProcessing has no 'single' template";
    return nullptr;
  }
  const json *specials =
      j.contains("special_tokens") ? &j["special_tokens"] : nullptr;
  std::vector<int64_t> prefix, suffix;
  bool seenSequence = false;
  for (const auto &item : *single) {
    if (item.contains("Sequence")) {
      if (seenSequence) {
        error = "post_processor TemplateProcessing: 'single' has two sequences";
        return nullptr;
      }
      seenSequence = true;
      continue;
    }
    if (!item.contains("SpecialToken")) {
      error = "post_processor TemplateProcessing: unknown item " + item.dump();
      return nullptr;
    }
    std::string name = getString(item["SpecialToken"], "id");
    if (!specials || !specials->contains(name) ||
        !(*specials)[name].contains("ids")) {
      error = "post_processor TemplateProcessing: special token '" + name +
              "' is not in special_tokens";
      return nullptr;
    }
    for (const auto &id : (*specials)[name]["ids"])
      (seenSequence ? suffix : prefix).push_back(id.get<int64_t>());
  }
  return std::make_unique<WrapProcessor>(std::move(prefix), std::move(suffix));
}

} // namespace

std::unique_ptr<PostProcessor> parsePostProcessor(const json &j,
                                                  std::string &error) {
  std::string type = typeOf(j);
  if (type == "ByteLevel")
    return std::make_unique<NoOpProcessor>();
  if (type == "TemplateProcessing")
    return parseTemplate(j, error);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    // "cls": [token, id], "sep": [token, id]
    auto idOf = [&](const char *key) -> std::optional<int64_t> {
      auto it = j.find(key);
      if (it == j.end() || !it->is_array() || it->size() != 2 ||
          !(*it)[1].is_number_integer())
        return std::nullopt;
      return (*it)[1].get<int64_t>();
    };
    auto cls = idOf("cls"), sep = idOf("sep");
    if (!cls || !sep) {
      error =
          "post_processor " + type + " needs 'cls' and 'sep' as [token, id]";
      return nullptr;
    }
    return std::make_unique<WrapProcessor>(std::vector<int64_t>{*cls},
                                           std::vector<int64_t>{*sep});
  }
  if (type == "Sequence") {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) {
      error = "post_processor Sequence has no 'processors' list";
      return nullptr;
    }
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto &sub : *it) {
      auto p = parsePostProcessor(sub, error);
      if (!p)
        return nullptr;
      parts.push_back(std::move(p));
    }
    return std::make_unique<SequenceProcessor>(std::move(parts));
  }
  error = "post_processor type '" + type +
          "' is not supported (TemplateProcessing, ByteLevel, BertProcessing, "
          "RobertaProcessing, Sequence)";
  return nullptr;
}

} // namespace kt::tok
