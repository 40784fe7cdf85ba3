// Benchmarks of embedding: T token rows gathered from the [V, hidden] table. The op moves T rows whatever
// V is, so the table is a 16384-row slice of the 151936-token vocabulary (the full table would take
// gigabytes of float64 staging in the harness for no change in the measurement). On devices also 16k tokens.
#include "bench.h"

namespace opdev::bench {

void register_embedding() {
  constexpr int64_t kRows = 16384;
  std::vector<int64_t> counts = token_counts();
  counts.push_back(kDeviceLargeTokens);
  for (const Model* m : models())
    for (int64_t T : counts) {
      BenchCase b;
      b.model = m->name;
      b.tokens = T;
      b.shape = "T=" + std::to_string(T) + " table[" + std::to_string(kRows) + "," + std::to_string(m->hidden) + "]";
      b.c.op = "embedding";
      b.c.input("table", {kRows, m->hidden}).uniform(-1, 1);
      b.c.input("ids", {T}).dtype(kInt32).integers(0, kRows);
      b.c.output("out", {T, m->hidden});
      b.c.call = [](conformance::Call& k) { return opdev_embedding(k.ctx, k["out"], k["table"], k["ids"]); };
      b.device_only = T == kDeviceLargeTokens;
      add(std::move(b));
    }
}

}  // namespace opdev::bench
