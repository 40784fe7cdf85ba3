// The public C API beyond the ops: contexts, options, memory, supports(), the profiler hook, errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "opdev/opdev.hpp"

namespace {

TEST(Api, ContextOptionsAndQueries) {
  opdev_context_options o;
  opdev_context_options_init(&o);
  EXPECT_EQ(o.struct_size, sizeof(o));
  o.num_threads = 3;
  o.deterministic = 1;
  opdev_context* c = nullptr;
  ASSERT_EQ(opdev_context_create("cpu", &o, &c), OPDEV_STATUS_SUCCESS) << opdev_last_error();
  EXPECT_STREQ(opdev_context_backend(c), "cpu");
  EXPECT_EQ(opdev_context_num_threads(c), 3);
  EXPECT_EQ(opdev_context_deterministic(c), 1);
  EXPECT_EQ(opdev_context_set_num_threads(c, 1), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(opdev_context_num_threads(c), 1);
  EXPECT_EQ(opdev_context_set_num_threads(c, -1), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(opdev_last_error()).find("num_threads: expected >= 0, got -1"), std::string::npos);
  EXPECT_EQ(opdev_context_set_deterministic(c, 0), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(opdev_context_deterministic(c), 0);
  EXPECT_NE(opdev_context_describe(c), nullptr);
  opdev_context_destroy(c);
}

TEST(Api, ContextCreateErrors) {
  opdev_context* c = reinterpret_cast<opdev_context*>(0x1);
  EXPECT_EQ(opdev_context_create("tpu", nullptr, &c), OPDEV_STATUS_NOT_FOUND);
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(std::string(opdev_last_error()).find("unknown backend 'tpu'; this build has: ref, cpu"), std::string::npos);
  EXPECT_EQ(opdev_context_create(nullptr, nullptr, &c), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(opdev_context_create("cpu", nullptr, nullptr), OPDEV_STATUS_INVALID_ARGUMENT);
  opdev_context_options o;
  opdev_context_options_init(&o);
  o.struct_size = sizeof(o) + 8;  // a newer struct than this library knows
  EXPECT_EQ(opdev_context_create("cpu", &o, &c), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(opdev_last_error()).find("struct_size"), std::string::npos);
  opdev_context_options_init(&o);
  o.device_id = 1;
  EXPECT_EQ(opdev_context_create("cpu", &o, &c), OPDEV_STATUS_NOT_FOUND);
  opdev_context_options_init(&o);
  opdev_allocator half{};
  half.alloc = [](void*, size_t, size_t) -> void* { return nullptr; };
  o.allocator = &half;
  EXPECT_EQ(opdev_context_create("cpu", &o, &c), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(opdev_last_error()).find("alloc and free must both be set"), std::string::npos);
}

TEST(Api, MemoryRoundTripAndForeignFree) {
  opdev::Context ctx("cpu");
  void* p = nullptr;
  ASSERT_EQ(opdev_malloc(ctx, 1000, &p), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
  std::vector<uint8_t> src(1000), dst(1000, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 7);
  ASSERT_EQ(opdev_memcpy(ctx, p, src.data(), src.size(), OPDEV_MEMCPY_HOST_TO_DEVICE), OPDEV_STATUS_SUCCESS);
  ASSERT_EQ(opdev_memcpy(ctx, dst.data(), p, dst.size(), OPDEV_MEMCPY_DEVICE_TO_HOST), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(src, dst);
  EXPECT_EQ(opdev_free(ctx, p), OPDEV_STATUS_SUCCESS);
  // Freed blocks are cached and reused.
  void* q = nullptr;
  ASSERT_EQ(opdev_malloc(ctx, 900, &q), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(q, p);
  EXPECT_EQ(opdev_free(ctx, q), OPDEV_STATUS_SUCCESS);
  int x = 0;
  EXPECT_EQ(opdev_free(ctx, &x), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(opdev_last_error()).find("was not allocated by this context"), std::string::npos);
  EXPECT_EQ(opdev_memcpy(ctx, nullptr, src.data(), 4, OPDEV_MEMCPY_HOST_TO_DEVICE), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(opdev_memcpy(ctx, dst.data(), src.data(), 4, opdev_memcpy_kind(7)), OPDEV_STATUS_INVALID_ARGUMENT);
  void* huge = nullptr;
  EXPECT_EQ(opdev_malloc(ctx, SIZE_MAX - 100, &huge), OPDEV_STATUS_OUT_OF_MEMORY);
  EXPECT_EQ(huge, nullptr);
}

TEST(Api, CustomAllocatorIsUsedForWorkspaceAndMalloc) {
  struct Counting {
    int allocs = 0, frees = 0;
  } counts;
  opdev_allocator a;
  a.user = &counts;
  a.alloc = [](void* u, size_t n, size_t align) -> void* {
    ++static_cast<Counting*>(u)->allocs;
    return std::aligned_alloc(align < 64 ? 64 : align, (n + 255) / 256 * 256);
  };
  a.free = [](void* u, void* p) {
    ++static_cast<Counting*>(u)->frees;
    std::free(p);
  };
  opdev_context_options o;
  opdev_context_options_init(&o);
  o.allocator = &a;
  opdev_context* c = nullptr;
  ASSERT_EQ(opdev_context_create("cpu", &o, &c), OPDEV_STATUS_SUCCESS);
  void* p = nullptr;
  ASSERT_EQ(opdev_malloc(c, 64, &p), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(counts.allocs, 1);
  ASSERT_EQ(opdev_free(c, p), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(counts.frees, 1);
  opdev_context_destroy(c);
  EXPECT_EQ(counts.allocs, counts.frees);
}

TEST(Api, SupportsAndOpNames) {
  opdev::Context cpu("cpu"), ref("ref");
  for (int i = 0; i < OPDEV_OP_COUNT; ++i) {
    const opdev_op op = opdev_op(i);
    const char* name = opdev_op_name(op);
    ASSERT_NE(name, nullptr);
    EXPECT_EQ(opdev_op_from_name(name), op);
    EXPECT_TRUE(opdev_supports(ref, op, opdev::kFloat32)) << name;
  }
  EXPECT_EQ(opdev_op_name(OPDEV_OP_COUNT), nullptr);
  EXPECT_EQ(opdev_op_from_name("no_such_op"), OPDEV_OP_COUNT);
  EXPECT_TRUE(opdev_supports(ref, OPDEV_OP_RMS_NORM, opdev::kFloat64));
  EXPECT_FALSE(opdev_supports(cpu, OPDEV_OP_RMS_NORM, opdev::kFloat64));
  EXPECT_FALSE(opdev_supports(cpu, OPDEV_OP_RMS_NORM, opdev::kInt32));
  EXPECT_FALSE(opdev_supports(cpu, OPDEV_OP_COUNT, opdev::kFloat32));
  EXPECT_FALSE(opdev_supports(nullptr, OPDEV_OP_RMS_NORM, opdev::kFloat32));
}

TEST(Api, UnsupportedDtypeOnBackendNamesWhatItTakes) {
  opdev::Context cpu("cpu");
  double x[4] = {1, 2, 3, 4}, w[2] = {1, 1}, out[4];
  opdev::TensorRef tx(x, opdev::kFloat64, {2, 2}), tw(w, opdev::kFloat64, {2}), to(out, opdev::kFloat64, {2, 2});
  EXPECT_EQ(opdev_rms_norm(cpu, to, tx, tw, 1e-6), OPDEV_STATUS_UNSUPPORTED_DTYPE);
  EXPECT_STREQ(opdev_last_error(),
               "opdev_rms_norm: backend 'cpu' does not implement rms_norm for dtype float64 (it does: float32, bfloat16, float16)");
  opdev::Context ref("ref");
  EXPECT_EQ(opdev_rms_norm(ref, to, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS) << opdev_last_error();
}

TEST(Api, WrongDeviceIsRejected) {
  opdev::Context cpu("cpu");
  float x[4] = {1, 2, 3, 4}, w[2] = {1, 1}, out[4];
  opdev::TensorRef tx(x, opdev::kFloat32, {2, 2}, {}, DLDevice{kDLCUDA, 0});
  opdev::TensorRef tw(w, opdev::kFloat32, {2}), to(out, opdev::kFloat32, {2, 2});
  EXPECT_EQ(opdev_rms_norm(cpu, to, tx, tw, 1e-6), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_STREQ(opdev_last_error(), "opdev_rms_norm: x: expected a tensor on cpu:0 (the context's device), got cuda:0");
}

TEST(Api, UnknownDtypeIsRejected) {
  opdev::Context cpu("cpu");
  float x[4] = {1, 2, 3, 4}, w[2] = {1, 1}, out[4];
  opdev::TensorRef tx(x, DLDataType{kDLFloat, 32, 4}, {2, 2}), tw(w, opdev::kFloat32, {2}), to(out, opdev::kFloat32, {2, 2});
  EXPECT_EQ(opdev_rms_norm(cpu, to, tx, tw, 1e-6), OPDEV_STATUS_UNSUPPORTED_DTYPE);
  EXPECT_STREQ(opdev_last_error(), "opdev_rms_norm: x: dtype float32x4 is not supported by opdev");
}

struct Recorded {
  int begins = 0, ends = 0;
  std::string op, backend;
  std::vector<std::string> names;
  double bytes = 0, flops = 0;
  opdev_status status = OPDEV_STATUS_INTERNAL;
};

TEST(Api, ProfilerHookSeesEveryValidatedCall) {
  opdev::Context cpu("cpu");
  Recorded rec;
  opdev_profiler p;
  p.user = &rec;
  p.op_begin = [](void* u, const opdev_op_info* info) {
    auto* r = static_cast<Recorded*>(u);
    ++r->begins;
    r->op = opdev_op_name(info->op);
    r->backend = info->backend;
    r->names.clear();
    for (int i = 0; i < info->num_tensors; ++i) r->names.push_back(info->tensor_names[i]);
    r->bytes = info->bytes;
    r->flops = info->flops;
  };
  p.op_end = [](void* u, const opdev_op_info*, opdev_status s) {
    ++static_cast<Recorded*>(u)->ends;
    static_cast<Recorded*>(u)->status = s;
  };
  ASSERT_EQ(opdev_context_set_profiler(cpu, &p), OPDEV_STATUS_SUCCESS);
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[4] = {1, 1, 1, 1}, out[8];
  opdev::TensorRef tx(x, opdev::kFloat32, {2, 4}), tw(w, opdev::kFloat32, {4}), to(out, opdev::kFloat32, {2, 4});
  ASSERT_EQ(opdev_rms_norm(cpu, to, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(rec.begins, 1);
  EXPECT_EQ(rec.ends, 1);
  EXPECT_EQ(rec.status, OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(rec.op, "rms_norm");
  EXPECT_EQ(rec.backend, "cpu");
  EXPECT_EQ(rec.names, (std::vector<std::string>{"out", "x", "weight"}));
  EXPECT_EQ(rec.bytes, 4.0 * (8 + 8 + 4));  // read x and weight, write out
  EXPECT_GT(rec.flops, 0);
  // A call that fails validation never reaches the hook.
  EXPECT_NE(opdev_rms_norm(cpu, to, tx, tw, -1.0), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(rec.begins, 1);
  ASSERT_EQ(opdev_context_set_profiler(cpu, nullptr), OPDEV_STATUS_SUCCESS);
  ASSERT_EQ(opdev_rms_norm(cpu, to, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(rec.begins, 1);
}

TEST(Api, ProfilerHookSeesOutputsScalarsLabelAndCallIndex) {
  opdev::Context cpu("cpu");
  struct Seen {
    int num_outputs = -1;
    std::vector<std::pair<std::string, double>> scalars;
    std::string label;
    std::vector<uint64_t> calls;
  } seen;
  opdev_profiler p{};
  p.user = &seen;
  p.op_begin = [](void* u, const opdev_op_info* info) {
    auto* s = static_cast<Seen*>(u);
    ASSERT_GE(info->struct_size, sizeof(opdev_op_info));
    s->num_outputs = info->num_outputs;
    s->scalars.clear();
    for (int i = 0; i < info->num_scalars; ++i) s->scalars.emplace_back(info->scalars[i].name, info->scalars[i].value);
    s->label = info->label;
    s->calls.push_back(info->call_index);
  };
  ASSERT_EQ(opdev_context_set_profiler(cpu, &p), OPDEV_STATUS_SUCCESS);
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r[8] = {0}, w[4] = {1, 1, 1, 1}, out[8], rout[8];
  opdev::TensorRef tx(x, opdev::kFloat32, {2, 4}), tr(r, opdev::kFloat32, {2, 4}), tw(w, opdev::kFloat32, {4}),
      to(out, opdev::kFloat32, {2, 4}), tro(rout, opdev::kFloat32, {2, 4});
  EXPECT_STREQ(opdev_context_label(cpu), "");
  ASSERT_EQ(opdev_context_set_label(cpu, "layers.7.input_layernorm"), OPDEV_STATUS_SUCCESS);
  ASSERT_EQ(opdev_add_rms_norm(cpu, to, tro, tx, tr, tw, 0.25), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(seen.num_outputs, 2);  // out and residual_out
  EXPECT_EQ(seen.scalars, (std::vector<std::pair<std::string, double>>{{"eps", 0.25}}));
  EXPECT_EQ(seen.label, "layers.7.input_layernorm");
  ASSERT_EQ(opdev_context_set_label(cpu, nullptr), OPDEV_STATUS_SUCCESS);
  ASSERT_EQ(opdev_rms_norm(cpu, to, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(seen.num_outputs, 1);
  EXPECT_EQ(seen.label, "");
  EXPECT_EQ(seen.calls, (std::vector<uint64_t>{0, 1}));
}

TEST(Api, ErrorsNameTheContextLabel) {
  opdev::Context cpu("cpu");
  float x[4] = {1, 2, 3, 4}, w[2] = {1, 1}, out[4];
  opdev::TensorRef tx(x, opdev::kFloat32, {2, 2}), tw(w, opdev::kFloat32, {2}), to(out, opdev::kFloat32, {2, 2});
  ASSERT_EQ(opdev_context_set_label(cpu, "layers.3.self_attn.q_norm"), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(opdev_rms_norm(cpu, to, tx, tw, -1.0), OPDEV_STATUS_INVALID_ARGUMENT);
  const std::string msg = opdev_last_error();
  EXPECT_EQ(msg.rfind("opdev_rms_norm: eps: ", 0), 0u) << msg;
  EXPECT_NE(msg.find(" (at layers.3.self_attn.q_norm)"), std::string::npos) << msg;
  // Errors outside op calls carry no stale label.
  EXPECT_NE(opdev_malloc(cpu, 16, nullptr), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(std::string(opdev_last_error()).find("(at "), std::string::npos) << opdev_last_error();
}

TEST(Api, LastErrorIsPerThreadAndClearedBySuccess) {
  opdev::Context cpu("cpu");
  float x[4] = {1, 2, 3, 4}, w[2] = {1, 1}, out[4];
  opdev::TensorRef tx(x, opdev::kFloat32, {2, 2}), tw(w, opdev::kFloat32, {2}), to(out, opdev::kFloat32, {2, 2});
  EXPECT_NE(opdev_rms_norm(cpu, to, nullptr, tw, 1e-6), OPDEV_STATUS_SUCCESS);
  const std::string mine = opdev_last_error();
  std::string other = "unset";
  std::thread t([&] { other = opdev_last_error(); });
  t.join();
  EXPECT_EQ(other, "");
  EXPECT_EQ(std::string(opdev_last_error()), mine);
  EXPECT_EQ(opdev_rms_norm(cpu, to, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
  EXPECT_STREQ(opdev_last_error(), "");
}

TEST(Api, CppCheckThrowsWithStatusAndMessage) {
  try {
    opdev::Context c("nope");
    FAIL() << "expected a throw";
  } catch (const opdev::StatusError& e) {
    EXPECT_EQ(e.status(), OPDEV_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("OPDEV_STATUS_NOT_FOUND: opdev_context_create: backend: unknown backend 'nope'"),
              std::string::npos);
  }
}

TEST(Api, EnvironmentSelectsThreadsAndRejectsGarbage) {
  setenv("OPDEV_NUM_THREADS", "3", 1);
  {
    opdev::Context c("cpu");
    EXPECT_EQ(opdev_context_num_threads(c), 3);
  }
  setenv("OPDEV_NUM_THREADS", "three", 1);
  opdev_context* c = nullptr;
  EXPECT_EQ(opdev_context_create("cpu", nullptr, &c), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(opdev_last_error()).find("OPDEV_NUM_THREADS='three' is not an integer"), std::string::npos);
  unsetenv("OPDEV_NUM_THREADS");
  setenv("OPDEV_CPU_ISA", "sse9", 1);
  EXPECT_EQ(opdev_context_create("cpu", nullptr, &c), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(opdev_last_error()).find("OPDEV_CPU_ISA='sse9' is not one of this build's cpu kernels"), std::string::npos);
  setenv("OPDEV_CPU_ISA", "generic", 1);
  ASSERT_EQ(opdev_context_create("cpu", nullptr, &c), OPDEV_STATUS_SUCCESS);
  EXPECT_STREQ(opdev_context_describe(c), "generic");
  opdev_context_destroy(c);
  unsetenv("OPDEV_CPU_ISA");
}

}  // namespace
