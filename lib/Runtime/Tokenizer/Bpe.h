//===- Bpe.h - byte-pair-encoding model -------------------------*- C++ -*-===//
//
// The "BPE" model of tokenizer.json: a vocabulary, merges ranked by their
// position in the file ("a b" strings or ["a", "b"] pairs), unk_token with
// fuse_unk, byte_fallback to <0xNN> tokens, continuing_subword_prefix,
// end_of_word_suffix and ignore_merges. Words already seen are cached.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_BPE_H
#define KT_LIB_RUNTIME_TOKENIZER_BPE_H

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kt::tok {

class Bpe {
public:
  /// Builds the model from tokenizer.json's "model" object; on failure
  /// returns null and sets `error`.
  static std::unique_ptr<Bpe> parse(const nlohmann::json &model,
                                    std::string &error);

  /// Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int64_t> &out) const;

  const std::unordered_map<std::string, int64_t> &vocab() const {
    return vocabMap;
  }

private:
  void merge(std::string_view word, std::vector<int64_t> &out) const;

  std::unordered_map<std::string, int64_t> vocabMap;
  struct MergeInfo {
    uint32_t rank;
    int64_t id;
  };
  std::unordered_map<uint64_t, MergeInfo>
      merges; // (left id, right id) -> merge
  std::optional<int64_t> unkId;
  bool fuseUnk = false;
  bool byteFallback = false;
  bool ignoreMerges = false;
  std::string continuingPrefix, endSuffix;
  std::array<int64_t, 256> byteIds{}; // <0xNN> ids, -1 when absent

  mutable std::mutex cacheMutex;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;
};

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_BPE_H
