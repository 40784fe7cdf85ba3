// Philox4x32-10 (the sampler's counter-based RNG), both independent copies (ref and cpu), against the
// Random123 known-answer vectors (kat_vectors in the Random123 distribution).
#include <gtest/gtest.h>

#include "backends/cpu/philox.h"
#include "backends/ref/philox.h"

namespace {

struct Kat {
  uint32_t ctr[4], key[2], out[4];
};
const Kat kKats[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}};

TEST(Philox4x32_10, RefKnownAnswers) {
  for (const Kat& k : kKats) {
    auto w = opdev::ref::philox4x32_10({k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}, {k.key[0], k.key[1]});
    for (int i = 0; i < 4; ++i) EXPECT_EQ(w[i], k.out[i]) << "word " << i;
  }
}

TEST(Philox4x32_10, CpuKnownAnswers) {
  for (const Kat& k : kKats) {
    auto w = opdev::cpu::philox4x32_10(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(w.w[i], k.out[i]) << "word " << i;
  }
}

}  // namespace
