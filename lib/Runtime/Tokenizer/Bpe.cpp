//===- Bpe.cpp - byte-pair-encoding model ---------------------------------===//

#include "Bpe.h"

#include "JsonUtil.h"
#include "Unicode.h"

#include <cstdio>
#include <queue>

namespace kt::tok {

namespace {

uint64_t pairKey(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

constexpr size_t kCacheMaxEntries = 1 << 16;
constexpr size_t kCacheMaxWordBytes = 256;

} // namespace

std::unique_ptr<Bpe> Bpe::parse(const json &model, std::string &error) {
  auto bpe = std::make_unique<Bpe>();
  auto vocabIt = model.find("vocab");
  if (vocabIt == model.end() || !vocabIt->is_object()) {
    error = "model.vocab is missing or not an object";
    return nullptr;
  }
  for (auto it = vocabIt->begin(); it != vocabIt->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      error = "model.vocab: token '" + it.key() + "' has no valid id";
      return nullptr;
    }
    bpe->vocabMap.emplace(it.key(), it.value().get<int64_t>());
  }
  bpe->continuingPrefix = getString(model, "continuing_subword_prefix");
  bpe->endSuffix = getString(model, "end_of_word_suffix");
  bpe->fuseUnk = getBool(model, "fuse_unk", false);
  bpe->byteFallback = getBool(model, "byte_fallback", false);
  bpe->ignoreMerges = getBool(model, "ignore_merges", false);
  std::string unk = getString(model, "unk_token");
  if (!unk.empty()) {
    auto it = bpe->vocabMap.find(unk);
    if (it == bpe->vocabMap.end()) {
      error = "model.unk_token '" + unk + "' is not in the vocabulary";
      return nullptr;
    }
    bpe->unkId = it->second;
  }
  bpe->byteIds.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (auto it = bpe->vocabMap.find(name); it != bpe->vocabMap.end())
      bpe->byteIds[b] = it->second;
  }

  auto mergesIt = model.find("merges");
  if (mergesIt != model.end() && !mergesIt->is_null()) {
    if (!mergesIt->is_array()) {
      error = "model.merges is not a list";
      return nullptr;
    }
    uint32_t rank = 0;
    for (const auto &m : *mergesIt) {
      std::string a, b;
      if (m.is_string()) {
        const std::string &s = m.get_ref<const std::string &>();
        size_t space = s.find(' ', 1);
        if (space == std::string::npos) {
          error = "model.merges[" + std::to_string(rank) + "]: '" + s +
                  "' is not two tokens separated by a space";
          return nullptr;
        }
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
                 m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        error = "model.merges[" + std::to_string(rank) +
                "] is neither \"a b\" nor [a, b]";
        return nullptr;
      }
      std::string joined = a + b;
      if (!bpe->continuingPrefix.empty() &&
          b.compare(0, bpe->continuingPrefix.size(), bpe->continuingPrefix) ==
              0)
        joined = a + b.substr(bpe->continuingPrefix.size());
      auto ia = bpe->vocabMap.find(a), ib = bpe->vocabMap.find(b),
           ij = bpe->vocabMap.find(joined);
      if (ia == bpe->vocabMap.end() || ib == bpe->vocabMap.end() ||
          ij == bpe->vocabMap.end()) {
        error = "model.merges[" + std::to_string(rank) + "]: '" + a + "' + '" +
                b + "' uses a token missing from the vocabulary";
        return nullptr;
      }
      bpe->merges.emplace(pairKey(ia->second, ib->second),
                          MergeInfo{rank, ij->second});
      ++rank;
    }
  }
  return bpe;
}

void Bpe::tokenize(std::string_view word, std::vector<int64_t> &out) const {
  if (word.empty())
    return;
  if (ignoreMerges) {
    if (auto it = vocabMap.find(std::string(word)); it != vocabMap.end()) {
      out.push_back(it->second);
      return;
    }
  }
  bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex);
    if (auto it = cache.find(std::string(word)); it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int64_t> ids;
  merge(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex);
    if (cache.size() >= kCacheMaxEntries)
      cache.clear();
    cache.emplace(std::string(word), std::move(ids));
  }
}

void Bpe::merge(std::string_view word, std::vector<int64_t> &out) const {
  // Initial symbols: one per character (or per byte with byte fallback).
  std::vector<int64_t> syms;
  bool prevUnk = false;
  for (size_t i = 0; i < word.size();) {
    size_t start = i;
    nextCodePoint(word, i);
    std::string piece(word.substr(start, i - start));
    if (start > 0 && !continuingPrefix.empty())
      piece = continuingPrefix + piece;
    if (i == word.size() && !endSuffix.empty())
      piece += endSuffix;
    if (auto it = vocabMap.find(piece); it != vocabMap.end()) {
      syms.push_back(it->second);
      prevUnk = false;
      continue;
    }
    if (byteFallback) {
      bool all = true;
      for (size_t k = start; k < i; ++k)
        all &= byteIds[static_cast<unsigned char>(word[k])] >= 0;
      if (all) {
        for (size_t k = start; k < i; ++k)
          syms.push_back(byteIds[static_cast<unsigned char>(word[k])]);
        prevUnk = false;
        continue;
      }
    }
    if (unkId) {
      if (!(fuseUnk && prevUnk))
        syms.push_back(*unkId);
      prevUnk = true;
    }
  }

  // Merge the lowest-ranked adjacent pair first (leftmost on ties), with a
  // heap over candidate pairs and a linked list of live symbols.
  size_t n = syms.size();
  std::vector<int> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
  }
  struct Cand {
    uint32_t rank;
    int left;
    int right;
    int64_t leftId, rightId;
    bool operator>(const Cand &o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0)
      return;
    auto it = merges.find(pairKey(syms[l], syms[r]));
    if (it != merges.end())
      heap.push({it->second.rank, l, r, syms[l], syms[r]});
  };
  for (size_t i = 0; i + 1 < n; ++i)
    consider(static_cast<int>(i), static_cast<int>(i + 1));
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    if (dead[c.left] || dead[c.right] || next[c.left] != c.right ||
        syms[c.left] != c.leftId || syms[c.right] != c.rightId)
      continue;
    syms[c.left] = merges.at(pairKey(c.leftId, c.rightId)).id;
    dead[c.right] = true;
    next[c.left] = next[c.right];
    if (next[c.right] >= 0)
      prev[next[c.right]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }
  for (size_t i = 0; i < n; ++i)
    if (!dead[i])
      out.push_back(syms[i]);
}

} // namespace kt::tok
