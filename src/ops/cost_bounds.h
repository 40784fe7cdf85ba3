// Cost-formula estimates for calls whose index data lives on the device, where the front-end cannot read
// it (a cuda context): the profiler's and the benchmarks' bytes and FLOPs then come from these. Exact for
// the uniform batches the benchmarks run; otherwise an upper bound of what the call can touch.
#pragma once

#include <algorithm>
#include <cstdint>

namespace opdev {

// Query-key pairs scored by paged_attention when B sequences share Tq query rows equally and each sees kv
// keys; causal rows see the keys up to their bottom-right aligned position (row i of q rows: kv - q + i + 1
// keys, none when that is not positive).
inline double uniform_attention_pairs(int64_t B, int64_t Tq, double kv, bool causal) {
  if (B <= 0 || Tq <= 0 || kv <= 0) return 0.0;
  const double q = double(Tq) / double(B);
  if (!causal) return double(B) * q * kv;
  const double qv = std::min(q, kv);  // rows that see at least one key
  return double(B) * (qv * (kv - qv) + qv * (qv + 1.0) / 2.0);
}

// The largest share of E experts' weights that R rows can read: each row reads one expert's, so at most
// min(E, R) of the E experts are used.
inline double expert_weight_share_bound(int64_t E, int64_t R) {
  if (E <= 0 || R <= 0) return 0.0;
  return double(std::min(E, R)) / double(E);
}

}  // namespace opdev
