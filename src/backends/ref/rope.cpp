// ref: rope, rope_cache in float64.
#include <algorithm>

#include "backends/ref/ref_common.h"

namespace opdev::ref {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Rotates the first rot_dim elements of every head of x [T, H, D] by the cache row of its token.
void rotate(const TensorView& x, const TensorView& positions, const TensorView& cache, bool is_neox) {
  const int64_t T = x.size(0), H = x.size(1), half = cache.size(1) / 2;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t p = get_index(positions, {t});
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t i1 = is_neox ? i : 2 * i, i2 = is_neox ? i + half : 2 * i + 1;
        const double c = get(cache, {p, i}), s = get(cache, {p, half + i});
        const double x1 = get(x, {t, h, i1}), x2 = get(x, {t, h, i2});
        set(x, {t, h, i1}, x1 * c - x2 * s);
        set(x, {t, h, i2}, x2 * c + x1 * s);
      }
  }
}

// Hugging Face get_mscale.
double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

opdev_status rope(ExecContext&, const rope_args& a) {
  rotate(a.q, a.positions, a.cos_sin_cache, a.is_neox);
  if (a.k.present) rotate(a.k, a.positions, a.cos_sin_cache, a.is_neox);
  return OPDEV_STATUS_SUCCESS;
}

// Follows transformers' _compute_default/_linear/_yarn_parameters line by line, in float64.
opdev_status rope_cache(ExecContext&, const rope_cache_args& a) {
  const TensorView& out = a.cos_sin_cache;
  const int64_t P = out.size(0), dim = out.size(1), half = dim / 2;
  const opdev_rope_scaling& sc = a.scaling;
  const double base = a.theta;
  std::vector<double> inv_freq(static_cast<size_t>(half), 0.0);
  for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = 1.0 / std::pow(base, double(2 * i) / double(dim));
  double attention_factor = 1.0;
  if (sc.type == OPDEV_ROPE_SCALING_LINEAR) {
    for (double& f : inv_freq) f /= sc.factor;
  } else if (sc.type == OPDEV_ROPE_SCALING_YARN) {
    const double factor = sc.factor;
    if (sc.attention_factor > 0) attention_factor = sc.attention_factor;
    else if (sc.mscale != 0 && sc.mscale_all_dim != 0)
      attention_factor = yarn_mscale(factor, sc.mscale) / yarn_mscale(factor, sc.mscale_all_dim);
    else attention_factor = yarn_mscale(factor, 1.0);
    const double orig = double(sc.original_max_position_embeddings);
    auto find_correction_dim = [&](double num_rotations) {
      return (double(dim) * std::log(orig / (num_rotations * 2 * kPi))) / (2 * std::log(base));
    };
    double low = find_correction_dim(sc.beta_fast), high = find_correction_dim(sc.beta_slow);
    if (sc.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high) high += 0.001;  // prevent singularity
    for (int64_t i = 0; i < half; ++i) {
      const double pos_freq = std::pow(base, double(2 * i) / double(dim));
      const double extrapolation = 1.0 / pos_freq, interpolation = 1.0 / (factor * pos_freq);
      const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      const double extrapolation_factor = 1.0 - ramp;
      inv_freq[size_t(i)] = interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
  }
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(p) * inv_freq[size_t(i)];
      set(out, {p, i}, std::cos(angle) * attention_factor);
      set(out, {p, half + i}, std::sin(angle) * attention_factor);
    }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
