// The byte-level BPE model (private to src/model): merges by rank over the bytes of one pre-tokenized
// piece, with a cache of recent pieces.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace opdev::model::tok {

// Token string -> id: open addressing over one arena of strings. Loading the 150k-entry vocabulary and
// resolving 150k merges (three lookups each) through std::unordered_map<std::string, int> took a third
// of the load time, mostly in cache misses.
class TokenIndex {
 public:
  void reserve(size_t n);
  // Adds s -> id; returns false (and changes nothing) if s is already there.
  bool insert(std::string_view s, int32_t id);
  int32_t find(std::string_view s) const;  // -1 if absent
  size_t size() const { return ids_.size(); }
  std::string_view key(size_t i) const { return std::string_view(arena_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]); }
  int32_t id(size_t i) const { return ids_[i]; }

 private:
  struct Slot {
    uint32_t hash = 0;
    uint32_t entry = 0;  // entry index + 1; 0 = empty
  };
  static uint32_t hash_of(std::string_view s);
  void rehash(size_t capacity);  // capacity: a power of two
  std::string arena_;
  std::vector<uint32_t> offsets_{0};
  std::vector<int32_t> ids_;
  std::vector<Slot> slots_;
};

class Bpe {
 public:
  // Start symbols: the id of each byte's byte-level character (-1: not in the vocabulary).
  std::array<int32_t, 256> byte_ids{};
  // (left id, right id) -> (rank, merged id); key = left << 32 | right.
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  int32_t unk_id = -1;  // unk_token's id, or -1 (then bytes outside the vocabulary are dropped, as HF does)
  bool fuse_unk = false;
  bool ignore_merges = false;
  // Byte-level token string -> id, for ignore_merges (a piece that is a token is taken whole).
  const TokenIndex* vocab = nullptr;

  static uint64_t key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

  // Appends the ids of one piece (raw bytes, before the byte-level map). Thread-safe.
  void encode(std::string_view piece, std::vector<int32_t>* out) const;

 private:
  void merge(std::string_view piece, std::vector<int32_t>* out) const;

  // Pieces shorter than kCacheMaxBytes, up to kCacheCapacity of them (then no more are added, as in
  // Hugging Face tokenizers).
  static constexpr size_t kCacheMaxBytes = 256;
  static constexpr size_t kCacheCapacity = 10000;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace opdev::model::tok
