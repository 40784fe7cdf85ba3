// Value generation, dtype encoding and the comparator of the conformance suite.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "conformance.h"

namespace opdev::conformance {

uint64_t Rng::next() {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }
double Rng::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

TensorSpec& TensorSpec::uniform(double lo, double hi) {
  gen = [lo, hi](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = lo + (hi - lo) * r.uniform();
  };
  return *this;
}
TensorSpec& TensorSpec::normal(double mean, double stddev) {
  gen = [mean, stddev](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = mean + stddev * r.normal();
  };
  return *this;
}
TensorSpec& TensorSpec::integers(int64_t lo, int64_t hi) {
  gen = [lo, hi](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = double(lo + int64_t(r.next() % uint64_t(hi - lo)));
  };
  return *this;
}

// ---- dtype encoding (round to nearest even, directly from double) ----

static double round_fmt(double ax, int mant, int emin) {
  int e;
  std::frexp(ax, &e);
  int lead = e - 1 < emin ? emin : e - 1;
  double q = std::ldexp(1.0, lead - mant);
  return std::nearbyint(ax / q) * q;
}

static uint16_t to_bf16(double x) {
  if (std::isnan(x)) return 0x7FC0;
  uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double ax = std::fabs(x);
  if (ax == 0) return sign;
  if (!std::isinf(ax)) ax = round_fmt(ax, 7, -126);
  if (ax >= std::ldexp(1.0, 128)) return sign | 0x7F80;
  float f = float(ax);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t(sign | (u >> 16));
}

static uint16_t to_f16(double x) {
  if (std::isnan(x)) return 0x7E00;
  uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double ax = std::fabs(x);
  if (ax == 0) return sign;
  if (!std::isinf(ax)) ax = round_fmt(ax, 10, -14);
  if (ax >= 65536.0) return sign | 0x7C00;
  if (ax < std::ldexp(1.0, -14)) return uint16_t(sign | uint16_t(ax * 16777216.0));
  int e;
  double m = std::frexp(ax, &e);
  return uint16_t(sign | uint16_t((e + 14) << 10) | uint16_t((m * 2.0 - 1.0) * 1024.0));
}

static double from_f16(uint16_t h) {
  int exp = (h >> 10) & 31, man = h & 1023;
  double v = exp == 31 ? (man ? NAN : INFINITY) : exp == 0 ? std::ldexp(double(man), -24) : std::ldexp(double(1024 + man), exp - 25);
  return (h & 0x8000) ? -v : v;
}

void encode(double v, DLDataType t, void* dst) {
  if (same_dtype(t, kFloat32)) {
    float f = float(v);
    std::memcpy(dst, &f, 4);
  } else if (same_dtype(t, kFloat64)) {
    std::memcpy(dst, &v, 8);
  } else if (same_dtype(t, kBFloat16)) {
    uint16_t b = to_bf16(v);
    std::memcpy(dst, &b, 2);
  } else if (same_dtype(t, kFloat16)) {
    uint16_t b = to_f16(v);
    std::memcpy(dst, &b, 2);
  } else if (same_dtype(t, kInt32)) {
    int32_t i = int32_t(v);
    std::memcpy(dst, &i, 4);
  } else if (same_dtype(t, kInt64)) {
    int64_t i = int64_t(v);
    std::memcpy(dst, &i, 8);
  } else if (same_dtype(t, kInt8)) {
    int8_t i = int8_t(std::min(127.0, std::max(-128.0, v)));  // saturating (|-128| of a magnitude run is 127)
    std::memcpy(dst, &i, 1);
  } else if (same_dtype(t, kUInt8)) {
    uint8_t i = uint8_t(std::min(255.0, std::max(0.0, v)));
    std::memcpy(dst, &i, 1);
  }
}

double decode(DLDataType t, const void* src) {
  if (same_dtype(t, kFloat32)) {
    float f;
    std::memcpy(&f, src, 4);
    return f;
  }
  if (same_dtype(t, kFloat64)) {
    double d;
    std::memcpy(&d, src, 8);
    return d;
  }
  if (same_dtype(t, kBFloat16)) {
    uint16_t b;
    std::memcpy(&b, src, 2);
    uint32_t u = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  if (same_dtype(t, kFloat16)) {
    uint16_t b;
    std::memcpy(&b, src, 2);
    return from_f16(b);
  }
  if (same_dtype(t, kInt32)) {
    int32_t i;
    std::memcpy(&i, src, 4);
    return i;
  }
  if (same_dtype(t, kInt64)) {
    int64_t i;
    std::memcpy(&i, src, 8);
    return double(i);
  }
  if (same_dtype(t, kInt8)) return double(*static_cast<const int8_t*>(src));
  if (same_dtype(t, kUInt8)) return double(*static_cast<const uint8_t*>(src));
  return NAN;
}

// ---- tolerances and comparison ----

double default_rtol(DLDataType t) {
  if (same_dtype(t, kFloat32)) return 1.3e-6;
  if (same_dtype(t, kFloat16)) return 1e-3;
  if (same_dtype(t, kBFloat16)) return 1.6e-2;
  if (same_dtype(t, kFloat64)) return 1e-7;
  return 0;
}
double default_atol(DLDataType t) {
  if (same_dtype(t, kFloat32) || same_dtype(t, kFloat16) || same_dtype(t, kBFloat16)) return 1e-5;
  if (same_dtype(t, kFloat64)) return 1e-7;
  return 0;
}

double Tolerance::mag_rtol_for(DLDataType t) const {
  auto it = mag_rtol.find(dtype_str(t));
  if (it != mag_rtol.end()) return it->second;
  it = mag_rtol.find("*");
  return it != mag_rtol.end() ? it->second : 0.0;
}

Tolerance contract_tolerance(const std::string& op) {
  Tolerance t;
  if (op == "linear") {
    t.mag_inputs = {"x", "weight", "bias"};
  } else if (op == "grouped_matmul") {
    t.mag_inputs = {"x", "weight"};
  } else if (op == "paged_attention") {
    t.mag_inputs = {"value_cache"};
  } else if (op == "moe_unpermute") {
    t.mag_inputs = {"permuted_y", "topk_weights"};
  } else if (op == "linear_w8a8") {
    t.mag_inputs = {"x", "x_scale", "weight", "weight_scale", "bias"};
  } else if (op == "grouped_matmul_w8a8") {
    t.mag_inputs = {"x", "x_scale", "weight", "weight_scale"};
  } else if (op == "quantize_int8") {
    t.exact = {"scale"};
  } else if (op == "rms_norm") {
    t.roundings["out"] = contract::kRmsNormRoundings;
  } else if (op == "add_rms_norm") {
    t.roundings["out"] = contract::kAddRmsNormRoundings;
  } else if (op == "silu_and_mul") {
    t.roundings["out"] = contract::kSiluAndMulRoundings;
  } else if (opdev_op_from_name(op.c_str()) == OPDEV_OP_COUNT) {
    throw std::invalid_argument("contract_tolerance: unknown op '" + op + "'");
  }
  if (op == "paged_attention")
    t.mag_rtol = contract::paged_attention_mag_rtol();
  else if (!t.mag_inputs.empty())
    t.mag_rtol = {{"*", op == "linear_w8a8" || op == "grouped_matmul_w8a8" ? contract::kW8A8EpilogueRtol : contract::kAccumulationRtol}};
  return t;
}

double unit_roundoff(DLDataType t) {
  if (same_dtype(t, kBFloat16)) return 0x1.0p-8;
  if (same_dtype(t, kFloat16)) return 0x1.0p-11;
  return 0;
}

CompareStats compare(const std::vector<double>& got, const std::vector<double>& ref, const std::vector<double>& mag,
                     DLDataType dtype, double mag_rtol, int roundings, bool exact) {
  CompareStats st;
  const double rtol = default_rtol(dtype) + roundings * unit_roundoff(dtype), atol = default_atol(dtype);
  double se = 0, sr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i], r = ref[i];
    bool ok;
    double ratio = 0;
    if (exact) {
      ok = g == r || (std::isnan(g) && std::isnan(r));
      ratio = ok ? 0 : INFINITY;
    } else if (std::isnan(r) || std::isnan(g)) {
      ok = std::isnan(r) && std::isnan(g);
      ratio = ok ? 0 : INFINITY;
    } else if (std::isinf(r) || std::isinf(g)) {
      ok = g == r;
      ratio = ok ? 0 : INFINITY;
    } else {
      const double bound = atol + rtol * std::fabs(r) + (mag.empty() ? 0.0 : mag_rtol * std::fabs(mag[i]));
      const double err = std::fabs(g - r);
      ok = err <= bound;
      ratio = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0);
      se += (g - r) * (g - r);
      sr += r * r;
    }
    if (ratio > st.max_ratio) st.max_ratio = ratio;
    if (!ok) {
      if (st.bad == 0) {
        st.first_bad = int64_t(i);
        char buf[256];
        std::snprintf(buf, sizeof buf, "element %zu: got %.9g, expected %.9g (|diff| %.3g)", i, g, r, std::fabs(g - r));
        st.first_bad_detail = buf;
      }
      ++st.bad;
    }
  }
  st.nmse = sr > 0 ? se / sr : se;
  return st;
}

}  // namespace opdev::conformance
