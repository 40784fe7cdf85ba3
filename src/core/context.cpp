// C API: contexts, device memory, supports(), profiler hook (and OPDEV_PROFILE, through src/profile/).
#include "core/context.h"

#include <sched.h>

#include <cstring>
#include <thread>

#include "core/env.h"
#include "core/error.h"
#include "core/logging.h"
#include "profile/profile.h"
#include "profile/recorder.h"

namespace opdev {

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

void refresh_profiler(opdev_context* ctx) {
  if (ctx->recorder) {
    ctx->profiler = ctx->recorder->hook();  // calls the user's hook too
    ctx->has_profiler = true;
  } else if (ctx->has_user_profiler) {
    ctx->profiler = ctx->user_profiler;
    ctx->has_profiler = true;
  } else {
    ctx->profiler = opdev_profiler{};
    ctx->has_profiler = false;
  }
}

void* ExecContext::scratch(size_t nbytes, size_t alignment) { return ctx->scratch.get(nbytes, alignment); }

static int default_threads() {
  long n = env_int("OPDEV_NUM_THREADS", 0);
  if (n < 0) fail(OPDEV_STATUS_INVALID_ARGUMENT, "environment variable OPDEV_NUM_THREADS=", n, " must be >= 0");
  return n > 0 ? int(n) : available_cores();
}

static void check_ctx(const opdev_context* ctx) {
  if (!ctx) fail(OPDEV_STATUS_INVALID_ARGUMENT, "ctx: expected a context, got NULL");
}

}  // namespace opdev

using namespace opdev;

extern "C" {

OPDEV_API void opdev_context_options_init(opdev_context_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
}

OPDEV_API opdev_status opdev_context_create(const char* backend, const opdev_context_options* options, opdev_context** out_ctx) {
  return api_call("opdev_context_create", [&] {
    if (!out_ctx) fail(OPDEV_STATUS_INVALID_ARGUMENT, "out_ctx: expected a pointer, got NULL");
    *out_ctx = nullptr;
    if (!backend) fail(OPDEV_STATUS_INVALID_ARGUMENT, "backend: expected a backend name, got NULL");
    opdev_context_options opts;
    opdev_context_options_init(&opts);
    if (options) {
      if (options->struct_size < sizeof(size_t) || options->struct_size > sizeof(opts))
        fail(OPDEV_STATUS_INVALID_ARGUMENT, "options: struct_size ", options->struct_size, " is not a known opdev_context_options size (",
             sizeof(opts), "); call opdev_context_options_init first");
      std::memcpy(&opts, options, options->struct_size);
    }
    const Backend* be = find_backend(backend);
    if (!be) {
      std::string names;
      for (int i = 0; i < backend_count(); ++i) names += cat(i ? ", " : "", backend_at(i)->name);
      fail(OPDEV_STATUS_NOT_FOUND, "backend: unknown backend '", backend, "'; this build has: ", names);
    }
    if (opts.device_id < 0) fail(OPDEV_STATUS_INVALID_ARGUMENT, "options.device_id: expected >= 0, got ", opts.device_id);
    if (opts.num_threads < 0) fail(OPDEV_STATUS_INVALID_ARGUMENT, "options.num_threads: expected >= 0, got ", opts.num_threads);
    if (opts.allocator && (!opts.allocator->alloc || !opts.allocator->free))
      fail(OPDEV_STATUS_INVALID_ARGUMENT, "options.allocator: alloc and free must both be set");
    if (!be->available(opts.device_id))
      fail(OPDEV_STATUS_NOT_FOUND, "backend: '", backend, "' has no device ", opts.device_id, " on this machine");
    auto ctx = std::make_unique<opdev_context>();
    ctx->backend = be;
    ctx->device = DLDevice{be->device_type, be->device_type == kDLCPU ? 0 : opts.device_id};
    ctx->num_threads = opts.num_threads > 0 ? opts.num_threads : default_threads();
    ctx->deterministic = opts.deterministic != 0 || env_int("OPDEV_DETERMINISTIC", 0) != 0;
    if (be->create_state) {
      opdev_status s = be->create_state(opts.device_id, &ctx->state);
      if (s != OPDEV_STATUS_SUCCESS) return s;
    }
    ctx->caching = std::make_unique<CachingAllocator>(be, ctx->state);
    ctx->allocator = opts.allocator ? *opts.allocator : ctx->caching->as_c();
    ctx->scratch.bind(&ctx->allocator);
    log(LogLevel::Info, "context created: backend ", be->name, ", device ", ctx->device.device_id, ", threads ", ctx->num_threads,
        ctx->deterministic ? ", deterministic" : "");
    // OPDEV_PROFILE=DIR: record from creation. On failure the context is destroyed like any other.
    struct Guard {
      std::unique_ptr<opdev_context>& c;
      ~Guard() {
        if (c) opdev_context_destroy(c.release());
      }
    } guard{ctx};
    profile::start_env_profile(ctx.get());
    *out_ctx = ctx.release();
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API void opdev_context_destroy(opdev_context* ctx) {
  if (!ctx) return;
  profile::finish_env_profile(ctx);  // OPDEV_PROFILE: write DIR/ctx-<n> (errors are logged)
  if (ctx->recorder) ctx->recorder->detach();  // an opdev_profile outlives its context
  ctx->scratch.release();
  ctx->caching.reset();
  if (ctx->backend->destroy_state) ctx->backend->destroy_state(ctx->state);
  delete ctx;
}

OPDEV_API const char* opdev_context_backend(const opdev_context* ctx) { return ctx ? ctx->backend->name : nullptr; }
OPDEV_API const char* opdev_context_describe(const opdev_context* ctx) {
  if (!ctx) return nullptr;
  return ctx->backend->describe ? ctx->backend->describe(ctx->state) : "";
}
OPDEV_API DLDevice opdev_context_device(const opdev_context* ctx) { return ctx ? ctx->device : DLDevice{kDLCPU, 0}; }
OPDEV_API int opdev_context_num_threads(const opdev_context* ctx) { return ctx ? ctx->num_threads : 0; }
OPDEV_API int opdev_context_deterministic(const opdev_context* ctx) { return ctx ? int(ctx->deterministic) : 0; }

OPDEV_API opdev_status opdev_context_set_num_threads(opdev_context* ctx, int num_threads) {
  return api_call("opdev_context_set_num_threads", [&] {
    check_ctx(ctx);
    if (num_threads < 0) fail(OPDEV_STATUS_INVALID_ARGUMENT, "num_threads: expected >= 0, got ", num_threads);
    ctx->num_threads = num_threads > 0 ? num_threads : default_threads();
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API opdev_status opdev_context_set_deterministic(opdev_context* ctx, int deterministic) {
  return api_call("opdev_context_set_deterministic", [&] {
    check_ctx(ctx);
    ctx->deterministic = deterministic != 0;
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API int opdev_supports(const opdev_context* ctx, opdev_op op, DLDataType dtype) {
  if (!ctx || int(op) < 0 || op >= OPDEV_OP_COUNT) return 0;
  DType d = dtype_from_dl(dtype);
  if (d == DType::Unknown) return 0;
  return ctx->backend->supports(op, d) ? 1 : 0;
}

OPDEV_API opdev_status opdev_synchronize(opdev_context* ctx) {
  return api_call("opdev_synchronize", [&] {
    check_ctx(ctx);
    return ctx->backend->synchronize ? ctx->backend->synchronize(ctx->state) : OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API opdev_status opdev_malloc(opdev_context* ctx, size_t nbytes, void** out_ptr) {
  return api_call("opdev_malloc", [&] {
    check_ctx(ctx);
    if (!out_ptr) fail(OPDEV_STATUS_INVALID_ARGUMENT, "out_ptr: expected a pointer, got NULL");
    *out_ptr = nullptr;
    void* p = ctx->allocator.alloc(ctx->allocator.user, nbytes, 256);
    if (!p) fail(OPDEV_STATUS_OUT_OF_MEMORY, "nbytes: could not allocate ", nbytes, " bytes on ", ctx->backend->name, " device ", ctx->device.device_id);
    *out_ptr = p;
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API opdev_status opdev_free(opdev_context* ctx, void* ptr) {
  return api_call("opdev_free", [&] {
    check_ctx(ctx);
    if (ctx->allocator.user == ctx->caching.get()) ctx->caching->free(ptr);  // reports foreign pointers
    else ctx->allocator.free(ctx->allocator.user, ptr);
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API opdev_status opdev_memcpy(opdev_context* ctx, void* dst, const void* src, size_t nbytes, opdev_memcpy_kind kind) {
  return api_call("opdev_memcpy", [&] {
    check_ctx(ctx);
    if (nbytes == 0) return OPDEV_STATUS_SUCCESS;
    if (!dst) fail(OPDEV_STATUS_INVALID_ARGUMENT, "dst: expected a pointer, got NULL");
    if (!src) fail(OPDEV_STATUS_INVALID_ARGUMENT, "src: expected a pointer, got NULL");
    if (kind != OPDEV_MEMCPY_HOST_TO_DEVICE && kind != OPDEV_MEMCPY_DEVICE_TO_HOST && kind != OPDEV_MEMCPY_DEVICE_TO_DEVICE)
      fail(OPDEV_STATUS_INVALID_ARGUMENT, "kind: expected an opdev_memcpy_kind, got ", int(kind));
    return ctx->backend->memcpy(ctx->state, dst, src, nbytes, kind);
  });
}

OPDEV_API opdev_status opdev_context_set_label(opdev_context* ctx, const char* label) {
  return api_call("opdev_context_set_label", [&] {
    check_ctx(ctx);
    ctx->label = label ? label : "";
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API const char* opdev_context_label(const opdev_context* ctx) { return ctx ? ctx->label.c_str() : ""; }

OPDEV_API opdev_status opdev_context_set_profiler(opdev_context* ctx, const opdev_profiler* profiler) {
  return api_call("opdev_context_set_profiler", [&] {
    check_ctx(ctx);
    ctx->user_profiler = profiler ? *profiler : opdev_profiler{};
    ctx->has_user_profiler = profiler != nullptr;
    refresh_profiler(ctx);
    return OPDEV_STATUS_SUCCESS;
  });
}

}  // extern "C"
