// Benchmarks of add (the residual add), cast (activations to float32, e.g. before the final norm or the
// logits) and copy (making the q heads of the fused qkv rows contiguous) at [T, hidden]; on devices also at
// 16k tokens.
#include "bench.h"

namespace opdev::bench {

void register_elementwise() {
  std::vector<int64_t> counts = token_counts();
  counts.push_back(kDeviceLargeTokens);
  for (const Model* m : models())
    for (int64_t T : counts) {
      const bool device_only = T == kDeviceLargeTokens;
      const std::string th = "[" + std::to_string(T) + "," + std::to_string(m->hidden) + "]";
      {
        BenchCase b;
        b.model = m->name;
        b.tokens = T;
        b.shape = "a, b, out" + th;
        b.c.op = "add";
        b.c.input("a", {T, m->hidden}).normal(0, 1);
        b.c.input("b", {T, m->hidden}).normal(0, 1);
        b.c.output("out", {T, m->hidden});
        b.c.call = [](conformance::Call& k) { return opdev_add(k.ctx, k["out"], k["a"], k["b"]); };
        b.device_only = device_only;
        add(std::move(b));
      }
      {
        BenchCase b;
        b.model = m->name;
        b.tokens = T;
        b.shape = "x" + th + " -> float32";
        b.c.op = "cast";
        b.c.input("x", {T, m->hidden}).normal(0, 1);
        b.c.output("out", {T, m->hidden}).dtype(kFloat32);
        b.c.call = [](conformance::Call& k) { return opdev_cast(k.ctx, k["out"], k["x"]); };
        b.device_only = device_only;
        add(std::move(b));
      }
      {
        const int64_t row = (m->heads + 2 * m->kv_heads) * m->head_dim;
        BenchCase b;
        b.model = m->name;
        b.tokens = T;
        b.shape = "q[" + std::to_string(T) + "," + std::to_string(m->heads) + "," + std::to_string(m->head_dim) + "] of qkv";
        b.c.op = "copy";
        b.c.input("x", {T, m->heads, m->head_dim}).normal(0, 1).strided(row - m->heads * m->head_dim);
        b.c.output("out", {T, m->heads, m->head_dim});
        b.c.call = [](conformance::Call& k) { return opdev_copy(k.ctx, k["out"], k["x"]); };
        b.device_only = device_only;
        add(std::move(b));
      }
    }
}

}  // namespace opdev::bench
