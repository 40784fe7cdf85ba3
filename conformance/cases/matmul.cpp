// Conformance cases of linear and grouped_matmul.
//
// Tolerance: every output is one float32 accumulation of K products, so besides the output dtype's
// rtol each element gets the forward-error term 1.3e-6 * sum_k |x_k| |w_k| (+ |bias|): the `mag` run of
// the same op on absolute values. Inputs are zero-mean so that partial sums behave like real activations.
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

constexpr double kMagRtol = contract::kAccumulationRtol;

std::string dims(int64_t M, int64_t N, int64_t K) {
  return "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
}

// linear: out[M, N] = x[M, K] . weight[N, K]^T (+ bias). pad > 0 strides the rows of x, weight and out.
void linear_case(const std::string& what, int64_t M, int64_t N, int64_t K, bool bias, int64_t pad = 0, bool large = false) {
  Case c;
  c.op = "linear";
  c.name = what + " " + dims(M, N, K) + (bias ? " bias" : "") + (pad ? " strided" : "");
  c.large = large;
  c.input("x", {M, K}).normal(0, 1).strided(pad);
  c.input("weight", {N, K}).normal(0, 1).strided(pad ? pad + 1 : 0);
  if (bias) c.input("bias", {N}).normal(0, 1);
  else c.absent("bias");
  c.output("out", {M, N}).strided(pad ? pad + 2 : 0);
  c.mag({"x", "weight", "bias"}, kMagRtol);
  c.call = [](Call& k) { return opdev_linear(k.ctx, k["out"], k["x"], k["weight"], k["bias"]); };
  add(std::move(c));
}

// NaN in x[row, col]: that row of out is NaN, the other rows are unaffected.
void linear_nan_case(int64_t M, int64_t N, int64_t K, int64_t row, int64_t col) {
  Case c;
  c.op = "linear";
  c.name = "NaN in x[" + std::to_string(row) + "," + std::to_string(col) + "] " + dims(M, N, K);
  c.input("x", {M, K}).values([=](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = r.normal();
    v[size_t(row * K + col)] = NAN;
  });
  c.input("weight", {N, K}).normal(0, 1);
  c.input("bias", {N}).normal(0, 1);
  c.output("out", {M, N});
  c.mag({"x", "weight", "bias"}, kMagRtol);
  c.call = [](Call& k) { return opdev_linear(k.ctx, k["out"], k["x"], k["weight"], k["bias"]); };
  add(std::move(c));
}

std::vector<double> offsets_of(const std::vector<int64_t>& counts) {
  std::vector<double> o(1, 0.0);
  for (int64_t n : counts) o.push_back(o.back() + double(n));
  return o;
}

// Rows per expert when each of T tokens picks `topk` distinct experts of E uniformly (the multinomial that
// moe_permute turns into expert_offsets). Deterministic in seed.
std::vector<int64_t> route(int64_t E, int64_t topk, int64_t T, uint64_t seed) {
  Rng r(seed);
  std::vector<int64_t> counts(size_t(E), 0);
  std::vector<int64_t> ids(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < E; ++e) ids[size_t(e)] = e;
    for (int64_t j = 0; j < topk; ++j) {  // partial Fisher-Yates
      const int64_t pick = j + int64_t(r.next() % uint64_t(E - j));
      std::swap(ids[size_t(j)], ids[size_t(pick)]);
      ++counts[size_t(ids[size_t(j)])];
    }
  }
  return counts;
}

// grouped_matmul with counts[e] rows for expert e: out[R, N], x[R, K], weight[E, N, K].
void grouped_case(const std::string& what, const std::vector<int64_t>& counts, int64_t N, int64_t K, int64_t pad = 0,
                  bool large = false) {
  const int64_t E = int64_t(counts.size());
  int64_t R = 0, used = 0;
  for (int64_t n : counts) {
    R += n;
    used += n > 0;
  }
  Case c;
  c.op = "grouped_matmul";
  c.name = what + " E=" + std::to_string(E) + " (" + std::to_string(used) + " with rows) R=" + std::to_string(R) +
           " N=" + std::to_string(N) + " K=" + std::to_string(K) + (pad ? " strided" : "");
  c.large = large;
  c.input("x", {R, K}).normal(0, 1).strided(pad);
  c.input("weight", {E, N, K}).normal(0, 1).strided(pad ? pad + 5 : 0);  // pads between experts
  c.input("expert_offsets", {E + 1}).dtype(kInt64).values(offsets_of(counts));
  c.output("out", {R, N}).strided(pad ? pad + 2 : 0);
  c.mag({"x", "weight"}, kMagRtol);
  c.call = [](Call& k) { return opdev_grouped_matmul(k.ctx, k["out"], k["x"], k["weight"], k["expert_offsets"]); };
  add(std::move(c));
}

void register_linear() {
  // Odd sizes, both paths (M <= 16 takes the gemv path on cpu), bias on and off.
  bool bias = false;
  for (int64_t M : {1, 7, 33})
    for (int64_t N : {1, 7, 33, 769})
      for (int64_t K : {1, 7, 33, 769}) {
        linear_case("odd", M, N, K, bias);
        bias = !bias;
      }
  for (int64_t M : {1, 7, 33}) linear_case("odd", M, 33, 5125, M != 7);
  // The cpu gemv alternates two accumulator chains over K in vector blocks (32 bf16 pairs, 16 or 8 floats):
  // K = 60 ends in a full block of chain 0 and a partial one of chain 1 on every ISA, K = 96 in a full
  // block of chain 0 alone (bf16 pairs).
  for (int64_t K : {60, 96})
    for (int64_t M : {1, 3}) linear_case("gemv chain tails", M, 9, K, M == 3);
  linear_case("odd", 7, 769, 5125, true);
  linear_case("zero rows", 0, 33, 7, true);
  linear_case("empty K", 3, 5, 0, true);
  linear_case("empty K", 20, 5, 0, false);
  // Around the cpu blocking: the gemv/gemm switch (16/17 rows), gemv tiles of 4 x 4, gemm micro-tiles of
  // 8 x 32 (AVX-512), 6 x 16 (AVX2), 4 x 16; k blocks of at most 2048 (float kernel) and 4096 (bfloat16
  // pairs) with odd tails; more than one mc (256 AVX-512, 192 AVX2, 128 generic) and nc (128) block.
  linear_case("blocking", 16, 65, 300, true);
  linear_case("blocking", 17, 31, 17, false);
  linear_case("blocking", 24, 32, 64, true);
  linear_case("blocking", 33, 33, 4099, false);
  linear_case("blocking", 18, 97, 2049, true);
  linear_case("blocking", 130, 260, 515, true);
  linear_case("blocking", 129, 257, 1024, false);
  linear_case("blocking", 260, 130, 300, true);
  // Strided rows of x, weight and out.
  linear_case("odd", 1, 769, 769, true, 3);
  linear_case("odd", 7, 33, 5125, false, 5);
  linear_case("odd", 33, 769, 33, true, 1);
  linear_case("blocking", 260, 130, 515, false, 7);
  linear_nan_case(3, 33, 40, 1, 5);
  linear_nan_case(20, 40, 300, 6, 299);

  // Qwen3-0.6B: hidden 1024, 16 q / 8 kv heads x 128, intermediate 3072, vocab 151936.
  struct Proj {
    const char* name;
    int64_t N, K;
  };
  const Proj q06[] = {{"qwen3-0.6b qkv_proj", (16 + 8 + 8) * 128, 1024},
                      {"qwen3-0.6b o_proj", 1024, 16 * 128},
                      {"qwen3-0.6b gate_up_proj", 2 * 3072, 1024},
                      {"qwen3-0.6b down_proj", 1024, 3072}};
  // Qwen3-30B-A3B: hidden 2048, 32 q / 4 kv heads x 128, router over 128 experts.
  const Proj q30[] = {{"qwen3-30b-a3b qkv_proj", (32 + 4 + 4) * 128, 2048},
                      {"qwen3-30b-a3b o_proj", 2048, 32 * 128},
                      {"qwen3-30b-a3b router", 128, 2048}};
  for (const Proj& p : q06) {
    for (int64_t T : {1, 4, 16}) linear_case(p.name, T, p.N, p.K, false, T == 4 ? 8 : 0);
    linear_case(p.name, 512, p.N, p.K, false, 0, true);
  }
  for (const Proj& p : q30) {
    for (int64_t T : {1, 4, 16}) linear_case(p.name, T, p.N, p.K, false, T == 4 ? 8 : 0, T == 16 && p.N > 1024);
    linear_case(p.name, 512, p.N, p.K, false, 0, true);
  }
  // DeepSeek-V3 (hidden 7168, MLA): kv_a_proj_with_mqa 7168 -> 512 + 64, q_a_proj 7168 -> 1536; K = 7168
  // takes two k blocks in the bfloat16 pair kernel and four in the float32 one.
  linear_case("deepseek-v3 kv_a_proj_with_mqa", 4, 576, 7168, false);
  linear_case("deepseek-v3 kv_a_proj_with_mqa", 20, 576, 7168, false, 16);
  linear_case("deepseek-v3 q_a_proj", 1, 1536, 7168, false);
  // lm_head: the whole vocabulary (151936 x 1024) needs ~10 GB in this harness (float64 copies, offsets);
  // a tensor-parallel shard of it (TP = 8, 18992 rows) at decode, and at prefill's last-token rows.
  linear_case("qwen3-0.6b lm_head (TP=8 shard)", 1, 151936 / 8, 1024, false, 0, true);
  linear_case("qwen3-0.6b lm_head (TP=16 shard)", 1, 151936 / 16, 1024, false);
  linear_case("qwen3-0.6b lm_head (TP=16 shard)", 4, 151936 / 16, 1024, false, 8);
}

void register_grouped() {
  // Edge structures: one expert, no rows at all, empty experts first/last/in between, all rows in one.
  grouped_case("one expert", {7}, 33, 40);
  grouped_case("one expert", {33}, 40, 300);
  grouped_case("gemv and gemm experts", {16, 17, 4, 40}, 65, 300);
  grouped_case("no rows", {0, 0, 0}, 33, 40);
  grouped_case("empty experts", {0, 5, 0, 0, 9, 0}, 33, 40);
  grouped_case("empty experts", {0, 1, 0, 2, 3, 4, 5, 0}, 769, 33);
  grouped_case("all rows in one", {0, 0, 33, 0}, 65, 513);
  grouped_case("odd", {1, 7, 33, 2}, 7, 769);
  grouped_case("odd", {3, 0, 6, 17}, 33, 5125, 0);
  grouped_case("odd", {1, 7, 33, 2}, 769, 33, 3);
  grouped_case("empty K", {2, 0, 9}, 5, 0);
  grouped_case("blocking", {130, 4, 5, 259}, 260, 515, 4);
  // Aligned K and many rows per expert: the tiled (tensor-core) paths of device backends, with partial
  // row and column tiles, an empty expert and a strided variant (row strides stay 16-byte multiples).
  grouped_case("tiles, ~40 rows per expert", {40, 0, 51, 30}, 136, 128);
  grouped_case("tiles, >64 rows per expert", {130, 0, 200, 70}, 136, 256);
  grouped_case("tiles, >64 rows per expert", {130, 0, 200, 70}, 136, 256, 8);

  // Qwen3-30B-A3B MoE: 128 experts, top-8, moe intermediate 768 (gate_up [E, 1536, 2048], down
  // [E, 2048, 768]). The full expert stack is 400M elements, more than this harness can hold in float64,
  // so the routing cases keep E = 128 and the real top-8 row distribution with reduced N and K, and the
  // real-shape cases keep N and K with a few experts carrying the row counts that routing produces.
  for (int64_t T : {1, 4, 16, 512}) {
    const std::vector<int64_t> counts = route(128, 8, T, 1000 + uint64_t(T));
    grouped_case("qwen3-30b-a3b routing T=" + std::to_string(T) + " (gate_up, N and K reduced)", counts, 48, 256, T == 4 ? 8 : 0);
    grouped_case("qwen3-30b-a3b routing T=" + std::to_string(T) + " (down, N and K reduced)", counts, 40, 96);
  }
  // DeepSeek-V3 MoE: 256 routed experts, top-8 (moe intermediate 2048, hidden 7168), N and K reduced.
  grouped_case("deepseek-v3 routing T=16 (N and K reduced)", route(256, 8, 16, 7), 40, 112);
  grouped_case("deepseek-v3 routing T=512 (N and K reduced)", route(256, 8, 512, 7), 24, 72);
  grouped_case("qwen3-30b-a3b gate_up decode rows", {1, 0, 2}, 2 * 768, 2048);
  grouped_case("qwen3-30b-a3b down decode rows", {1, 3, 0, 1}, 2048, 768);
  grouped_case("qwen3-30b-a3b gate_up prefill rows", {0, 32, 27}, 2 * 768, 2048, 0, true);
  grouped_case("qwen3-30b-a3b down prefill rows", {37, 0, 29, 32}, 2048, 768, 6, true);
}

}  // namespace

void register_matmul() {
  register_linear();
  register_grouped();

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE;
  auto lin = [](E& e, const DLTensor* out, const DLTensor* x, const DLTensor* w, const DLTensor* b) {
    return opdev_linear(e.ctx(), out, x, w, b);
  };
  add_error("linear", "NULL context", INV, "ctx: expected a context, got NULL", [](E& e) {
    return opdev_linear(nullptr, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr);
  });
  add_error("linear", "NULL out", INV, "out: expected a tensor, got NULL",
            [=](E& e) { return lin(e, nullptr, e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr); });
  add_error("linear", "NULL x", INV, "x: expected a tensor, got NULL",
            [=](E& e) { return lin(e, e.tensor({2, 4}, e.act), nullptr, e.tensor({4, 8}, e.act), nullptr); });
  add_error("linear", "NULL weight", INV, "weight: expected a tensor, got NULL",
            [=](E& e) { return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), nullptr, nullptr); });
  add_error("linear", "wrong rank of x", INV, "x: expected rank 2, got rank 3", [=](E& e) {
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({1, 2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr);
  });
  add_error("linear", "wrong rank of weight", INV, "weight: expected rank 2, got rank 1",
            [=](E& e) { return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({8}, e.act), nullptr); });
  add_error("linear", "wrong rank of out", INV, "out: expected rank 2, got rank 1",
            [=](E& e) { return lin(e, e.tensor({8}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr); });
  add_error("linear", "wrong rank of bias", INV, "bias: expected rank 1, got rank 2", [=](E& e) {
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), e.tensor({1, 4}, e.act));
  });
  add_error("linear", "in_features mismatch", INV,
            "weight: expected dimension 1 (in_features, the last dimension of x) to be 8, got 9 (shape [4, 9])", [=](E& e) {
              return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 9}, e.act), nullptr);
            });
  add_error("linear", "out rows mismatch", INV, "out: expected shape [2, 4], got [3, 4]",
            [=](E& e) { return lin(e, e.tensor({3, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr); });
  add_error("linear", "out columns mismatch", INV, "out: expected shape [2, 4], got [2, 5]",
            [=](E& e) { return lin(e, e.tensor({2, 5}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr); });
  add_error("linear", "bias size mismatch", INV, "bias: expected shape [4], got [5]", [=](E& e) {
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), e.tensor({5}, e.act));
  });
  add_error("linear", "integer x", DT, "x: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [=](E& e) { return lin(e, e.tensor({2, 4}, kInt32), e.tensor({2, 8}, kInt32), e.tensor({4, 8}, kInt32), nullptr); });
  add_error("linear", "mixed dtype of weight", DT, "weight: expected dtype", [=](E& e) {
    const DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, other), nullptr);
  });
  add_error("linear", "mixed dtype of out", DT, "out: expected dtype", [=](E& e) {
    return lin(e, e.tensor({2, 4}, kFloat64), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr);
  });
  add_error("linear", "mixed dtype of bias", DT, "bias: expected dtype", [=](E& e) {
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), e.tensor({4}, kInt32));
  });
  add_error("linear", "non-contiguous last dimension of x", INV,
            "x: expected the last dimension to be contiguous (stride 1), got stride 2", [=](E& e) {
              return lin(e, e.tensor({2, 4}, e.act), e.strided({2, 8}, {16, 2}, e.act), e.tensor({4, 8}, e.act), nullptr);
            });
  add_error("linear", "non-contiguous last dimension of weight", INV,
            "weight: expected the last dimension to be contiguous (stride 1), got stride 3", [=](E& e) {
              return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.strided({4, 8}, {24, 3}, e.act), nullptr);
            });
  add_error("linear", "non-contiguous last dimension of out", INV,
            "out: expected the last dimension to be contiguous (stride 1), got stride 2", [=](E& e) {
              return lin(e, e.strided({2, 4}, {8, 2}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr);
            });
  add_error("linear", "strided bias", INV, "bias: expected a contiguous tensor, got strides [2]", [=](E& e) {
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), e.strided({4}, {2}, e.act));
  });
  add_error("linear", "output with stride 0", INV, "out: output view addresses the same element more than once", [=](E& e) {
    return lin(e, e.strided({2, 4}, {0, 1}, e.act), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), nullptr);
  });
  add_error("linear", "out is x", INV, "out: must not overlap x (forbidden aliasing)", [=](E& e) {
    const DLTensor* x = e.tensor({2, 8}, e.act);
    return lin(e, e.view_of(x, {2, 4}, 0, {8, 1}), x, e.tensor({4, 8}, e.act), nullptr);
  });
  add_error("linear", "out overlaps x partially", INV, "out: must not overlap x (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({4, 8}, e.act);
    return lin(e, e.view_of(buf, {2, 4}, 12), e.view_of(buf, {2, 8}, 0), e.tensor({4, 8}, e.act), nullptr);
  });
  add_error("linear", "out overlaps weight", INV, "out: must not overlap weight (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({6, 8}, e.act);
    return lin(e, e.view_of(buf, {2, 4}, 28), e.tensor({2, 8}, e.act), e.view_of(buf, {4, 8}, 0), nullptr);
  });
  add_error("linear", "out overlaps bias", INV, "out: must not overlap bias (forbidden aliasing)", [=](E& e) {
    const DLTensor* buf = e.tensor({3, 4}, e.act);
    return lin(e, e.view_of(buf, {2, 4}, 0), e.tensor({2, 8}, e.act), e.tensor({4, 8}, e.act), e.view_of(buf, {4}, 6));
  });
  add_error("linear", "NULL data", INV, "weight: data is NULL but the tensor has 32 elements", [=](E& e) {
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.null_data({4, 8}, e.act), nullptr);
  });
  add_error("linear", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "weight: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 40;
    return lin(e, e.tensor({2, 4}, e.act), e.tensor({2, 8}, e.act), e.huge({big, big}, e.act), nullptr);
  });
  add_error("linear", "byte extent overflows", OPDEV_STATUS_SIZE_OVERFLOW, "x: the byte extent", [=](E& e) {
    return lin(e, e.tensor({2, 4}, e.act), e.huge({int64_t(1) << 59, 8}, e.act), e.tensor({4, 8}, e.act), nullptr);
  });

  auto gmm = [](E& e, const DLTensor* out, const DLTensor* x, const DLTensor* w, const DLTensor* o) {
    return opdev_grouped_matmul(e.ctx(), out, x, w, o);
  };
  // Valid shapes: R = 8, K = 8, E = 2, N = 4.
  add_error("grouped_matmul", "NULL expert_offsets", INV, "expert_offsets: expected a tensor, got NULL", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), nullptr);
  });
  add_error("grouped_matmul", "NULL weight", INV, "weight: expected a tensor, got NULL", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), nullptr, e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "wrong rank of weight", INV, "weight: expected rank 3, got rank 2", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({4, 8}, e.act), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "wrong rank of x", INV, "x: expected rank 2, got rank 1", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "wrong rank of expert_offsets", INV, "expert_offsets: expected rank 1, got rank 2", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({1, 3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "in_features mismatch", INV,
            "weight: expected dimension 2 (in_features, the last dimension of x) to be 8, got 7", [=](E& e) {
              return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 7}, e.act),
                         e.tensor({3}, kInt64, {0, 4, 8}));
            });
  add_error("grouped_matmul", "out rows mismatch", INV, "out: expected shape [8, 4], got [7, 4]", [=](E& e) {
    return gmm(e, e.tensor({7, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "out columns mismatch", INV, "out: expected shape [8, 4], got [8, 5]", [=](E& e) {
    return gmm(e, e.tensor({8, 5}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "expert_offsets length mismatch", INV,
            "expert_offsets: expected dimension 0 (E + 1, the experts of weight plus one) to be 3, got 2", [=](E& e) {
              return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act),
                         e.tensor({2}, kInt64, {0, 8}));
            });
  add_error("grouped_matmul", "int32 expert_offsets", DT, "expert_offsets: expected dtype int64, got int32", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt32, {0, 4, 8}));
  });
  add_error("grouped_matmul", "float expert_offsets", DT, "expert_offsets: expected dtype int64, got float32", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kFloat32, {0, 4, 8}));
  });
  add_error("grouped_matmul", "integer x", DT, "x: expected dtype float32 | bfloat16 | float16 | float64, got int64", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, kInt64), e.tensor({8, 8}, kInt64), e.tensor({2, 4, 8}, kInt64), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "mixed dtype of weight", DT, "weight: expected dtype", [=](E& e) {
    const DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, other), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "non-contiguous last dimension of weight", INV,
            "weight: expected the last dimension to be contiguous (stride 1), got stride 2", [=](E& e) {
              return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.strided({2, 4, 8}, {64, 16, 2}, e.act),
                         e.tensor({3}, kInt64, {0, 4, 8}));
            });
  add_error("grouped_matmul", "output with stride 0", INV, "out: output view addresses the same element more than once", [=](E& e) {
    return gmm(e, e.strided({8, 4}, {0, 1}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act),
               e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "out overlaps x", INV, "out: must not overlap x (forbidden aliasing)", [=](E& e) {
    const DLTensor* x = e.tensor({8, 8}, e.act);
    return gmm(e, e.view_of(x, {8, 4}, 0, {8, 1}), x, e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "out overlaps weight", INV, "out: must not overlap weight (forbidden aliasing)", [=](E& e) {
    const DLTensor* w = e.tensor({2, 4, 8}, e.act);
    return gmm(e, e.view_of(w, {8, 4}, 16), e.tensor({8, 8}, e.act), w, e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "NULL data", INV, "x: data is NULL but the tensor has 64 elements", [=](E& e) {
    return gmm(e, e.tensor({8, 4}, e.act), e.null_data({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  add_error("grouped_matmul", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "weight: the element count of shape", [=](E& e) {
    const int64_t big = int64_t(1) << 30;
    return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.huge({big, big, 8}, e.act), e.tensor({3}, kInt64, {0, 4, 8}));
  });
  // Offset values (host-visible index data).
  add_error(
      "grouped_matmul", "expert_offsets past R", OPDEV_STATUS_OUT_OF_RANGE,
      "expert_offsets[1] = 9 is outside [0, 9) (the rows R of x, inclusive)",
      [=](E& e) {
        return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, 9, 8}));
      },
      true);
  add_error(
      "grouped_matmul", "negative expert_offsets", OPDEV_STATUS_OUT_OF_RANGE,
      "expert_offsets[1] = -1 is outside [0, 9) (the rows R of x, inclusive)",
      [=](E& e) {
        return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, -1, 8}));
      },
      true);
  add_error(
      "grouped_matmul", "decreasing expert_offsets", INV,
      "expert_offsets[2] = 3 is less than expert_offsets[1] = 5 (offsets must be non-decreasing; invalid partition of the rows)",
      [=](E& e) {
        return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({3, 4, 8}, e.act),
                   e.tensor({4}, kInt64, {0, 5, 3, 8}));
      },
      true);
  add_error(
      "grouped_matmul", "expert_offsets not starting at 0", INV, "expert_offsets[0] = 2, expected 0",
      [=](E& e) {
        return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {2, 5, 8}));
      },
      true);
  add_error(
      "grouped_matmul", "expert_offsets not ending at R", INV, "expert_offsets[2] = 6, expected R = 8 (the rows of x",
      [=](E& e) {
        return gmm(e, e.tensor({8, 4}, e.act), e.tensor({8, 8}, e.act), e.tensor({2, 4, 8}, e.act), e.tensor({3}, kInt64, {0, 3, 6}));
      },
      true);
  add_error(
      "grouped_matmul", "rows without experts", INV, "expert_offsets[0] = 0, expected R = 5",
      [=](E& e) { return gmm(e, e.tensor({5, 4}, e.act), e.tensor({5, 8}, e.act), e.tensor({0, 4, 8}, e.act), e.tensor({1}, kInt64, {0})); },
      true);
}

}  // namespace opdev::conformance
