// The int8 W8A8 ops through the public API: hand-computed values of the contract (round half to even, the
// zero / NaN / inf rows of quantize_int8, the int32 sum at its bound), and the property the exact int32
// sums give the cpu backend: every ISA (avx512 with VNNI, avx2, generic), thread count and kernel path
// (gemv at few rows, packed gemm above) writes the same bits, so a row's result never depends on its batch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "opdev/opdev.hpp"

namespace {

using opdev::Context;
using opdev::TensorRef;

std::vector<int8_t> random_i8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = int8_t(int(rng() % 256) - 128);  // every value, -128 included
  return v;
}

std::vector<float> random_scales(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(1e-3f, 3e-2f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// A cpu context on one ISA, or nullptr where this CPU (or build) lacks it.
std::unique_ptr<Context> cpu_context(const char* isa, int threads) {
  setenv("OPDEV_CPU_ISA", isa, 1);
  std::unique_ptr<Context> ctx;
  try {
    ctx = std::make_unique<Context>("cpu", threads);
  } catch (const std::exception&) {
  }
  unsetenv("OPDEV_CPU_ISA");
  return ctx;
}

TEST(W8A8, QuantizeRoundsHalfToEvenAndHandlesZeroNanInfRows) {
  Context ctx("cpu");
  const int64_t M = 4, K = 8;
  const std::vector<float> x = {127, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, -126.5f, 0,     // max 127: inv = 1
                                0,   0,    0,     0,    0,     0,    0,       0,     // zero row
                                1,   NAN,  3,     4,    5,     6,    7,       8,     // NaN row
                                1,   2,    -INFINITY, 4, 5,    6,    7,       8};    // inf row
  std::vector<int8_t> q(size_t(M * K), 99);
  std::vector<float> s(size_t(M), -1);
  TensorRef tq(q.data(), opdev::kInt8, {M, K}), ts(s.data(), opdev::kFloat32, {M}),
      tx(const_cast<float*>(x.data()), opdev::kFloat32, {M, K});
  opdev::check(opdev_quantize_int8(ctx, tq, ts, tx));
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(std::vector<int8_t>(q.begin(), q.begin() + 8), (std::vector<int8_t>{127, 2, -4, 0, 0, 2, -126, 0}));
  EXPECT_EQ(s[1], 0.0f);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_TRUE(std::isinf(s[3]) && s[3] > 0);
  for (int64_t i = K; i < M * K; ++i) EXPECT_EQ(q[size_t(i)], 0) << "element " << i;
}

TEST(W8A8, LinearEpilogueAndTheInt32Bound) {
  Context ctx("cpu");
  {
    // acc = 1*4 + 2*5 + 3*6 = 32; out = 0.5 * (32 * 0.25) + 1 = 5.
    std::vector<int8_t> x = {1, 2, 3}, w = {4, 5, 6};
    std::vector<float> xs = {0.5f}, ws = {0.25f}, b = {1.0f}, out = {0};
    TensorRef to(out.data(), opdev::kFloat32, {1, 1}), tx(x.data(), opdev::kInt8, {1, 3}), txs(xs.data(), opdev::kFloat32, {1}),
        tw(w.data(), opdev::kInt8, {1, 3}), tws(ws.data(), opdev::kFloat32, {1}), tb(b.data(), opdev::kFloat32, {1});
    opdev::check(opdev_linear_w8a8(ctx, to, tx, txs, tw, tws, tb));
    EXPECT_EQ(out[0], 5.0f);
  }
  {
    // The largest K with all -128: acc = 131071 * 16384 = 2^31 - 2^14, the largest int32 sum of int8
    // products; exactly representable in float32. For 1 and 20 rows (gemv and gemm paths).
    const int64_t K = 131071;
    for (int64_t M : {1, 20}) {
      std::vector<int8_t> x(size_t(M * K), -128), w(size_t(2 * K), -128);
      std::vector<float> xs(size_t(M), 1.0f), ws = {1.0f, -0.5f}, out(size_t(M * 2), 0);
      TensorRef to(out.data(), opdev::kFloat32, {M, 2}), tx(x.data(), opdev::kInt8, {M, K}), txs(xs.data(), opdev::kFloat32, {M}),
          tw(w.data(), opdev::kInt8, {2, K}), tws(ws.data(), opdev::kFloat32, {2});
      opdev::check(opdev_linear_w8a8(ctx, to, tx, txs, tw, tws, nullptr));
      for (int64_t m = 0; m < M; ++m) {
        EXPECT_EQ(out[size_t(2 * m)], 2147467264.0f) << "row " << m;
        EXPECT_EQ(out[size_t(2 * m + 1)], -1073733632.0f) << "row " << m;
      }
    }
  }
}

struct Problem {
  int64_t M = 64, N = 70, K = 300;
  std::vector<int8_t> x, w;
  std::vector<float> xs, ws, bias;
  Problem() : x(random_i8(size_t(M * K), 1)), w(random_i8(size_t(N * K), 2)), xs(random_scales(size_t(M), 3)),
              ws(random_scales(size_t(N), 4)), bias(random_scales(size_t(N), 5)) {}
  // out[rows, N] for x rows r0 .. r0 + rows (float32 out and bias).
  std::vector<float> linear(opdev_context* ctx, int64_t r0, int64_t rows) {
    std::vector<float> out(size_t(rows * N));
    TensorRef to(out.data(), opdev::kFloat32, {rows, N}), tx(x.data() + r0 * K, opdev::kInt8, {rows, K}),
        txs(xs.data() + r0, opdev::kFloat32, {rows}), tw(w.data(), opdev::kInt8, {N, K}), tws(ws.data(), opdev::kFloat32, {N}),
        tb(bias.data(), opdev::kFloat32, {N});
    opdev::check(opdev_linear_w8a8(ctx, to, tx, txs, tw, tws, tb));
    return out;
  }
  // Two experts sharing w (expert 1 = w with its rows reversed); rows [0, split) go to expert 0.
  std::vector<float> grouped(opdev_context* ctx, int64_t split) {
    std::vector<int8_t> w2(w);
    for (int64_t n = 0; n < N; ++n) std::memcpy(w2.data() + n * K, w.data() + (N - 1 - n) * K, size_t(K));
    std::vector<int8_t> ws3(w);
    ws3.insert(ws3.end(), w2.begin(), w2.end());
    std::vector<float> wsc(ws);
    wsc.insert(wsc.end(), ws.rbegin(), ws.rend());
    std::vector<int64_t> off = {0, split, M};
    std::vector<float> out(size_t(M * N));
    TensorRef to(out.data(), opdev::kFloat32, {M, N}), tx(x.data(), opdev::kInt8, {M, K}), txs(xs.data(), opdev::kFloat32, {M}),
        tw(ws3.data(), opdev::kInt8, {2, N, K}), tws(wsc.data(), opdev::kFloat32, {2, N}), toff(off.data(), opdev::kInt64, {3});
    opdev::check(opdev_grouped_matmul_w8a8(ctx, to, tx, txs, tw, tws, toff));
    return out;
  }
};

TEST(W8A8, BitwiseTheSameOnEveryIsaThreadCountAndBatch) {
  Problem p;
  auto ref_ctx = cpu_context("generic", 1);
  ASSERT_TRUE(ref_ctx);
  const std::vector<float> want = p.linear(*ref_ctx, 0, p.M);
  const std::vector<float> want_g = p.grouped(*ref_ctx, 20);
  int isas = 0;
  for (const char* isa : {"avx512", "avx2", "generic"})
    for (int threads : {1, 2}) {
      auto ctx = cpu_context(isa, threads);
      if (!ctx) continue;
      ++isas;
      SCOPED_TRACE(std::string(isa) + ", " + std::to_string(threads) + " threads");
      EXPECT_EQ(p.linear(*ctx, 0, p.M), want);  // 64 rows: the packed gemm path on VNNI
      for (int64_t r0 : {0, 5, 63}) {           // one row (gemv) and 9 rows from anywhere: the same bits
        EXPECT_EQ(p.linear(*ctx, r0, 1), std::vector<float>(want.begin() + r0 * p.N, want.begin() + (r0 + 1) * p.N)) << r0;
      }
      {
        const std::vector<float> nine = p.linear(*ctx, 40, 9);
        EXPECT_EQ(nine, std::vector<float>(want.begin() + 40 * p.N, want.begin() + 49 * p.N));
      }
      // Expert 0's rows whatever the split (4 rows: gemv; 20, 40: gemm), against the one-split reference.
      EXPECT_EQ(p.grouped(*ctx, 20), want_g);
      for (int64_t split : {4, 40}) {
        const std::vector<float> g = p.grouped(*ctx, split);
        EXPECT_EQ(std::vector<float>(g.begin(), g.begin() + 4 * p.N), std::vector<float>(want_g.begin(), want_g.begin() + 4 * p.N));
      }
    }
  EXPECT_GE(isas, 2);

  // quantize_int8: every ISA writes the same bytes (odd K: vector bodies and scalar tails; bfloat16 input).
  const int64_t M = 9, K = 1029;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> xb(size_t(M * K));
  for (size_t i = 0; i < xb.size(); ++i) {
    float f = nd(rng) * (i / size_t(K) == 3 ? 1e-39f : 1.0f);  // row 3: subnormal
    if (i == size_t(5 * K + 700)) f = NAN;
    uint32_t u;
    std::memcpy(&u, &f, 4);
    xb[i] = uint16_t(u >> 16);
  }
  auto quant = [&](opdev_context* ctx) {
    std::vector<int8_t> q(static_cast<size_t>(M * K));
    std::vector<float> s(static_cast<size_t>(M));
    TensorRef tq(q.data(), opdev::kInt8, {M, K}), ts(s.data(), opdev::kFloat32, {M}), tx(xb.data(), opdev::kBFloat16, {M, K});
    opdev::check(opdev_quantize_int8(ctx, tq, ts, tx));
    std::vector<uint8_t> bytes(q.size() + s.size() * 4);
    std::memcpy(bytes.data(), q.data(), q.size());
    std::memcpy(bytes.data() + q.size(), s.data(), s.size() * 4);
    return bytes;
  };
  const auto qwant = quant(*ref_ctx);
  for (const char* isa : {"avx512", "avx2"}) {
    auto ctx = cpu_context(isa, 2);
    if (ctx) {
      EXPECT_EQ(quant(*ctx), qwant) << isa;
    }
  }
}

}  // namespace
