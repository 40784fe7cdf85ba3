// ref: linear, grouped_matmul in float64.
#include <algorithm>

#include "backends/ref/ref_common.h"

namespace opdev::ref {

namespace {

// out[r0 + i, n] = sum_k x[r0 + i, k] * w[n, k] (+ bias[n]) for i in [0, rows), in float64; w is the
// [N, K] matrix at element offset w_off of `weight` (dimensions wd, wd + 1). Rows of x are converted once
// so that the inner loop is a plain double dot product.
void matmul_rows(const TensorView& out, const TensorView& x, const TensorView& weight, int64_t w_off, int wd,
                 const TensorView* bias, int64_t r0, int64_t rows) {
  const int64_t K = x.size(1), N = out.size(1);
  std::vector<double> xs(size_t(rows * K));
  std::vector<double> w(static_cast<size_t>(K));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < K; ++k) xs[size_t(i * K + k)] = get(x, {r0 + i, k});
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) w[size_t(k)] = load(weight.data, weight.dtype, w_off + n * weight.strides[wd] + k * weight.strides[wd + 1]);
    const double b = bias ? get(*bias, {n}) : 0.0;
    for (int64_t i = 0; i < rows; ++i) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += xs[size_t(i * K + k)] * w[size_t(k)];
      set(out, {r0 + i, n}, s + b);
    }
  }
}

}  // namespace

opdev_status linear(ExecContext&, const linear_args& a) {
  matmul_rows(a.out, a.x, a.weight, 0, 0, a.bias.present ? &a.bias : nullptr, 0, a.x.size(0));
  return OPDEV_STATUS_SUCCESS;
}

opdev_status grouped_matmul(ExecContext&, const grouped_matmul_args& a) {
  const int64_t R = a.x.size(0), E = a.weight.size(0);
  for (int64_t e = 0; e < E; ++e) {
    // Clamped so that offsets the front-end could not see (device memory) never index out of bounds.
    const int64_t r0 = std::clamp<int64_t>(get_index(a.expert_offsets, {e}), 0, R);
    const int64_t r1 = std::clamp<int64_t>(get_index(a.expert_offsets, {e + 1}), r0, R);
    if (r1 > r0) matmul_rows(a.out, a.x, a.weight, e * a.weight.strides[0], 1, nullptr, r0, r1 - r0);
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
