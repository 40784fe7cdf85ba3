// Benchmarks of silu_and_mul at the MLP widths: Qwen3-0.6B's dense MLP (intermediate 3072, T rows) and
// Qwen3-30B-A3B's experts (moe intermediate 768, T * top-8 permuted rows).
#include "bench.h"

namespace opdev::bench {

void register_activation() {
  for (const Model* m : models())
    for (int64_t T : token_counts()) {
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
      add(std::move(b));
    }
}

}  // namespace opdev::bench
