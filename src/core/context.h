// The context: a backend bound to a device, plus threads, determinism, allocator, scratch and profiler.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

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
  std::string label;         // opdev_context_set_label: reaches the profiler hook and error messages
  uint64_t call_index = 0;   // validated op calls so far (opdev_op_info::call_index)
};

namespace opdev {
// Host cores available to this process (CPU affinity), at least 1.
int available_cores();
}  // namespace opdev
