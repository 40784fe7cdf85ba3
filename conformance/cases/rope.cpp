// Conformance cases of rope and rope_cache.
#include <cmath>
#include <cstdio>

#include "conformance.h"

namespace opdev::conformance {

namespace {

std::string str(int64_t x) { return std::to_string(x); }
std::string fmt_theta(double theta) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", theta);
  return b;
}

// A real cos/sin table [P, rot]: row p = [cos(p f_0..f_{rot/2-1}), sin(...)], f_i = theta^(-2i/rot),
// computed in double (the harness rounds it to float32).
Generator cache_values(int64_t P, int64_t rot, double theta) {
  return [P, rot, theta](std::vector<double>& v, uint64_t) {
    const int64_t half = rot / 2;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = double(p) * std::pow(theta, -double(2 * i) / double(rot));
        v[size_t(p * rot + i)] = std::cos(angle);
        v[size_t(p * rot + half + i)] = std::sin(angle);
      }
  };
}

// Random positions in [0, P), with the extremes P - 1 (first token) and 0 (last token) always present.
Generator position_values(int64_t P) {
  return [P](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = std::floor(r.uniform() * double(P));
    if (!v.empty()) v.front() = double(P - 1);
    if (v.size() > 1) v.back() = 0;
  };
}

struct RopeShape {
  int64_t T, Hq, Hk, D, rot, P;  // Hk = 0: k absent
};

// One rope case on separate q and k tensors; q_pad/k_pad stride their token rows (a fused qkv row).
void rope_case(const std::string& what, RopeShape s, bool neox, DLDataType pos_dtype, int64_t q_pad, int64_t k_pad,
               bool large = false, double theta = 1e6) {
  Case c;
  c.op = "rope";
  c.name = what + " T=" + str(s.T) + " q[" + str(s.Hq) + "x" + str(s.D) + "]" + (s.Hk ? " k[" + str(s.Hk) + "]" : " no k") +
           " rot=" + str(s.rot) + " P=" + str(s.P) + (neox ? " neox" : " gptj") + " " + dtype_str(pos_dtype) +
           (q_pad || k_pad ? " strided" : "");
  c.large = large;
  c.inout("q", {s.T, s.Hq, s.D}).normal(0, 1).strided(q_pad);
  if (s.Hk) c.inout("k", {s.T, s.Hk, s.D}).normal(0, 1).strided(k_pad);
  else c.absent("k");
  c.input("positions", {s.T}).dtype(pos_dtype).values(position_values(s.P));
  c.input("cos_sin_cache", {s.P, s.rot}).dtype(kFloat32).values(cache_values(s.P, s.rot, theta));
  c.call = [neox](Call& k) { return opdev_rope(k.ctx, k["q"], k["k"], k["positions"], k["cos_sin_cache"], neox ? 1 : 0); };
  add(std::move(c));
}

// A [T, H, D] view of `base` (a [T, W] tensor) starting `offset` elements into each row, heads `hstride`
// elements apart: how an engine addresses q and k inside one fused qkv (or kv_a) buffer.
struct HeadView {
  DLTensor t{};
  int64_t shape[3], strides[3];
  HeadView(const DLTensor* base, int64_t H, int64_t D, int64_t offset, int64_t hstride) {
    t = *base;
    shape[0] = base->shape[0];
    shape[1] = H;
    shape[2] = D;
    strides[0] = base->strides ? base->strides[0] : base->shape[1];
    strides[1] = hstride;
    strides[2] = 1;
    t.ndim = 3;
    t.shape = shape;
    t.strides = strides;
    t.byte_offset = base->byte_offset + uint64_t(offset) * ((base->dtype.bits + 7) / 8);
  }
};

// q and k as views of ONE qkv buffer [T, (Hq + 2 Hk) D] (the v part must stay untouched); `pad` strides
// the rows further on the backend under test.
void fused_case(const std::string& what, int64_t T, int64_t Hq, int64_t Hk, int64_t D, int64_t P, int64_t pad, bool large = false) {
  Case c;
  c.op = "rope";
  c.name = what + " fused qkv T=" + str(T) + " q[" + str(Hq) + "] k[" + str(Hk) + "] D=" + str(D) + " P=" + str(P) +
           (pad ? " strided" : "");
  c.large = large;
  c.inout("qkv", {T, (Hq + 2 * Hk) * D}).normal(0, 1).strided(pad);
  c.input("positions", {T}).dtype(kInt64).values(position_values(P));
  c.input("cos_sin_cache", {P, D}).dtype(kFloat32).values(cache_values(P, D, 1e6));
  c.call = [Hq, Hk, D](Call& k) {
    HeadView q(k["qkv"], Hq, D, 0, D), kk(k["qkv"], Hk, D, Hq * D, D);
    return opdev_rope(k.ctx, &q.t, &kk.t, k["positions"], k["cos_sin_cache"], 1);
  };
  add(std::move(c));
}

// DeepSeek-V3 MLA: q [T, 128, 192] whose last 64 dims (q_pe) rotate, k_pe the last 64 of each kv_a row
// [T, 512 + 64]; GPT-J pairs.
void deepseek_case(int64_t T, int64_t heads) {
  Case c;
  c.op = "rope";
  c.name = "deepseek-v3 mla q_pe/k_pe T=" + str(T) + " heads=" + str(heads);
  const int64_t P = 4096;
  c.inout("q", {T, heads * 192}).normal(0, 1);
  c.inout("kv_a", {T, 576}).normal(0, 1).strided(64);
  c.input("positions", {T}).dtype(kInt64).values(position_values(P));
  c.input("cos_sin_cache", {P, 64}).dtype(kFloat32).values(cache_values(P, 64, 1e4));
  c.call = [heads](Call& k) {
    HeadView q_pe(k["q"], heads, 64, 128, 192), k_pe(k["kv_a"], 1, 64, 512, 64);
    return opdev_rope(k.ctx, &q_pe.t, &k_pe.t, k["positions"], k["cos_sin_cache"], 0);
  };
  add(std::move(c));
}

// NaN in one element of q: its pair partner becomes NaN, nothing else does.
void nan_case(bool neox) {
  Case c;
  c.op = "rope";
  c.name = std::string("NaN in q ") + (neox ? "neox" : "gptj");
  c.inout("q", {3, 2, 16}).values([](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = r.normal();
    v[32 + 16 + 5] = NAN;  // token 1, head 1, element 5
  });
  c.inout("k", {3, 1, 16}).normal(0, 1);
  c.input("positions", {3}).dtype(kInt32).values(position_values(40));
  c.input("cos_sin_cache", {40, 12}).dtype(kFloat32).values(cache_values(40, 12, 1e4));
  c.call = [neox](Call& k) { return opdev_rope(k.ctx, k["q"], k["k"], k["positions"], k["cos_sin_cache"], neox ? 1 : 0); };
  add(std::move(c));
}

// ---- rope_cache ----

opdev_rope_scaling scaling_none() {
  opdev_rope_scaling s;
  opdev_rope_scaling_init(&s);
  return s;
}
opdev_rope_scaling scaling_linear(double factor) {
  opdev_rope_scaling s = scaling_none();
  s.type = OPDEV_ROPE_SCALING_LINEAR;
  s.factor = factor;
  return s;
}
opdev_rope_scaling scaling_yarn(double factor, int64_t original) {
  opdev_rope_scaling s = scaling_none();
  s.type = OPDEV_ROPE_SCALING_YARN;
  s.factor = factor;
  s.original_max_position_embeddings = original;
  return s;
}
// DeepSeek-V3's rope_scaling (config.json): yarn, factor 40, original 4096, betas 32/1, mscale 1, mscale_all_dim 1.
opdev_rope_scaling scaling_deepseek() {
  opdev_rope_scaling s = scaling_yarn(40, 4096);
  s.beta_fast = 32;
  s.beta_slow = 1;
  s.mscale = 1.0;
  s.mscale_all_dim = 1.0;
  return s;
}

// A hand-derived expectation: element (p, i) of the table (i < rot/2: cos, else sin of the same pair).
struct Expect {
  int64_t p, i;
  double value;
};

// Checks the table on the host against expectations derived by hand from the Hugging Face formulas
// (the same float32 bound as the suite uses), so that ref and cpu are not only checked against each other.
opdev_status check_expectations(Call& k, const char* name, const std::vector<Expect>& expect) {
  const DLTensor* t = k["cos_sin_cache"];
  const int64_t P = t->shape[0], rot = t->shape[1];
  std::vector<float> host(size_t(P * rot));
  check(opdev_memcpy(k.ctx, host.data(), static_cast<const char*>(t->data) + t->byte_offset, host.size() * 4,
                     OPDEV_MEMCPY_DEVICE_TO_HOST));
  for (const Expect& e : expect) {
    const double got = host[size_t(e.p * rot + e.i)];
    if (!(std::fabs(got - e.value) <= 1e-5 + 1.3e-6 * std::fabs(e.value))) {
      std::fprintf(stderr, "rope_cache %s (%s): element [%lld, %lld] = %.9g, hand-derived %.9g\n", name,
                   opdev_context_backend(k.ctx), (long long)e.p, (long long)e.i, got, e.value);
      return OPDEV_STATUS_INTERNAL;
    }
  }
  return OPDEV_STATUS_SUCCESS;
}

void cache_case(const std::string& what, int64_t P, int64_t rot, double theta, const opdev_rope_scaling* scaling,
                std::vector<Expect> expect = {}, bool large = false) {
  Case c;
  c.op = "rope_cache";
  c.name = what + " P=" + str(P) + " rot=" + str(rot) + " theta=" + fmt_theta(theta);
  c.large = large;
  c.dtypes = {kFloat32};
  c.output("cos_sin_cache", {P, rot}).dtype(kFloat32);
  const bool has = scaling != nullptr;
  const opdev_rope_scaling s = has ? *scaling : scaling_none();
  const std::string name = c.name;
  c.call = [has, s, theta, expect, name](Call& k) {
    opdev_status st = opdev_rope_cache(k.ctx, k["cos_sin_cache"], theta, has ? &s : nullptr);
    if (st != OPDEV_STATUS_SUCCESS || expect.empty()) return st;
    return check_expectations(k, name.c_str(), expect);
  };
  add(std::move(c));
}

}  // namespace

void register_rope() {
  // ---- rope: numeric ----
  const int64_t P_long = 40960;  // Qwen3 max_position_embeddings
  for (bool neox : {true, false}) {
    // Whole-head rotation at the head dims models use.
    for (int64_t D : {64, 128, 256}) {
      rope_case("head_dim", {1, 2, 1, D, D, 64}, neox, kInt64, 0, 0);
      rope_case("head_dim", {7, 3, 2, D, D, 513}, neox, kInt32, 0, 0);
    }
    // Partial rotary (Llama-style rot 64 of 128; DeepSeek's 64 of a 192-wide head) and rot_dim whose half
    // is not a multiple of the vector width; odd head_dim (the pass-through part has odd length).
    rope_case("partial", {5, 4, 2, 128, 64, 300}, neox, kInt64, 0, 0);
    rope_case("partial", {3, 2, 1, 192, 64, 300}, neox, kInt32, 0, 0);
    for (int64_t rot : {2, 6, 18, 34, 66}) rope_case("odd rot", {7, 3, 5, rot + 3, rot, 33}, neox, kInt32, 0, 0);
    rope_case("odd rot", {7, 1, 1, 7, 6, 33}, neox, kInt64, 5, 3);
    rope_case("odd rot", {33, 1, 7, 769, 768, 33}, neox, kInt64, 0, 11);
    rope_case("rot 0 (identity)", {3, 2, 1, 8, 0, 9}, neox, kInt32, 0, 0);
    rope_case("no k", {16, 16, 0, 128, 128, 4096}, neox, kInt64, 2048, 0);
    rope_case("no k", {1, 1, 0, 64, 64, 1}, neox, kInt32, 0, 0);
    rope_case("zero tokens", {0, 16, 8, 128, 128, 4096}, neox, kInt64, 0, 0);
    rope_case("long positions", {33, 2, 1, 64, 64, P_long}, neox, kInt32, 0, 0);
    rope_case("long positions", {7, 2, 1, 128, 128, P_long}, neox, kInt64, 0, 0, true);
    nan_case(neox);
  }
  // Qwen3-0.6B (16 q / 8 kv heads) and Qwen3-30B-A3B (32 / 4) of head_dim 128, NeoX, q and k strided like
  // their rows in the fused qkv output: (16 + 8 + 8) * 128 = 4096 and (32 + 4 + 4) * 128 = 5120 wide.
  for (int64_t T : {1, 4, 16}) {
    rope_case("qwen3-0.6b", {T, 16, 8, 128, 128, 4096}, true, kInt64, 4096 - 16 * 128, 4096 - 8 * 128);
    rope_case("qwen3-30b-a3b", {T, 32, 4, 128, 128, 4096}, true, kInt32, 5120 - 32 * 128, 5120 - 4 * 128);
    fused_case("qwen3-0.6b", T, 16, 8, 128, 4096, T == 4 ? 64 : 0);
    fused_case("qwen3-30b-a3b", T, 32, 4, 128, 4096, T == 16 ? 32 : 0);
  }
  rope_case("qwen3-0.6b", {512, 16, 8, 128, 128, P_long}, true, kInt64, 4096 - 16 * 128, 4096 - 8 * 128, true);
  rope_case("qwen3-30b-a3b", {512, 32, 4, 128, 128, P_long}, true, kInt32, 5120 - 32 * 128, 5120 - 4 * 128, true);
  fused_case("qwen3-0.6b", 512, 16, 8, 128, 4096, 0, true);
  fused_case("qwen3-30b-a3b", 512, 32, 4, 128, 4096, 0, true);
  // DeepSeek-V3 MLA (128 heads, GPT-J pairs on the 64 rope dims).
  for (int64_t T : {1, 4, 16}) deepseek_case(T, 128);

  // ---- rope_cache: numeric (ref vs backend, plus hand-derived values) ----
  const double c1 = std::cos(1.0), s1 = std::sin(1.0);
  // Default rope: f_i = theta^(-2i/rot); row 0 is [1.., 0..]; row 1 starts with cos(1) / sin(1).
  auto f = [](double theta, int64_t rot, int64_t i) { return std::pow(theta, -double(2 * i) / double(rot)); };
  cache_case("default qwen3", 4096, 128, 1e6, nullptr,
             {{0, 0, 1}, {0, 63, 1}, {0, 64, 0}, {0, 127, 0}, {1, 0, c1}, {1, 64, s1},
              {4095, 63, std::cos(4095 * f(1e6, 128, 63))}, {4095, 127, std::sin(4095 * f(1e6, 128, 63))}});
  cache_case("default qwen3", P_long, 128, 1e6, nullptr, {{P_long - 1, 0, std::cos(double(P_long - 1))}}, true);
  for (int64_t P : {1, 7, 33, 769})
    for (int64_t rot : {64, 128}) cache_case("default", P, rot, 1e4, nullptr);
  for (int64_t rot : {2, 6, 18, 34}) cache_case("odd rot", 33, rot, 1e4, nullptr);
  cache_case("default deepseek rope dim", 4096, 64, 1e4, nullptr);
  cache_case("empty", 0, 128, 1e6, nullptr);
  // Linear: positions / factor.
  const opdev_rope_scaling lin4 = scaling_linear(4);
  cache_case("linear x4", 4096, 128, 1e6, &lin4, {{0, 0, 1}, {8, 0, std::cos(2.0)}, {8, 64, std::sin(2.0)},
                                                 {4000, 10, std::cos(1000 * f(1e6, 128, 10))}});
  cache_case("linear x4", P_long, 128, 1e6, &lin4, {}, true);
  // YaRN, Qwen3 long context (factor 4, original 32768, theta 1e6, rot 128). By hand: correction dims
  // 128 ln(32768 / (2 pi beta)) / (2 ln 1e6) = 23.60 (beta 32) and 39.65 (beta 1) -> low 23, high 40;
  // attention factor 0.1 ln 4 + 1. Below 23 the frequency is kept, above 40 divided by 4, i = 30 blends
  // with ramp (30 - 23) / 17.
  const opdev_rope_scaling yq = scaling_yarn(4, 32768);
  const double aq = 0.1 * std::log(4.0) + 1;
  const double fq30 = f(1e6, 128, 30) * (10.0 / 17) + f(1e6, 128, 30) / 4 * (7.0 / 17);
  const std::vector<Expect> eq = {{0, 0, aq}, {0, 63, aq}, {0, 64, 0}, {1, 0, c1 * aq}, {1, 64, s1 * aq},
                                  {4000, 63, aq * std::cos(4000 * f(1e6, 128, 63) / 4)},
                                  {4000, 127, aq * std::sin(4000 * f(1e6, 128, 63) / 4)},
                                  {4000, 30, aq * std::cos(4000 * fq30)}, {4000, 94, aq * std::sin(4000 * fq30)}};
  cache_case("yarn qwen3 x4", 4096, 128, 1e6, &yq, eq);
  cache_case("yarn qwen3 x4", P_long, 128, 1e6, &yq, eq, true);
  // YaRN, DeepSeek-V3 (factor 40, original 4096, theta 1e4, rot 64, mscale = mscale_all_dim = 1). By hand:
  // correction dims 10.47 and 22.51 -> low 10, high 23; attention factor get_mscale(40, 1) /
  // get_mscale(40, 1) = 1; i = 16 blends with ramp 6 / 13.
  const opdev_rope_scaling yd = scaling_deepseek();
  const double fd16 = f(1e4, 64, 16) * (7.0 / 13) + f(1e4, 64, 16) / 40 * (6.0 / 13);
  const std::vector<Expect> ed = {{0, 0, 1}, {0, 31, 1}, {0, 32, 0}, {1000, 0, std::cos(1000.0)}, {1000, 32, std::sin(1000.0)},
                                  {1000, 31, std::cos(1000 * f(1e4, 64, 31) / 40)}, {1000, 16, std::cos(1000 * fd16)},
                                  {1000, 48, std::sin(1000 * fd16)}, {1000, 9, std::cos(1000 * f(1e4, 64, 9))}};
  cache_case("yarn deepseek-v3 x40", 4096, 64, 1e4, &yd, ed);
  cache_case("yarn deepseek-v3 x40", P_long, 64, 1e4, &yd, ed, true);
  // YaRN variants: fractional correction range, explicit attention factor, only one mscale set (HF then
  // uses get_mscale(factor)), two different mscales, factor 1, and a degenerate range (low == high = 0:
  // HF adds 0.001).
  opdev_rope_scaling v = scaling_yarn(4, 32768);
  v.truncate = 0;
  cache_case("yarn no truncate", 769, 128, 1e6, &v);
  v = scaling_yarn(8, 8192);
  v.attention_factor = 0.75;
  cache_case("yarn attention_factor 0.75", 769, 128, 1e4, &v, {{0, 0, 0.75}, {0, 64, 0}});
  v = scaling_yarn(16, 4096);
  v.mscale = 0.707;
  cache_case("yarn mscale only", 769, 64, 1e4, &v, {{0, 5, 0.1 * std::log(16.0) + 1}});
  v.mscale_all_dim = 1.0;
  cache_case("yarn mscale 0.707 / all_dim 1", 769, 64, 1e4, &v,
             {{0, 5, (0.1 * 0.707 * std::log(16.0) + 1) / (0.1 * std::log(16.0) + 1)}});
  v = scaling_yarn(1, 4096);
  cache_case("yarn factor 1", 769, 64, 1e4, &v, {{100, 7, std::cos(100 * f(1e4, 64, 7))}});
  v = scaling_yarn(4, 6);  // correction dims -12.2 and -0.16 -> low 0, high -0 -> high = 0.001
  v.beta_fast = 32;
  cache_case("yarn degenerate range", 33, 64, 1e4, &v, {{20, 0, aq * std::cos(20.0)}, {20, 1, aq * std::cos(20 * f(1e4, 64, 1) / 4)}});
  v = scaling_yarn(4, 32768);
  v.beta_fast = 64;
  v.beta_slow = 2;
  cache_case("yarn betas 64/2", 769, 128, 1e6, &v);

  // ---- rope: bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE;
  // A valid call: q [2, 2, 8], k [2, 1, 8], positions [2], cache [4, 8]; each case changes one argument.
  auto q_ = [](E& e) { return e.tensor({2, 2, 8}, e.act); };
  auto k_ = [](E& e) { return e.tensor({2, 1, 8}, e.act); };
  auto pos_ = [](E& e) { return e.tensor({2}, kInt64, {1, 3}); };
  auto cs_ = [](E& e) { return e.tensor({4, 8}, kFloat32); };
  add_error("rope", "NULL context", INV, "ctx: expected a context, got NULL",
            [=](E& e) { return opdev_rope(nullptr, q_(e), k_(e), pos_(e), cs_(e), 1); });
  add_error("rope", "NULL q", INV, "q: expected a tensor, got NULL", [=](E& e) { return opdev_rope(e.ctx(), nullptr, k_(e), pos_(e), cs_(e), 1); });
  add_error("rope", "NULL positions", INV, "positions: expected a tensor, got NULL",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), nullptr, cs_(e), 1); });
  add_error("rope", "NULL cos_sin_cache", INV, "cos_sin_cache: expected a tensor, got NULL",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), pos_(e), nullptr, 1); });
  add_error("rope", "wrong rank of q", INV, "q: expected rank 3, got rank 2",
            [=](E& e) { return opdev_rope(e.ctx(), e.tensor({2, 16}, e.act), k_(e), pos_(e), cs_(e), 1); });
  add_error("rope", "wrong rank of k", INV, "k: expected rank 3, got rank 4",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), e.tensor({2, 1, 1, 8}, e.act), pos_(e), cs_(e), 1); });
  add_error("rope", "wrong rank of positions", INV, "positions: expected rank 1, got rank 2",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), e.tensor({2, 1}, kInt64), cs_(e), 1); });
  add_error("rope", "wrong rank of cos_sin_cache", INV, "cos_sin_cache: expected rank 2, got rank 1",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), pos_(e), e.tensor({32}, kFloat32), 1); });
  add_error("rope", "k tokens mismatch", INV, "k: expected dimension 0 (tokens T of q) to be 2, got 3",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), e.tensor({3, 1, 8}, e.act), pos_(e), cs_(e), 1); });
  add_error("rope", "k head_dim mismatch", INV, "k: expected dimension 2 (head_dim D of q) to be 8, got 4",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), e.tensor({2, 1, 4}, e.act), pos_(e), cs_(e), 1); });
  add_error("rope", "positions length mismatch", INV, "positions: expected dimension 0 (tokens T of q) to be 2, got 3",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), e.tensor({3}, kInt64), cs_(e), 1); });
  add_error("rope", "odd rot_dim", INV, "cos_sin_cache: expected an even rot_dim (dimension 1), got 7",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), pos_(e), e.tensor({4, 7}, kFloat32), 1); });
  add_error("rope", "rot_dim above head_dim", INV, "cos_sin_cache: expected rot_dim (dimension 1) <= head_dim D = 8 of q, got 10",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), pos_(e), e.tensor({4, 10}, kFloat32), 1); });
  add_error("rope", "integer q", DT, "q: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [=](E& e) { return opdev_rope(e.ctx(), e.tensor({2, 2, 8}, kInt32), e.tensor({2, 1, 8}, kInt32), pos_(e), cs_(e), 1); });
  add_error("rope", "mixed q/k dtypes", DT, "k: expected dtype", [=](E& e) {
    DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return opdev_rope(e.ctx(), q_(e), e.tensor({2, 1, 8}, other), pos_(e), cs_(e), 1);
  });
  add_error("rope", "float positions", DT, "positions: expected dtype int32 | int64, got float32",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), e.tensor({2}, kFloat32), cs_(e), 1); });
  add_error("rope", "bfloat16 cos_sin_cache", DT, "cos_sin_cache: expected dtype float32, got bfloat16",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), pos_(e), e.tensor({4, 8}, kBFloat16), 1); });
  add_error("rope", "non-contiguous last dimension of q", INV, "q: expected the last dimension to be contiguous (stride 1), got stride 2",
            [=](E& e) { return opdev_rope(e.ctx(), e.strided({2, 2, 8}, {32, 16, 2}, e.act), k_(e), pos_(e), cs_(e), 1); });
  add_error("rope", "non-contiguous last dimension of k", INV, "k: expected the last dimension to be contiguous (stride 1), got stride 3",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), e.strided({2, 1, 8}, {24, 24, 3}, e.act), pos_(e), cs_(e), 1); });
  add_error("rope", "non-contiguous cos_sin_cache", INV, "cos_sin_cache: expected a contiguous tensor, got strides [16, 1]",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), pos_(e), e.strided({4, 8}, {16, 1}, kFloat32), 1); });
  add_error("rope", "q with stride 0", INV, "q: output view addresses the same element more than once",
            [=](E& e) { return opdev_rope(e.ctx(), e.strided({2, 2, 8}, {0, 8, 1}, e.act), k_(e), pos_(e), cs_(e), 1); });
  add_error("rope", "k heads with stride 0", INV, "k: output view addresses the same element more than once",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), e.strided({2, 2, 8}, {8, 0, 1}, e.act), pos_(e), cs_(e), 1); });
  // Fused qkv rows of 32 = (2 + 1 + 1) * 8: k starting at element 8 falls on q's second head.
  add_error("rope", "k overlaps q in a fused buffer", INV, "q: must not overlap k (forbidden aliasing)", [=](E& e) {
    const DLTensor* qkv = e.tensor({2, 32}, e.act);
    return opdev_rope(e.ctx(), e.view_of(qkv, {2, 2, 8}, 0, {32, 8, 1}), e.view_of(qkv, {2, 1, 8}, 8, {32, 8, 1}), pos_(e), cs_(e), 1);
  });
  add_error("rope", "k is q", INV, "q: must not overlap k (forbidden aliasing)", [=](E& e) {
    const DLTensor* q = q_(e);
    return opdev_rope(e.ctx(), q, q, pos_(e), cs_(e), 1);
  });
  add_error("rope", "q overlaps cos_sin_cache", INV, "q: must not overlap cos_sin_cache (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({8, 8}, kFloat32);
    return opdev_rope(e.ctx(), e.view_of(buf, {2, 2, 8}, 0), e.tensor({2, 1, 8}, kFloat32), pos_(e), e.view_of(buf, {4, 8}, 16), 1);
  });
  add_error("rope", "k overlaps positions", INV, "k: must not overlap positions (forbidden aliasing)", [=](E& e) {
    // 4-byte elements on both sides so that one buffer can serve as both (the dtype checks pass).
    const DLTensor* buf = e.tensor({4, 8}, kFloat32);
    DLTensor* pos = const_cast<DLTensor*>(e.view_of(buf, {2}, 12));
    pos->dtype = kInt32;
    return opdev_rope(e.ctx(), e.tensor({2, 2, 8}, kFloat32), e.view_of(buf, {2, 1, 8}, 0), pos, cs_(e), 1);
  });
  add_error("rope", "position past the table", OPDEV_STATUS_OUT_OF_RANGE, "positions[1] = 4 is outside [0, 4) (the rows P of cos_sin_cache)",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), e.tensor({2}, kInt64, {0, 4}), cs_(e), 1); }, true);
  add_error("rope", "negative position (int32)", OPDEV_STATUS_OUT_OF_RANGE, "positions[0] = -1 is outside [0, 4)",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), e.tensor({2}, kInt32, {-1, 0}), cs_(e), 1); }, true);
  add_error("rope", "position with an empty table", OPDEV_STATUS_OUT_OF_RANGE, "positions[0] = 0 is outside [0, 0)",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), e.tensor({2}, kInt32, {0, 0}), e.tensor({0, 8}, kFloat32), 1); }, true);
  add_error("rope", "NULL data", INV, "q: data is NULL but the tensor has 32 elements",
            [=](E& e) { return opdev_rope(e.ctx(), e.null_data({2, 2, 8}, e.act), k_(e), pos_(e), cs_(e), 1); });
  add_error("rope", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "q: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return opdev_rope(e.ctx(), e.huge({big, big, 8}, e.act), k_(e), pos_(e), cs_(e), 1);
  });
  add_error("rope", "is_neox not 0 or 1", INV, "is_neox: expected 1 (NeoX: pair i with i + rot_dim/2) or 0 (GPT-J: pair 2i with 2i+1), got 2",
            [=](E& e) { return opdev_rope(e.ctx(), q_(e), k_(e), pos_(e), cs_(e), 2); });

  // ---- rope_cache: bad arguments ----
  auto out_ = [](E& e) { return e.tensor({4, 8}, kFloat32); };
  add_error("rope_cache", "NULL context", INV, "ctx: expected a context, got NULL",
            [=](E& e) { return opdev_rope_cache(nullptr, out_(e), 1e4, nullptr); });
  add_error("rope_cache", "NULL cos_sin_cache", INV, "cos_sin_cache: expected a tensor, got NULL",
            [=](E& e) { return opdev_rope_cache(e.ctx(), nullptr, 1e4, nullptr); });
  add_error("rope_cache", "wrong rank", INV, "cos_sin_cache: expected rank 2, got rank 3",
            [=](E& e) { return opdev_rope_cache(e.ctx(), e.tensor({4, 1, 8}, kFloat32), 1e4, nullptr); });
  add_error("rope_cache", "bfloat16 table", DT, "cos_sin_cache: expected dtype float32, got bfloat16",
            [=](E& e) { return opdev_rope_cache(e.ctx(), e.tensor({4, 8}, kBFloat16), 1e4, nullptr); });
  add_error("rope_cache", "integer table", DT, "cos_sin_cache: expected dtype float32, got int32",
            [=](E& e) { return opdev_rope_cache(e.ctx(), e.tensor({4, 8}, kInt32), 1e4, nullptr); });
  add_error("rope_cache", "odd rot_dim", INV, "cos_sin_cache: expected an even rot_dim (dimension 1), got 5",
            [=](E& e) { return opdev_rope_cache(e.ctx(), e.tensor({4, 5}, kFloat32), 1e4, nullptr); });
  add_error("rope_cache", "strided rows", INV, "cos_sin_cache: expected a contiguous tensor, got strides [9, 1]",
            [=](E& e) { return opdev_rope_cache(e.ctx(), e.strided({4, 8}, {9, 1}, kFloat32), 1e4, nullptr); });
  add_error("rope_cache", "rows with stride 0", INV, "cos_sin_cache: expected a contiguous tensor, got strides [0, 1]",
            [=](E& e) { return opdev_rope_cache(e.ctx(), e.strided({4, 8}, {0, 1}, kFloat32), 1e4, nullptr); });
  add_error("rope_cache", "NULL data", INV, "cos_sin_cache: data is NULL but the tensor has 32 elements",
            [=](E& e) { return opdev_rope_cache(e.ctx(), e.null_data({4, 8}, kFloat32), 1e4, nullptr); });
  add_error("rope_cache", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "cos_sin_cache: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return opdev_rope_cache(e.ctx(), e.huge({big, big}, kFloat32), 1e4, nullptr);
  });
  add_error("rope_cache", "theta 1", INV, "theta: expected a finite value > 1, got 1",
            [=](E& e) { return opdev_rope_cache(e.ctx(), out_(e), 1.0, nullptr); });
  add_error("rope_cache", "theta NaN", INV, "theta: expected a finite value > 1, got nan",
            [=](E& e) { return opdev_rope_cache(e.ctx(), out_(e), NAN, nullptr); });
  add_error("rope_cache", "unknown scaling type", INV,
            "scaling.type: expected OPDEV_ROPE_SCALING_NONE (0), OPDEV_ROPE_SCALING_LINEAR (1) or OPDEV_ROPE_SCALING_YARN (2), got 3", [=](E& e) {
              opdev_rope_scaling s = scaling_none();
              s.type = static_cast<opdev_rope_scaling_type>(3);  // the largest value C++ lets this enum hold
              return opdev_rope_cache(e.ctx(), out_(e), 1e4, &s);
            });
  // Each bad field of a scaling that is valid otherwise.
  struct BadScaling {
    const char* name;
    const char* message;
    opdev_rope_scaling s;
  };
  std::vector<BadScaling> bad;
  auto with = [](opdev_rope_scaling s, auto edit) {
    edit(s);
    return s;
  };
  const opdev_rope_scaling y = scaling_deepseek();
  bad.push_back({"linear factor below 1", "scaling.factor: expected a finite value >= 1 for linear scaling, got 0.5", scaling_linear(0.5)});
  bad.push_back({"yarn factor NaN", "scaling.factor: expected a finite value >= 1 for yarn scaling, got nan", with(y, [](auto& s) { s.factor = NAN; })});
  bad.push_back({"yarn original_max_position_embeddings 0",
                 "scaling.original_max_position_embeddings: expected a value > 0 for yarn scaling, got 0",
                 with(y, [](auto& s) { s.original_max_position_embeddings = 0; })});
  bad.push_back({"yarn beta_fast 0", "scaling.beta_fast: expected a finite value > 0 (Hugging Face default 32), got 0",
                 with(y, [](auto& s) { s.beta_fast = 0; })});
  bad.push_back({"yarn beta_slow inf", "scaling.beta_slow: expected a finite value > 0 (Hugging Face default 1), got inf",
                 with(y, [](auto& s) { s.beta_slow = INFINITY; })});
  bad.push_back({"yarn mscale negative", "scaling.mscale: expected a finite value >= 0 (0 = unset), got -1", with(y, [](auto& s) { s.mscale = -1; })});
  bad.push_back({"yarn mscale_all_dim NaN", "scaling.mscale_all_dim: expected a finite value >= 0 (0 = unset), got nan",
                 with(y, [](auto& s) { s.mscale_all_dim = NAN; })});
  bad.push_back({"yarn attention_factor negative",
                 "scaling.attention_factor: expected a finite value >= 0 (0 = derived from factor and mscale), got -0.5",
                 with(y, [](auto& s) { s.attention_factor = -0.5; })});
  for (const BadScaling& b : bad) {
    const opdev_rope_scaling s = b.s;
    add_error("rope_cache", b.name, INV, b.message, [=](E& e) { return opdev_rope_cache(e.ctx(), out_(e), 1e4, &s); });
  }
}

}  // namespace opdev::conformance
