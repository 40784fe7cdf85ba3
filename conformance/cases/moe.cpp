// Conformance cases of moe_gating_topk, moe_permute and moe_unpermute.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "conformance.h"

namespace opdev::conformance {

namespace {

std::string dims(int64_t T, int64_t E, int64_t k) {
  return " T=" + std::to_string(T) + " E=" + std::to_string(E) + " k=" + std::to_string(k);
}

Generator normal_values(double stddev) {
  return [stddev](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = stddev * r.normal();
  };
}

// Integers in [lo, hi): many exactly equal values, to test tie-breaking.
Generator integer_values(int64_t lo, int64_t hi) {
  return [lo, hi](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = double(lo + int64_t(r.next() % uint64_t(hi - lo)));
  };
}

// Router ids [T, k] like a real router's: each token's k ids are distinct, drawn from `experts`
// (default: all of 0..E-1), so that the experts not listed get no tokens.
std::vector<double> router_ids(int64_t T, int64_t k, std::vector<int64_t> experts, uint64_t seed) {
  Rng r(seed);
  std::vector<double> v;
  v.reserve(size_t(T * k));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < k; ++j) {  // partial Fisher-Yates: the first k of a fresh shuffle
      const size_t n = experts.size() - size_t(j);
      std::swap(experts[size_t(j)], experts[size_t(j) + size_t(r.next() % n)]);
      v.push_back(double(experts[size_t(j)]));
    }
  return v;
}

std::vector<int64_t> all_experts(int64_t E) {
  std::vector<int64_t> e(static_cast<size_t>(E));
  std::iota(e.begin(), e.end(), int64_t(0));
  return e;
}

Generator router(int64_t k, std::vector<int64_t> experts) {
  return [k, experts](std::vector<double>& v, uint64_t seed) {
    const int64_t T = k ? int64_t(v.size()) / k : 0;
    v = router_ids(T, k, experts, seed);
  };
}

// sorted_rows [T*k] as moe_permute would write it: a stable counting sort of random router ids.
Generator sorted_rows_of_router(int64_t k, int64_t E) {
  return [k, E](std::vector<double>& v, uint64_t seed) {
    const int64_t R = int64_t(v.size()), T = k ? R / k : 0;
    const std::vector<double> ids = router_ids(T, k, all_experts(E), seed);
    std::vector<int64_t> start(size_t(E + 1), 0);
    for (double id : ids) ++start[size_t(id) + 1];
    for (int64_t e = 0; e < E; ++e) start[size_t(e + 1)] += start[size_t(e)];
    for (int64_t i = 0; i < R; ++i) v[size_t(start[size_t(ids[size_t(i)])]++)] = double(i);
  };
}

// ---- moe_gating_topk ----

struct Router {
  std::string model;
  int64_t E, k;
  opdev_moe_scoring scoring;
  bool renormalize;
  int n_group, topk_group;
  double routed_scaling_factor;
  bool bias;
};

const Router kQwen3Moe{"qwen3-30b-a3b", 128, 8, OPDEV_MOE_SCORING_SOFTMAX, true, 1, 1, 1.0, false};
const Router kDeepSeekV3{"deepseek-v3", 256, 8, OPDEV_MOE_SCORING_SIGMOID, true, 8, 4, 2.5, true};

struct GateOpts {
  Generator logits = normal_values(2.0);
  Generator bias;         // default: uniform in [-1, 1)
  int64_t logits_pad = 0; // > 0: strided logits rows
  int64_t out_pad = 0;    // > 0: strided topk_weights / topk_ids rows
  bool large = false;
};

void gate_case(const std::string& what, const Router& g, int64_t T, GateOpts o = {}) {
  Case c;
  c.op = "moe_gating_topk";
  c.name = g.model + " " + what + dims(T, g.E, g.k) + (o.logits_pad ? " strided logits" : "") + (o.out_pad ? " strided outputs" : "");
  c.large = o.large;
  c.input("logits", {T, g.E}).values(o.logits).strided(o.logits_pad);
  if (g.bias) {
    TensorSpec& b = c.input("correction_bias", {g.E}).dtype(kFloat32);
    if (o.bias) b.values(o.bias);
    else b.uniform(-1, 1);
  } else {
    c.absent("correction_bias");
  }
  c.output("topk_weights", {T, g.k}).dtype(kFloat32).strided(o.out_pad);
  c.output("topk_ids", {T, g.k}).dtype(kInt32).strided(o.out_pad ? o.out_pad + 1 : 0);
  c.call = [g](Call& k) {
    return opdev_moe_gating_topk(k.ctx, k["topk_weights"], k["topk_ids"], k["logits"], k["correction_bias"], g.scoring, g.renormalize,
                                 g.n_group, g.topk_group, g.routed_scaling_factor);
  };
  add(std::move(c));
}

// Normal logits with NaN (or another special value) at the given flat positions.
Generator with_specials(double stddev, std::vector<std::pair<int64_t, double>> specials) {
  return [stddev, specials](std::vector<double>& v, uint64_t seed) {
    normal_values(stddev)(v, seed);
    for (auto [i, x] : specials) v[size_t(i)] = x;
  };
}

void register_gating() {
  for (int64_t T : {1, 4, 16, 512}) gate_case("router", kQwen3Moe, T);
  Router qwen_norenorm = kQwen3Moe;
  qwen_norenorm.renormalize = false;
  qwen_norenorm.model += " (no renormalize)";
  for (int64_t T : {1, 16}) gate_case("router", qwen_norenorm, T);
  gate_case("router", kQwen3Moe, 16, {normal_values(2.0), {}, 7, 0, false});
  gate_case("router", kQwen3Moe, 33, {normal_values(2.0), {}, 0, 3, false});
  for (int64_t T : {1, 16, 512}) gate_case("router", kDeepSeekV3, T);
  gate_case("router", kDeepSeekV3, 16, {normal_values(2.0), {}, 9, 2, false});
  // DeepSeek-V3 without the bias (groups scored by unbiased sigmoid scores), and softmax with groups
  // and a bias (DeepSeek-V2-like, 160 experts, top-6 of 3 of 8 groups).
  Router ds_nobias = kDeepSeekV3;
  ds_nobias.bias = false;
  ds_nobias.model += " (no bias)";
  gate_case("router", ds_nobias, 16);
  gate_case("router", {"deepseek-v2-like", 160, 6, OPDEV_MOE_SCORING_SOFTMAX, false, 8, 3, 16.0, true}, 16);
  gate_case("router", {"softmax+bias", 64, 4, OPDEV_MOE_SCORING_SOFTMAX, true, 1, 1, 1.0, true}, 33);
  // Mixtral-like: 8 experts, top-2.
  for (int64_t T : {1, 7, 33}) gate_case("router", {"mixtral-like", 8, 2, OPDEV_MOE_SCORING_SOFTMAX, true, 1, 1, 1.0, false}, T);
  // Odd expert counts and group sizes (groups of 2 and of 1).
  gate_case("odd", {"odd E", 7, 2, OPDEV_MOE_SCORING_SOFTMAX, true, 1, 1, 1.0, false}, 33);
  gate_case("odd", {"odd E", 7, 3, OPDEV_MOE_SCORING_SIGMOID, false, 1, 1, 1.0, true}, 33);
  gate_case("odd", {"groups of 2", 6, 3, OPDEV_MOE_SCORING_SIGMOID, true, 3, 2, 1.0, true}, 33);
  gate_case("odd", {"groups of 1", 5, 2, OPDEV_MOE_SCORING_SIGMOID, true, 5, 3, 1.5, true}, 33);
  gate_case("odd", {"E=1", 1, 1, OPDEV_MOE_SCORING_SOFTMAX, true, 1, 1, 1.0, false}, 7);
  // k = E, and k = every expert of the eligible groups.
  gate_case("k=E", {"k=E", 8, 8, OPDEV_MOE_SCORING_SOFTMAX, false, 1, 1, 1.0, false}, 7);
  gate_case("k=eligible", {"grouped", 16, 8, OPDEV_MOE_SCORING_SIGMOID, true, 4, 2, 1.0, true}, 7);
  // Ties: integer logits (and a bias from {0, 0.5}) give many exactly equal scores and group scores.
  const Generator ties = integer_values(0, 4);
  const Generator tie_bias = [](std::vector<double>& v, uint64_t seed) {
    integer_values(0, 2)(v, seed);
    for (double& x : v) x *= 0.5;
  };
  gate_case("ties", kQwen3Moe, 16, {ties, {}, 0, 0, false});
  gate_case("ties", kDeepSeekV3, 16, {ties, tie_bias, 0, 0, false});
  gate_case("ties", {"groups of 2", 6, 3, OPDEV_MOE_SCORING_SIGMOID, true, 3, 2, 1.0, true}, 33, {ties, tie_bias, 0, 0, false});
  gate_case("ties", {"mixtral-like", 8, 2, OPDEV_MOE_SCORING_SOFTMAX, true, 1, 1, 1.0, false}, 33, {ties, {}, 0, 0, false});
  // Groups of 4 with values in {0, 1, 2}: group scores differ from row to row while experts of different
  // kept groups tie, so the kept groups' rank order is not their index order.
  gate_case("ties across groups", {"groups of 4", 16, 4, OPDEV_MOE_SCORING_SIGMOID, false, 4, 2, 1.0, false}, 64,
            {integer_values(0, 3), {}, 0, 0, false});
  gate_case("ties across groups", {"groups of 4", 16, 4, OPDEV_MOE_SCORING_SIGMOID, true, 4, 2, 1.0, true}, 64,
            {integer_values(0, 3), tie_bias, 0, 0, false});
  // Crafted: groups a < b score [1, 1, 0, 0] and [2, 1, 1, 1], the rest 0: b ranks first, and the
  // answer (b0, a0, a1, b1) interleaves the two groups through ties of 1.
  gate_case("ties across groups crafted", {"groups of 4", 16, 4, OPDEV_MOE_SCORING_SIGMOID, false, 4, 2, 1.0, false}, 16,
            {[](std::vector<double>& v, uint64_t seed) {
               Rng r(seed);
               for (size_t row = 0; row < v.size() / 16; ++row) {
                 double* x = v.data() + row * 16;
                 std::fill(x, x + 16, 0.0);
                 const int64_t a = int64_t(r.next() % 3), b = a + 1 + int64_t(r.next() % uint64_t(3 - a));
                 x[4 * a] = x[4 * a + 1] = 1.0;
                 x[4 * b] = 2.0;
                 x[4 * b + 1] = x[4 * b + 2] = x[4 * b + 3] = 1.0;
               }
             }, {}, 0, 0, false});
  // NaN: with softmax a NaN (or +inf) logit makes the whole row NaN (ids 0..k-1, NaN weights); with
  // sigmoid only that expert's score is NaN and it ranks last. -inf logits are ordinary scores of 0.
  gate_case("NaN in row 1", kQwen3Moe, 3, {with_specials(2.0, {{128 + 5, NAN}}), {}, 0, 0, false});
  gate_case("+inf in row 0", kQwen3Moe, 2, {with_specials(2.0, {{17, INFINITY}}), {}, 0, 0, false});
  gate_case("-inf logits", {"mixtral-like", 8, 2, OPDEV_MOE_SCORING_SOFTMAX, true, 1, 1, 1.0, false}, 2,
            {with_specials(2.0, {{1, -INFINITY}, {8 + 0, -INFINITY}, {8 + 3, -INFINITY}}), {}, 0, 0, false});
  {
    // Row 0: a NaN among large logits; row 1: a whole group NaN; row 2: NaN in every group but one;
    // row 3: NaN first in a group that is kept (experts 1, 2 large); row 4: NaN first in a group whose
    // other experts make it a kept one.
    std::vector<std::pair<int64_t, double>> sp = {{3, NAN}};
    for (int64_t e = 32; e < 64; ++e) sp.push_back({256 + e, NAN});
    for (int64_t g = 1; g < 8; ++g) sp.push_back({512 + g * 32 + 7, NAN});
    for (auto [e, x] : std::vector<std::pair<int64_t, double>>{{0, NAN}, {1, 10.0}, {2, 10.0}}) sp.push_back({768 + e, x});
    for (auto [e, x] : std::vector<std::pair<int64_t, double>>{{64, NAN}, {65, 10.0}, {90, 9.0}}) sp.push_back({1024 + e, x});
    gate_case("NaN scores", kDeepSeekV3, 5, {with_specials(2.0, sp), {}, 0, 0, false});
    gate_case("NaN scores", {"ungrouped sigmoid", 8, 2, OPDEV_MOE_SCORING_SIGMOID, true, 1, 1, 1.0, false}, 3,
              {with_specials(2.0, {{0, NAN}, {8 + 1, NAN}, {16 + 0, NAN}, {16 + 1, NAN}, {16 + 2, NAN}}), {}, 0, 0, false});
  }
  gate_case("NaN row", {"grouped softmax", 16, 4, OPDEV_MOE_SCORING_SOFTMAX, true, 4, 2, 1.0, true}, 2,
            {with_specials(2.0, {{16 + 9, NAN}}), {}, 0, 0, false});
  // Near-ties that float32 cannot resolve but exact arithmetic can: the order must be the exact one.
  // Saturated sigmoid scores (logits 12..40: float32 rounds sigmoid to 1 above ~17, float64 above ~37).
  const Generator saturated = [](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = 12.0 + 28.0 * r.uniform();
  };
  gate_case("saturated sigmoid", ds_nobias, 16, {saturated, {}, 0, 0, false});
  gate_case("saturated sigmoid", {"ungrouped sigmoid", 64, 6, OPDEV_MOE_SCORING_SIGMOID, true, 1, 1, 1.0, false}, 16,
            {saturated, {}, 0, 0, false});
  // Keys s + bias all within a few float32 ulps of 0.25: logits f(e) = (e mod 17 - 8) / 4 (exact in
  // every dtype), the bias 0.25 - sigmoid(f(e)) plus a distinct offset of about 1e-9 per expert.
  // Row t uses f(e + t), so row 0 is the crafted one and the others are near-ties too.
  const Generator crafted_logits = [](std::vector<double>& v, uint64_t) {
    const int64_t E = 256;
    for (size_t i = 0; i < v.size(); ++i) v[i] = double((int64_t(i % E) + int64_t(i / E)) % 17 - 8) / 4.0;
  };
  const Generator crafted_bias = [](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (size_t e = 0; e < v.size(); ++e) {
      const double f = double(int64_t(e) % 17 - 8) / 4.0;
      v[e] = 0.25 - 1.0 / (1.0 + std::exp(-f)) + 1e-9 * double(r.next() % 64);
    }
  };
  gate_case("near-tie keys", kDeepSeekV3, 4, {crafted_logits, crafted_bias, 0, 0, false});
  Router ds_ungrouped = kDeepSeekV3;
  ds_ungrouped.n_group = ds_ungrouped.topk_group = 1;
  ds_ungrouped.model = "sigmoid+bias ungrouped";
  gate_case("near-tie keys", ds_ungrouped, 4, {crafted_logits, crafted_bias, 0, 0, false});
  // Softmax logits one float32 ulp apart (-0.6 + n 2^-24, n a permutation of 1..127, and 0 for expert
  // 0): their exp differ by about half an ulp, so float32 scores merge or swap. Exact ties after
  // rounding to bfloat16/float16.
  const Generator near_equal = [](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (size_t row = 0; row < v.size() / 128; ++row) {
      std::vector<int64_t> n(127);
      std::iota(n.begin(), n.end(), int64_t(1));
      for (size_t i = n.size(); i > 1; --i) std::swap(n[i - 1], n[size_t(r.next() % i)]);
      v[row * 128] = 0.0;
      for (size_t i = 1; i < 128; ++i) v[row * 128 + i] = -0.6 + std::ldexp(double(n[i - 1]), -24);
    }
  };
  gate_case("near-equal logits", kQwen3Moe, 16, {near_equal, {}, 0, 0, false});
  gate_case("zero tokens", kQwen3Moe, 0);
  gate_case("zero tokens", kDeepSeekV3, 0);
}

// ---- moe_permute / moe_unpermute ----

void permute_case(const std::string& what, int64_t T, int64_t H, int64_t E, int64_t k, DLDataType ids_dtype, int64_t pad,
                  std::vector<int64_t> experts = {}, bool large = false) {
  if (experts.empty()) experts = all_experts(E);
  Case c;
  c.op = "moe_permute";
  c.name = what + dims(T, E, k) + " H=" + std::to_string(H) + " ids " + dtype_str(ids_dtype) + (pad ? " strided" : "");
  c.large = large;
  c.input("x", {T, H}).normal(0, 1).strided(pad);
  c.input("topk_ids", {T, k}).dtype(ids_dtype).values(router(k, experts)).strided(pad ? 3 : 0);
  c.output("permuted_x", {T * k, H}).strided(pad ? pad + 2 : 0);
  c.output("expert_offsets", {E + 1}).dtype(kInt64);
  c.output("sorted_rows", {T * k}).dtype(kInt32);
  c.call = [](Call& k) { return opdev_moe_permute(k.ctx, k["permuted_x"], k["expert_offsets"], k["sorted_rows"], k["x"], k["topk_ids"]); };
  add(std::move(c));
}

void unpermute_case(const std::string& what, int64_t T, int64_t H, int64_t E, int64_t k, int64_t pad, bool large = false,
                    Generator y = normal_values(1.0)) {
  Case c;
  c.op = "moe_unpermute";
  c.name = what + dims(T, E, k) + " H=" + std::to_string(H) + (pad ? " strided" : "");
  c.large = large;
  c.input("permuted_y", {T * k, H}).values(std::move(y)).strided(pad);
  c.input("topk_weights", {T, k}).dtype(kFloat32).uniform(0, 1).strided(pad ? 1 : 0);
  c.input("sorted_rows", {T * k}).dtype(kInt32).values(sorted_rows_of_router(k, E));
  c.output("out", {T, H}).strided(pad ? pad + 5 : 0);
  // float32 accumulation of k products: |error| <= k u sum_j |w_j y_j|.
  c.mag({"permuted_y", "topk_weights"}, contract::kAccumulationRtol);
  c.call = [](Call& k) { return opdev_moe_unpermute(k.ctx, k["out"], k["permuted_y"], k["topk_weights"], k["sorted_rows"]); };
  add(std::move(c));
}

void register_permute() {
  for (int64_t T : {1, 4, 16}) permute_case("qwen3-30b-a3b", T, 2048, 128, 8, kInt32, 0);
  permute_case("qwen3-30b-a3b", 512, 2048, 128, 8, kInt32, 0, {}, true);
  permute_case("qwen3-30b-a3b", 16, 2048, 128, 8, kInt64, 0);
  permute_case("qwen3-30b-a3b", 16, 2048, 128, 8, kInt32, 64);
  permute_case("deepseek-v3", 4, 7168, 256, 8, kInt32, 0);
  for (int64_t H : {1, 7, 769}) permute_case("odd", 33, H, 7, 2, kInt32, 0);
  permute_case("odd", 33, 769, 7, 2, kInt64, 5);
  permute_case("zero tokens", 0, 2048, 128, 8, kInt32, 0);
  permute_case("zero tokens", 0, 7, 1, 1, kInt64, 0);
  permute_case("E=1", 7, 33, 1, 1, kInt32, 0);
  permute_case("k=E", 7, 33, 4, 4, kInt32, 0);
  // Most experts get no tokens (including the first and the last).
  permute_case("empty experts", 33, 65, 64, 2, kInt32, 0, {3, 4, 17, 40, 41, 62});
  permute_case("empty experts", 16, 2048, 128, 8, kInt64, 0, {1, 5, 9, 13, 64, 100, 101, 102, 103, 126});

  for (int64_t T : {1, 4, 16}) unpermute_case("qwen3-30b-a3b", T, 2048, 128, 8, 0);
  unpermute_case("qwen3-30b-a3b", 512, 2048, 128, 8, 0, true);
  unpermute_case("qwen3-30b-a3b", 16, 2048, 128, 8, 64);
  unpermute_case("deepseek-v3", 4, 7168, 256, 8, 0);
  for (int64_t H : {1, 7, 769}) unpermute_case("odd", 33, H, 7, 2, 0);
  unpermute_case("odd", 33, 769, 7, 3, 7);
  unpermute_case("odd", 7, 5125, 8, 1, 0);
  unpermute_case("zero tokens", 0, 2048, 128, 8, 0);
  unpermute_case("zero slots", 5, 33, 4, 0, 0);  // k = 0: out is 0
  unpermute_case("mixtral-like", 16, 4096, 8, 2, 0);
  unpermute_case("NaN in row 3", 7, 33, 4, 2, 0, false, [](std::vector<double>& v, uint64_t seed) {
    normal_values(1.0)(v, seed);
    v[3 * 33 + 10] = NAN;  // permuted row 3: exactly one token's output column 10 is NaN
  });
}

// ---- bad arguments ----

constexpr opdev_moe_scoring SM = OPDEV_MOE_SCORING_SOFTMAX, SG = OPDEV_MOE_SCORING_SIGMOID;

void register_errors() {
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE;

  // moe_gating_topk: logits [2, 8], k = 4 unless stated.
  auto gate = [](E& e, const DLTensor* w, const DLTensor* ids, const DLTensor* logits, const DLTensor* bias, opdev_moe_scoring sc = SM,
                 int ng = 1, int tg = 1, double rsf = 1.0) {
    return opdev_moe_gating_topk(e.ctx(), w, ids, logits, bias, sc, 1, ng, tg, rsf);
  };
  auto W = [](E& e, int64_t T = 2, int64_t k = 4) { return e.tensor({T, k}, kFloat32); };
  auto I = [](E& e, int64_t T = 2, int64_t k = 4) { return e.tensor({T, k}, kInt32); };
  auto L = [](E& e, int64_t T = 2, int64_t n = 8) { return e.tensor({T, n}, e.act); };
  const std::string G = "moe_gating_topk";
  add_error(G, "NULL topk_weights", INV, "topk_weights: expected a tensor, got NULL", [=](E& e) { return gate(e, nullptr, I(e), L(e), nullptr); });
  add_error(G, "NULL logits", INV, "logits: expected a tensor, got NULL", [=](E& e) { return gate(e, W(e), I(e), nullptr, nullptr); });
  add_error(G, "NULL context", INV, "ctx: expected a context, got NULL", [=](E& e) {
    return opdev_moe_gating_topk(nullptr, W(e), I(e), L(e), nullptr, SM, 1, 1, 1, 1.0);
  });
  add_error(G, "wrong rank of logits", INV, "logits: expected rank 2, got rank 3",
            [=](E& e) { return gate(e, W(e), I(e), e.tensor({2, 1, 8}, e.act), nullptr); });
  add_error(G, "wrong rank of topk_ids", INV, "topk_ids: expected rank 2, got rank 1",
            [=](E& e) { return gate(e, W(e), e.tensor({8}, kInt32), L(e), nullptr); });
  add_error(G, "topk_ids tokens mismatch", INV, "topk_ids: expected dimension 0 (T, the tokens of logits) to be 2, got 3",
            [=](E& e) { return gate(e, W(e), I(e, 3), L(e), nullptr); });
  add_error(G, "topk_weights shape mismatch", INV, "topk_weights: expected shape [2, 4], got [2, 3]",
            [=](E& e) { return gate(e, W(e, 2, 3), I(e), L(e), nullptr); });
  add_error(G, "k = 0", INV, "topk_ids: expected dimension 1 (k, experts per token) in [1, E = 8], got 0",
            [=](E& e) { return gate(e, W(e, 2, 0), I(e, 2, 0), L(e), nullptr); });
  add_error(G, "k > E", INV, "topk_ids: expected dimension 1 (k, experts per token) in [1, E = 8], got 9",
            [=](E& e) { return gate(e, W(e, 2, 9), I(e, 2, 9), L(e), nullptr); });
  add_error(G, "correction_bias size mismatch", INV, "correction_bias: expected shape [8], got [7]",
            [=](E& e) { return gate(e, W(e), I(e), L(e), e.tensor({7}, kFloat32), SG); });
  add_error(G, "integer logits", DT, "logits: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [=](E& e) { return gate(e, W(e), I(e), e.tensor({2, 8}, kInt32), nullptr); });
  add_error(G, "int64 topk_ids", DT, "topk_ids: expected dtype int32, got int64",
            [=](E& e) { return gate(e, W(e), e.tensor({2, 4}, kInt64), L(e), nullptr); });
  add_error(G, "float16 topk_weights", DT, "topk_weights: expected dtype float32, got float16",
            [=](E& e) { return gate(e, e.tensor({2, 4}, kFloat16), I(e), L(e), nullptr); });
  add_error(G, "bfloat16 correction_bias", DT, "correction_bias: expected dtype float32, got bfloat16",
            [=](E& e) { return gate(e, W(e), I(e), L(e), e.tensor({8}, kBFloat16), SG); });
  add_error(G, "float topk_ids", DT, "topk_ids: expected dtype int32, got float32",
            [=](E& e) { return gate(e, W(e), e.tensor({2, 4}, kFloat32), L(e), nullptr); });
  add_error(G, "non-contiguous last dimension of logits", INV, "logits: expected the last dimension to be contiguous (stride 1), got stride 2",
            [=](E& e) { return gate(e, W(e), I(e), e.strided({2, 8}, {16, 2}, e.act), nullptr); });
  add_error(G, "strided correction_bias", INV, "correction_bias: expected a contiguous tensor",
            [=](E& e) { return gate(e, W(e), I(e), L(e), e.strided({8}, {2}, kFloat32), SG); });
  add_error(G, "topk_weights overlaps logits", INV, "topk_weights: must not overlap logits (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({3, 8}, kFloat32);
    return gate(e, e.view_of(buf, {2, 4}, 0), I(e), e.view_of(buf, {2, 8}, 4), nullptr);
  });
  add_error(G, "topk_ids overlaps topk_weights", INV, "topk_weights: must not overlap topk_ids (forbidden aliasing)", [=](E& e) {
    const DLTensor* w = W(e);
    DLTensor ids = *e.view_of(w, {2, 4});
    ids.dtype = kInt32;
    return gate(e, w, &ids, L(e), nullptr);
  });
  add_error(G, "topk_weights overlaps correction_bias", INV, "topk_weights: must not overlap correction_bias (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({16}, kFloat32);
    return gate(e, e.view_of(buf, {2, 4}, 4), I(e), L(e), e.view_of(buf, {8}, 0), SG);
  });
  add_error(G, "topk_ids with stride 0", INV, "topk_ids: output view addresses the same element more than once",
            [=](E& e) { return gate(e, W(e), e.strided({2, 4}, {0, 1}, kInt32), L(e), nullptr); });
  add_error(G, "NULL data", INV, "logits: data is NULL but the tensor has 16 elements",
            [=](E& e) { return gate(e, W(e), I(e), e.null_data({2, 8}, e.act), nullptr); });
  add_error(G, "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "logits: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return gate(e, W(e), I(e), e.huge({big, big}, e.act), nullptr);
  });
  add_error(G, "E beyond int32 ids", OPDEV_STATUS_SIZE_OVERFLOW, "logits: E = 4294967296 experts do not fit the int32 topk_ids",
            [=](E& e) { return gate(e, W(e), I(e), e.huge({2, int64_t(1) << 32}, e.act), nullptr); });
  add_error(G, "bad scoring", INV, "scoring: expected OPDEV_MOE_SCORING_SOFTMAX (0) or OPDEV_MOE_SCORING_SIGMOID (1), got 7",
            [=](E& e) {
              volatile int seven = 7;  // as a C caller could pass it
              return gate(e, W(e), I(e), L(e), nullptr, static_cast<opdev_moe_scoring>(seven));
            });
  add_error(G, "n_group = 0", INV, "n_group: expected a value >= 1 that divides E = 8, got 0",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SG, 0, 1); });
  add_error(G, "n_group does not divide E", INV, "n_group: expected a value >= 1 that divides E = 8, got 3",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SG, 3, 1); });
  add_error(G, "topk_group = 0", INV, "topk_group: expected a value in [1, n_group = 4], got 0",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SG, 4, 0); });
  add_error(G, "topk_group > n_group", INV, "topk_group: expected a value in [1, n_group = 4], got 5",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SG, 4, 5); });
  add_error(G, "k > experts of the kept groups", INV, "topk_ids: k = 4 exceeds the 2 experts of the topk_group best groups",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SG, 4, 1); });
  add_error(G, "routed_scaling_factor = 0", INV, "routed_scaling_factor: expected a finite value > 0, got 0",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SM, 1, 1, 0.0); });
  add_error(G, "routed_scaling_factor NaN", INV, "routed_scaling_factor: expected a finite value > 0, got nan",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SM, 1, 1, NAN); });
  add_error(G, "routed_scaling_factor inf", INV, "routed_scaling_factor: expected a finite value > 0, got inf",
            [=](E& e) { return gate(e, W(e), I(e), L(e), nullptr, SM, 1, 1, INFINITY); });

  // moe_permute: x [2, 8], topk_ids [2, 2], E = 4.
  const std::string P = "moe_permute";
  auto perm = [](E& e, const DLTensor* px, const DLTensor* off, const DLTensor* rows, const DLTensor* x, const DLTensor* ids) {
    return opdev_moe_permute(e.ctx(), px, off, rows, x, ids);
  };
  auto PX = [](E& e) { return e.tensor({4, 8}, e.act); };
  auto OFF = [](E& e) { return e.tensor({5}, kInt64); };
  auto ROWS = [](E& e) { return e.tensor({4}, kInt32); };
  auto X = [](E& e) { return e.tensor({2, 8}, e.act); };
  auto IDS = [](E& e) { return e.tensor({2, 2}, kInt32, {0, 3}); };
  add_error(P, "NULL x", INV, "x: expected a tensor, got NULL", [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), nullptr, IDS(e)); });
  add_error(P, "NULL expert_offsets", INV, "expert_offsets: expected a tensor, got NULL",
            [=](E& e) { return perm(e, PX(e), nullptr, ROWS(e), X(e), IDS(e)); });
  add_error(P, "wrong rank of x", INV, "x: expected rank 2, got rank 3",
            [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), e.tensor({2, 1, 8}, e.act), IDS(e)); });
  add_error(P, "wrong rank of topk_ids", INV, "topk_ids: expected rank 2, got rank 1",
            [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), X(e), e.tensor({4}, kInt32)); });
  add_error(P, "topk_ids tokens mismatch", INV, "topk_ids: expected dimension 0 (T, the tokens of x) to be 2, got 4",
            [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), X(e), e.tensor({4, 1}, kInt32)); });
  add_error(P, "wrong rank of expert_offsets", INV, "expert_offsets: expected rank 1, got rank 2",
            [=](E& e) { return perm(e, PX(e), e.tensor({1, 5}, kInt64), ROWS(e), X(e), IDS(e)); });
  add_error(P, "no experts", INV, "expert_offsets: expected shape [E+1] with E >= 1 experts, got [1]",
            [=](E& e) { return perm(e, PX(e), e.tensor({1}, kInt64), ROWS(e), X(e), IDS(e)); });
  add_error(P, "sorted_rows size mismatch", INV, "sorted_rows: expected shape [4], got [5]",
            [=](E& e) { return perm(e, PX(e), OFF(e), e.tensor({5}, kInt32), X(e), IDS(e)); });
  add_error(P, "permuted_x rows mismatch", INV, "permuted_x: expected shape [4, 8], got [2, 8]",
            [=](E& e) { return perm(e, X(e), OFF(e), ROWS(e), X(e), IDS(e)); });
  add_error(P, "permuted_x width mismatch", INV, "permuted_x: expected shape [4, 8], got [4, 9]",
            [=](E& e) { return perm(e, e.tensor({4, 9}, e.act), OFF(e), ROWS(e), X(e), IDS(e)); });
  add_error(P, "integer x", DT, "x: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [=](E& e) { return perm(e, e.tensor({4, 8}, kInt32), OFF(e), ROWS(e), e.tensor({2, 8}, kInt32), IDS(e)); });
  add_error(P, "float topk_ids", DT, "topk_ids: expected dtype int32 | int64, got float32",
            [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), X(e), e.tensor({2, 2}, kFloat32)); });
  add_error(P, "int32 expert_offsets", DT, "expert_offsets: expected dtype int64, got int32",
            [=](E& e) { return perm(e, PX(e), e.tensor({5}, kInt32), ROWS(e), X(e), IDS(e)); });
  add_error(P, "int64 sorted_rows", DT, "sorted_rows: expected dtype int32, got int64",
            [=](E& e) { return perm(e, PX(e), OFF(e), e.tensor({4}, kInt64), X(e), IDS(e)); });
  add_error(P, "mixed dtypes", DT, "permuted_x: expected dtype", [=](E& e) {
    DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return perm(e, e.tensor({4, 8}, other), OFF(e), ROWS(e), X(e), IDS(e));
  });
  add_error(P, "non-contiguous last dimension of x", INV, "x: expected the last dimension to be contiguous (stride 1), got stride 2",
            [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), e.strided({2, 8}, {16, 2}, e.act), IDS(e)); });
  add_error(P, "strided sorted_rows", INV, "sorted_rows: expected a contiguous tensor",
            [=](E& e) { return perm(e, PX(e), OFF(e), e.strided({4}, {2}, kInt32), X(e), IDS(e)); });
  add_error(P, "permuted_x overlaps x", INV, "permuted_x: must not overlap x (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({5, 8}, e.act);
    return perm(e, e.view_of(buf, {4, 8}, 8), OFF(e), ROWS(e), e.view_of(buf, {2, 8}, 0), IDS(e));
  });
  add_error(P, "sorted_rows overlaps topk_ids", INV, "sorted_rows: must not overlap topk_ids (forbidden aliasing)", [=](E& e) {
    const DLTensor* ids = IDS(e);
    return perm(e, PX(e), OFF(e), e.view_of(ids, {4}), X(e), ids);
  });
  add_error(P, "expert_offsets overlaps sorted_rows", INV, "expert_offsets: must not overlap sorted_rows (forbidden aliasing)", [=](E& e) {
    const DLTensor* off = OFF(e);
    DLTensor rows = *e.view_of(off, {4});
    rows.dtype = kInt32;
    return perm(e, PX(e), off, &rows, X(e), IDS(e));
  });
  add_error(P, "permuted_x with stride 0", INV, "permuted_x: output view addresses the same element more than once",
            [=](E& e) { return perm(e, e.strided({4, 8}, {0, 1}, e.act), OFF(e), ROWS(e), X(e), IDS(e)); });
  add_error(P, "NULL data", INV, "x: data is NULL but the tensor has 16 elements",
            [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), e.null_data({2, 8}, e.act), IDS(e)); });
  add_error(P, "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "x: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return perm(e, PX(e), OFF(e), ROWS(e), e.huge({big, big}, e.act), IDS(e));
  });
  add_error(P, "T*k beyond int32 rows", OPDEV_STATUS_SIZE_OVERFLOW, "sorted_rows: T*k = 4294967296 rows do not fit the int32 row indices",
            [=](E& e) {
              const int64_t T = int64_t(1) << 24;
              return perm(e, e.huge({T * 256, 8}, e.act), OFF(e), e.huge({T * 256}, kInt32), e.huge({T, 8}, e.act), e.huge({T, 256}, kInt32));
            });
  add_error(
      P, "expert id = E", OPDEV_STATUS_OUT_OF_RANGE,
      "topk_ids[1, 0] = 4 is outside [0, 4) (the number of experts E = expert_offsets.shape[0] - 1 = 4)",
      [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), X(e), e.tensor({2, 2}, kInt32, {0, 3, 4, 1})); }, true);
  add_error(
      P, "negative expert id (int64)", OPDEV_STATUS_OUT_OF_RANGE, "topk_ids[0, 1] = -1 is outside [0, 4)",
      [=](E& e) { return perm(e, PX(e), OFF(e), ROWS(e), X(e), e.tensor({2, 2}, kInt64, {0, -1, 2, 1})); }, true);

  // moe_unpermute: out [2, 8], k = 2, permuted_y [4, 8].
  const std::string U = "moe_unpermute";
  auto unperm = [](E& e, const DLTensor* out, const DLTensor* y, const DLTensor* w, const DLTensor* rows) {
    return opdev_moe_unpermute(e.ctx(), out, y, w, rows);
  };
  auto OUT = [](E& e) { return e.tensor({2, 8}, e.act); };
  auto Y = [](E& e) { return e.tensor({4, 8}, e.act); };
  auto UW = [](E& e) { return e.tensor({2, 2}, kFloat32); };
  auto UR = [](E& e) { return e.tensor({4}, kInt32, {2, 0, 3, 1}); };
  add_error(U, "NULL out", INV, "out: expected a tensor, got NULL", [=](E& e) { return unperm(e, nullptr, Y(e), UW(e), UR(e)); });
  add_error(U, "NULL sorted_rows", INV, "sorted_rows: expected a tensor, got NULL", [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), nullptr); });
  add_error(U, "wrong rank of out", INV, "out: expected rank 2, got rank 1",
            [=](E& e) { return unperm(e, e.tensor({16}, e.act), Y(e), UW(e), UR(e)); });
  add_error(U, "wrong rank of topk_weights", INV, "topk_weights: expected rank 2, got rank 1",
            [=](E& e) { return unperm(e, OUT(e), Y(e), e.tensor({4}, kFloat32), UR(e)); });
  add_error(U, "topk_weights tokens mismatch", INV, "topk_weights: expected dimension 0 (T, the tokens of out) to be 2, got 1",
            [=](E& e) { return unperm(e, OUT(e), Y(e), e.tensor({1, 4}, kFloat32), UR(e)); });
  add_error(U, "permuted_y rows mismatch", INV, "permuted_y: expected shape [4, 8], got [3, 8]",
            [=](E& e) { return unperm(e, OUT(e), e.tensor({3, 8}, e.act), UW(e), UR(e)); });
  add_error(U, "permuted_y width mismatch", INV, "permuted_y: expected shape [4, 8], got [4, 7]",
            [=](E& e) { return unperm(e, OUT(e), e.tensor({4, 7}, e.act), UW(e), UR(e)); });
  add_error(U, "sorted_rows size mismatch", INV, "sorted_rows: expected shape [4], got [2]",
            [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), e.tensor({2}, kInt32)); });
  add_error(U, "integer out", DT, "out: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [=](E& e) { return unperm(e, e.tensor({2, 8}, kInt32), e.tensor({4, 8}, kInt32), UW(e), UR(e)); });
  add_error(U, "float16 topk_weights", DT, "topk_weights: expected dtype float32, got float16",
            [=](E& e) { return unperm(e, OUT(e), Y(e), e.tensor({2, 2}, kFloat16), UR(e)); });
  add_error(U, "int64 sorted_rows", DT, "sorted_rows: expected dtype int32, got int64",
            [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), e.tensor({4}, kInt64, {2, 0, 3, 1})); });
  add_error(U, "float sorted_rows", DT, "sorted_rows: expected dtype int32, got float32",
            [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), e.tensor({4}, kFloat32)); });
  add_error(U, "mixed dtypes", DT, "permuted_y: expected dtype", [=](E& e) {
    DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return unperm(e, OUT(e), e.tensor({4, 8}, other), UW(e), UR(e));
  });
  add_error(U, "non-contiguous last dimension of permuted_y", INV,
            "permuted_y: expected the last dimension to be contiguous (stride 1), got stride 2",
            [=](E& e) { return unperm(e, OUT(e), e.strided({4, 8}, {16, 2}, e.act), UW(e), UR(e)); });
  add_error(U, "strided sorted_rows", INV, "sorted_rows: expected a contiguous tensor",
            [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), e.strided({4}, {3}, kInt32)); });
  add_error(U, "out overlaps permuted_y (in place)", INV, "out: must not overlap permuted_y (forbidden aliasing)", [=](E& e) {
    const DLTensor* y = Y(e);
    return unperm(e, e.view_of(y, {2, 8}), y, UW(e), UR(e));
  });
  add_error(U, "out overlaps topk_weights", INV, "out: must not overlap topk_weights (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({3, 8}, kFloat32);
    return opdev_moe_unpermute(e.ctx(), e.view_of(buf, {2, 8}, 8), e.tensor({4, 8}, kFloat32), e.view_of(buf, {2, 2}, 6), UR(e));
  });
  add_error(U, "out with stride 0", INV, "out: output view addresses the same element more than once",
            [=](E& e) { return unperm(e, e.strided({2, 8}, {0, 1}, e.act), Y(e), UW(e), UR(e)); });
  add_error(U, "NULL data", INV, "permuted_y: data is NULL but the tensor has 32 elements",
            [=](E& e) { return unperm(e, OUT(e), e.null_data({4, 8}, e.act), UW(e), UR(e)); });
  add_error(U, "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "out: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return unperm(e, e.huge({big, big}, e.act), Y(e), UW(e), UR(e));
  });
  add_error(
      U, "sorted_rows value out of range", OPDEV_STATUS_OUT_OF_RANGE, "sorted_rows[2] = 4 is outside [0, 4) (the row count T*k = 4)",
      [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), e.tensor({4}, kInt32, {2, 0, 4, 1})); }, true);
  add_error(
      U, "negative sorted_rows value", OPDEV_STATUS_OUT_OF_RANGE, "sorted_rows[0] = -1 is outside [0, 4)",
      [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), e.tensor({4}, kInt32, {-1, 0, 3, 1})); }, true);
  add_error(
      U, "sorted_rows not a permutation", INV, "sorted_rows is not a permutation of 0..3: 1 appears twice (sorted_rows[1] and sorted_rows[3])",
      [=](E& e) { return unperm(e, OUT(e), Y(e), UW(e), e.tensor({4}, kInt32, {2, 1, 3, 1})); }, true);
}

}  // namespace

void register_moe() {
  register_gating();
  register_permute();
  register_errors();
}

}  // namespace opdev::conformance
