// Benchmarks of silu_and_mul at the MLP widths: Qwen3-0.6B's dense MLP (intermediate 3072, T rows) and
// Qwen3-30B-A3B's experts (moe intermediate 768, T * top-8 permuted rows); on devices also the dense MLP at
// 16k tokens and the experts at 2k tokens (16k rows).
#include "bench.h"

namespace opdev::bench {

void register_activation() {
  for (const Model* m : models()) {
    std::vector<int64_t> counts = token_counts();
    counts.push_back(m->experts > 0 ? kDeviceLargeTokens / m->topk : kDeviceLargeTokens);
    for (int64_t T : counts) {
      const bool moe = m->experts > 0;
      const int64_t rows = moe ? T * m->topk : T, d = moe ? m->moe_intermediate : m->intermediate;
      BenchCase b;
      b.model = m->name;
      b.tokens = T;
      b.shape = "x[" + std::to_string(rows) + "," + std::to_string(2 * d) + "]" + (moe ? " experts" : "");
      b.c.op = "silu_and_mul";
      b.c.input("x", {rows, 2 * d}).normal(0, 2);
      b.c.output("out", {rows, d});
      b.c.call = [](conformance::Call& k) { return opdev_silu_and_mul(k.ctx, k["out"], k["x"]); };
      b.device_only = T == counts.back();
      add(std::move(b));
    }
  }
}

}  // namespace opdev::bench
