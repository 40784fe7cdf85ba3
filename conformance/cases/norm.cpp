// Conformance cases of rms_norm and add_rms_norm.
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

constexpr double kEps = 1e-6;

std::string shape_name(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// One rms_norm case over x of `shape`; `pad` strides the leading dimension; in_place aliases out to x.
void rms_case(const std::string& what, std::vector<int64_t> shape, int64_t pad, bool in_place, bool large = false) {
  Case c;
  c.op = "rms_norm";
  c.name = what + " x" + shape_name(shape) + (pad ? " strided" : "") + (in_place ? " in-place" : "");
  c.large = large;
  const int64_t H = shape.back();
  if (in_place) {
    c.inout("x", shape).normal(0, 1).strided(pad);
    c.output("out", shape).alias_of = "x";
    c.roundings("x", contract::kRmsNormRoundings);
  } else {
    c.input("x", shape).normal(0, 1).strided(pad);
    c.output("out", shape).strided(pad ? pad + 3 : 0);
    c.roundings("out", contract::kRmsNormRoundings);
  }
  c.input("weight", {H}).uniform(0.5, 1.5);
  c.call = [](Call& k) { return opdev_rms_norm(k.ctx, k["out"], k["x"], k["weight"], kEps); };
  add(std::move(c));
}

void add_rms_case(const std::string& what, int64_t T, int64_t H, int64_t pad, bool in_place, bool large = false) {
  Case c;
  c.op = "add_rms_norm";
  c.name = what + " T=" + std::to_string(T) + " H=" + std::to_string(H) + (pad ? " strided" : "") + (in_place ? " in-place" : "");
  c.large = large;
  if (in_place) {  // vLLM's fused_add_rms_norm: out over x, residual_out over residual
    c.inout("x", {T, H}).normal(0, 1).strided(pad);
    c.inout("residual", {T, H}).normal(0, 2);
    c.output("out", {T, H}).alias_of = "x";
    c.output("residual_out", {T, H}).alias_of = "residual";
    c.roundings("x", contract::kAddRmsNormRoundings);
  } else {
    c.input("x", {T, H}).normal(0, 1).strided(pad);
    c.input("residual", {T, H}).normal(0, 2).strided(pad);
    c.output("out", {T, H}).strided(pad);
    c.output("residual_out", {T, H});
    c.roundings("out", contract::kAddRmsNormRoundings);
  }
  c.input("weight", {H}).uniform(0.5, 1.5);
  c.call = [](Call& k) {
    return opdev_add_rms_norm(k.ctx, k["out"], k["residual_out"], k["x"], k["residual"], k["weight"], kEps);
  };
  add(std::move(c));
}

// NaN in one row: that row is NaN, the others are not touched by it.
void nan_case() {
  Case c;
  c.op = "rms_norm";
  c.name = "NaN in row 1 of x[3,33]";
  c.input("x", {3, 33}).values([](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = r.normal();
    v[33 + 5] = NAN;
  });
  c.input("weight", {33}).uniform(0.5, 1.5);
  c.output("out", {3, 33});
  c.roundings("out", contract::kRmsNormRoundings);
  c.call = [](Call& k) { return opdev_rms_norm(k.ctx, k["out"], k["x"], k["weight"], kEps); };
  add(std::move(c));
}

}  // namespace

void register_norm() {
  // Odd sizes.
  for (int64_t T : {1, 7, 33})
    for (int64_t H : {1, 7, 33, 769, 5125}) rms_case("odd", {T, H}, 0, false);
  rms_case("odd", {5125}, 0, false);          // rank 1
  rms_case("odd", {2, 3, 5, 17}, 0, false);   // rank 4
  rms_case("zero tokens", {0, 1024}, 0, false);
  rms_case("odd", {7, 769}, 5, false);
  rms_case("odd", {7, 769}, 0, true);
  rms_case("odd", {33, 5125}, 11, true);
  // Qwen3-0.6B: hidden 1024; per-head q/k norm on [T, heads, 128] views of the fused qkv rows
  // (q 16 heads, k 8 heads; a row is (16 + 8 + 8) * 128 = 4096 wide).
  for (int64_t T : {1, 4, 16}) {
    rms_case("qwen3-0.6b hidden", {T, 1024}, 0, false);
    rms_case("qwen3-0.6b q-norm", {T, 16, 128}, 4096 - 16 * 128, true);
    rms_case("qwen3-0.6b k-norm", {T, 8, 128}, 4096 - 8 * 128, true);
  }
  rms_case("qwen3-0.6b hidden", {512, 1024}, 0, false, true);
  rms_case("qwen3-0.6b q-norm", {512, 16, 128}, 4096 - 16 * 128, true, true);
  // Qwen3-30B-A3B: hidden 2048, 32 q / 4 kv heads of 128.
  for (int64_t T : {1, 16}) {
    rms_case("qwen3-30b-a3b hidden", {T, 2048}, 0, false);
    rms_case("qwen3-30b-a3b q-norm", {T, 32, 128}, (32 + 4 + 4) * 128 - 32 * 128, true);
  }
  rms_case("qwen3-30b-a3b hidden", {512, 2048}, 0, false, true);
  // DeepSeek-V3: hidden 7168, q_lora_rank 1536, kv_lora_rank 512.
  rms_case("deepseek-v3 hidden", {4, 7168}, 0, false);
  rms_case("deepseek-v3 q_a_layernorm", {4, 1536}, 0, false);
  rms_case("deepseek-v3 kv_a_layernorm", {4, 512}, 576 - 512, false);
  nan_case();

  for (int64_t T : {1, 7, 33})
    for (int64_t H : {1, 33, 769, 5125}) add_rms_case("odd", T, H, 0, false);
  add_rms_case("zero tokens", 0, 1024, 0, false);
  add_rms_case("odd", 7, 769, 9, false);
  add_rms_case("odd", 33, 769, 0, true);
  for (int64_t T : {1, 4, 16}) add_rms_case("qwen3-0.6b", T, 1024, 0, true);
  add_rms_case("qwen3-0.6b", 512, 1024, 0, true, true);
  for (int64_t T : {1, 16}) add_rms_case("qwen3-30b-a3b", T, 2048, 0, false);
  add_rms_case("qwen3-30b-a3b", 512, 2048, 0, true, true);
  add_rms_case("deepseek-v3", 4, 7168, 0, true);

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT;
  add_error("rms_norm", "NULL context", INV, "ctx: expected a context, got NULL", [](E& e) {
    return opdev_rms_norm(nullptr, e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "NULL x", INV, "x: expected a tensor, got NULL",
            [](E& e) { return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), nullptr, e.tensor({8}, e.act), kEps); });
  add_error("rms_norm", "wrong rank of x", INV, "x: expected rank in [1, 8], got rank 0", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({}, e.act), e.tensor({}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "weight size mismatch", INV, "weight: expected shape [8], got [7]", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({7}, e.act), kEps);
  });
  add_error("rms_norm", "out shape mismatch", INV, "out: expected shape [2, 8] (the shape of x), got [2, 9]", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({2, 9}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "integer x", OPDEV_STATUS_UNSUPPORTED_DTYPE, "x: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [](E& e) { return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, kInt32), e.tensor({2, 8}, kInt32), e.tensor({8}, kInt32), kEps); });
  add_error("rms_norm", "mixed dtypes", OPDEV_STATUS_UNSUPPORTED_DTYPE, "weight: expected dtype", [](E& e) {
    DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, other), kEps);
  });
  add_error("rms_norm", "non-contiguous last dimension", INV, "x: expected the last dimension to be contiguous (stride 1), got stride 2",
            [](E& e) {
              return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.strided({2, 8}, {16, 2}, e.act), e.tensor({8}, e.act), kEps);
            });
  add_error("rms_norm", "partial overlap of out and x", INV, "out: must be exactly x (in place) or not overlap it", [](E& e) {
    const DLTensor* buf = e.tensor({3, 8}, e.act);
    return opdev_rms_norm(e.ctx(), e.view_of(buf, {2, 8}, 8), e.view_of(buf, {2, 8}, 0), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "out overlaps weight", INV, "out: must not overlap weight (forbidden aliasing)", [](E& e) {
    const DLTensor* buf = e.tensor({3, 8}, e.act);
    return opdev_rms_norm(e.ctx(), e.view_of(buf, {2, 8}, 0), e.tensor({2, 8}, e.act), e.view_of(buf, {8}, 8), kEps);
  });
  add_error("rms_norm", "output with stride 0", INV, "out: output view addresses the same element more than once", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.strided({2, 8}, {0, 1}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "NULL data", INV, "x: data is NULL but the tensor has 16 elements", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.null_data({2, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "x: the element count of shape", [](E& e) {
    const int64_t big = int64_t(1) << 40;
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.huge({big, big, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "byte extent overflows", OPDEV_STATUS_SIZE_OVERFLOW, "x: the byte extent", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.huge({int64_t(1) << 59, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "negative dimension", INV, "x: dimension 0 has negative size -2", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.huge({-2, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("rms_norm", "eps not positive", INV, "eps: expected a finite value > 0, got 0", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, e.act), 0.0);
  });
  add_error("rms_norm", "eps NaN", INV, "eps: expected a finite value > 0, got nan", [](E& e) {
    return opdev_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, e.act), NAN);
  });

  add_error("add_rms_norm", "wrong rank of x", INV, "x: expected rank 2, got rank 3", [](E& e) {
    auto t = [&] { return e.tensor({1, 2, 8}, e.act); };
    return opdev_add_rms_norm(e.ctx(), t(), t(), t(), t(), e.tensor({8}, e.act), kEps);
  });
  add_error("add_rms_norm", "residual shape mismatch", INV, "residual: expected shape [2, 8] (the shape of x), got [3, 8]", [](E& e) {
    return opdev_add_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act),
                              e.tensor({3, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("add_rms_norm", "residual_out aliases x", INV, "residual_out: must not overlap x (forbidden aliasing)", [](E& e) {
    const DLTensor* x = e.tensor({2, 8}, e.act);
    return opdev_add_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), x, x, e.tensor({2, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("add_rms_norm", "out aliases residual", INV, "out: must not overlap residual (forbidden aliasing)", [](E& e) {
    const DLTensor* r = e.tensor({2, 8}, e.act);
    return opdev_add_rms_norm(e.ctx(), r, e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), r, e.tensor({8}, e.act), kEps);
  });
  add_error("add_rms_norm", "out and residual_out are the same", INV, "out: must not overlap residual_out", [](E& e) {
    const DLTensor* o = e.tensor({2, 8}, e.act);
    return opdev_add_rms_norm(e.ctx(), o, o, e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, e.act), kEps);
  });
  add_error("add_rms_norm", "float64 weight with float x", OPDEV_STATUS_UNSUPPORTED_DTYPE, "weight: expected dtype", [](E& e) {
    return opdev_add_rms_norm(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act),
                              e.tensor({2, 8}, e.act), e.tensor({8}, kFloat64), kEps);
  });
}

}  // namespace opdev::conformance
