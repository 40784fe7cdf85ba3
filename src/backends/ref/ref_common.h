// The ref backend: float64 plain loops, obviously correct, the oracle of the conformance suite. It shares
// no code with the other backends: its own dtype conversions (double -> bfloat16/float16 rounded once,
// directly from double) and its own index arithmetic. Only the validated argument views come from core.
// Intermediate values are never rounded to the storage dtype; only the final store rounds.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/backend.h"
#include "core/error.h"

namespace opdev::ref {

// Declarations of every op (the table in ref_backend.cpp is generated from ops.def).
#define OPDEV_OP(ID, name) opdev_status name(ExecContext& ex, const name##_args& a);
#include "opdev/ops.def"
#undef OPDEV_OP

inline double bf16_bits_to_double(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline double f16_bits_to_double(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  double v;
  if (exp == 31) v = man ? NAN : INFINITY;
  else if (exp == 0) v = std::ldexp(double(man), -24);
  else v = std::ldexp(double(1024 + man), exp - 25);
  return sign ? -v : v;
}

// Rounds |x| (finite, > 0) to nearest-even with `mant` fraction bits and minimum normal exponent `emin`.
inline double round_to_format(double ax, int mant, int emin) {
  int e;
  std::frexp(ax, &e);  // ax = m * 2^e, m in [0.5, 1): leading bit has exponent e - 1
  int lead = e - 1 < emin ? emin : e - 1;
  double quantum = std::ldexp(1.0, lead - mant);
  return std::nearbyint(ax / quantum) * quantum;  // default rounding mode: to nearest even
}

inline uint16_t double_to_bf16_bits(double x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFFC0 : 0x7FC0;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double ax = std::fabs(x);
  if (ax == 0) return sign;
  double r = std::isinf(ax) ? ax : round_to_format(ax, 7, -126);
  if (r >= std::ldexp(1.0, 128)) return sign | 0x7F80;
  float f = float(r);  // exact: r has at most 8 significant bits and lies in float's range
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t(sign | (u >> 16));
}

inline uint16_t double_to_f16_bits(double x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFE00 : 0x7E00;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double ax = std::fabs(x);
  if (ax == 0) return sign;
  double r = std::isinf(ax) ? ax : round_to_format(ax, 10, -14);
  if (r >= 65536.0) return sign | 0x7C00;
  if (r < std::ldexp(1.0, -14)) return uint16_t(sign | uint16_t(r * 16777216.0));  // subnormal: r / 2^-24
  int e;
  double m = std::frexp(r, &e);  // r = m 2^e, m in [0.5, 1)
  uint16_t man = uint16_t((m * 2.0 - 1.0) * 1024.0);
  return uint16_t(sign | uint16_t((e - 1 + 15) << 10) | man);
}

inline double load(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(base)[off];
    case DType::F64: return static_cast<const double*>(base)[off];
    case DType::BF16: return bf16_bits_to_double(static_cast<const uint16_t*>(base)[off]);
    case DType::F16: return f16_bits_to_double(static_cast<const uint16_t*>(base)[off]);
    case DType::I32: return static_cast<const int32_t*>(base)[off];
    case DType::I64: return double(static_cast<const int64_t*>(base)[off]);
    case DType::I8: return static_cast<const int8_t*>(base)[off];
    case DType::U8: return static_cast<const uint8_t*>(base)[off];
    case DType::Unknown: break;
  }
  return NAN;
}

inline void store(void* base, DType t, int64_t off, double v) {
  switch (t) {
    case DType::F32: static_cast<float*>(base)[off] = float(v); return;  // one rounding, to nearest
    case DType::F64: static_cast<double*>(base)[off] = v; return;
    case DType::BF16: static_cast<uint16_t*>(base)[off] = double_to_bf16_bits(v); return;
    case DType::F16: static_cast<uint16_t*>(base)[off] = double_to_f16_bits(v); return;
    case DType::I32: static_cast<int32_t*>(base)[off] = int32_t(v); return;
    case DType::I64: static_cast<int64_t*>(base)[off] = int64_t(v); return;
    case DType::I8: static_cast<int8_t*>(base)[off] = int8_t(v); return;
    case DType::U8: static_cast<uint8_t*>(base)[off] = uint8_t(v); return;
    case DType::Unknown: return;
  }
}

// Element offset of an index vector.
inline int64_t offset_of(const TensorView& v, const int64_t* idx) {
  int64_t off = 0;
  for (int d = 0; d < v.ndim; ++d) off += idx[d] * v.strides[d];
  return off;
}

// Element access by explicit indices: at(v, {t, h, d}).
inline int64_t off(const TensorView& v, std::initializer_list<int64_t> idx) {
  int64_t o = 0;
  int d = 0;
  for (int64_t i : idx) o += i * v.strides[d++];
  return o;
}
inline double get(const TensorView& v, std::initializer_list<int64_t> idx) { return load(v.data, v.dtype, off(v, idx)); }
inline void set(const TensorView& v, std::initializer_list<int64_t> idx, double x) { store(v.data, v.dtype, off(v, idx), x); }
inline int64_t get_index(const TensorView& v, std::initializer_list<int64_t> idx) {
  int64_t o = off(v, idx);
  return v.dtype == DType::I32 ? int64_t(static_cast<const int32_t*>(v.data)[o]) : static_cast<const int64_t*>(v.data)[o];
}

// Calls f(idx) for every index vector of `shape[0..ndim)` in row-major order.
template <class F>
void for_each_index(const int64_t* shape, int ndim, F&& f) {
  for (int d = 0; d < ndim; ++d)
    if (shape[d] == 0) return;
  int64_t idx[OPDEV_MAX_DIMS] = {};
  while (true) {
    f(static_cast<const int64_t*>(idx));
    int d = ndim - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace opdev::ref
