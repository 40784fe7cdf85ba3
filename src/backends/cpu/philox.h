// Philox4x32-10, the cpu backend's copy (independent of the ref backend's). Scalar: opdev_sample draws one
// word per kept token. Internal linkage on purpose: this header is compiled once per ISA.
#pragma once

#include <cstdint>

namespace opdev::cpu {
namespace {

struct Philox4x32 {
  uint32_t w[4];
};

// Philox4x32-10 with counter (c0, c1, c2, c3) and key (k0, k1).
inline Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
#define OPDEV_PHILOX_ROUND                                      \
  {                                                             \
    const uint64_t p0 = uint64_t(kM0) * c0;                     \
    const uint64_t p1 = uint64_t(kM1) * c2;                     \
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;           \
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;           \
    c1 = uint32_t(p1);                                          \
    c3 = uint32_t(p0);                                          \
    c0 = n0;                                                    \
    c2 = n2;                                                    \
  }
  OPDEV_PHILOX_ROUND
  for (int r = 1; r < 10; ++r) {
    k0 += kW0;
    k1 += kW1;
    OPDEV_PHILOX_ROUND
  }
#undef OPDEV_PHILOX_ROUND
  return Philox4x32{{c0, c1, c2, c3}};
}

}  // namespace
}  // namespace opdev::cpu
