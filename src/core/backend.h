// A backend is a table: device/memory slots plus one function pointer per op of include/opdev/ops.def,
// filled with designated-style comments and registered explicitly in core/registry.cpp (no weak symbols).
// Front-ends validate; backend ops trust their arguments. A backend op returns a status or throws
// opdev::Error; either way the front-end reports it.
#pragma once

#include <cstddef>

#include "core/dtype.h"
#include "ops/op_args.h"

namespace opdev {

// What a backend op sees of the context.
struct ExecContext {
  opdev_context* ctx;
  void* state;          // the backend's per-context state (create_state)
  int num_threads;      // host threads to use
  bool deterministic;   // bitwise-reproducible results required
  // Scratch memory on the context's device, valid until the op returns. Throws on failure.
  void* scratch(size_t nbytes, size_t alignment = 64);
};

struct BackendOps {
#define OPDEV_OP(ID, name) opdev_status (*name)(ExecContext& ex, const name##_args& a);
#include "opdev/ops.def"
#undef OPDEV_OP
};

struct Backend {
  const char* name;
  DLDeviceType device_type;
  // Can a context be created for device_id on this machine? (required)
  bool (*available)(int device_id);
  // Per-context state (optional: NULL means no state).
  opdev_status (*create_state)(int device_id, void** state);
  void (*destroy_state)(void* state);
  // Does this backend implement op with this activation dtype? (required)
  bool (*supports)(opdev_op op, DType dtype);
  // Raw device memory, behind the context's caching allocator (required).
  void* (*raw_alloc)(void* state, size_t nbytes);
  void (*raw_free)(void* state, void* ptr);
  opdev_status (*memcpy)(void* state, void* dst, const void* src, size_t nbytes, opdev_memcpy_kind kind);
  // Waits for queued work (optional: NULL for synchronous host backends).
  opdev_status (*synchronize)(void* state);
  // Short description of the context's configuration, e.g. the cpu ISA "avx512" (optional).
  const char* (*describe)(void* state);
  BackendOps ops;
};

// Registered backends, in order ("ref", "cpu", "cuda" when built).
int backend_count();
const Backend* backend_at(int index);
const Backend* find_backend(const char* name);

// Host-memory slots shared by the host backends (ref, cpu). host_raw_alloc returns blocks of
// kHostHugePage bytes and more aligned to kHostHugePage and advised for transparent huge pages (unless
// OPDEV_HUGE_PAGES=0, see host_huge_pages), smaller ones 256-byte aligned; nullptr when out of memory.
constexpr size_t kHostHugePage = size_t(2) << 20;
bool host_huge_pages();
void* host_raw_alloc(void* state, size_t nbytes);
void host_raw_free(void* state, void* ptr);
opdev_status host_memcpy(void* state, void* dst, const void* src, size_t nbytes, opdev_memcpy_kind kind);
bool host_available(int device_id);

}  // namespace opdev
