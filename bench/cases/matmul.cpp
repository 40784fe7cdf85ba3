// Benchmarks of linear (every projection of both models) and grouped_matmul (the MoE experts of
// Qwen3-30B-A3B), each followed by its int8 W8A8 form (linear_w8a8, grouped_matmul_w8a8: int8 weights with
// per-channel scales, int8 activations with per-token scales, output in the dtype of the row), so that
// `opdev bench --op linear --op linear_w8a8 --dtype bfloat16` prints them side by side; and quantize_int8
// of the activations that feed them. The int8 matmuls' time does not include quantising x (its own op, run
// once per activation for all the projections that read it). On devices also the projections at 4096 tokens
// (a prefill batch where the GEMMs are compute bound, against torch.matmul / cuBLAS).
#include "bench.h"

namespace opdev::bench {

namespace {

std::string s(int64_t v) { return std::to_string(v); }

// Device-only cases: set by register_matmul for the token counts only a device runs.
bool g_device_only = false;

void linear_bench(const Model& m, const char* proj, int64_t T, int64_t N, int64_t K) {
  BenchCase b;
  b.model = m.name;
  b.tokens = T;
  b.shape = std::string(proj) + " [" + s(T) + "," + s(K) + "]x[" + s(N) + "," + s(K) + "]^T";
  b.c.op = "linear";
  b.c.input("x", {T, K}).normal(0, 1);
  b.c.input("weight", {N, K}).normal(0, 0.05);
  b.c.absent("bias");
  b.c.output("out", {T, N});
  b.c.call = [](conformance::Call& k) { return opdev_linear(k.ctx, k["out"], k["x"], k["weight"], k["bias"]); };
  b.device_only = g_device_only;
  add(std::move(b));
}

void linear_w8a8_bench(const Model& m, const char* proj, int64_t T, int64_t N, int64_t K) {
  BenchCase b;
  b.model = m.name;
  b.tokens = T;
  b.shape = std::string(proj) + " [" + s(T) + "," + s(K) + "]x[" + s(N) + "," + s(K) + "]^T";
  b.c.op = "linear_w8a8";
  b.c.input("x", {T, K}).dtype(kInt8).integers(-127, 128);
  b.c.input("x_scale", {T}).dtype(kFloat32).uniform(1e-3, 3e-2);
  b.c.input("weight", {N, K}).dtype(kInt8).integers(-127, 128);
  b.c.input("weight_scale", {N}).dtype(kFloat32).uniform(1e-3, 3e-2);
  b.c.absent("bias");
  b.c.output("out", {T, N});
  b.c.call = [](conformance::Call& k) {
    return opdev_linear_w8a8(k.ctx, k["out"], k["x"], k["x_scale"], k["weight"], k["weight_scale"], k["bias"]);
  };
  b.device_only = g_device_only;
  add(std::move(b));
}

// Both forms of a projection, float then int8.
void linear_pair(const Model& m, const char* proj, int64_t T, int64_t N, int64_t K) {
  linear_bench(m, proj, T, N, K);
  linear_w8a8_bench(m, proj, T, N, K);
}

// x [rows, K] of a step with T tokens.
void quantize_bench(const Model& m, const char* what, int64_t T, int64_t rows, int64_t K) {
  BenchCase b;
  b.model = m.name;
  b.tokens = T;
  b.shape = std::string(what) + " [" + s(rows) + "," + s(K) + "]";
  b.c.op = "quantize_int8";
  b.c.input("x", {rows, K}).normal(0, 1);
  b.c.output("out", {rows, K}).dtype(kInt8);
  b.c.output("scale", {rows}).dtype(kFloat32);
  b.c.call = [](conformance::Call& k) { return opdev_quantize_int8(k.ctx, k["out"], k["scale"], k["x"]); };
  b.device_only = g_device_only;
  add(std::move(b));
}

// Rows per expert when each of T tokens picks topk distinct experts of E uniformly.
std::vector<int64_t> route(int64_t E, int64_t topk, int64_t T, uint64_t seed) {
  conformance::Rng r(seed);
  std::vector<int64_t> counts(size_t(E), 0), ids(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < E; ++e) ids[size_t(e)] = e;
    for (int64_t j = 0; j < topk; ++j) {
      const int64_t pick = j + int64_t(r.next() % uint64_t(E - j));
      std::swap(ids[size_t(j)], ids[size_t(pick)]);
      ++counts[size_t(ids[size_t(j)])];
    }
  }
  return counts;
}

void grouped_bench(const Model& m, const char* proj, int64_t T, const std::vector<int64_t>& counts, int64_t N, int64_t K,
                   const std::string& note) {
  const int64_t E = int64_t(counts.size());
  int64_t R = 0;
  std::vector<double> offsets(1, 0.0);
  for (int64_t c : counts) {
    R += c;
    offsets.push_back(double(R));
  }
  BenchCase b;
  b.model = m.name;
  b.tokens = T;
  b.shape = std::string(proj) + " R=" + s(R) + " w[" + s(E) + "," + s(N) + "," + s(K) + "]" + note;
  b.c.op = "grouped_matmul";
  b.c.input("x", {R, K}).normal(0, 1);
  b.c.input("weight", {E, N, K}).normal(0, 0.05);
  b.c.input("expert_offsets", {E + 1}).dtype(kInt64).values(offsets);
  b.c.output("out", {R, N});
  b.c.call = [](conformance::Call& k) {
    return opdev_grouped_matmul(k.ctx, k["out"], k["x"], k["weight"], k["expert_offsets"]);
  };
  std::string counts_param = "counts=";
  for (size_t e = 0; e < counts.size(); ++e) counts_param += (e ? "," : "") + s(counts[e]);
  b.params = counts_param;
  BenchCase q;
  q.model = b.model;
  q.tokens = T;
  q.shape = b.shape;
  b.device_only = g_device_only;
  add(std::move(b));
  q.c.op = "grouped_matmul_w8a8";
  q.c.input("x", {R, K}).dtype(kInt8).integers(-127, 128);
  q.c.input("x_scale", {R}).dtype(kFloat32).uniform(1e-3, 3e-2);
  q.c.input("weight", {E, N, K}).dtype(kInt8).integers(-127, 128);
  q.c.input("weight_scale", {E, N}).dtype(kFloat32).uniform(1e-3, 3e-2);
  q.c.input("expert_offsets", {E + 1}).dtype(kInt64).values(offsets);
  q.c.output("out", {R, N});
  q.c.call = [](conformance::Call& k) {
    return opdev_grouped_matmul_w8a8(k.ctx, k["out"], k["x"], k["x_scale"], k["weight"], k["weight_scale"], k["expert_offsets"]);
  };
  q.device_only = g_device_only;
  q.params = counts_param;
  add(std::move(q));
}

}  // namespace

void register_matmul() {
  std::vector<int64_t> tokens = token_counts();
  tokens.push_back(4096);
  for (const Model* m : models())
    for (int64_t T : tokens) {
      g_device_only = T == 4096;
      const int64_t q = m->heads * m->head_dim, kv = m->kv_heads * m->head_dim;
      quantize_bench(*m, "hidden", T, T, m->hidden);
      linear_pair(*m, "qkv_proj", T, q + 2 * kv, m->hidden);
      linear_pair(*m, "o_proj", T, m->hidden, q);
      if (m->experts == 0) {
        quantize_bench(*m, "intermediate", T, T, m->intermediate);
        linear_pair(*m, "gate_up_proj", T, 2 * m->intermediate, m->hidden);
        linear_pair(*m, "down_proj", T, m->hidden, m->intermediate);
        // Logits are computed for the last token of each sequence only, so prefill does not run lm_head
        // over all 512 rows.
        if (T <= 16) linear_pair(*m, "lm_head", T, m->vocab, m->hidden);
      } else {
        // The router stays in the activation dtype under W8A8 (as vLLM keeps it): no int8 form.
        linear_bench(*m, "router", T, m->experts, m->hidden);
        // The full stack of 128 experts (400M elements for gate_up) does not fit this harness's host
        // copies, so the experts are 32 of the model's 128 with top-8 routing of T tokens; and, since
        // that puts 4x the model's rows on each expert at T=512, also the model's per-expert rows at
        // T=512 (4096 / 128 = 32 rows on each of 32 experts).
        const int64_t E = 32;
        const std::vector<int64_t> counts = route(E, m->topk, T, 77 + uint64_t(T));
        quantize_bench(*m, "moe intermediate (R = 8T)", T, m->topk * T, m->moe_intermediate);
        grouped_bench(*m, "moe gate_up", T, counts, 2 * m->moe_intermediate, m->hidden, " E=32 top-8");
        grouped_bench(*m, "moe down", T, counts, m->hidden, m->moe_intermediate, " E=32 top-8");
        if (T == 512 || T == 4096) {
          const int64_t per_expert = T * m->topk / m->experts;
          const std::vector<int64_t> model_rows(size_t(E), per_expert);
          const std::string note = " " + s(per_expert) + " rows/expert";
          grouped_bench(*m, "moe gate_up", T, model_rows, 2 * m->moe_intermediate, m->hidden, note);
          grouped_bench(*m, "moe down", T, model_rows, m->hidden, m->moe_intermediate, note);
        }
      }
    }
  g_device_only = false;
}

}  // namespace opdev::bench
