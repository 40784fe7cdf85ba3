// ref: quantize_int8, linear_w8a8, grouped_matmul_w8a8.
//
// quantize_int8 is defined in float32 operations (opdev.h), so the oracle performs exactly those: the int8
// values and scales of every backend must equal these bit for bit. The matmuls are the float64 oracle of
// the contract: the int32 sum is exact (an int64 sum of exact products), scaled in float64 and rounded once
// to the output dtype; the float32 roundings of the contract's epilogue are what the conformance tolerance
// allows for.
#include <algorithm>

#include "backends/ref/ref_common.h"

namespace opdev::ref {

namespace {

// Round half to even of a float32 value known to be finite (the default rounding mode).
float round_even(float r) { return std::nearbyint(r); }

// out[r0 + i, n] = x_scale[r0 + i] * w_scale[n] * sum_k x[r0 + i, k] * w[n, k] (+ bias[n]) for i in [0, rows);
// w is the [N, K] int8 matrix at element offset w_off of `weight` (dimensions wd, wd + 1), w_scale the N
// float32 scales at element offset s_off of `wscale`.
void matmul_rows(const TensorView& out, const TensorView& x, const TensorView& x_scale, const TensorView& weight, int64_t w_off,
                 int wd, const TensorView& wscale, int64_t s_off, const TensorView* bias, int64_t r0, int64_t rows) {
  const int64_t K = x.size(1), N = out.size(1);
  const int8_t* xp = x.ptr<const int8_t>();
  const int8_t* wp = weight.ptr<const int8_t>();
  for (int64_t n = 0; n < N; ++n) {
    const double ws = double(wscale.ptr<const float>()[s_off + n]);
    const double b = bias ? get(*bias, {n}) : 0.0;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t m = r0 + i;
      int64_t acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += int64_t(xp[m * x.strides[0] + k]) * int64_t(wp[w_off + n * weight.strides[wd] + k]);
      const double xs = double(x_scale.ptr<const float>()[m]);
      set(out, {m, n}, double(acc) * xs * ws + b);
    }
  }
}

}  // namespace

opdev_status quantize_int8(ExecContext&, const quantize_int8_args& a) {
  const int64_t M = a.x.size(0), K = a.x.size(1);
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t m = 0; m < M; ++m) {
    float amax = 0.0f;
    bool nan = false;
    for (int64_t k = 0; k < K; ++k) {
      row[size_t(k)] = float(get(a.x, {m, k}));  // exact for float32 / bfloat16 / float16 data
      const float v = std::fabs(row[size_t(k)]);
      if (std::isnan(v)) nan = true;
      else if (v > amax) amax = v;
    }
    if (nan) amax = NAN;
    const float scale = amax / 127.0f;
    const float inv = amax == 0.0f ? 0.0f : 127.0f / amax;
    a.scale.ptr<float>()[m] = scale;
    for (int64_t k = 0; k < K; ++k) {
      const float r = row[size_t(k)] * inv;
      const float q = std::isnan(r) ? 0.0f : std::min(127.0f, std::max(-127.0f, round_even(r)));
      set(a.out, {m, k}, double(q));
    }
  }
  return OPDEV_STATUS_SUCCESS;
}

opdev_status linear_w8a8(ExecContext&, const linear_w8a8_args& a) {
  matmul_rows(a.out, a.x, a.x_scale, a.weight, 0, 0, a.weight_scale, 0, a.bias.present ? &a.bias : nullptr, 0, a.x.size(0));
  return OPDEV_STATUS_SUCCESS;
}

opdev_status grouped_matmul_w8a8(ExecContext&, const grouped_matmul_w8a8_args& a) {
  const int64_t R = a.x.size(0), E = a.weight.size(0), N = a.weight.size(1);
  for (int64_t e = 0; e < E; ++e) {
    // Clamped so that offsets the front-end could not see (device memory) never index out of bounds.
    const int64_t r0 = std::clamp<int64_t>(get_index(a.expert_offsets, {e}), 0, R);
    const int64_t r1 = std::clamp<int64_t>(get_index(a.expert_offsets, {e + 1}), r0, R);
    if (r1 > r0)
      matmul_rows(a.out, a.x, a.x_scale, a.weight, e * a.weight.strides[0], 1, a.weight_scale, e * N, nullptr, r0, r1 - r0);
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
