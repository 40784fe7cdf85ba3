// Benchmarks of rms_norm (hidden and per-head q-norm) and add_rms_norm; on devices also at 16k tokens.
#include "bench.h"

namespace opdev::bench {

namespace {

void norm_cases(const Model* m, int64_t T, bool device_only) {
  {
    BenchCase b;
    b.model = m->name;
    b.tokens = T;
    b.shape = "x[" + std::to_string(T) + "," + std::to_string(m->hidden) + "]";
    b.c.op = "rms_norm";
    b.c.input("x", {T, m->hidden}).normal(0, 1);
    b.c.input("weight", {m->hidden}).uniform(0.5, 1.5);
    b.c.output("out", {T, m->hidden});
    b.c.call = [](conformance::Call& k) { return opdev_rms_norm(k.ctx, k["out"], k["x"], k["weight"], 1e-6); };
    b.device_only = device_only;
    b.params = "eps=1e-6";
    add(std::move(b));
  }
  {
    // Qwen3 q-norm: per head, in place on the q part of the fused qkv rows.
    const int64_t row = (m->heads + 2 * m->kv_heads) * m->head_dim;
    BenchCase b;
    b.model = m->name;
    b.tokens = T;
    b.shape = "q[" + std::to_string(T) + "," + std::to_string(m->heads) + "," + std::to_string(m->head_dim) + "] of qkv";
    b.c.op = "rms_norm";
    b.c.inout("q", {T, m->heads, m->head_dim}).normal(0, 1).strided(row - m->heads * m->head_dim);
    b.c.output("out", {T, m->heads, m->head_dim}).alias_of = "q";
    b.c.input("weight", {m->head_dim}).uniform(0.5, 1.5);
    b.c.call = [](conformance::Call& k) { return opdev_rms_norm(k.ctx, k["out"], k["q"], k["weight"], 1e-6); };
    b.device_only = device_only;
    b.params = "eps=1e-6";
    add(std::move(b));
  }
  {
    BenchCase b;
    b.model = m->name;
    b.tokens = T;
    b.shape = "x[" + std::to_string(T) + "," + std::to_string(m->hidden) + "] in place";
    b.c.op = "add_rms_norm";
    b.c.inout("x", {T, m->hidden}).normal(0, 1);
    b.c.inout("residual", {T, m->hidden}).normal(0, 1);
    b.c.output("out", {T, m->hidden}).alias_of = "x";
    b.c.output("residual_out", {T, m->hidden}).alias_of = "residual";
    b.c.input("weight", {m->hidden}).uniform(0.5, 1.5);
    b.c.call = [](conformance::Call& k) {
      return opdev_add_rms_norm(k.ctx, k["out"], k["residual_out"], k["x"], k["residual"], k["weight"], 1e-6);
    };
    b.device_only = device_only;
    b.params = "eps=1e-6";
    add(std::move(b));
  }
}

}  // namespace

void register_norm() {
  for (const Model* m : models()) {
    for (int64_t T : token_counts()) norm_cases(m, T, false);
    norm_cases(m, kDeviceLargeTokens, true);
  }
}

}  // namespace opdev::bench
