// The context: a backend bound to a device, plus threads, determinism, allocator, scratch and profiler.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/allocator.h"
#include "core/backend.h"

namespace opdev::profile {
class Recorder;
}

struct opdev_context {
  const opdev::Backend* backend = nullptr;
  void* state = nullptr;  // backend-private
  DLDevice device{kDLCPU, 0};
  int num_threads = 1;
  bool deterministic = false;
  std::unique_ptr<opdev::CachingAllocator> caching;  // the default allocator
  opdev_allocator allocator{};                        // user's or caching->as_c()
  opdev::ScratchArena scratch;
  // What dispatch() calls around an op: the user's hook, or a recorder (which calls the user's hook too).
  bool has_profiler = false;
  opdev_profiler profiler{};
  bool has_user_profiler = false;  // opdev_context_set_profiler
  opdev_profiler user_profiler{};
  opdev::profile::Recorder* recorder = nullptr;  // the profile recording this context (src/profile/)
  opdev_profile* env_profile = nullptr;          // owned: the profile OPDEV_PROFILE started at creation
  std::string env_profile_dir;                   // where env_profile is written at destruction
  std::string label;         // opdev_context_set_label: reaches the profiler hook and error messages
  uint64_t call_index = 0;   // validated op calls so far (opdev_op_info::call_index)
};

namespace opdev {
// Host cores available to this process (CPU affinity), at least 1.
int available_cores();
// Points ctx->profiler at what should run around each op (recorder, user hook, or nothing) after either
// changed.
void refresh_profiler(opdev_context* ctx);
}  // namespace opdev
