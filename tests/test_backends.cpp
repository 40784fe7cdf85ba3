// Backend tables: every slot of ops.def is filled on ref and cpu; each cpu ISA this machine runs is
// selectable, and so is the bf16 gemm kernel of the avx512 kernels; the cuda attention's P V mode. (Numeric correctness is the conformance
// suite's job: ctest runs it with each bf16 gemm kernel, conformance_cpu_bf16_gemm_*.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "backends/cpu/tuning.h"
#include "core/backend.h"

namespace {

using namespace opdev;

// A context state of backend b under the current environment: its describe() text (after `check(state,
// text)` where given), or "error: <message>" when create_state refuses.
std::string describe_state(const Backend* b, const std::function<void(void*, const std::string&)>& check = {}) {
  void* state = nullptr;
  std::string d;
  try {
    if (b->create_state(0, &state) == OPDEV_STATUS_SUCCESS) {
      d = b->describe(state);
      if (check) check(state, d);
      b->destroy_state(state);
    }
  } catch (const std::exception& e) {
    d = std::string("error: ") + e.what();
  }
  return d;
}

TEST(Backends, RegisteredInOrderWithEveryOpSlot) {
  ASSERT_GE(backend_count(), 2);
  EXPECT_STREQ(backend_at(0)->name, "ref");
  EXPECT_STREQ(backend_at(1)->name, "cpu");
  EXPECT_EQ(backend_at(backend_count()), nullptr);
  EXPECT_EQ(find_backend("nope"), nullptr);
  for (const char* name : {"ref", "cpu"}) {
    const Backend* b = find_backend(name);
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(b->available(0));
    EXPECT_FALSE(b->available(1));
    EXPECT_NE(b->supports, nullptr);
    EXPECT_NE(b->raw_alloc, nullptr);
    EXPECT_NE(b->memcpy, nullptr);
#define OPDEV_OP(ID, op) EXPECT_NE(b->ops.op, nullptr) << name << " lacks " #op;
#include "opdev/ops.def"
#undef OPDEV_OP
  }
}

TEST(Backends, CpuIsaSelection) {
  const Backend* cpu = find_backend("cpu");
  for (const char* isa : {"generic", "avx2", "avx512"}) {
    setenv("OPDEV_CPU_ISA", isa, 1);
    void* state = nullptr;
    try {
      ASSERT_EQ(cpu->create_state(0, &state), OPDEV_STATUS_SUCCESS);
      // The ISA's name, then (avx512) the bf16 gemm kernel: "avx512, bf16 gemm pairs".
      const std::string d = cpu->describe(state);
      EXPECT_EQ(d.substr(0, d.find(',')), isa);
      EXPECT_EQ(d.find("bf16 gemm") != std::string::npos, std::string(isa) == "avx512") << d;
      cpu->destroy_state(state);
    } catch (const std::exception& e) {
      // Only acceptable when this machine cannot run that ISA.
      EXPECT_NE(std::string(e.what()).find("lacks the instructions"), std::string::npos) << isa << ": " << e.what();
    }
  }
  unsetenv("OPDEV_CPU_ISA");
}

// OPDEV_CPU_BF16_GEMM picks the kernel of the avx512 bf16 gemm; unset, the CPU's vendor does (Fma on Intel,
// Pairs elsewhere); anything else is refused with an error naming the variable and the choices.
TEST(Backends, CpuBf16GemmSelection) {
  const Backend* cpu = find_backend("cpu");
  auto state_for = [&](const char* isa, const char* choice) -> std::string {
    setenv("OPDEV_CPU_ISA", isa, 1);
    if (choice) setenv("OPDEV_CPU_BF16_GEMM", choice, 1);
    else unsetenv("OPDEV_CPU_BF16_GEMM");
    const std::string d = describe_state(cpu, [](void* state, const std::string& text) {
      // What describe() says is what the kernels read (ISAs without vdpbf16ps only have Fma).
      EXPECT_EQ(cpu::tuning(ExecContext{nullptr, state, 1, false}).bf16_gemm,
                text.find("bf16 gemm pairs") != std::string::npos ? cpu::Bf16Gemm::Pairs : cpu::Bf16Gemm::Fma);
    });
    unsetenv("OPDEV_CPU_ISA");
    unsetenv("OPDEV_CPU_BF16_GEMM");
    return d;
  };
  const std::string bad = state_for("generic", "amx");
  EXPECT_NE(bad.find("OPDEV_CPU_BF16_GEMM='amx'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("pairs"), std::string::npos) << bad;
  EXPECT_EQ(state_for("generic", "fma"), "generic");  // no vdpbf16ps there: nothing to choose
  if (state_for("avx512", nullptr).rfind("error", 0) == 0) GTEST_SKIP() << "this CPU does not run the avx512 kernels";
  EXPECT_EQ(state_for("avx512", "pairs"), "avx512, bf16 gemm pairs");
  EXPECT_EQ(state_for("avx512", "fma"), "avx512, bf16 gemm fma");
#if defined(__x86_64__)
  __builtin_cpu_init();
  EXPECT_EQ(state_for("avx512", nullptr), __builtin_cpu_is("intel") ? "avx512, bf16 gemm fma" : "avx512, bf16 gemm pairs");
#endif
}

// OPDEV_CUDA_ATTN_P picks the P V product of the cuda tensor-core attention (rounded, the default, or
// split); anything else is refused before the device is opened, so this runs without a GPU too. With a GPU,
// describe() names the mode.
TEST(Backends, CudaAttnPSelection) {
  const Backend* cuda = find_backend("cuda");
  if (!cuda) GTEST_SKIP() << "this build has no cuda backend";
  auto state_for = [&](const char* choice) -> std::string {
    if (choice) setenv("OPDEV_CUDA_ATTN_P", choice, 1);
    else unsetenv("OPDEV_CUDA_ATTN_P");
    const std::string d = describe_state(cuda);
    unsetenv("OPDEV_CUDA_ATTN_P");
    return d;
  };
  const std::string bad = state_for("exact");
  EXPECT_NE(bad.find("OPDEV_CUDA_ATTN_P='exact'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("rounded"), std::string::npos) << bad;
  EXPECT_NE(bad.find("split"), std::string::npos) << bad;
  const bool gpu = cuda->available(0);
  for (const char* choice : {"rounded", "split"}) {
    const std::string d = state_for(choice);
    if (gpu) EXPECT_NE(d.find(std::string("attention P ") + choice), std::string::npos) << d;
    else EXPECT_NE(d.find("no CUDA device"), std::string::npos) << choice << ": " << d;  // got past the variable
  }
  if (gpu) EXPECT_NE(state_for(nullptr).find("attention P rounded"), std::string::npos);
}

}  // namespace
