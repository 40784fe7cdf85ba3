// Deterministic mode at the operator level (cpu backend): with the context's deterministic flag, a row's
// result is bitwise the same whatever else is in the batch (linear and grouped_matmul at any row count,
// paged_attention for a query in a decode batch or inside a prefill) and whatever the thread count.
// Each property is checked against the same computation without the flag, where the bits do differ:
// that shows the checks can fail.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"
#include "opdev/opdev.hpp"

namespace {

using opdev::Context;
using opdev::TensorRef;

size_t item_size(DLDataType t) { return size_t(t.bits / 8); }

// Random values in [-1, 1] stored as dtype t.
std::vector<uint8_t> random_buffer(DLDataType t, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<uint8_t> b(n * item_size(t));
  for (size_t i = 0; i < n; ++i) {
    const float f = u(rng);
    if (t.bits == 32) {
      std::memcpy(&b[i * 4], &f, 4);
    } else {
      const uint16_t h = t.code == kDLBfloat ? opdev::f32_to_bf16(f) : opdev::f32_to_f16(f);
      std::memcpy(&b[i * 2], &h, 2);
    }
  }
  return b;
}

const DLDataType kDtypes[] = {opdev::kFloat32, opdev::kBFloat16, opdev::kFloat16};

std::string dtype_name(DLDataType t) { return t.bits == 32 ? "float32" : t.code == kDLBfloat ? "bfloat16" : "float16"; }

// out[M, N] = x[:M] . w^T on ctx; returns out's bytes.
std::vector<uint8_t> linear(Context& ctx, DLDataType t, std::vector<uint8_t>& x, std::vector<uint8_t>& w, int64_t M, int64_t N,
                            int64_t K) {
  std::vector<uint8_t> out(size_t(M * N) * item_size(t));
  TensorRef tx(x.data(), t, {M, K}), tw(w.data(), t, {N, K}), to(out.data(), t, {M, N});
  opdev::check(opdev_linear(ctx, to, tx, tw, nullptr));
  return out;
}

bool same_row(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, size_t row_bytes, int64_t row) {
  return std::memcmp(a.data() + size_t(row) * row_bytes, b.data() + size_t(row) * row_bytes, row_bytes) == 0;
}

TEST(Determinism, LinearRowsDoNotDependOnTheBatch) {
  const int64_t N = 70, K = 300, Mmax = 64;
  for (DLDataType t : kDtypes) {
    SCOPED_TRACE(dtype_name(t));
    auto x = random_buffer(t, size_t(Mmax * K), 1), w = random_buffer(t, size_t(N * K), 2);
    const size_t row = size_t(N) * item_size(t);
    Context det("cpu", 2, true), det1("cpu", 1, true), fast("cpu", 2, false);
    const auto alone = linear(det, t, x, w, 1, N, K);
    for (int64_t M : {2, 5, 16, 17, 40, 64}) {
      const auto batch = linear(det, t, x, w, M, N, K);
      EXPECT_TRUE(same_row(batch, alone, row, 0)) << "row 0 with " << M << " rows differs from row 0 alone";
    }
    // Every row of a 64-row batch equals that row computed alone, and 1 thread equals 2 threads.
    const auto batch = linear(det, t, x, w, Mmax, N, K);
    EXPECT_EQ(linear(det1, t, x, w, Mmax, N, K), batch);
    for (int64_t m = 0; m < Mmax; m += 9) {
      std::vector<uint8_t> xm(x.begin() + m * K * int64_t(item_size(t)), x.begin() + (m + 1) * K * int64_t(item_size(t)));
      const auto one = linear(det, t, xm, w, 1, N, K);
      EXPECT_EQ(std::memcmp(batch.data() + size_t(m) * row, one.data(), row), 0) << "row " << m;
    }
    // Without the flag the batched path is another kernel (the check above can fail).
    if (t.bits == 32) {
      EXPECT_FALSE(same_row(linear(fast, t, x, w, Mmax, N, K), linear(fast, t, x, w, 1, N, K), row, 0));
    }
  }
}

TEST(Determinism, GroupedMatmulExpertRowsDoNotDependOnTheExpertsLoad) {
  // Two experts; token row 0 goes to expert 1 alone, then together with 30 other rows.
  const int64_t E = 2, N = 48, K = 200;
  for (DLDataType t : kDtypes) {
    SCOPED_TRACE(dtype_name(t));
    auto w = random_buffer(t, size_t(E * N * K), 3), x = random_buffer(t, size_t(31 * K), 4);
    auto run = [&](Context& ctx, int64_t rows) {
      std::vector<uint8_t> out(size_t(rows * N) * item_size(t));
      std::vector<int64_t> offsets = {0, 0, rows};
      TensorRef tx(x.data(), t, {rows, K}), tw(w.data(), t, {E, N, K}), to(out.data(), t, {rows, N}),
          toff(offsets.data(), opdev::kInt64, {E + 1});
      opdev::check(opdev_grouped_matmul(ctx, to, tx, tw, toff));
      return out;
    };
    Context det("cpu", 2, true), fast("cpu", 2, false);
    const size_t row = size_t(N) * item_size(t);
    EXPECT_TRUE(same_row(run(det, 31), run(det, 1), row, 0));
    if (t.bits == 32) {
      EXPECT_FALSE(same_row(run(fast, 31), run(fast, 1), row, 0));
    }
  }
}

TEST(Determinism, AttentionOfAQueryDoesNotDependOnItsBatch) {
  // One sequence of L = 1300 cached keys (longer than the cpu backend's split chunk). The last query
  // row is computed (a) as a decode step (q_len 1) and (b) as the last row of a 40-query chunked
  // prefill over the same cache; with the flag both give the same bits.
  const int64_t Hq = 4, Hk = 2, D = 64, BS = 16, L = 1300, NB = (L + BS - 1) / BS, P = 40;
  for (DLDataType t : kDtypes) {
    SCOPED_TRACE(dtype_name(t));
    const size_t is = item_size(t);
    auto kc = random_buffer(t, size_t(NB * BS * Hk * D), 5), vc = random_buffer(t, size_t(NB * BS * Hk * D), 6);
    auto q = random_buffer(t, size_t(P * Hq * D), 7);
    std::vector<int32_t> table(static_cast<size_t>(NB));
    for (int64_t b = 0; b < NB; ++b) table[size_t(b)] = int32_t((b * 7) % NB);  // scattered blocks
    auto run = [&](Context& ctx, int64_t q_len) {
      std::vector<uint8_t> out(size_t(q_len * Hq * D) * is);
      std::vector<int32_t> cu = {0, int32_t(q_len)}, kvl = {int32_t(L)};
      TensorRef tq(q.data() + size_t((P - q_len) * Hq * D) * is, t, {q_len, Hq, D}), to(out.data(), t, {q_len, Hq, D}),
          tk(kc.data(), t, {NB, BS, Hk, D}), tv(vc.data(), t, {NB, BS, Hk, D}), tb(table.data(), opdev::kInt32, {1, NB}),
          tcu(cu.data(), opdev::kInt32, {2}), tkv(kvl.data(), opdev::kInt32, {1});
      opdev::check(opdev_paged_attention(ctx, to, nullptr, tq, tk, tv, tb, tcu, tkv, 0.125, 1));
      return std::vector<uint8_t>(out.end() - int64_t(size_t(Hq * D) * is), out.end());  // the last query row
    };
    Context det("cpu", 2, true), det1("cpu", 1, true), fast("cpu", 2, false);
    EXPECT_EQ(run(det, 1), run(det, P));
    EXPECT_EQ(run(det1, P), run(det, P));
    if (t.bits == 32) {
      EXPECT_NE(run(fast, 1), run(fast, P));  // split decode vs prefill: other bits
    }
  }
}

}  // namespace
