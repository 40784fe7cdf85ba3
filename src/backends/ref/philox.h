// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the counter-based
// generator behind opdev_sample's draws. The ref backend's own copy, written from the paper's definition
// (the cpu backend has an independent one); both are checked against the Random123 known-answer tests.
#pragma once

#include <array>
#include <cstdint>

namespace opdev::ref {

// Returns the 4 output words for a 4-word counter and a 2-word key.
inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  const uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key schedule: bumped before every round but the first
      key[0] += W0;
      key[1] += W1;
    }
    const uint64_t p0 = M0 * ctr[0], p1 = M1 * ctr[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

}  // namespace opdev::ref
