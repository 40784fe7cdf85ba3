// Benchmarks of reshape_and_cache: writing T new tokens' k and v (views of the fused qkv rows) into a
// block_size-16 paged cache of 4096 slots, at the decode and prefill token counts of both models; on
// devices also 16k tokens into a cache of 32k slots.
#include <numeric>

#include "bench.h"

namespace opdev::bench {

void register_cache() {
  constexpr int64_t kBlockSize = 16;
  std::vector<int64_t> counts = token_counts();
  counts.push_back(kDeviceLargeTokens);
  for (const Model* m : models())
    for (int64_t T : counts) {
      const bool device_only = T == kDeviceLargeTokens;
      const int64_t blocks = device_only ? 2 * kDeviceLargeTokens / kBlockSize : 256;
      const int64_t Hk = m->kv_heads, D = m->head_dim, row = (m->heads + 2 * Hk) * D;
      BenchCase b;
      b.model = m->name;
      b.tokens = T;
      b.shape = "T=" + std::to_string(T) + " Hk=" + std::to_string(Hk) + " D=" + std::to_string(D) + " bs=16";
      b.c.op = "reshape_and_cache";
      b.c.inout("key_cache", {blocks, kBlockSize, Hk, D}).normal(0, 1);
      b.c.inout("value_cache", {blocks, kBlockSize, Hk, D}).normal(0, 1);
      b.c.input("key", {T, Hk, D}).normal(0, 1).strided(row - Hk * D);
      b.c.input("value", {T, Hk, D}).normal(0, 1).strided(row - Hk * D);
      // Distinct slots spread over the cache, as a batch of sequences would use them.
      b.c.input("slot_mapping", {T}).dtype(kInt64).values([T, blocks](std::vector<double>& v, uint64_t seed) {
        std::vector<int64_t> perm(static_cast<size_t>(blocks * kBlockSize));
        std::iota(perm.begin(), perm.end(), int64_t(0));
        conformance::Rng r(seed);
        for (int64_t i = 0; i < T; ++i) {
          std::swap(perm[size_t(i)], perm[size_t(i + int64_t(r.next() % uint64_t(blocks * kBlockSize - i)))]);
          v[size_t(i)] = double(perm[size_t(i)]);
        }
      });
      b.c.call = [](conformance::Call& k) {
        return opdev_reshape_and_cache(k.ctx, k["key_cache"], k["value_cache"], k["key"], k["value"], k["slot_mapping"]);
      };
      b.device_only = device_only;
      add(std::move(b));
    }
}

}  // namespace opdev::bench
