//===- Generate.cpp - the generation loop of kt-run ----------------------===//

#include "Generate.h"
#include "kt/Runtime/Sampler.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace ktrun {

std::set<int64_t> eosIds(const kt::Model &model, const kt::Tokenizer *tok,
                         const std::string &modelDir) {
  std::set<int64_t> ids(model.config().eosTokenIds.begin(),
                        model.config().eosTokenIds.end());
  if (tok)
    if (auto e = tok->eosId())
      ids.insert(*e);
  std::ifstream in(modelDir + "/generation_config.json");
  if (in) {
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("eos_token_id")) {
      const auto &e = j["eos_token_id"];
      if (e.is_number_integer())
        ids.insert(e.get<int64_t>());
      else if (e.is_array())
        for (const auto &x : e)
          if (x.is_number_integer())
            ids.insert(x.get<int64_t>());
    }
  }
  return ids;
}

/// Length of the longest prefix of `s` that ends on a UTF-8 character
/// boundary and is at most `n` bytes.
static size_t utf8Floor(const std::string &s, size_t n) {
  while (n > 0 && n < s.size() &&
         (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  return n;
}

kt::Result<Generation> generate(kt::Model &model, const kt::Tokenizer *tok,
                                const RunOptions &opts,
                                const std::set<int64_t> &eos,
                                const std::vector<int64_t> &prompt,
                                int64_t cachedPrefix, std::FILE *out,
                                std::vector<float> *promptLogits) {
  Generation g;
  if (static_cast<int64_t>(prompt.size()) > model.contextLength())
    return kt::Error{"the prompt has " + std::to_string(prompt.size()) +
                     " tokens, more than the context length " +
                     std::to_string(model.contextLength()) +
                     " (see --context)"};
  model.rewind(cachedPrefix);
  std::vector<int64_t> fresh(prompt.begin() + cachedPrefix, prompt.end());
  if (fresh.empty()) { // nothing new: recompute the last position
    model.rewind(cachedPrefix - 1);
    fresh.push_back(prompt.back());
  }
  auto logits = model.forward(fresh, promptLogits != nullptr);
  if (!logits.ok())
    return logits.error();
  int64_t vocab = model.vocabSize();
  if (promptLogits)
    *promptLogits = *logits;
  std::vector<float> last(logits->end() - vocab, logits->end());

  kt::Sampler sampler(opts.sampling);
  std::vector<int64_t> seen = prompt;
  std::unique_ptr<kt::StreamDecoder> stream;
  if (tok)
    stream = std::make_unique<kt::StreamDecoder>(*tok);
  size_t maxStop = 0;
  for (auto &s : opts.stops)
    maxStop = std::max(maxStop, s.size());
  size_t printed = 0;
  auto emit = [&](size_t upTo) {
    if (out && upTo > printed) {
      std::fwrite(g.text.data() + printed, 1, upTo - printed, out);
      std::fflush(out);
    }
    printed = std::max(printed, upTo);
  };

  g.stoppedBy = "max tokens";
  for (int64_t n = 0; n < opts.maxNewTokens; ++n) {
    int64_t id = sampler.next(last.data(), vocab, seen);
    g.ids.push_back(id);
    seen.push_back(id);
    if (eos.count(id) && !opts.ignoreEos) {
      g.stoppedBy = "eos";
      break;
    }
    if (stream)
      g.text += stream->push(id);
    bool stopped = false;
    for (auto &s : opts.stops) {
      size_t at = g.text.find(s);
      if (at != std::string::npos) {
        g.text.resize(at);
        stopped = true;
      }
    }
    if (stopped) {
      g.stoppedBy = "stop string";
      break;
    }
    // Hold back what could still become the start of a stop string.
    size_t safe = g.text.size() > maxStop ? g.text.size() - maxStop + 1 : 0;
    if (!maxStop)
      safe = g.text.size();
    emit(utf8Floor(g.text, safe));
    if (n + 1 == opts.maxNewTokens)
      break;
    if (model.position() >= model.contextLength()) {
      g.stoppedBy = "context";
      break;
    }
    auto next = model.forward({id}, false);
    if (!next.ok())
      return next.error();
    last = std::move(*next);
  }
  if (stream && g.stoppedBy != "stop string")
    g.text += stream->finish();
  emit(g.text.size());
  return g;
}

} // namespace ktrun
