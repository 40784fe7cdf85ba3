// Explicit backend registration: every backend compiled in is listed here, in order.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/backend.h"
#include "core/error.h"

namespace opdev {

const Backend& ref_backend();
const Backend& cpu_backend();
#ifdef OPDEV_WITH_CUDA
const Backend& cuda_backend();
#endif

namespace {
const Backend* const* table(int* n) {
  static const Backend* const backends[] = {
      &ref_backend(),
      &cpu_backend(),
#ifdef OPDEV_WITH_CUDA
      &cuda_backend(),
#endif
  };
  *n = int(sizeof(backends) / sizeof(backends[0]));
  return backends;
}
}  // namespace

int backend_count() {
  int n;
  table(&n);
  return n;
}

const Backend* backend_at(int index) {
  int n;
  const Backend* const* t = table(&n);
  return index >= 0 && index < n ? t[index] : nullptr;
}

const Backend* find_backend(const char* name) {
  int n;
  const Backend* const* t = table(&n);
  for (int i = 0; i < n; ++i)
    if (std::strcmp(t[i]->name, name) == 0) return t[i];
  return nullptr;
}

bool host_huge_pages() {
  static const bool on = [] {
    const char* v = std::getenv("OPDEV_HUGE_PAGES");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

// Blocks of 2 MiB and more (weights, KV caches, large activations: the caching allocator rounds them to
// 2 MiB units) are 2 MiB-aligned and advised for transparent huge pages, so that streaming them (a
// decode step reads every weight once) walks one page-table entry per 2 MiB instead of 512. Measured on
// the Zen 5 VM (bf16 gemv over 1136 MiB of weights, 2 MiB pages against 4 KiB pages, alternated,
// docs/PERFORMANCE.md "Huge pages for host blocks"): 1.03x at 2 threads, 1.04x at 1 thread (medians).
// Smaller blocks stay 256-byte aligned. OPDEV_HUGE_PAGES=0 turns the advice off.
void* host_raw_alloc(void*, size_t nbytes) {
  if (nbytes > SIZE_MAX - (kHostHugePage - 1)) return nullptr;  // the rounding below would wrap to a tiny block
  if (nbytes >= kHostHugePage && host_huge_pages()) {
    const size_t size = (nbytes + kHostHugePage - 1) / kHostHugePage * kHostHugePage;
    void* p = std::aligned_alloc(kHostHugePage, size);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, size, MADV_HUGEPAGE);  // advice only: failure (no THP in this kernel) changes nothing
#endif
    return p;
  }
  return std::aligned_alloc(256, (nbytes + 255) / 256 * 256);
}
void host_raw_free(void*, void* ptr) { std::free(ptr); }
bool host_available(int device_id) { return device_id == 0; }

opdev_status host_memcpy(void*, void* dst, const void* src, size_t nbytes, opdev_memcpy_kind) {
  std::memmove(dst, src, nbytes);
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev

using namespace opdev;

extern "C" {

OPDEV_API int opdev_backend_count(void) { return backend_count(); }
OPDEV_API const char* opdev_backend_name(int index) {
  const Backend* b = backend_at(index);
  return b ? b->name : nullptr;
}
OPDEV_API int opdev_backend_available(const char* name) {
  if (!name) return 0;
  const Backend* b = find_backend(name);
  return b && b->available(0) ? 1 : 0;
}

OPDEV_API const char* opdev_op_name(opdev_op op) {
  static const char* const names[] = {
#define OPDEV_OP(ID, name) #name,
#include "opdev/ops.def"
#undef OPDEV_OP
  };
  return int(op) >= 0 && op < OPDEV_OP_COUNT ? names[op] : nullptr;
}

OPDEV_API opdev_op opdev_op_from_name(const char* name) {
  if (!name) return OPDEV_OP_COUNT;
  for (int i = 0; i < OPDEV_OP_COUNT; ++i)
    if (std::strcmp(opdev_op_name(opdev_op(i)), name) == 0) return opdev_op(i);
  return OPDEV_OP_COUNT;
}

OPDEV_API void opdev_version(int* major, int* minor, int* patch) {
  if (major) *major = OPDEV_VERSION_MAJOR;
  if (minor) *minor = OPDEV_VERSION_MINOR;
  if (patch) *patch = OPDEV_VERSION_PATCH;
}

#define OPDEV_STR2(x) #x
#define OPDEV_STR(x) OPDEV_STR2(x)
OPDEV_API const char* opdev_version_string(void) {
  return OPDEV_STR(OPDEV_VERSION_MAJOR) "." OPDEV_STR(OPDEV_VERSION_MINOR) "." OPDEV_STR(OPDEV_VERSION_PATCH);
}

}  // extern "C"
