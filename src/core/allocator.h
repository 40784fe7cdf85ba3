// Caching allocator over a backend's raw device allocation (like PyTorch's / dipu's): freed blocks are
// kept by rounded size and reused, so steady-state op calls never reach cudaMalloc / malloc. Plus the
// scratch arena that ops draw workspace from.
#pragma once

#include <cstddef>
#include <map>
#include <unordered_map>
#include <vector>

#include "opdev/opdev.h"

namespace opdev {

struct Backend;

class CachingAllocator {
 public:
  CachingAllocator(const Backend* backend, void* state) : backend_(backend), state_(state) {}
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // nullptr when the device is out of memory (after releasing the cache and retrying once).
  void* alloc(size_t nbytes, size_t alignment);
  void free(void* ptr);
  void release_cached();
  size_t cached_bytes() const { return cached_bytes_; }
  size_t live_bytes() const { return live_bytes_; }

  // The C-ABI view of this allocator.
  opdev_allocator as_c();

 private:
  static size_t round_size(size_t n);
  const Backend* backend_;
  void* state_;
  std::multimap<size_t, void*> free_;       // rounded size -> block
  std::unordered_map<void*, size_t> live_;  // block -> rounded size
  size_t cached_bytes_ = 0, live_bytes_ = 0;
};

// Bump arena for per-op scratch. Chunks come from the context's allocator; reset() after each op keeps
// one chunk big enough for the largest op seen, so steady state is a single allocation.
class ScratchArena {
 public:
  ScratchArena() = default;
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;
  void bind(const opdev_allocator* allocator) { allocator_ = allocator; }
  void* get(size_t nbytes, size_t alignment);  // throws opdev::Error on failure
  void reset();
  void release();

 private:
  struct Chunk {
    char* base;
    size_t size, used;
  };
  const opdev_allocator* allocator_ = nullptr;
  std::vector<Chunk> chunks_;
  size_t peak_ = 0;
};

}  // namespace opdev
