// A small float32 vector layer for the cpu kernels. Each kernel file is compiled once per ISA (see
// src/CMakeLists.txt): AVX-512 (with BF16 and F16C), AVX2+FMA+F16C, and a portable fallback that is also
// the aarch64 path. `vf` holds kW float lanes; loads and stores convert from/to float32, bfloat16 and
// float16 with round-to-nearest-even (the same rounding as core/half.h, bit for bit).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/half.h"

#ifndef OPDEV_CPU_ISA_NS
#error "simd.h is compiled once per ISA with -DOPDEV_CPU_ISA_NS=<name> (see src/CMakeLists.txt)"
#endif

// Everything here differs per ISA, so it lives in a per-ISA inline namespace: three definitions of `vf`
// in one namespace would violate the one-definition rule (the linker would keep one copy of each
// non-inlined function for all three variants).
namespace opdev::cpu {
inline namespace OPDEV_CPU_ISA_NS {

// Storage types of the activation dtypes (distinct types so templates can dispatch on them).
struct bf16_t {
  uint16_t bits;
};
struct f16_t {
  uint16_t bits;
};

inline float to_f32(float x) { return x; }
inline float to_f32(bf16_t x) { return bf16_to_f32(x.bits); }
inline float to_f32(f16_t x) { return f16_to_f32(x.bits); }
template <class T>
inline T from_f32(float x);
template <>
inline float from_f32<float>(float x) {
  return x;
}
template <>
inline bf16_t from_f32<bf16_t>(float x) {
  return bf16_t{f32_to_bf16(x)};
}
template <>
inline f16_t from_f32<f16_t>(float x) {
  return f16_t{f32_to_f16(x)};
}
// Rounds a float32 value to T's precision and back (the HF "cast to the input dtype" step).
template <class T>
inline float round_to(float x) {
  return to_f32(from_f32<T>(x));
}

#if defined(__AVX512F__)
constexpr int kW = 16;
struct vf {
  __m512 v;
};
inline vf vzero() { return {_mm512_setzero_ps()}; }
inline vf vset(float x) { return {_mm512_set1_ps(x)}; }
inline vf vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline vf vload(const bf16_t* p) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
inline vf vload(const f16_t* p) { return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))}; }
inline void vstore(float* p, vf x) { _mm512_storeu_ps(p, x.v); }
inline __m256i bf16_round(vf x) {
  __m512i u = _mm512_castps_si512(x.v);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb)), 16);
  __mmask16 nan = _mm512_cmp_ps_mask(x.v, x.v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}
inline void vstore(bf16_t* p, vf x) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bf16_round(x)); }
inline void vstore(f16_t* p, vf x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline vf operator+(vf a, vf b) { return {_mm512_add_ps(a.v, b.v)}; }
inline vf operator-(vf a, vf b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline vf operator*(vf a, vf b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline vf operator/(vf a, vf b) { return {_mm512_div_ps(a.v, b.v)}; }
inline vf vfma(vf a, vf b, vf c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }  // a*b + c
// NaN in x propagates (x is the second operand of max/min).
inline vf vmax(vf lo, vf x) { return {_mm512_max_ps(lo.v, x.v)}; }
inline vf vmin(vf hi, vf x) { return {_mm512_min_ps(hi.v, x.v)}; }
inline float hsum(vf a) { return _mm512_reduce_add_ps(a.v); }
inline float hmax(vf a) { return _mm512_reduce_max_ps(a.v); }
inline vf vround(vf a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline vf vpow2i(vf n) {  // 2^n for integral n in [-126, 127]
  __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127)), 23);
  return {_mm512_castsi512_ps(e)};
}
inline vf vselect_lt(vf a, vf b, vf if_lt, vf otherwise) {  // a < b ? if_lt : otherwise
  return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ), otherwise.v, if_lt.v)};
}
#elif defined(__AVX2__)
constexpr int kW = 8;
struct vf {
  __m256 v;
};
inline vf vzero() { return {_mm256_setzero_ps()}; }
inline vf vset(float x) { return {_mm256_set1_ps(x)}; }
inline vf vload(const float* p) { return {_mm256_loadu_ps(p)}; }
inline vf vload(const bf16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))};
}
inline vf vload(const f16_t* p) { return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))}; }
inline void vstore(float* p, vf x) { _mm256_storeu_ps(p, x.v); }
inline void vstore(bf16_t* p, vf x) {
  __m256i u = _mm256_castps_si256(x.v);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), 16);
  __m256i nanv = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  __m256 isnan = _mm256_cmp_ps(x.v, x.v, _CMP_UNORD_Q);
  r = _mm256_blendv_epi8(r, nanv, _mm256_castps_si256(isnan));
  // Pack 8 x 32-bit (values < 2^16) into 8 x 16-bit.
  __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packus_epi32(lo, hi));
}
inline void vstore(f16_t* p, vf x) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline vf operator+(vf a, vf b) { return {_mm256_add_ps(a.v, b.v)}; }
inline vf operator-(vf a, vf b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline vf operator*(vf a, vf b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline vf operator/(vf a, vf b) { return {_mm256_div_ps(a.v, b.v)}; }
inline vf vfma(vf a, vf b, vf c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline vf vmax(vf lo, vf x) { return {_mm256_max_ps(lo.v, x.v)}; }
inline vf vmin(vf hi, vf x) { return {_mm256_min_ps(hi.v, x.v)}; }
inline float hsum(vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline vf vround(vf a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline vf vpow2i(vf n) {
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
  return {_mm256_castsi256_ps(e)};
}
inline vf vselect_lt(vf a, vf b, vf if_lt, vf otherwise) {
  return {_mm256_blendv_ps(otherwise.v, if_lt.v, _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ))};
}
#else
// Portable fallback: plain arrays the compiler may vectorise (NEON on aarch64).
constexpr int kW = 8;
struct vf {
  float v[kW];
};
inline vf vset(float x) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = x;
  return r;
}
inline vf vzero() { return vset(0.0f); }
template <class T>
inline vf vload(const T* p) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = to_f32(p[i]);
  return r;
}
template <class T>
inline void vstore(T* p, vf x) {
  for (int i = 0; i < kW; ++i) p[i] = from_f32<T>(x.v[i]);
}
#define OPDEV_VF_BINOP(op)                          \
  inline vf operator op(vf a, vf b) {               \
    vf r;                                           \
    for (int i = 0; i < kW; ++i) r.v[i] = a.v[i] op b.v[i]; \
    return r;                                       \
  }
OPDEV_VF_BINOP(+)
OPDEV_VF_BINOP(-)
OPDEV_VF_BINOP(*)
OPDEV_VF_BINOP(/)
#undef OPDEV_VF_BINOP
inline vf vfma(vf a, vf b, vf c) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
  return r;
}
inline vf vmax(vf lo, vf x) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = std::isnan(x.v[i]) ? x.v[i] : (lo.v[i] > x.v[i] ? lo.v[i] : x.v[i]);
  return r;
}
inline vf vmin(vf hi, vf x) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = std::isnan(x.v[i]) ? x.v[i] : (hi.v[i] < x.v[i] ? hi.v[i] : x.v[i]);
  return r;
}
inline float hsum(vf a) {
  // Pairwise, like the SIMD reductions.
  float t[kW];
  for (int i = 0; i < kW; ++i) t[i] = a.v[i];
  for (int w = kW / 2; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}
inline float hmax(vf a) {
  float m = a.v[0];
  for (int i = 1; i < kW; ++i) m = a.v[i] > m || std::isnan(a.v[i]) ? a.v[i] : m;
  return m;
}
inline vf vround(vf a) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = std::nearbyint(a.v[i]);
  return r;
}
inline vf vpow2i(vf n) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = std::ldexp(1.0f, int(n.v[i]));
  return r;
}
inline vf vselect_lt(vf a, vf b, vf if_lt, vf otherwise) {
  vf r;
  for (int i = 0; i < kW; ++i) r.v[i] = a.v[i] < b.v[i] ? if_lt.v[i] : otherwise.v[i];
  return r;
}
#endif

// Rounds every lane to T's precision and back (round to nearest even, NaN stays NaN): the contract's
// "cast to the storage dtype" step inside a float32 computation. Identity for float.
template <class T>
inline vf vround_to(vf x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
#if defined(__AVX512F__)
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    __m512i u = _mm512_castps_si512(x.v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb)),
                                 _mm512_set1_epi32(int(0xFFFF0000u)));
    __mmask16 nan = _mm512_cmp_ps_mask(x.v, x.v, _CMP_UNORD_Q);
    return {_mm512_mask_blend_ps(nan, _mm512_castsi512_ps(r), x.v)};
  } else {
    return {_mm512_cvtph_ps(_mm512_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))};
#elif defined(__AVX2__)
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    __m256i u = _mm256_castps_si256(x.v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)),
                                 _mm256_set1_epi32(int(0xFFFF0000u)));
    __m256 nan = _mm256_cmp_ps(x.v, x.v, _CMP_UNORD_Q);
    return {_mm256_blendv_ps(_mm256_castsi256_ps(r), x.v, nan)};
  } else {
    return {_mm256_cvtph_ps(_mm256_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))};
#else
  } else {
    vf r;
    for (int i = 0; i < kW; ++i) r.v[i] = round_to<T>(x.v[i]);
    return r;
#endif
  }
}

// Loads/stores of n < kW elements (tails): through a zero-padded buffer, the same on every ISA.
template <class T>
inline vf vload_n(const T* p, int n) {
  T buf[kW];
  std::memset(static_cast<void*>(buf), 0, sizeof(buf));
  std::memcpy(static_cast<void*>(buf), p, sizeof(T) * size_t(n));
  return vload(buf);
}
template <class T>
inline void vstore_n(T* p, vf x, int n) {
  T buf[kW];
  vstore(buf, x);
  std::memcpy(static_cast<void*>(p), buf, sizeof(T) * size_t(n));
}

// exp(x) in float32, NaN-propagating, relative error about 2 ulp (Cephes expf polynomial with
// Cody-Waite range reduction). Underflows to 0 below -87.3 (no subnormal results), inf above 88.7.
inline vf vexp(vf x) {
  const vf hi = vset(88.7228391f), lo = vset(-87.3365479f);
  vf xc = vmin(hi, vmax(lo, x));
  vf n = vround(xc * vset(1.44269504088896341f));
  vf r = vfma(n, vset(-0.693359375f), xc);
  r = vfma(n, vset(2.12194440e-4f), r);
  vf p = vset(1.9875691500e-4f);
  p = vfma(p, r, vset(1.3981999507e-3f));
  p = vfma(p, r, vset(8.3334519073e-3f));
  p = vfma(p, r, vset(4.1665795894e-2f));
  p = vfma(p, r, vset(1.6666665459e-1f));
  p = vfma(p, r, vset(5.0000001201e-1f));
  vf e = vfma(p, r * r, r + vset(1.0f));
  // 2^n in two halves so that n = 128 (x near the top) does not overflow the exponent field.
  vf n1 = vround(n * vset(0.5f));
  vf y = e * vpow2i(n1) * vpow2i(n - n1);
  // Below the range: exact zero. NaN passes through xc (clamps keep NaN).
  return vselect_lt(x, lo, vzero(), y);
}

}  // namespace OPDEV_CPU_ISA_NS
}  // namespace opdev::cpu

// ---- added for rope ----
namespace opdev::cpu {
inline namespace OPDEV_CPU_ISA_NS {
// Swaps adjacent lanes: [a0 a1 a2 a3 ...] -> [a1 a0 a3 a2 ...] (GPT-J style rotary pairs 2i, 2i+1).
#if defined(__AVX512F__)
inline vf vswap_pairs(vf a) { return {_mm512_permute_ps(a.v, 0xB1)}; }
#elif defined(__AVX2__)
inline vf vswap_pairs(vf a) { return {_mm256_permute_ps(a.v, 0xB1)}; }
#else
inline vf vswap_pairs(vf a) {
  vf r;
  for (int i = 0; i < kW; i += 2) {
    r.v[i] = a.v[i + 1];
    r.v[i + 1] = a.v[i];
  }
  return r;
}
#endif
}  // namespace OPDEV_CPU_ISA_NS
}  // namespace opdev::cpu
// ---- end of rope additions ----
