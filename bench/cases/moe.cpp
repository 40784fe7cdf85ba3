// Benchmarks of moe_gating_topk (Qwen3-30B-A3B's softmax router and DeepSeek-V3's grouped sigmoid
// router), moe_permute and moe_unpermute at the MoE models' shapes (on devices also 4096 tokens). Dense
// models have no experts.
#include <numeric>

#include "bench.h"

namespace opdev::bench {

namespace {

// Each token's k ids distinct, uniformly random over E experts (a balanced router).
conformance::Generator router_ids(int64_t k, int64_t E) {
  return [k, E](std::vector<double>& v, uint64_t seed) {
    conformance::Rng r(seed);
    std::vector<int64_t> ex(static_cast<size_t>(E));
    std::iota(ex.begin(), ex.end(), int64_t(0));
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t j = i % size_t(k), n = size_t(E) - j;
      std::swap(ex[j], ex[j + size_t(r.next() % n)]);
      v[i] = double(ex[j]);
    }
  };
}

// sorted_rows as moe_permute writes it for such a router.
conformance::Generator sorted_rows(int64_t k, int64_t E) {
  return [k, E](std::vector<double>& v, uint64_t seed) {
    std::vector<double> ids(v.size());
    router_ids(k, E)(ids, seed);
    std::vector<int64_t> start(size_t(E + 1), 0);
    for (double id : ids) ++start[size_t(id) + 1];
    for (int64_t e = 0; e < E; ++e) start[size_t(e + 1)] += start[size_t(e)];
    for (size_t i = 0; i < ids.size(); ++i) v[size_t(start[size_t(ids[i])]++)] = double(i);
  };
}

std::string str(int64_t x) { return std::to_string(x); }

void gating(const std::string& model, int64_t T, int64_t E, int64_t k, opdev_moe_scoring scoring, bool bias, int n_group, int topk_group,
            double scale, const std::string& what, bool device_only) {
  BenchCase b;
  b.model = model;
  b.tokens = T;
  b.shape = "logits[" + str(T) + "," + str(E) + "] k=" + str(k) + " " + what;
  b.c.op = "moe_gating_topk";
  b.c.input("logits", {T, E}).normal(0, 2);
  if (bias) b.c.input("correction_bias", {E}).dtype(kFloat32).uniform(-1, 1);
  else b.c.absent("correction_bias");
  b.c.output("topk_weights", {T, k}).dtype(kFloat32);
  b.c.output("topk_ids", {T, k}).dtype(kInt32);
  b.c.call = [=](conformance::Call& c) {
    return opdev_moe_gating_topk(c.ctx, c["topk_weights"], c["topk_ids"], c["logits"], c["correction_bias"], scoring, 1, n_group, topk_group,
                                 scale);
  };
  b.device_only = device_only;
  b.params = std::string("scoring=") + (scoring == OPDEV_MOE_SCORING_SOFTMAX ? "softmax" : "sigmoid") + ";k=" + str(k) +
             ";renormalize=1;n_group=" + str(n_group) + ";topk_group=" + str(topk_group) + ";scale=" + std::to_string(scale);
  add(std::move(b));
}

}  // namespace

void register_moe() {
  constexpr int64_t kDeviceTokens = 4096;
  std::vector<int64_t> tokens = token_counts();
  tokens.push_back(kDeviceTokens);
  for (const Model* m : models()) {
    if (m->experts == 0) continue;
    const int64_t E = m->experts, k = m->topk, H = m->hidden;
    for (int64_t T : tokens) {
      const bool device_only = T == kDeviceTokens;
      gating(m->name, T, E, k, OPDEV_MOE_SCORING_SOFTMAX, false, 1, 1, 1.0, "softmax", device_only);
      {
        BenchCase b;
        b.model = m->name;
        b.tokens = T;
        b.shape = "x[" + str(T) + "," + str(H) + "] E=" + str(E) + " k=" + str(k);
        b.c.op = "moe_permute";
        b.c.input("x", {T, H}).normal(0, 1);
        b.c.input("topk_ids", {T, k}).dtype(kInt32).values(router_ids(k, E));
        b.c.output("permuted_x", {T * k, H});
        b.c.output("expert_offsets", {E + 1}).dtype(kInt64);
        b.c.output("sorted_rows", {T * k}).dtype(kInt32);
        b.c.call = [](conformance::Call& c) {
          return opdev_moe_permute(c.ctx, c["permuted_x"], c["expert_offsets"], c["sorted_rows"], c["x"], c["topk_ids"]);
        };
        b.device_only = device_only;
        b.params = "E=" + str(E) + ";k=" + str(k);
        add(std::move(b));
      }
      {
        BenchCase b;
        b.model = m->name;
        b.tokens = T;
        b.shape = "out[" + str(T) + "," + str(H) + "] k=" + str(k);
        b.c.op = "moe_unpermute";
        b.c.input("permuted_y", {T * k, H}).normal(0, 1);
        b.c.input("topk_weights", {T, k}).dtype(kFloat32).uniform(0, 1);
        b.c.input("sorted_rows", {T * k}).dtype(kInt32).values(sorted_rows(k, E));
        b.c.output("out", {T, H});
        b.c.call = [](conformance::Call& c) { return opdev_moe_unpermute(c.ctx, c["out"], c["permuted_y"], c["topk_weights"], c["sorted_rows"]); };
        b.device_only = device_only;
        b.params = "E=" + str(E) + ";k=" + str(k);
        add(std::move(b));
      }
    }
  }
  // DeepSeek-V3's router (not among bench::models()): 256 experts in 8 groups, top-4 groups, top-8,
  // sigmoid with the correction bias, routed scaling 2.5.
  for (int64_t T : tokens)
    gating("deepseek-v3", T, 256, 8, OPDEV_MOE_SCORING_SIGMOID, true, 8, 4, 2.5, "sigmoid grouped 8/4 bias", T == kDeviceTokens);
}

}  // namespace opdev::bench
