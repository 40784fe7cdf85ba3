#include "model/tokenizer_bpe.h"

#include <algorithm>
#include <queue>

#include "model/tokenizer_text.h"

namespace opdev::model::tok {

namespace {

struct Symbol {
  int32_t id;
  int32_t prev, next;  // indices into the symbol array, -1 at the ends
  bool alive;
};

// A candidate merge of the symbol at `pos` with its successor. The queue pops the lowest rank first
// and, among equal ranks, the leftmost position: the order of Hugging Face's BPE (and of the classic
// GPT-2 loop, which merges all occurrences of the best pair left to right).
struct Candidate {
  int32_t rank, pos, new_id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

uint32_t TokenIndex::hash_of(std::string_view s) {
  // FNV-1a: the keys are short.
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

void TokenIndex::reserve(size_t n) {
  ids_.reserve(n);
  offsets_.reserve(n + 1);
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  if (cap > slots_.size()) rehash(cap);
}

void TokenIndex::rehash(size_t cap) {
  std::vector<Slot> old(cap);
  old.swap(slots_);
  for (const Slot& o : old) {
    if (!o.entry) continue;
    size_t k = o.hash & (cap - 1);
    while (slots_[k].entry) k = (k + 1) & (cap - 1);
    slots_[k] = o;
  }
}

bool TokenIndex::insert(std::string_view s, int32_t id) {
  if (2 * (ids_.size() + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
  const uint32_t h = hash_of(s);
  const size_t mask = slots_.size() - 1;
  size_t k = h & mask;
  for (; slots_[k].entry; k = (k + 1) & mask)
    if (slots_[k].hash == h && key(slots_[k].entry - 1) == s) return false;
  slots_[k] = {h, uint32_t(ids_.size() + 1)};
  arena_.append(s);
  offsets_.push_back(uint32_t(arena_.size()));
  ids_.push_back(id);
  return true;
}

int32_t TokenIndex::find(std::string_view s) const {
  if (slots_.empty()) return -1;
  const uint32_t h = hash_of(s);
  const size_t mask = slots_.size() - 1;
  for (size_t k = h & mask; slots_[k].entry; k = (k + 1) & mask)
    if (slots_[k].hash == h && key(slots_[k].entry - 1) == s) return ids_[slots_[k].entry - 1];
  return -1;
}

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  if (cap > slots_.size()) rehash(cap);
}

void MergeTable::rehash(size_t cap) {
  std::vector<Entry> old(cap);
  old.swap(slots_);
  shift_ = 64;
  for (size_t c = cap; c > 1; c >>= 1) --shift_;
  for (const Entry& e : old) {
    if (e.key == kEmpty) continue;
    size_t i = slot_of(e.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & (cap - 1);
    slots_[i] = e;
  }
}

void MergeTable::set(int32_t a, int32_t b, int32_t rank, int32_t id) {
  if (2 * (size_ + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
  const uint64_t k = key(a, b);
  size_t i = slot_of(k);
  while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & (slots_.size() - 1);
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i] = {k, rank, id};
}

void Bpe::encode(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  if (ignore_merges && vocab) {
    const int32_t id = vocab->find(byte_level_encode(piece));
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const bool cacheable = piece.size() < kCacheMaxBytes;
  std::string key;
  if (cacheable) {
    key.assign(piece);
    std::shared_lock<std::shared_mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out->size();
  merge(piece, out);
  if (cacheable) {
    std::unique_lock<std::shared_mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::move(key), std::vector<int32_t>(out->begin() + first, out->end()));
  }
}

void Bpe::merge(std::string_view piece, std::vector<int32_t>* out) const {
  std::vector<Symbol> sym;
  sym.reserve(piece.size());
  for (unsigned char b : piece) {
    int32_t id = byte_ids[b];
    if (id < 0) {
      if (unk_id < 0) continue;  // no unk_token: the byte is dropped
      if (fuse_unk && !sym.empty() && sym.back().id == unk_id) continue;
      id = unk_id;
    }
    sym.push_back({id, int32_t(sym.size()) - 1, int32_t(sym.size()) + 1, true});
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  std::vector<Candidate> storage;
  storage.reserve(sym.size());
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue(std::greater<Candidate>(),
                                                                                         std::move(storage));
  auto consider = [&](int32_t pos) {
    const int32_t next = sym[size_t(pos)].next;
    if (next < 0) return;
    if (const MergeTable::Entry* m = merges.find(sym[size_t(pos)].id, sym[size_t(next)].id))
      queue.push({m->rank, pos, m->id});
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = sym[size_t(c.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[size_t(left.next)];
    // Stale candidate: either side has been merged into something else since it was queued.
    const MergeTable::Entry* m = merges.find(left.id, right.id);
    if (!m || m->rank != c.rank || m->id != c.new_id) continue;
    left.id = c.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[size_t(right.next)].prev = c.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) out->push_back(sym[size_t(i)].id);
}

}  // namespace opdev::model::tok
