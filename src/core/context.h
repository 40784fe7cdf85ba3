// The context: a backend bound to a device, plus threads, determinism, allocator, scratch and profiler.
#pragma once

#include <memory>

#include "core/allocator.h"
#include "core/backend.h"

struct opdev_context {
  const opdev::Backend* backend = nullptr;
  void* state = nullptr;  // backend-private
  DLDevice device{kDLCPU, 0};
  int num_threads = 1;
  bool deterministic = false;
  std::unique_ptr<opdev::CachingAllocator> caching;  // the default allocator
  opdev_allocator allocator{};                        // user's or caching->as_c()
  opdev::ScratchArena scratch;
  bool has_profiler = false;
  opdev_profiler profiler{};
};

namespace opdev {
// Host cores available to this process (CPU affinity), at least 1.
int available_cores();
}  // namespace opdev
