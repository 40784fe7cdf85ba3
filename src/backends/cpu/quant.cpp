// cpu: quantize_int8, linear_w8a8, grouped_matmul_w8a8.
//
// quantize_int8 runs the contract's float32 operations (opdev.h) lane by lane: the row maximum of |x| (exact,
// so its order is free; a NaN is tracked apart, since vmaxps drops it), then r = x * inv, clamp, round half to
// even and narrow. Vector and scalar (tail) code perform the same IEEE operations, so every ISA writes the
// same bytes. Rows are split across threads.
//
// The matmuls prepare x once per call (the ISA's operand, gemm_i8_kernels.h) and hand the products to the
// int8 kernels; grouped_matmul_w8a8 makes one product per expert that owns rows.
#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/gemm_i8_kernels.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

// q = 0 for NaN r, else clamp(round_half_even(r), -127, 127); the same on every path.
inline int8_t quantize_one(float x, float inv) {
  const float r = x * inv;
  if (std::isnan(r)) return 0;
  return int8_t(std::min(127.0f, std::max(-127.0f, std::nearbyint(r))));
}

template <class T>
void quantize_row(const T* x, int64_t K, int8_t* q, float* scale) {
  // Pass 1: a = max |x| (NaN if any element is NaN).
  float amax = 0.0f;
  bool nan = false;
  int64_t k = 0;
#if defined(__AVX512F__)
  {
    __m512 mx = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (; k + kW <= K; k += kW) {
      const __m512 v = _mm512_abs_ps(vload(x + k).v);
      bad |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      mx = _mm512_max_ps(mx, v);
    }
    nan = bad != 0;
    amax = _mm512_reduce_max_ps(mx);
  }
#elif defined(__AVX2__)
  {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 mx = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (; k + kW <= K; k += kW) {
      const __m256 v = _mm256_and_ps(vload(x + k).v, absmask);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      mx = _mm256_max_ps(mx, v);
    }
    nan = _mm256_movemask_ps(bad) != 0;
    amax = hmax(vf{mx});
  }
#endif
  for (; k < K; ++k) {
    const float v = std::fabs(to_f32(x[k]));
    if (std::isnan(v)) nan = true;
    else amax = std::max(amax, v);
  }
  if (nan) amax = NAN;
  *scale = amax / 127.0f;
  const float inv = amax == 0.0f ? 0.0f : 127.0f / amax;

  // Pass 2: the int8 values.
  k = 0;
#if defined(__AVX512F__)
  {
    const __m512 invv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (; k + kW <= K; k += kW) {
      const __m512 r = _mm512_mul_ps(vload(x + k).v, invv);
      const __mmask16 ok = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);
      const __m512 c = _mm512_min_ps(_mm512_max_ps(r, lo), hi);  // integral bounds: clamp and round commute
      const __m512i qi = _mm512_maskz_cvt_roundps_epi32(ok, c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k), _mm512_cvtepi32_epi8(qi));
    }
  }
#elif defined(__AVX2__)
  {
    const __m256 invv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    for (; k + kW <= K; k += kW) {
      const __m256 r = _mm256_mul_ps(vload(x + k).v, invv);
      const __m256 ok = _mm256_cmp_ps(r, r, _CMP_ORD_Q);
      const __m256 c = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(r, lo), hi), ok);  // NaN lanes -> 0
      const __m256i qi = _mm256_cvttps_epi32(_mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(q + k), _mm_packs_epi16(q16, q16));
    }
  }
#endif
  for (; k < K; ++k) q[k] = quantize_one(to_f32(x[k]), inv);
}

// x operand of the int8 kernels: rows [0, rows) of x prepared into scratch (rows of padded_k(K)).
gemm_i8::AType* prepare_x(ExecContext& ex, const TensorView& x) {
  const int64_t rows = x.size(0), K = x.size(1), Kp = gemm_i8::padded_k(K);
  if (rows == 0 || K == 0) return nullptr;
  auto* a = static_cast<gemm_i8::AType*>(ex.scratch(sizeof(gemm_i8::AType) * size_t(rows) * size_t(Kp)));
  const int8_t* xp = x.ptr<const int8_t>();
  const int64_t ldx = x.strides[0];
  parallel_for(ex, rows, 1 + 65536 / Kp, [&](int64_t r0, int64_t r1) { gemm_i8::prepare_rows(xp, ldx, K, r0, r1, a); });
  return a;
}

}  // namespace

opdev_status quantize_int8(ExecContext& ex, const quantize_int8_args& a) {
  const int64_t M = a.x.size(0), K = a.x.size(1);
  dispatch_float(a.x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.x.ptr<const T>();
    int8_t* q = a.out.ptr<int8_t>();
    float* s = a.scale.ptr<float>();
    const int64_t ldx = a.x.strides[0], ldq = a.out.strides[0];
    parallel_for(ex, M, 1 + 16384 / std::max<int64_t>(K, 1), [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) quantize_row(K ? x + m * ldx : x, K, K ? q + m * ldq : q, s + m);
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status linear_w8a8(ExecContext& ex, const linear_w8a8_args& a) {
  const gemm_i8::AType* xa = prepare_x(ex, a.x);
  dispatch_float(a.out.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const gemm_i8::Mat<T> m{xa,
                            gemm_i8::padded_k(a.x.size(1)),
                            a.x_scale.ptr<const float>(),
                            a.weight.ptr<const int8_t>(),
                            a.weight.strides[0],
                            a.weight_scale.ptr<const float>(),
                            a.bias.present ? a.bias.ptr<const T>() : nullptr,
                            a.out.ptr<T>(),
                            a.out.strides[0],
                            a.x.size(0),
                            a.weight.size(0),
                            a.x.size(1)};
    gemm_i8::run(ex, &m, 1);
  });
  return OPDEV_STATUS_SUCCESS;
}

// One product per expert that owns rows; the others are skipped (their weights are never read).
opdev_status grouped_matmul_w8a8(ExecContext& ex, const grouped_matmul_w8a8_args& a) {
  const int64_t R = a.x.size(0), K = a.x.size(1), E = a.weight.size(0), N = a.weight.size(1);
  const int64_t Kp = gemm_i8::padded_k(K);
  const int64_t* offsets = a.expert_offsets.ptr<const int64_t>();  // int64 [E+1]
  const int64_t ostride = a.expert_offsets.strides[0];
  const gemm_i8::AType* xa = prepare_x(ex, a.x);
  dispatch_float(a.out.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto* probs = static_cast<gemm_i8::Mat<T>*>(ex.scratch(sizeof(gemm_i8::Mat<T>) * size_t(std::max<int64_t>(E, 1))));
    // K == 0 leaves x and weight without elements (their data may be NULL): no offsets from NULL.
    auto at = [](const auto* base, int64_t off) { return base ? base + off : base; };
    int64_t count = 0;
    for (int64_t e = 0; e < E; ++e) {
      // Clamped so that offsets the front-end could not check never index out of bounds.
      const int64_t r0 = std::clamp<int64_t>(offsets[e * ostride], 0, R);
      const int64_t r1 = std::clamp<int64_t>(offsets[(e + 1) * ostride], r0, R);
      if (r1 == r0) continue;
      probs[count++] = gemm_i8::Mat<T>{at(xa, r0 * Kp),
                                       Kp,
                                       a.x_scale.ptr<const float>() + r0,
                                       at(a.weight.ptr<const int8_t>(), e * a.weight.strides[0]),
                                       a.weight.strides[1],
                                       a.weight_scale.ptr<const float>() + e * N,
                                       nullptr,
                                       a.out.ptr<T>() + r0 * a.out.strides[0],
                                       a.out.strides[0],
                                       r1 - r0,
                                       N,
                                       K};
    }
    gemm_i8::run(ex, probs, count);
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
