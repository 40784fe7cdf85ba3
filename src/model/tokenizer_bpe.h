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

// (left id, right id) -> (rank, merged id), open addressing: the lookup of every BPE step (a node-based
// std::unordered_map made it the hottest spot of encoding and of loading).
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0, id = 0;
  };
  static uint64_t key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
  void reserve(size_t n);
  void set(int32_t a, int32_t b, int32_t rank, int32_t id);  // a later set of the same pair replaces it
  const Entry* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(a, b);
    for (size_t i = slot_of(k);; i = (i + 1) & (slots_.size() - 1)) {
      const Entry& e = slots_[i];
      if (e.key == k) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are < 2^31: no pair has this key
  size_t slot_of(uint64_t k) const { return size_t((k * 0x9E3779B97F4A7C15ull) >> shift_); }
  void rehash(size_t capacity);
  std::vector<Entry> slots_;
  size_t size_ = 0;
  int shift_ = 64;
};

class Bpe {
 public:
  // Start symbols: the id of each byte's byte-level character (-1: not in the vocabulary).
  std::array<int32_t, 256> byte_ids{};
  MergeTable merges;
  int32_t unk_id = -1;  // unk_token's id, or -1 (then bytes outside the vocabulary are dropped, as HF does)
  bool fuse_unk = false;
  bool ignore_merges = false;
  // Byte-level token string -> id, for ignore_merges (a piece that is a token is taken whole).
  const TokenIndex* vocab = nullptr;

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
