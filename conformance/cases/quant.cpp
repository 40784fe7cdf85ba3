// Conformance cases of the int8 W8A8 ops: quantize_int8, linear_w8a8, grouped_matmul_w8a8.
//
// Tolerances. quantize_int8 is defined in float32 operations, so its int8 values and its scales must equal
// ref's exactly (Case::exact). The matmuls' int32 sums are exact; the float32 epilogue rounds float32(acc),
// t = float32(acc) * weight_scale and the fma with x_scale (+ bias): at most 3 roundings of 2^-24 relative to
// |acc * x_scale * weight_scale| + |bias| <= mag (the op on absolute inputs), hence mag_rtol 4 * 2^-24
// (contract::kW8A8EpilogueRtol); the final rounding to the output dtype is the dtype's default rtol.
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

constexpr double kMagRtol = contract::kW8A8EpilogueRtol;

std::string dims(int64_t M, int64_t N, int64_t K) {
  return "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
}

// ---- quantize_int8 ----

// Rows of normal values with per-row magnitudes spread over 10^-3 .. 10^3 (so that scales differ per row).
Generator spread_rows(int64_t K) {
  return [K](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    double mag = 1;
    for (size_t i = 0; i < v.size(); ++i) {
      if (K > 0 && i % size_t(K) == 0) mag = std::pow(10.0, 6.0 * r.uniform() - 3.0);
      v[i] = mag * r.normal();
    }
  };
}

Case quant_base(const std::string& name, int64_t M, int64_t K, int64_t pad, bool large = false) {
  Case c;
  c.op = "quantize_int8";
  c.name = name + " M=" + std::to_string(M) + " K=" + std::to_string(K) + (pad ? " strided" : "");
  c.large = large;
  c.output("out", {M, K}).dtype(kInt8).strided(pad ? pad + 3 : 0);
  c.output("scale", {M}).dtype(kFloat32);
  c.exact("scale");
  c.call = [](Call& k) { return opdev_quantize_int8(k.ctx, k["out"], k["scale"], k["x"]); };
  return c;
}

void quant_case(const std::string& name, int64_t M, int64_t K, int64_t pad = 0, bool large = false) {
  Case c = quant_base(name, M, K, pad, large);
  c.input("x", {M, K}).values(spread_rows(K)).strided(pad);
  add(std::move(c));
}

// Explicit rows (row-major values of an [M, K] x).
void quant_values(const std::string& name, int64_t M, int64_t K, std::vector<double> values, int64_t pad = 0) {
  Case c = quant_base(name, M, K, pad);
  c.input("x", {M, K}).values(std::move(values)).strided(pad);
  add(std::move(c));
}

void register_quantize() {
  // Odd sizes around the vector widths (16 AVX-512, 8 AVX2) and their scalar tails.
  for (int64_t M : {1, 3, 17})
    for (int64_t K : {1, 7, 8, 16, 33, 100, 1029}) quant_case("odd", M, K, M == 3 ? 5 : 0);
  quant_case("zero rows", 0, 33);
  quant_case("empty K", 3, 0);
  // Qwen3-0.6B (hidden 1024, intermediate 3072) and Qwen3-30B-A3B (hidden 2048, moe intermediate 768): the
  // activations that feed every projection, at decode and prefill rows.
  for (int64_t K : {1024, 3072, 2048, 768}) {
    for (int64_t T : {1, 4, 16}) quant_case(K == 768 ? "qwen3-30b-a3b moe down input" : "qwen3 activations", T, K, T == 4 ? 8 : 0);
    quant_case("qwen3 activations prefill", 512, K, 0, true);
  }
  // Round half to even and the clamp: a row whose maximum is 127 has inv = 1, so q = round(x) exactly;
  // ties go to the even integer (2.5 -> 2, -3.5 -> -4, 0.5 -> 0, -0.5 -> 0, 1.5 -> 2). The second row's
  // maximum is 254: inv = 0.5, 3 -> 1.5 -> 2, 5 -> 2.5 -> 2, -254 -> -127.
  quant_values("ties to even", 2, 8, {127, 2.5, -3.5, 0.5, -0.5, 1.5, -126.5, 0, 254, 3, 5, -254, 7, -1, 1, 253});
  // Zero rows (scale 0, zeros) between others, and a row holding -0 only.
  quant_values("zero row", 3, 5, {1, -2, 3, 0, 0.5, 0, 0, 0, 0, 0, -0.0, -0.0, -0.0, -0.0, -0.0});
  // NaN policy: a row with a NaN gets scale NaN and zeros; inf (without NaN) scale inf and zeros; other rows
  // are unaffected. Row 3 holds both.
  quant_values("NaN and inf rows", 4, 5,
               {1, NAN, 3, -4, 5, 1, 2, INFINITY, -4, 5, 0.25, -0.5, 1, 2, -3, -INFINITY, NAN, 1, 2, 3}, 2);
  // Tiny maxima: subnormal float32 amax (bfloat16 keeps them; float16 flushes them to zero rows), where
  // 127 / amax overflows to inf: zeros stay 0, every non-zero element saturates to +-127.
  quant_values("subnormal row", 2, 4, {1e-39, -3e-39, 0, 2e-39, 1e-30, -1e-31, 3e-32, 0});
  // Huge values (float16 turns them into inf).
  quant_values("huge row", 1, 6, {3e38, -1e38, 1e30, -2.5e37, 1, 0});
}

// ---- linear_w8a8 ----

// int8 values uniform in [lo, hi].
TensorSpec& int8_input(Case& c, const std::string& name, std::vector<int64_t> shape, int64_t lo = -127, int64_t hi = 127) {
  return c.input(name, std::move(shape)).dtype(kInt8).integers(lo, hi + 1);
}

// Scales of per-channel / per-token quantisation (max |w| / 127 for w ~ N(0, 0.05), max |x| / 127 for x of
// unit size), in float32.
TensorSpec& scale_input(Case& c, const std::string& name, std::vector<int64_t> shape) {
  return c.input(name, std::move(shape)).dtype(kFloat32).uniform(1e-3, 3e-2);
}

Case linear_base(const std::string& what, int64_t M, int64_t N, int64_t K, bool bias, int64_t pad, bool large) {
  Case c;
  c.op = "linear_w8a8";
  c.name = what + " " + dims(M, N, K) + (bias ? " bias" : "") + (pad ? " strided" : "");
  c.large = large;
  if (bias) c.input("bias", {N}).normal(0, 1);
  else c.absent("bias");
  c.output("out", {M, N}).strided(pad ? pad + 2 : 0);
  c.mag({"x", "x_scale", "weight", "weight_scale", "bias"}, kMagRtol);
  c.call = [](Call& k) { return opdev_linear_w8a8(k.ctx, k["out"], k["x"], k["x_scale"], k["weight"], k["weight_scale"], k["bias"]); };
  return c;
}

// out[M, N] from x[M, K] and weight[N, K] with random int8 values; pad > 0 strides the rows of x, weight and out.
void linear_case(const std::string& what, int64_t M, int64_t N, int64_t K, bool bias, int64_t pad = 0, bool large = false) {
  Case c = linear_base(what, M, N, K, bias, pad, large);
  int8_input(c, "x", {M, K}).strided(pad);
  scale_input(c, "x_scale", {M});
  int8_input(c, "weight", {N, K}).strided(pad ? pad + 1 : 0);
  scale_input(c, "weight_scale", {N});
  add(std::move(c));
}

void register_linear() {
  // Odd sizes on both paths (M <= 16: gemv; above: the packed gemm on AVX-512 VNNI), bias on and off.
  bool bias = false;
  for (int64_t M : {1, 7, 33})
    for (int64_t N : {1, 7, 33, 769})
      for (int64_t K : {1, 7, 33, 769}) {
        linear_case("odd", M, N, K, bias);
        bias = !bias;
      }
  for (int64_t M : {1, 7, 33}) linear_case("odd", M, 33, 5125, M != 7);
  linear_case("zero rows", 0, 33, 7, true);
  linear_case("empty K", 3, 5, 0, true);
  linear_case("empty K", 20, 5, 0, false);
  // Around the cpu blocking: x padded to 64 bytes (VNNI) / 16 (AVX2); gemv tiles of 4 x 4 and the 16 / 17
  // row switch; gemm micro-tiles of 8 x 32, items of 128 x 128.
  for (int64_t K : {63, 64, 65, 127, 128, 129}) linear_case("blocking", 5, 9, K, K % 2 != 0);
  linear_case("blocking", 16, 65, 300, true);
  linear_case("blocking", 17, 31, 17, false);
  linear_case("blocking", 24, 32, 64, true);
  linear_case("blocking", 130, 260, 515, true);
  linear_case("blocking", 129, 257, 1024, false);
  linear_case("blocking", 260, 130, 300, true);
  // Strided rows of x, weight and out.
  linear_case("odd", 1, 769, 769, true, 3);
  linear_case("odd", 7, 33, 5125, false, 5);
  linear_case("odd", 33, 769, 33, true, 1);
  linear_case("blocking", 260, 130, 515, false, 7);

  // Every int8 value, -128 included: all-(-128) operands give the largest products (16384 each), and at
  // K = 131071 (the largest K) the largest sum an int32 holds without overflow; on the VNNI path the
  // offset sum sum (x + 128) w wraps modulo 2^32 and the correction must bring it back.
  auto fill = [](double v) { return [v](std::vector<double>& out, uint64_t) { std::fill(out.begin(), out.end(), v); }; };
  for (int64_t K : {64, 1000, 131071})
    for (bool b : {false, true}) {
      if (K == 131071 && b) continue;
      const int64_t M = K == 131071 ? 1 : 18;
      Case c = linear_base("all -128", M, 3, K, b, 0, false);
      // Scales small enough that float16 holds the results (|acc| up to 2^31 - 2^14 at the largest K).
      c.input("x", {M, K}).dtype(kInt8).values(fill(-128));
      c.input("x_scale", {M}).dtype(kFloat32).values(fill(2e-3));
      c.input("weight", {3, K}).dtype(kInt8).values(fill(-128));
      c.input("weight_scale", {3}).dtype(kFloat32).values([](std::vector<double>& v, uint64_t) { v = {1e-2, -3e-3, 7e-3}; });
      add(std::move(c));
    }
  // Full int8 range at random, and sums past 2^24 (float32(acc) rounds): x = 127, weights in [100, 127].
  {
    Case c = linear_base("full int8 range", 20, 40, 999, true, 0, false);
    int8_input(c, "x", {20, 999}, -128, 127);
    scale_input(c, "x_scale", {20});
    int8_input(c, "weight", {40, 999}, -128, 127);
    scale_input(c, "weight_scale", {40});
    add(std::move(c));
  }
  for (int64_t M : {3, 20}) {
    Case c = linear_base("sums past 2^24", M, 17, 5125, M == 3, 0, false);
    int8_input(c, "x", {M, 5125}, 127, 127);
    scale_input(c, "x_scale", {M});
    int8_input(c, "weight", {17, 5125}, 100, 127);
    scale_input(c, "weight_scale", {17});
    add(std::move(c));
  }
  // A row of zeros with scale 0 (quantize_int8 of a zero activation row): out = bias (or 0), on the gemv and
  // the gemm path.
  for (int64_t M : {3, 20}) {
    Case c = linear_base("zero activation row", M, 33, 100, M == 3, 0, false);
    int8_input(c, "x", {M, 100}).values([](std::vector<double>& v, uint64_t seed) {
      Rng r(seed);
      for (double& x : v) x = double(int64_t(r.next() % 255) - 127);
      for (size_t k = 0; k < 100; ++k) v[100 + k] = 0;  // row 1
    });
    c.input("x_scale", {M}).dtype(kFloat32).values([](std::vector<double>& v, uint64_t) {
      for (size_t i = 0; i < v.size(); ++i) v[i] = i == 1 ? 0.0 : 0.01 + 0.001 * double(i);
    });
    int8_input(c, "weight", {33, 100});
    scale_input(c, "weight_scale", {33});
    add(std::move(c));
  }
  // NaN policy: a NaN x_scale (what quantize_int8 gives a row with a NaN) makes that row NaN, a NaN
  // weight_scale that column; an infinite scale times a zero sum is NaN, times a non-zero one +-inf.
  for (int64_t M : {3, 20}) {
    Case c = linear_base("NaN and inf scales", M, 40, 70, true, 0, false);
    int8_input(c, "x", {M, 70}).values([](std::vector<double>& v, uint64_t seed) {
      Rng r(seed);
      for (double& x : v) x = double(int64_t(r.next() % 255) - 127);
      for (size_t k = 0; k < 70; ++k) v[2 * 70 + k] = 0;  // row 2: zeros (its scale is inf below)
    });
    c.input("x_scale", {M}).dtype(kFloat32).values([](std::vector<double>& v, uint64_t) {
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.01 + 0.001 * double(i);
      v[1] = NAN;
      v[2] = INFINITY;
    });
    int8_input(c, "weight", {40, 70});
    c.input("weight_scale", {40}).dtype(kFloat32).values([](std::vector<double>& v, uint64_t) {
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.02 - 0.0001 * double(i);
      v[5] = NAN;
      v[7] = -INFINITY;
    });
    add(std::move(c));
  }

  // Qwen3-0.6B: hidden 1024, 16 q / 8 kv heads x 128, intermediate 3072.
  struct Proj {
    const char* name;
    int64_t N, K;
  };
  const Proj q06[] = {{"qwen3-0.6b qkv_proj", (16 + 8 + 8) * 128, 1024},
                      {"qwen3-0.6b o_proj", 1024, 16 * 128},
                      {"qwen3-0.6b gate_up_proj", 2 * 3072, 1024},
                      {"qwen3-0.6b down_proj", 1024, 3072}};
  // Qwen3-30B-A3B: hidden 2048, 32 q / 4 kv heads x 128 (the router stays in bfloat16, as vLLM keeps it).
  const Proj q30[] = {{"qwen3-30b-a3b qkv_proj", (32 + 4 + 4) * 128, 2048}, {"qwen3-30b-a3b o_proj", 2048, 32 * 128}};
  for (const Proj& p : q06) {
    for (int64_t T : {1, 4, 16}) linear_case(p.name, T, p.N, p.K, false, T == 4 ? 8 : 0);
    linear_case(p.name, 512, p.N, p.K, false, 0, true);
  }
  for (const Proj& p : q30) {
    for (int64_t T : {1, 4, 16}) linear_case(p.name, T, p.N, p.K, false, T == 4 ? 8 : 0, T == 16);
    linear_case(p.name, 512, p.N, p.K, false, 0, true);
  }
}

// ---- grouped_matmul_w8a8 ----

std::vector<double> offsets_of(const std::vector<int64_t>& counts) {
  std::vector<double> o(1, 0.0);
  for (int64_t n : counts) o.push_back(o.back() + double(n));
  return o;
}

// Rows per expert when each of T tokens picks `topk` distinct experts of E uniformly.
std::vector<int64_t> route(int64_t E, int64_t topk, int64_t T, uint64_t seed) {
  Rng r(seed);
  std::vector<int64_t> counts(size_t(E), 0);
  std::vector<int64_t> ids(static_cast<size_t>(E));
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

// counts[e] rows for expert e: out[R, N], x[R, K], weight[E, N, K], weight_scale[E, N].
void grouped_case(const std::string& what, const std::vector<int64_t>& counts, int64_t N, int64_t K, int64_t pad = 0,
                  bool large = false, int64_t nan_row = -1) {
  const int64_t E = int64_t(counts.size());
  int64_t R = 0, used = 0;
  for (int64_t n : counts) {
    R += n;
    used += n > 0;
  }
  Case c;
  c.op = "grouped_matmul_w8a8";
  c.name = what + " E=" + std::to_string(E) + " (" + std::to_string(used) + " with rows) R=" + std::to_string(R) +
           " N=" + std::to_string(N) + " K=" + std::to_string(K) + (pad ? " strided" : "") +
           (nan_row >= 0 ? " NaN x_scale[" + std::to_string(nan_row) + "]" : "");
  c.large = large;
  int8_input(c, "x", {R, K}).strided(pad);
  if (nan_row >= 0) {
    c.input("x_scale", {R}).dtype(kFloat32).values([nan_row](std::vector<double>& v, uint64_t seed) {
      Rng r(seed);
      for (double& x : v) x = 1e-3 + 2e-2 * r.uniform();
      v[size_t(nan_row)] = NAN;
    });
  } else {
    scale_input(c, "x_scale", {R});
  }
  int8_input(c, "weight", {E, N, K}).strided(pad ? pad + 5 : 0);  // pads between experts
  scale_input(c, "weight_scale", {E, N});
  c.input("expert_offsets", {E + 1}).dtype(kInt64).values(offsets_of(counts));
  c.output("out", {R, N}).strided(pad ? pad + 2 : 0);
  c.mag({"x", "x_scale", "weight", "weight_scale"}, kMagRtol);
  c.call = [](Call& k) {
    return opdev_grouped_matmul_w8a8(k.ctx, k["out"], k["x"], k["x_scale"], k["weight"], k["weight_scale"], k["expert_offsets"]);
  };
  add(std::move(c));
}

void register_grouped() {
  grouped_case("one expert", {7}, 33, 40);
  grouped_case("one expert", {33}, 40, 300);
  grouped_case("gemv and gemm experts", {16, 17, 4, 40}, 65, 300);
  grouped_case("no rows", {0, 0, 0}, 33, 40);
  grouped_case("empty experts", {0, 5, 0, 0, 9, 0}, 33, 40);
  grouped_case("empty experts", {0, 1, 0, 2, 3, 4, 5, 0}, 769, 33);
  grouped_case("all rows in one", {0, 0, 33, 0}, 65, 513);
  grouped_case("odd", {1, 7, 33, 2}, 7, 769);
  grouped_case("odd", {3, 0, 6, 17}, 33, 5125);
  grouped_case("odd", {1, 7, 33, 2}, 769, 33, 3);
  grouped_case("empty K", {2, 0, 9}, 5, 0);
  grouped_case("blocking", {130, 4, 5, 259}, 260, 515, 4);
  grouped_case("NaN policy", {3, 0, 20}, 40, 70, 0, false, 1);
  grouped_case("NaN policy", {3, 0, 20}, 40, 70, 0, false, 10);
  // Qwen3-30B-A3B MoE (128 experts, top-8, moe intermediate 768): the routing distribution with N and K
  // reduced, and the real expert shapes (gate_up [1536, 2048], down [2048, 768]) on a few experts.
  for (int64_t T : {1, 4, 16, 512}) {
    const std::vector<int64_t> counts = route(128, 8, T, 1000 + uint64_t(T));
    grouped_case("qwen3-30b-a3b routing T=" + std::to_string(T) + " (gate_up, N and K reduced)", counts, 48, 256, T == 4 ? 8 : 0);
    grouped_case("qwen3-30b-a3b routing T=" + std::to_string(T) + " (down, N and K reduced)", counts, 40, 96);
  }
  grouped_case("qwen3-30b-a3b gate_up decode rows", {1, 0, 2}, 2 * 768, 2048);
  grouped_case("qwen3-30b-a3b down decode rows", {1, 3, 0, 1}, 2048, 768);
  grouped_case("qwen3-30b-a3b gate_up prefill rows", {0, 32, 27}, 2 * 768, 2048, 0, true);
  grouped_case("qwen3-30b-a3b down prefill rows", {37, 0, 29, 32}, 2048, 768, 6, true);
}

// ---- bad arguments ----

void register_errors() {
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE, OVF = OPDEV_STATUS_SIZE_OVERFLOW;

  // quantize_int8: valid shapes out [2, 8] int8, scale [2] float32, x [2, 8].
  auto qz = [](E& e, const DLTensor* out, const DLTensor* scale, const DLTensor* x) { return opdev_quantize_int8(e.ctx(), out, scale, x); };
  add_error("quantize_int8", "NULL context", INV, "ctx: expected a context, got NULL",
            [](E& e) { return opdev_quantize_int8(nullptr, e.tensor({2, 8}, kInt8), e.tensor({2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "NULL out", INV, "out: expected a tensor, got NULL",
            [=](E& e) { return qz(e, nullptr, e.tensor({2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "NULL scale", INV, "scale: expected a tensor, got NULL",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), nullptr, e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "NULL x", INV, "x: expected a tensor, got NULL",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2}, kFloat32), nullptr); });
  add_error("quantize_int8", "wrong rank of x", INV, "x: expected rank 2, got rank 3",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2}, kFloat32), e.tensor({1, 2, 8}, e.act)); });
  add_error("quantize_int8", "wrong rank of out", INV, "out: expected rank 2, got rank 1",
            [=](E& e) { return qz(e, e.tensor({16}, kInt8), e.tensor({2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "wrong rank of scale", INV, "scale: expected rank 1, got rank 2",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2, 1}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "out shape mismatch", INV, "out: expected shape [2, 8], got [2, 7]",
            [=](E& e) { return qz(e, e.tensor({2, 7}, kInt8), e.tensor({2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "scale size mismatch", INV, "scale: expected shape [2], got [3]",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({3}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "integer x", DT, "x: expected dtype float32 | bfloat16 | float16 | float64, got int8",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2}, kFloat32), e.tensor({2, 8}, kInt8)); });
  add_error("quantize_int8", "float out", DT, "out: expected dtype int8, got float32",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kFloat32), e.tensor({2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "uint8 out", DT, "out: expected dtype int8, got uint8",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kUInt8), e.tensor({2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "bfloat16 scale", DT, "scale: expected dtype float32, got bfloat16",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2}, kBFloat16), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "strided scale", INV, "scale: expected a contiguous tensor, got strides [2]",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.strided({2}, {2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "non-contiguous last dimension of x", INV,
            "x: expected the last dimension to be contiguous (stride 1), got stride 2",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2}, kFloat32), e.strided({2, 8}, {16, 2}, e.act)); });
  add_error("quantize_int8", "output with stride 0", INV, "out: output view addresses the same element more than once",
            [=](E& e) { return qz(e, e.strided({2, 8}, {0, 1}, kInt8), e.tensor({2}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("quantize_int8", "out overlaps x", INV, "out: must not overlap x (forbidden aliasing)", [=](E& e) {
    const DLTensor* x = e.tensor({2, 8}, e.act);
    return qz(e, e.view_as(x, kInt8, {2, 8}, 0), e.tensor({2}, kFloat32), x);
  });
  add_error("quantize_int8", "scale overlaps x", INV, "scale: must not overlap x (forbidden aliasing)", [=](E& e) {
    const DLTensor* x = e.tensor({2, 8}, e.act);
    return qz(e, e.tensor({2, 8}, kInt8), e.view_as(x, kFloat32, {2}, 4), x);
  });
  add_error("quantize_int8", "out overlaps scale", INV, "out: must not overlap scale (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({64}, kInt8);
    return qz(e, e.view_of(buf, {2, 8}, 4), e.view_as(buf, kFloat32, {2}, 0), e.tensor({2, 8}, e.act));
  });
  add_error("quantize_int8", "NULL data", INV, "x: data is NULL but the tensor has 16 elements",
            [=](E& e) { return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2}, kFloat32), e.null_data({2, 8}, e.act)); });
  add_error("quantize_int8", "size product overflows", OVF, "x: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return qz(e, e.tensor({2, 8}, kInt8), e.tensor({2}, kFloat32), e.huge({big, big}, e.act));
  });

  // linear_w8a8: valid shapes out [2, 4], x int8 [2, 8], x_scale [2], weight int8 [4, 8], weight_scale [4].
  auto lin = [](E& e, const DLTensor* out, const DLTensor* x, const DLTensor* xs, const DLTensor* w, const DLTensor* ws,
                const DLTensor* b) { return opdev_linear_w8a8(e.ctx(), out, x, xs, w, ws, b); };
  auto X = [](E& e) { return e.tensor({2, 8}, kInt8); };
  auto XS = [](E& e) { return e.tensor({2}, kFloat32); };
  auto W = [](E& e) { return e.tensor({4, 8}, kInt8); };
  auto WS = [](E& e) { return e.tensor({4}, kFloat32); };
  auto O = [](E& e) { return e.tensor({2, 4}, e.act); };
  add_error("linear_w8a8", "NULL context", INV, "ctx: expected a context, got NULL", [=](E& e) {
    return opdev_linear_w8a8(nullptr, O(e), X(e), XS(e), W(e), WS(e), nullptr);
  });
  add_error("linear_w8a8", "NULL out", INV, "out: expected a tensor, got NULL",
            [=](E& e) { return lin(e, nullptr, X(e), XS(e), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "NULL x_scale", INV, "x_scale: expected a tensor, got NULL",
            [=](E& e) { return lin(e, O(e), X(e), nullptr, W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "NULL weight_scale", INV, "weight_scale: expected a tensor, got NULL",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), W(e), nullptr, nullptr); });
  add_error("linear_w8a8", "wrong rank of x", INV, "x: expected rank 2, got rank 3",
            [=](E& e) { return lin(e, O(e), e.tensor({1, 2, 8}, kInt8), XS(e), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "wrong rank of weight", INV, "weight: expected rank 2, got rank 3",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), e.tensor({1, 4, 8}, kInt8), WS(e), nullptr); });
  add_error("linear_w8a8", "wrong rank of out", INV, "out: expected rank 2, got rank 1",
            [=](E& e) { return lin(e, e.tensor({8}, e.act), X(e), XS(e), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "wrong rank of x_scale", INV, "x_scale: expected rank 1, got rank 2",
            [=](E& e) { return lin(e, O(e), X(e), e.tensor({2, 1}, kFloat32), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "wrong rank of bias", INV, "bias: expected rank 1, got rank 2",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), W(e), WS(e), e.tensor({1, 4}, e.act)); });
  add_error("linear_w8a8", "in_features mismatch", INV,
            "weight: expected dimension 1 (in_features, the last dimension of x) to be 8, got 9 (shape [4, 9])",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), e.tensor({4, 9}, kInt8), WS(e), nullptr); });
  add_error("linear_w8a8", "out shape mismatch", INV, "out: expected shape [2, 4], got [2, 5]",
            [=](E& e) { return lin(e, e.tensor({2, 5}, e.act), X(e), XS(e), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "x_scale size mismatch", INV, "x_scale: expected shape [2], got [4]",
            [=](E& e) { return lin(e, O(e), X(e), e.tensor({4}, kFloat32), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "weight_scale size mismatch", INV, "weight_scale: expected shape [4], got [2]",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), W(e), e.tensor({2}, kFloat32), nullptr); });
  add_error("linear_w8a8", "bias size mismatch", INV, "bias: expected shape [4], got [5]",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), W(e), WS(e), e.tensor({5}, e.act)); });
  add_error("linear_w8a8", "float x", DT, "x: expected dtype int8, got float32",
            [=](E& e) { return lin(e, O(e), e.tensor({2, 8}, kFloat32), XS(e), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "uint8 weight", DT, "weight: expected dtype int8, got uint8",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), e.tensor({4, 8}, kUInt8), WS(e), nullptr); });
  add_error("linear_w8a8", "integer out", DT, "out: expected dtype float32 | bfloat16 | float16 | float64, got int8",
            [=](E& e) { return lin(e, e.tensor({2, 4}, kInt8), X(e), XS(e), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "bfloat16 x_scale", DT, "x_scale: expected dtype float32, got bfloat16",
            [=](E& e) { return lin(e, O(e), X(e), e.tensor({2}, kBFloat16), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "float16 weight_scale", DT, "weight_scale: expected dtype float32, got float16",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), W(e), e.tensor({4}, kFloat16), nullptr); });
  add_error("linear_w8a8", "mixed dtype of bias", DT, "bias: expected dtype", [=](E& e) {
    const DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return lin(e, O(e), X(e), XS(e), W(e), WS(e), e.tensor({4}, other));
  });
  add_error("linear_w8a8", "strided x_scale", INV, "x_scale: expected a contiguous tensor, got strides [3]",
            [=](E& e) { return lin(e, O(e), X(e), e.strided({2}, {3}, kFloat32), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "strided weight_scale", INV, "weight_scale: expected a contiguous tensor, got strides [2]",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), W(e), e.strided({4}, {2}, kFloat32), nullptr); });
  add_error("linear_w8a8", "non-contiguous last dimension of weight", INV,
            "weight: expected the last dimension to be contiguous (stride 1), got stride 2",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), e.strided({4, 8}, {16, 2}, kInt8), WS(e), nullptr); });
  add_error("linear_w8a8", "output with stride 0", INV, "out: output view addresses the same element more than once",
            [=](E& e) { return lin(e, e.strided({2, 4}, {0, 1}, e.act), X(e), XS(e), W(e), WS(e), nullptr); });
  add_error("linear_w8a8", "out overlaps x", INV, "out: must not overlap x (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({64}, kInt8);
    return lin(e, e.view_as(buf, e.act, {2, 4}, 0), e.view_of(buf, {2, 8}, 0), XS(e), W(e), WS(e), nullptr);
  });
  add_error("linear_w8a8", "out overlaps x_scale", INV, "out: must not overlap x_scale (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({4, 4}, kFloat32);
    return lin(e, e.view_as(buf, e.act, {2, 4}, 0), X(e), e.view_of(buf, {2}, 1), W(e), WS(e), nullptr);
  });
  add_error("linear_w8a8", "out overlaps bias", INV, "out: must not overlap bias (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({3, 4}, e.act);
    return lin(e, e.view_of(buf, {2, 4}, 0), X(e), XS(e), W(e), WS(e), e.view_of(buf, {4}, 6));
  });
  add_error("linear_w8a8", "K past the int32 bound", OVF, "x: K = 131072 is larger than 131071", [=](E& e) {
    return lin(e, O(e), e.huge({2, 131072}, kInt8), XS(e), e.huge({4, 131072}, kInt8), WS(e), nullptr);
  });
  add_error("linear_w8a8", "NULL data", INV, "weight: data is NULL but the tensor has 32 elements",
            [=](E& e) { return lin(e, O(e), X(e), XS(e), e.null_data({4, 8}, kInt8), WS(e), nullptr); });
  add_error("linear_w8a8", "size product overflows", OVF, "weight: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return lin(e, O(e), X(e), XS(e), e.huge({big, big}, kInt8), WS(e), nullptr);
  });
  add_error("linear_w8a8", "byte extent overflows", OVF, "out: the byte extent",
            [=](E& e) { return lin(e, e.huge({int64_t(1) << 60, 4}, e.act), X(e), XS(e), W(e), WS(e), nullptr); });

  // grouped_matmul_w8a8: valid shapes out [8, 4], x int8 [8, 8], x_scale [8], weight int8 [2, 4, 8],
  // weight_scale [2, 4], expert_offsets [3] = {0, 4, 8}.
  auto gmm = [](E& e, const DLTensor* out, const DLTensor* x, const DLTensor* xs, const DLTensor* w, const DLTensor* ws,
                const DLTensor* o) { return opdev_grouped_matmul_w8a8(e.ctx(), out, x, xs, w, ws, o); };
  auto GO = [](E& e) { return e.tensor({8, 4}, e.act); };
  auto GX = [](E& e) { return e.tensor({8, 8}, kInt8); };
  auto GXS = [](E& e) { return e.tensor({8}, kFloat32); };
  auto GW = [](E& e) { return e.tensor({2, 4, 8}, kInt8); };
  auto GWS = [](E& e) { return e.tensor({2, 4}, kFloat32); };
  auto OFF = [](E& e, std::vector<double> v) { return e.tensor({int64_t(v.size())}, kInt64, v); };
  add_error("grouped_matmul_w8a8", "NULL expert_offsets", INV, "expert_offsets: expected a tensor, got NULL",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), GWS(e), nullptr); });
  add_error("grouped_matmul_w8a8", "NULL weight_scale", INV, "weight_scale: expected a tensor, got NULL",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), nullptr, OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "wrong rank of weight", INV, "weight: expected rank 3, got rank 2",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), e.tensor({4, 8}, kInt8), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "wrong rank of weight_scale", INV, "weight_scale: expected rank 2, got rank 1",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), e.tensor({8}, kFloat32), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "weight_scale shape mismatch", INV, "weight_scale: expected shape [2, 4], got [2, 5]",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), e.tensor({2, 5}, kFloat32), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "x_scale size mismatch", INV, "x_scale: expected shape [8], got [7]",
            [=](E& e) { return gmm(e, GO(e), GX(e), e.tensor({7}, kFloat32), GW(e), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "in_features mismatch", INV,
            "weight: expected dimension 2 (in_features, the last dimension of x) to be 8, got 7",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), e.tensor({2, 4, 7}, kInt8), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "out rows mismatch", INV, "out: expected shape [8, 4], got [7, 4]",
            [=](E& e) { return gmm(e, e.tensor({7, 4}, e.act), GX(e), GXS(e), GW(e), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "expert_offsets length mismatch", INV,
            "expert_offsets: expected dimension 0 (E + 1, the experts of weight plus one) to be 3, got 2",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), GWS(e), OFF(e, {0, 8})); });
  add_error("grouped_matmul_w8a8", "int32 expert_offsets", DT, "expert_offsets: expected dtype int64, got int32",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), GWS(e), e.tensor({3}, kInt32, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "bfloat16 x", DT, "x: expected dtype int8, got bfloat16",
            [=](E& e) { return gmm(e, GO(e), e.tensor({8, 8}, kBFloat16), GXS(e), GW(e), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "float weight", DT, "weight: expected dtype int8, got float32",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), e.tensor({2, 4, 8}, kFloat32), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "int32 out", DT, "out: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [=](E& e) { return gmm(e, e.tensor({8, 4}, kInt32), GX(e), GXS(e), GW(e), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "float64 weight_scale", DT, "weight_scale: expected dtype float32, got float64",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), e.tensor({2, 4}, kFloat64), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "strided weight_scale", INV, "weight_scale: expected a contiguous tensor",
            [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), e.strided({2, 4}, {8, 1}, kFloat32), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "non-contiguous last dimension of x", INV,
            "x: expected the last dimension to be contiguous (stride 1), got stride 2",
            [=](E& e) { return gmm(e, GO(e), e.strided({8, 8}, {16, 2}, kInt8), GXS(e), GW(e), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "out overlaps weight_scale", INV, "out: must not overlap weight_scale (forbidden aliasing)",
            [=](E& e) {
              const DLTensor* buf = e.tensor({8, 8}, kFloat32);
              return gmm(e, e.view_as(buf, e.act, {8, 4}, 0), GX(e), GXS(e), GW(e), e.view_of(buf, {2, 4}, 8), OFF(e, {0, 4, 8}));
            });
  add_error("grouped_matmul_w8a8", "K past the int32 bound", OVF, "x: K = 200000 is larger than 131071", [=](E& e) {
    return gmm(e, GO(e), e.huge({8, 200000}, kInt8), GXS(e), e.huge({2, 4, 200000}, kInt8), GWS(e), OFF(e, {0, 4, 8}));
  });
  add_error("grouped_matmul_w8a8", "NULL data", INV, "x_scale: data is NULL but the tensor has 8 elements",
            [=](E& e) { return gmm(e, GO(e), GX(e), e.null_data({8}, kFloat32), GW(e), GWS(e), OFF(e, {0, 4, 8})); });
  add_error("grouped_matmul_w8a8", "size product overflows", OVF, "weight: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 30;
    return gmm(e, GO(e), GX(e), GXS(e), e.huge({big, big, 8}, kInt8), GWS(e), OFF(e, {0, 4, 8}));
  });
  add_error(
      "grouped_matmul_w8a8", "expert_offsets past R", OPDEV_STATUS_OUT_OF_RANGE,
      "expert_offsets[1] = 9 is outside [0, 9) (the rows R of x, inclusive)",
      [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), GWS(e), OFF(e, {0, 9, 8})); }, true);
  add_error(
      "grouped_matmul_w8a8", "negative expert_offsets", OPDEV_STATUS_OUT_OF_RANGE,
      "expert_offsets[1] = -1 is outside [0, 9) (the rows R of x, inclusive)",
      [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), GWS(e), OFF(e, {0, -1, 8})); }, true);
  add_error(
      "grouped_matmul_w8a8", "decreasing expert_offsets", INV,
      "expert_offsets[2] = 3 is less than expert_offsets[1] = 5 (offsets must be non-decreasing; invalid partition of the rows)",
      [=](E& e) {
        return gmm(e, GO(e), GX(e), GXS(e), e.tensor({3, 4, 8}, kInt8), e.tensor({3, 4}, kFloat32), OFF(e, {0, 5, 3, 8}));
      },
      true);
  add_error(
      "grouped_matmul_w8a8", "expert_offsets not starting at 0", INV, "expert_offsets[0] = 2, expected 0",
      [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), GWS(e), OFF(e, {2, 5, 8})); }, true);
  add_error(
      "grouped_matmul_w8a8", "expert_offsets not ending at R", INV, "expert_offsets[2] = 6, expected R = 8 (the rows of x",
      [=](E& e) { return gmm(e, GO(e), GX(e), GXS(e), GW(e), GWS(e), OFF(e, {0, 3, 6})); }, true);
}

}  // namespace

void register_quant() {
  register_quantize();
  register_linear();
  register_grouped();
  register_errors();
}

}  // namespace opdev::conformance
