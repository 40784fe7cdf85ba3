#include "core/allocator.h"

#include <cstdint>

#include "core/backend.h"
#include "core/error.h"
#include "core/overflow.h"

namespace opdev {

// Allocations are 256-byte aligned (DLPack's recommendation, enough for any vector load).
static constexpr size_t kBlockAlign = 256;

size_t CachingAllocator::round_size(size_t n) {
  if (n == 0) n = 1;
  const size_t unit = n < (1u << 20) ? 512 : (size_t(2) << 20);
  if (n > SIZE_MAX - unit) return 0;
  return (n + unit - 1) / unit * unit;
}

void* CachingAllocator::alloc(size_t nbytes, size_t alignment) {
  if (alignment > kBlockAlign) return nullptr;
  const size_t size = round_size(nbytes);
  if (size == 0) return nullptr;
  // Best fit that wastes at most a quarter of the block.
  auto it = free_.lower_bound(size);
  if (it != free_.end() && it->first - size <= it->first / 4) {
    void* p = it->second;
    size_t s = it->first;
    free_.erase(it);
    cached_bytes_ -= s;
    live_.emplace(p, s);
    live_bytes_ += s;
    return p;
  }
  void* p = backend_->raw_alloc(state_, size);
  if (!p && !free_.empty()) {
    release_cached();
    p = backend_->raw_alloc(state_, size);
  }
  if (!p) return nullptr;
  live_.emplace(p, size);
  live_bytes_ += size;
  return p;
}

void CachingAllocator::free(void* ptr) {
  if (!ptr) return;
  auto it = live_.find(ptr);
  if (it == live_.end()) fail(OPDEV_STATUS_INVALID_ARGUMENT, "ptr: ", ptr, " was not allocated by this context");
  free_.emplace(it->second, ptr);
  cached_bytes_ += it->second;
  live_bytes_ -= it->second;
  live_.erase(it);
}

void CachingAllocator::release_cached() {
  for (auto& [s, p] : free_) backend_->raw_free(state_, p);
  free_.clear();
  cached_bytes_ = 0;
}

CachingAllocator::~CachingAllocator() {
  release_cached();
  for (auto& [p, s] : live_) backend_->raw_free(state_, p);  // blocks the user never freed
}

opdev_allocator CachingAllocator::as_c() {
  opdev_allocator a;
  a.user = this;
  a.alloc = [](void* user, size_t n, size_t align) -> void* { return static_cast<CachingAllocator*>(user)->alloc(n, align); };
  a.free = [](void* user, void* p) {
    try {
      static_cast<CachingAllocator*>(user)->free(p);
    } catch (...) {
    }
  };
  return a;
}

void* ScratchArena::get(size_t nbytes, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) || alignment > kBlockAlign)
    fail(OPDEV_STATUS_INTERNAL, "scratch alignment ", alignment, " is not a power of two <= ", kBlockAlign);
  if (nbytes == 0) nbytes = 1;
  for (Chunk& c : chunks_) {
    size_t start = (c.used + alignment - 1) & ~(alignment - 1);
    if (start <= c.size && nbytes <= c.size - start) {
      c.used = start + nbytes;
      return c.base + start;
    }
  }
  size_t want = nbytes;
  size_t total = 0;
  for (Chunk& c : chunks_) total += c.size;
  if (peak_ > want) want = peak_;
  if (total > want) want = total;  // grow geometrically
  void* p = allocator_->alloc(allocator_->user, want, kBlockAlign);
  if (!p) fail(OPDEV_STATUS_OUT_OF_MEMORY, "could not allocate ", nbytes, " bytes of workspace");
  chunks_.push_back({static_cast<char*>(p), want, nbytes});
  return p;
}

void ScratchArena::reset() {
  size_t used = 0;
  for (Chunk& c : chunks_) used += c.used;
  if (used > peak_) peak_ = used;
  if (chunks_.size() > 1) {
    // Replace the chunks by one that holds the peak, on the next request.
    size_t total = 0;
    for (Chunk& c : chunks_) total += c.size;
    release();
    peak_ = total;
    return;
  }
  for (Chunk& c : chunks_) c.used = 0;
}

void ScratchArena::release() {
  for (Chunk& c : chunks_) allocator_->free(allocator_->user, c.base);
  chunks_.clear();
}

}  // namespace opdev
