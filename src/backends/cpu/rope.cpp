// cpu: rope, rope_cache.
// rope: tokens split across threads; each token rotates all its q heads, then its k heads, in place, in
// float32 with one rounding at the store. NeoX pairs (i, i + rot/2) are two contiguous vectors; GPT-J
// pairs (2i, 2i+1) are adjacent lanes, rotated as x * cos2 + swap_pairs(x) * sin2 with per-token tables
// cos2 = [c0 c0 c1 c1 ...], sin2 = [-s0 s0 -s1 s1 ...].
// rope_cache: float64 throughout (a float32 angle p * f is off by up to p * 2^-24 radians, far beyond the
// float32 tolerance at p ~ 40960), with the angle-addition identity cos(a + b) = cos a cos b - sin a sin b
// over p = h * B + j so that only (P / B + B) * rot / 2 sin/cos pairs are evaluated.
#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

inline int64_t position_at(const TensorView& pos, int64_t t) {
  const int64_t off = t * pos.strides[0];
  return pos.dtype == DType::I32 ? int64_t(pos.ptr<const int32_t>()[off]) : pos.ptr<const int64_t>()[off];
}

// x[0..half) and x[half..2 half) are the pairs; cs = [cos[half], sin[half]] of the token's position.
template <class T>
void rotate_neox(T* x, const float* cs, int64_t half) {
  const float* sn = cs + half;
  int64_t i = 0;
  for (; i + kW <= half; i += kW) {
    const vf x1 = vload(x + i), x2 = vload(x + half + i), c = vload(cs + i), s = vload(sn + i);
    vstore(x + i, x1 * c - x2 * s);
    vstore(x + half + i, x2 * c + x1 * s);
  }
  if (i < half) {
    const int n = int(half - i);
    const vf x1 = vload_n(x + i, n), x2 = vload_n(x + half + i, n), c = vload_n(cs + i, n), s = vload_n(sn + i, n);
    vstore_n(x + i, x1 * c - x2 * s, n);
    vstore_n(x + half + i, x2 * c + x1 * s, n);
  }
}

// x[0..n) with n even; c2/s2 the interleaved tables of the same span. kW is even, so a vector never
// splits a pair.
template <class T>
void rotate_gptj(T* x, const float* c2, const float* s2, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    const vf v = vload(x + i);
    vstore(x + i, v * vload(c2 + i) + vswap_pairs(v) * vload(s2 + i));
  }
  if (i < n) {
    const int m = int(n - i);
    const vf v = vload_n(x + i, m);
    vstore_n(x + i, v * vload_n(c2 + i, m) + vswap_pairs(v) * vload_n(s2 + i, m), m);
  }
}

// GPT-J tables are built per token in spans of this many rotary elements (on the stack).
constexpr int64_t kSpan = 256;

template <class T>
void rope_tokens(const rope_args& a, int64_t t0, int64_t t1) {
  const int64_t rot = a.cos_sin_cache.size(1), half = rot / 2;
  const float* cache = a.cos_sin_cache.ptr<const float>();
  const TensorView* views[2] = {&a.q, &a.k};
  const int nviews = a.k.present ? 2 : 1;
  alignas(64) float c2[kSpan], s2[kSpan];
  for (int64_t t = t0; t < t1; ++t) {
    const float* cs = cache + position_at(a.positions, t) * rot;
    if (a.is_neox) {
      for (int vi = 0; vi < nviews; ++vi) {
        const TensorView& v = *views[vi];
        T* base = v.ptr<T>() + t * v.strides[0];
        for (int64_t h = 0; h < v.shape[1]; ++h) rotate_neox(base + h * v.strides[1], cs, half);
      }
      continue;
    }
    for (int64_t s0 = 0; s0 < rot; s0 += kSpan) {
      const int64_t n = std::min(kSpan, rot - s0);
      for (int64_t j = 0; j < n; j += 2) {
        const float c = cs[(s0 + j) / 2], s = cs[half + (s0 + j) / 2];
        c2[j] = c;
        c2[j + 1] = c;
        s2[j] = -s;
        s2[j + 1] = s;
      }
      for (int vi = 0; vi < nviews; ++vi) {
        const TensorView& v = *views[vi];
        T* base = v.ptr<T>() + t * v.strides[0] + s0;
        for (int64_t h = 0; h < v.shape[1]; ++h) rotate_gptj(base + h * v.strides[1], c2, s2, n);
      }
    }
  }
}

// ---- rope_cache ----

// Hugging Face's get_mscale: 0.1 * m * ln(s) + 1 above s = 1.
double mscale_of(double s, double m) { return s > 1 ? 1.0 + 0.1 * m * std::log(s) : 1.0; }

// Frequencies and the cos/sin scale of transformers' rope initialisers (default, linear, yarn).
struct Frequencies {
  double scale = 1.0;  // YaRN attention factor
  void compute(const rope_cache_args& a, int64_t rot, double* inv_freq) {
    const int64_t half = rot / 2;
    const double log_theta = std::log(a.theta);
    // theta^(-2i/rot) = exp(-2i ln(theta) / rot)
    for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::exp(-double(2 * i) * log_theta / double(rot));
    const opdev_rope_scaling& s = a.scaling;
    if (s.type == OPDEV_ROPE_SCALING_LINEAR) {
      for (int64_t i = 0; i < half; ++i) inv_freq[i] /= s.factor;
      return;
    }
    if (s.type != OPDEV_ROPE_SCALING_YARN) return;
    if (s.attention_factor > 0) scale = s.attention_factor;
    else if (s.mscale != 0 && s.mscale_all_dim != 0) scale = mscale_of(s.factor, s.mscale) / mscale_of(s.factor, s.mscale_all_dim);
    else scale = mscale_of(s.factor, 1.0);
    // The rotary dimension that completes `turns` rotations over the original context length.
    const double two_pi = 6.283185307179586476925;
    auto dim_for = [&](double turns) {
      return double(rot) * std::log(double(s.original_max_position_embeddings) / (two_pi * turns)) / (2.0 * log_theta);
    };
    double lo = dim_for(s.beta_fast), hi = dim_for(s.beta_slow);
    if (s.truncate) {
      lo = std::floor(lo);
      hi = std::ceil(hi);
    }
    lo = std::max(0.0, lo);
    hi = std::min(double(rot - 1), hi);
    const double width = lo == hi ? 0.001 : hi - lo;
    // Below lo the frequency is kept (extrapolation), above hi divided by factor (interpolation), linear
    // blend in between.
    for (int64_t i = 0; i < half; ++i) {
      const double w = std::min(1.0, std::max(0.0, (double(i) - lo) / width));  // weight of interpolation
      inv_freq[i] = inv_freq[i] * (1.0 - w) + (inv_freq[i] / s.factor) * w;
    }
  }
};

}  // namespace

opdev_status rope(ExecContext& ex, const rope_args& a) {
  const int64_t T_ = a.q.size(0), rot = a.cos_sin_cache.size(1);
  const int64_t heads = a.q.size(1) + (a.k.present ? a.k.size(1) : 0);
  const int64_t per_token = std::max<int64_t>(1, heads * rot);
  dispatch_float(a.q.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    parallel_for(ex, T_, 1 + 16384 / per_token, [&](int64_t t0, int64_t t1) { rope_tokens<T>(a, t0, t1); });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status rope_cache(ExecContext& ex, const rope_cache_args& a) {
  const int64_t P = a.cos_sin_cache.size(0), rot = a.cos_sin_cache.size(1), half = rot / 2;
  if (half == 0) return OPDEV_STATUS_SUCCESS;
  constexpr int64_t B = 64;  // row block: p = h * B + j
  const int64_t NB = (P + B - 1) / B, NJ = std::min(B, P);
  double* inv_freq = static_cast<double*>(ex.scratch(sizeof(double) * size_t(half)));
  // [cos | sin] of j * f for j < B, and of h * B * f for h < NB, each row 2 * half wide.
  double* fine = static_cast<double*>(ex.scratch(sizeof(double) * size_t(NJ * rot)));
  double* coarse = static_cast<double*>(ex.scratch(sizeof(double) * size_t(NB * rot)));
  Frequencies fr;
  fr.compute(a, rot, inv_freq);
  const double scale = fr.scale;
  auto fill = [&](double* row, double p) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = p * inv_freq[i];
      row[i] = std::cos(angle);
      row[half + i] = std::sin(angle);
    }
  };
  for (int64_t j = 0; j < NJ; ++j) fill(fine + j * rot, double(j));
  parallel_for(ex, NB, 4, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) fill(coarse + h * rot, double(h * B));
  });
  float* out = a.cos_sin_cache.ptr<float>();
  parallel_for(ex, P, 1 + 8192 / rot, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const double* ch = coarse + (p / B) * rot;
      const double* cl = fine + (p % B) * rot;
      float* o = out + p * rot;
      for (int64_t i = 0; i < half; ++i) {
        const double hc = ch[i], hs = ch[half + i], lc = cl[i], ls = cl[half + i];
        o[i] = float((hc * lc - hs * ls) * scale);
        o[half + i] = float((hs * lc + hc * ls) * scale);
      }
    }
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
