// Backend tables: every slot of ops.def is filled on ref and cpu; each cpu ISA this machine runs is
// selectable. (Numeric correctness is the conformance suite's job.)
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/backend.h"

namespace {

using namespace opdev;

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
      EXPECT_STREQ(cpu->describe(state), isa);
      cpu->destroy_state(state);
    } catch (const std::exception& e) {
      // Only acceptable when this machine cannot run that ISA.
      EXPECT_NE(std::string(e.what()).find("lacks the instructions"), std::string::npos) << isa << ": " << e.what();
    }
  }
  unsetenv("OPDEV_CPU_ISA");
}

}  // namespace
