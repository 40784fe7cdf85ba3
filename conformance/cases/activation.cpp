// Conformance cases of silu_and_mul. The contract rounds silu to the storage dtype before the multiply:
// one intermediate rounding on out.
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

std::string shape_name(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// x[..., 2d] -> out[..., d]; `pad` strides the leading dimension of x (out gets another pad).
Case& silu_case(const std::string& what, std::vector<int64_t> xshape, int64_t pad = 0, bool large = false) {
  Case c;
  c.op = "silu_and_mul";
  c.name = what + " x" + shape_name(xshape) + (pad ? " strided" : "");
  c.large = large;
  std::vector<int64_t> oshape = xshape;
  oshape.back() /= 2;
  c.input("x", xshape).normal(0, 2).strided(pad);
  c.output("out", oshape).strided(pad ? pad + 5 : 0);
  c.roundings("out", contract::kSiluAndMulRoundings);
  c.call = [](Call& k) { return opdev_silu_and_mul(k.ctx, k["out"], k["x"]); };
  add(std::move(c));
  return registry().cases.back();
}

}  // namespace

void register_activation() {
  // Odd sizes.
  for (int64_t T : {1, 7, 33})
    for (int64_t d : {1, 7, 33, 769, 5125}) silu_case("odd", {T, 2 * d});
  silu_case("odd rank 1", {2 * 5125});
  silu_case("odd rank 4", {2, 3, 5, 2 * 17});
  silu_case("odd rank 8", {2, 1, 2, 1, 3, 1, 2, 2 * 9});
  silu_case("zero tokens", {0, 2 * 3072});
  silu_case("odd", {7, 2 * 769}, 11);
  silu_case("odd", {33, 2 * 33}, 1);
  // Qwen3-0.6B: intermediate 3072 (the fused gate_up_proj output is 6144 wide).
  for (int64_t T : {1, 4, 16}) silu_case("qwen3-0.6b", {T, 2 * 3072});
  silu_case("qwen3-0.6b", {16, 2 * 3072}, 64);
  silu_case("qwen3-0.6b", {512, 2 * 3072}, 0, true);
  // Qwen3-30B-A3B: experts of intermediate 768, T*8 (token, expert) rows; the 6144 dense width.
  for (int64_t T : {1, 4, 16}) silu_case("qwen3-30b-a3b experts", {8 * T, 2 * 768});
  silu_case("qwen3-30b-a3b experts", {8 * 512, 2 * 768}, 0, true);
  for (int64_t T : {1, 16}) silu_case("qwen3-30b-a3b dense", {T, 2 * 6144});
  silu_case("qwen3-30b-a3b dense", {512, 2 * 6144}, 0, true);
  // DeepSeek-V3: dense intermediate 18432, experts 2048 (top-8).
  silu_case("deepseek-v3 dense", {4, 2 * 18432});
  silu_case("deepseek-v3 experts", {32, 2 * 2048});

  // Gates far into the tails: exp(-g) overflows for g < -88 (silu -> 0), silu(g) = g for large g.
  silu_case("large gates", {7, 2 * 769}).tensors[0].uniform(-100, 100);
  // NaN propagates to its own element only; +-inf gates take silu's limits (inf, 0).
  {
    Case& c = silu_case("NaN and inf", {3, 2 * 33});
    c.tensors[0].values([](std::vector<double>& v, uint64_t seed) {
      Rng r(seed);
      for (double& x : v) x = 2 * r.normal();
      v[0] = NAN;               // gate of row 0, element 0
      v[33 + 4] = NAN;          // up of row 0, element 4
      v[66 + 1] = INFINITY;     // gate of row 1, element 1
      v[66 + 2] = -INFINITY;    // gate of row 1, element 2
      v[66 + 3] = -1e4;         // overflows float16 to -inf
      v[66 + 33 + 5] = INFINITY;  // up of row 1, element 5
    });
  }

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT;
  add_error("silu_and_mul", "NULL context", INV, "ctx: expected a context, got NULL",
            [](E& e) { return opdev_silu_and_mul(nullptr, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("silu_and_mul", "NULL x", INV, "x: expected a tensor, got NULL",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({2, 4}, e.act), nullptr); });
  add_error("silu_and_mul", "NULL out", INV, "out: expected a tensor, got NULL",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), nullptr, e.tensor({2, 8}, e.act)); });
  add_error("silu_and_mul", "wrong rank of x", INV, "x: expected rank in [1, 8], got rank 0",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({}, e.act), e.tensor({}, e.act)); });
  add_error("silu_and_mul", "odd last dimension of x", INV, "x: expected an even last dimension ([gate; up] of 2d values), got 7",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({2, 3}, e.act), e.tensor({2, 7}, e.act)); });
  add_error("silu_and_mul", "out rank differs", INV, "out: expected rank 2, got rank 1",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("silu_and_mul", "out last dimension is not half", INV,
            "out: expected dimension 1 (d, half the last dimension of x) to be 4, got 8",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("silu_and_mul", "out leading dimension differs", INV, "out: expected dimension 0 (the same as x) to be 2, got 3",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({3, 4}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("silu_and_mul", "integer x", OPDEV_STATUS_UNSUPPORTED_DTYPE,
            "x: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({2, 4}, kInt32), e.tensor({2, 8}, kInt32)); });
  add_error("silu_and_mul", "mixed dtypes", OPDEV_STATUS_UNSUPPORTED_DTYPE, "out: expected dtype", [](E& e) {
    DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return opdev_silu_and_mul(e.ctx(), e.tensor({2, 4}, other), e.tensor({2, 8}, e.act));
  });
  add_error("silu_and_mul", "non-contiguous last dimension of x", INV,
            "x: expected the last dimension to be contiguous (stride 1), got stride 2",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({2, 4}, e.act), e.strided({2, 8}, {16, 2}, e.act)); });
  add_error("silu_and_mul", "non-contiguous last dimension of out", INV,
            "out: expected the last dimension to be contiguous (stride 1), got stride 3",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.strided({2, 4}, {12, 3}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("silu_and_mul", "out in place over the gates of x", INV, "out: must not overlap x (forbidden aliasing)", [](E& e) {
    const DLTensor* x = e.tensor({2, 8}, e.act);
    return opdev_silu_and_mul(e.ctx(), e.view_of(x, {2, 4}, 0, {8, 1}), x);
  });
  add_error("silu_and_mul", "output with stride 0", INV, "out: output view addresses the same element more than once",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.strided({2, 4}, {0, 1}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("silu_and_mul", "NULL data", INV, "x: data is NULL but the tensor has 16 elements",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.tensor({2, 4}, e.act), e.null_data({2, 8}, e.act)); });
  add_error("silu_and_mul", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "x: the element count of shape", [](E& e) {
    const int64_t big = int64_t(1) << 40;
    return opdev_silu_and_mul(e.ctx(), e.tensor({2, 4}, e.act), e.huge({big, big, 8}, e.act));
  });
  add_error("silu_and_mul", "byte extent overflows", OPDEV_STATUS_SIZE_OVERFLOW, "out: the byte extent",
            [](E& e) { return opdev_silu_and_mul(e.ctx(), e.huge({int64_t(1) << 59, 4}, e.act), e.tensor({2, 8}, e.act)); });
}

}  // namespace opdev::conformance
