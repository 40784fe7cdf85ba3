// int8 matrix-product kernels of the cpu backend (linear_w8a8, grouped_matmul_w8a8). Compiled once per ISA:
// included by cpu/quant.cpp only, inside namespace opdev::cpu::<isa>::gemm_i8. Same shape as gemm_kernels.h
// (raw pointers, items balanced over threads, gemv for few rows and a packed gemm above), with one
// difference that simplifies everything: the sums are exact int32, so every path, tile shape, ISA and thread
// count gives the same integers, and the float32 epilogue (epilogue() below, the contract's order) is the
// same scalar or vector code everywhere. Results are therefore bitwise identical across ISAs and batch
// invariant without a deterministic mode.
//
// A product is out[M, N] from the int8 rows x[M, K] and w[N, K]: acc[m, n] = sum_k x[m, k] * w[n, k] exactly
// (|acc| < 2^31 because K <= kW8A8MaxK), then out = T(x_scale[m] * (float(acc) * w_scale[n]) (+ bias[n])).
//
// The x operand is prepared once per call (prepare_a) into rows of stride lda = Kp, K padded:
//  - AVX-512 VNNI: u8 = x + 128 (x ^ 0x80) for vpdpbusd, which multiplies unsigned by signed bytes and
//    sums groups of 4 into int32 lanes (wrapping, never saturating). Then acc = sum (x + 128) w - 128 sum w,
//    computed modulo 2^32, which is exact because the true acc fits in int32; sum w is accumulated beside
//    (vpdpbusd of ones with the same weight vectors, or while packing). Kp = K rounded up to 64.
//  - AVX2: int16 (sign-extended once), vpmaddwd on int16 pairs (exact for every int8 value, including
//    -128 x -128), Kp = K rounded up to 16.
//  - generic: int8 as is, plain int32 loops.
// Paths, by the product's row count:
//  - gemv (M <= kGemvMaxRows, every M on AVX2 and generic in blocks of kGemvMaxRows rows): on AVX-512 VNNI
//    with 1-2 rows (decode) one weight row at a time (one sequential stream per thread), else tiles of 4
//    weight rows x up to 4 x rows with the next tile's rows prefetched; weight rows are read straight from
//    memory once per m block (once per call for decode); threads split N.
//  - gemm (AVX-512 VNNI, larger M): items of kMC rows x kNC weight rows; the weight block is packed into
//    32-column micro-panels of 4-byte k groups (a 16 x 16 dword transpose, the float kernel's), with the
//    column sums for the +128 correction; an 8 x 32 micro-kernel broadcasts 4 bytes of x and runs vpdpbusd.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/gemm_kernels.h"
#include "ops/op_args.h"

namespace opdev::cpu::OPDEV_CPU_ISA_NS::gemm_i8 {

// ---- The x operand per ISA ------------------------------------------------------------------------------

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define OPDEV_I8_VNNI 1
using AType = uint8_t;
constexpr int64_t kKPad = 64;
#elif defined(__AVX2__)
using AType = int16_t;
constexpr int64_t kKPad = 16;
#else
using AType = int8_t;
constexpr int64_t kKPad = 1;
#endif

constexpr int64_t padded_k(int64_t K) { return (K + kKPad - 1) / kKPad * kKPad; }

constexpr int64_t kGemvMaxRows = 16;  // products with at most this many rows take the gemv path
constexpr int kNB = 4;                // weight rows per gemv tile
constexpr int kMB = 4;                // x rows per gemv tile
constexpr int64_t kGemvChunk = 64;    // weight rows per gemv item
constexpr int kMR = 8;                // gemm micro-tile rows (VNNI)
constexpr int kNR = 32;               // gemm micro-tile columns: two vectors of 16 int32 lanes
constexpr int64_t kMC = 128;          // rows per gemm item
constexpr int64_t kNC = 128;          // weight rows per gemm item; multiple of kNR
constexpr int64_t kPackAhead = 2;     // panels between the one packed and the one prefetched
constexpr double kMinPartCost = double(1 << 22);
static_assert(kNC % kNR == 0, "blocking");

// Rows [r0, r1) of x [rows, K] (row stride ldx) into dst (row stride padded_k(K)) as AType, pads zero (x = 0).
inline void prepare_rows(const int8_t* x, int64_t ldx, int64_t K, int64_t r0, int64_t r1, AType* dst) {
  const int64_t Kp = padded_k(K);
  for (int64_t r = r0; r < r1; ++r) {
    const int8_t* s = x + r * ldx;
    AType* d = dst + r * Kp;
    int64_t k = 0;
#if defined(OPDEV_I8_VNNI)
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    for (; k + 64 <= K; k += 64) _mm512_storeu_si512(d + k, _mm512_xor_si512(_mm512_loadu_si512(s + k), flip));
    if (k < Kp) {
      const __mmask64 m = K - k >= 64 ? ~__mmask64(0) : (__mmask64(1) << (K - k)) - 1;
      // Lanes past K load 0 and become 0x80, i.e. x = 0.
      _mm512_storeu_si512(d + k, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + k), flip));
    }
#elif defined(__AVX2__)
    for (; k + 16 <= K; k += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + k), _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k))));
    for (; k < K; ++k) d[k] = s[k];
    for (; k < Kp; ++k) d[k] = 0;
#else
    for (; k < K; ++k) d[k] = s[k];
#endif
  }
}

// ---- Epilogue: the contract's float32 order, identical on every ISA ---------------------------------------

template <class T>
inline T epilogue(int32_t acc, float xs, float ws, const T* bias) {
  const float t = float(acc) * ws;
  return from_f32<T>(bias ? std::fma(xs, t, to_f32(*bias)) : xs * t);
}

// One product; ld* are row strides in elements.
template <class T>
struct Mat {
  const AType* a;   // prepared x rows (row stride lda)
  int64_t lda;
  const float* xs;  // [M]
  const int8_t* w;  // weight rows (row stride ldw)
  int64_t ldw;
  const float* ws;  // [N]
  const T* bias;    // [N] or nullptr
  T* out;
  int64_t ldo;
  int64_t M, N, K;
};

// ---- gemv tiles ------------------------------------------------------------------------------------------

// res[i][j] = sum_k x_i[k] * w_j[k] (exact) for MB x rows (prepared) and kNB weight rows; pf: the next tile's
// weight rows, prefetched at the same column.
#if defined(OPDEV_I8_VNNI)
// The sums of 16 vectors v[q], as lane 4j + i of the result for q = 4i + j (a transposing add tree; integer
// adds, so the order is free).
inline __m512i hsum16(const __m512i* v) {
  auto ps = [](__m512i x) { return _mm512_castsi512_ps(x); };
  auto si = [](__m512 x) { return _mm512_castps_si512(x); };
  __m512i u[8], w[4];
  for (int i = 0; i < 8; ++i)
    u[i] = _mm512_add_epi32(si(_mm512_shuffle_f32x4(ps(v[2 * i]), ps(v[2 * i + 1]), 0x44)),
                            si(_mm512_shuffle_f32x4(ps(v[2 * i]), ps(v[2 * i + 1]), 0xEE)));
  for (int i = 0; i < 4; ++i)
    w[i] = _mm512_add_epi32(si(_mm512_shuffle_f32x4(ps(u[2 * i]), ps(u[2 * i + 1]), 0x88)),
                            si(_mm512_shuffle_f32x4(ps(u[2 * i]), ps(u[2 * i + 1]), 0xDD)));
  // 128-bit lane j of w[i] holds four partial sums of v[4i + j].
  const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(w[0], w[1]), _mm512_unpackhi_epi32(w[0], w[1]));
  const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(w[2], w[3]), _mm512_unpackhi_epi32(w[2], w[3]));
  return _mm512_add_epi32(si(_mm512_shuffle_ps(ps(s01), ps(s23), _MM_SHUFFLE(1, 0, 1, 0))),
                          si(_mm512_shuffle_ps(ps(s01), ps(s23), _MM_SHUFFLE(3, 2, 3, 2))));
}

// Sums of MB prepared x rows (+128) with kNB weight rows: lane 4j + i holds acc(i, j) (lanes of rows
// i >= MB are 0). wsum[j]: the lanes of 128 * sum_k w_j[k], computed when Sum (the first x tile of these
// weight rows) and reused by the next tiles.
template <int MB, bool Sum>
inline __m512i gemv_tile(const AType* const* a, const int8_t* const* wr, const int8_t* const* pf, int64_t K, __m512i (&wsum)[kNB]) {
  __m512i acc[MB][kNB];
  for (int j = 0; j < kNB; ++j) {
    if (Sum) wsum[j] = _mm512_setzero_si512();
    for (int i = 0; i < MB; ++i) acc[i][j] = _mm512_setzero_si512();
  }
  const __m512i ones = _mm512_set1_epi8(1);
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    __m512i wv[kNB];
#pragma GCC unroll 4
    for (int j = 0; j < kNB; ++j) {
      wv[j] = _mm512_loadu_si512(wr[j] + k);
      _mm_prefetch(reinterpret_cast<const char*>(pf[j] + k), _MM_HINT_T0);
      if (Sum) wsum[j] = _mm512_dpbusd_epi32(wsum[j], ones, wv[j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m512i av = _mm512_loadu_si512(a[i] + k);
#pragma GCC unroll 4
      for (int j = 0; j < kNB; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], av, wv[j]);
    }
  }
  if (k < K) {
    // The weight tail loads zeros past K; x is padded to 64 bytes.
    const __mmask64 m = (__mmask64(1) << (K - k)) - 1;
    __m512i wv[kNB];
    for (int j = 0; j < kNB; ++j) {
      wv[j] = _mm512_maskz_loadu_epi8(m, wr[j] + k);
      if (Sum) wsum[j] = _mm512_dpbusd_epi32(wsum[j], ones, wv[j]);
    }
    for (int i = 0; i < MB; ++i) {
      const __m512i av = _mm512_loadu_si512(a[i] + k);
      for (int j = 0; j < kNB; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], av, wv[j]);
    }
  }
  if (Sum)
    for (int j = 0; j < kNB; ++j) wsum[j] = _mm512_slli_epi32(wsum[j], 7);
  // acc - 128 * sum w, lane by lane (wrapping), then the horizontal sums.
  __m512i v[16];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < kNB; ++j) v[4 * i + j] = i < MB ? _mm512_sub_epi32(acc[i][j], wsum[j]) : _mm512_setzero_si512();
  return hsum16(v);
}

// The epilogue of a gemv tile in one vector (lane 4j + i: x row i, weight row j), the same float32
// operations as epilogue(); stores the mb x nv valid part.
template <class T>
inline void epilogue_tile(__m512i acc, const float* xs, int mb, const float* ws, int nv, const T* bias, T* out, int64_t ldo) {
  const __m512i rep4 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);  // lane 4j + i -> j
  const __mmask16 nmask = __mmask16((1u << nv) - 1), mmask = __mmask16((1u << mb) - 1);
  const __m512 wsv = _mm512_permutexvar_ps(rep4, _mm512_castps128_ps512(_mm_maskz_loadu_ps(nmask, ws)));
  const __m512 xsv = _mm512_broadcast_f32x4(_mm_maskz_loadu_ps(mmask, xs));  // lane 4j + i -> i
  const vf t{_mm512_mul_ps(_mm512_cvtepi32_ps(acc), wsv)};
  vf y = vf{xsv} * t;
  if (bias) {
    alignas(16) float b4[4] = {0, 0, 0, 0};
    for (int j = 0; j < nv; ++j) b4[j] = to_f32(bias[j]);
    y = vfma(vf{xsv}, t, vf{_mm512_permutexvar_ps(rep4, _mm512_castps128_ps512(_mm_load_ps(b4)))});
  }
  T buf[16];
  vstore(buf, y);
  for (int i = 0; i < mb; ++i)
    for (int j = 0; j < nv; ++j) out[i * ldo + j] = buf[4 * j + i];
}

// One or two x rows (decode): the weight rows one at a time, so that each thread reads its weights as one
// sequential stream (as the float gemv, gemm_kernels.h run_gemv: the hardware prefetchers follow one
// stream better than 4 interleaved rows), prefetched gemm::kStreamAhead bytes ahead in software, each
// row's sums reduced at once (cheaper than one hsum16 of 16 vectors per 4 rows when most lanes are
// empty), 4 rows per epilogue vector. Integer sums: the same results as the tiles.
template <class T, int MB>
void gemv_stream(const Mat<T>& p, int64_t m0, int64_t n0, int64_t n1) {
  const __m512i ones = _mm512_set1_epi8(1);
  const AType* a[MB];
  for (int i = 0; i < MB; ++i) a[i] = p.a + (m0 + i) * p.lda;
  const int64_t K = p.K;
  const __mmask64 tail = (K % 64) ? (__mmask64(1) << (K % 64)) - 1 : 0;
  for (int64_t n = n0; n < n1; n += kNB) {
    const int nv = int(std::min<int64_t>(kNB, n1 - n));
    alignas(64) int32_t sums[16] = {};
    for (int j = 0; j < nv; ++j) {
      const int8_t* w = p.w + (n + j) * p.ldw;
      __m512i acc[MB], ws = _mm512_setzero_si512();
      for (int i = 0; i < MB; ++i) acc[i] = _mm512_setzero_si512();
      int64_t k = 0;
      for (; k + 64 <= K; k += 64) {
        gemm::stream_prefetch(w + k);
        const __m512i wv = _mm512_loadu_si512(w + k);
        ws = _mm512_dpbusd_epi32(ws, ones, wv);
        for (int i = 0; i < MB; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512(a[i] + k), wv);
      }
      if (tail) {
        // The weight tail loads zeros past K; x is padded to 64 bytes.
        const __m512i wv = _mm512_maskz_loadu_epi8(tail, w + k);
        ws = _mm512_dpbusd_epi32(ws, ones, wv);
        for (int i = 0; i < MB; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512(a[i] + k), wv);
      }
      ws = _mm512_slli_epi32(ws, 7);
      for (int i = 0; i < MB; ++i) sums[4 * j + i] = _mm512_reduce_add_epi32(_mm512_sub_epi32(acc[i], ws));
    }
    epilogue_tile<T>(_mm512_load_si512(sums), p.xs + m0, MB, p.ws + n, nv, p.bias ? p.bias + n : nullptr, p.out + m0 * p.ldo + n, p.ldo);
  }
}
#elif defined(__AVX2__)
inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

template <int MB>
inline void gemv_tile(const AType* const* a, const int8_t* const* wr, const int8_t* const* pf, int64_t K, int32_t (&res)[kMB][kNB]) {
  __m256i acc[MB][kNB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < kNB; ++j) acc[i][j] = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k < K; k += 16) {
    __m256i wv[kNB];
#pragma GCC unroll 4
    for (int j = 0; j < kNB; ++j) {
      if (k + 16 <= K) {
        wv[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wr[j] + k)));
      } else {
        alignas(16) int8_t buf[16] = {};
        std::memcpy(buf, wr[j] + k, size_t(K - k));
        wv[j] = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
      }
      if (k % 64 == 0) _mm_prefetch(reinterpret_cast<const char*>(pf[j] + k), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i] + k));
#pragma GCC unroll 4
      for (int j = 0; j < kNB; ++j) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(av, wv[j]));
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < kNB; ++j) res[i][j] = hsum_epi32(acc[i][j]);
}
#else
template <int MB>
inline void gemv_tile(const AType* const* a, const int8_t* const* wr, const int8_t* const* pf, int64_t K, int32_t (&res)[kMB][kNB]) {
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < kNB; ++j) {
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += int32_t(a[i][k]) * int32_t(wr[j][k]);
      res[i][j] = s;
    }
}
#endif

// Rows m0..m1 x weight rows n0..n1 of product p, in x blocks of at most kGemvMaxRows rows. Tiles past the
// ends repeat the last row (results dropped).
template <class T>
void run_gemv(const Mat<T>& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
#if defined(OPDEV_I8_VNNI)
  if (m1 - m0 == 1) return gemv_stream<T, 1>(p, m0, n0, n1);
  if (m1 - m0 == 2) return gemv_stream<T, 2>(p, m0, n0, n1);
#endif
  for (int64_t mb0 = m0; mb0 < m1; mb0 += kGemvMaxRows) {
    const int64_t mb1 = std::min(m1, mb0 + kGemvMaxRows);
    for (int64_t n = n0; n < n1; n += kNB) {
      const int8_t* wr[kNB];
      const int8_t* pf[kNB];
      for (int j = 0; j < kNB; ++j) {
        wr[j] = p.w + std::min(n + j, n1 - 1) * p.ldw;
        pf[j] = p.w + std::min(n + kNB + j, p.N - 1) * p.ldw;
      }
      const int nv = int(std::min<int64_t>(kNB, n1 - n));
#if defined(OPDEV_I8_VNNI)
      __m512i wsum[kNB];
#endif
      for (int64_t m = mb0; m < mb1; m += kMB) {
        const int mb = int(std::min<int64_t>(kMB, mb1 - m));
        const AType* a[kMB];
        for (int i = 0; i < kMB; ++i) a[i] = p.a + std::min(m + i, mb1 - 1) * p.lda;
        T* o = p.out + m * p.ldo + n;
#if defined(OPDEV_I8_VNNI)
        __m512i acc;
        const bool first = m == mb0;
        switch (mb) {
          case 1: acc = first ? gemv_tile<1, true>(a, wr, pf, p.K, wsum) : gemv_tile<1, false>(a, wr, pf, p.K, wsum); break;
          case 2: acc = first ? gemv_tile<2, true>(a, wr, pf, p.K, wsum) : gemv_tile<2, false>(a, wr, pf, p.K, wsum); break;
          case 3: acc = first ? gemv_tile<3, true>(a, wr, pf, p.K, wsum) : gemv_tile<3, false>(a, wr, pf, p.K, wsum); break;
          default: acc = first ? gemv_tile<4, true>(a, wr, pf, p.K, wsum) : gemv_tile<4, false>(a, wr, pf, p.K, wsum); break;
        }
        epilogue_tile<T>(acc, p.xs + m, mb, p.ws + n, nv, p.bias ? p.bias + n : nullptr, o, p.ldo);
#else
        int32_t res[kMB][kNB];
        switch (mb) {
          case 1: gemv_tile<1>(a, wr, pf, p.K, res); break;
          case 2: gemv_tile<2>(a, wr, pf, p.K, res); break;
          case 3: gemv_tile<3>(a, wr, pf, p.K, res); break;
          default: gemv_tile<4>(a, wr, pf, p.K, res); break;
        }
        for (int i = 0; i < mb; ++i) {
          const float xs = p.xs[m + i];
          for (int j = 0; j < nv; ++j) o[i * p.ldo + j] = epilogue<T>(res[i][j], xs, p.ws[n + j], p.bias ? p.bias + n + j : nullptr);
        }
#endif
      }
    }
  }
}

// ---- gemm (AVX-512 VNNI) ---------------------------------------------------------------------------------

#if defined(OPDEV_I8_VNNI)
// Packs nv <= kNR weight rows (w: row 0, stride ldw; K columns) as one micro-panel: dst[p][kNR][4] holds the
// bytes w[j][4p .. 4p + 3] for p < Kp / 4 (zero past K and for rows >= nv); wsum[j] = sum_k w[j][k]. The
// pf_rows rows at pf (a later panel, same columns) are prefetched meanwhile: these reads are the gemm
// path's DRAM traffic (32 row streams are more than the hardware prefetchers follow).
inline void pack_b(const int8_t* w, int64_t ldw, int nv, int64_t K, int8_t* dst, int32_t* wsum, const int8_t* pf, int pf_rows) {
  const int64_t Kp = padded_k(K);
  const __m512i ones = _mm512_set1_epi8(1);
  for (int g = 0; g < kNR / 16; ++g) {
    __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int64_t k = 0; k < Kp; k += 64) {
      const __mmask64 m = K - k >= 64 ? ~__mmask64(0) : (__mmask64(1) << (K - k)) - 1;
      vf r[16];
      for (int t = 0; t < 16; ++t) {
        const int j = g * 16 + t;
        r[t].v = j < nv ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi8(m, w + j * ldw + k)) : _mm512_setzero_ps();
        if (j < pf_rows) _mm_prefetch(reinterpret_cast<const char*>(pf + j * ldw + k), _MM_HINT_T1);
      }
      gemm::transpose(r);  // r[t] lane i = the 4 bytes of row g*16 + i at k + 4t
      for (int t = 0; t < 16; ++t) {
        const __m512i v = _mm512_castps_si512(r[t].v);
        _mm512_storeu_si512(dst + ((k / 4 + t) * kNR + g * 16) * 4, v);
        s[t % 4] = _mm512_dpbusd_epi32(s[t % 4], ones, v);  // four chains: vpdpbusd's latency
      }
    }
    _mm512_storeu_si512(wsum + g * 16, _mm512_add_epi32(_mm512_add_epi32(s[0], s[1]), _mm512_add_epi32(s[2], s[3])));
  }
}

// out tile (mv x nv of an kMR x kNR tile) = epilogue(sum over the panel), x rows a[i] (prepared, +128).
template <class T>
inline void ukr(int64_t kp, const AType* const* a, const int8_t* b, const int32_t* wsum, const float* xs, const float* ws,
                const T* bias, T* out, int64_t ldo, int mv, int nv) {
  __m512i acc[kMR][2];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kp; ++p) {
    const __m512i b0 = _mm512_loadu_si512(b + p * kNR * 4), b1 = _mm512_loadu_si512(b + p * kNR * 4 + 64);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      int32_t q;
      std::memcpy(&q, a[i] + 4 * p, 4);
      const __m512i av = _mm512_set1_epi32(q);
      acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], av, b1);
    }
  }
  // Epilogue, 16 columns at a time: the same float32 operations as epilogue().
  for (int h = 0; h < 2; ++h) {
    const int cols = nv - h * 16;
    if (cols <= 0) break;
    const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(wsum + h * 16), 7);
    vf wsv, bv = vzero();
    if (cols >= 16) {
      wsv = vload(ws + h * 16);
      if (bias) bv = vload(bias + h * 16);
    } else {
      wsv = vload_n(ws + h * 16, cols);
      if (bias) bv = vload_n(bias + h * 16, cols);
    }
    for (int i = 0; i < mv; ++i) {
      const vf t{_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][h], corr)), wsv.v)};
      const vf xsv = vset(xs[i]);
      const vf y = bias ? vfma(xsv, t, bv) : xsv * t;
      T* o = out + i * ldo + h * 16;
      if (cols >= 16) vstore(o, y);
      else vstore_n(o, y, cols);
    }
  }
}

// Per-thread workspace of the gemm path: the packed weight block and its column sums.
struct Workspace {
  int8_t* bpack = nullptr;  // kNC / kNR micro-panels of Kp * kNR bytes
  int32_t* wsum = nullptr;  // [kNC]
  static size_t bytes(int64_t Kp) { return size_t(Kp) * size_t(kNC) + size_t(kNC) * sizeof(int32_t) + 64; }
};

// Rows m0..m1 (<= kMC) x weight rows n0..n1 (<= kNC) of product p.
template <class T>
void run_gemm(const Mat<T>& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Workspace& ws) {
  const int64_t Kp = padded_k(p.K), nb = n1 - n0, mb = m1 - m0;
  const int64_t npan = (nb + kNR - 1) / kNR;
  for (int64_t jp = 0; jp < npan; ++jp) {
    const int nv = int(std::min<int64_t>(kNR, nb - jp * kNR));
    // Prefetch the rows kPackAhead panels on (this item's or the next one's: items run in n order).
    const int64_t row = n0 + jp * kNR, pf_row = std::min(row + kPackAhead * kNR, p.N - 1);
    pack_b(p.w + row * p.ldw, p.ldw, nv, p.K, ws.bpack + jp * Kp * kNR, ws.wsum + jp * kNR, p.w + pf_row * p.ldw,
           int(std::min<int64_t>(kNR, p.N - pf_row)));
  }
  for (int64_t jp = 0; jp < npan; ++jp) {
    const int nv = int(std::min<int64_t>(kNR, nb - jp * kNR));
    const int64_t n = n0 + jp * kNR;
    for (int64_t ir = 0; ir < mb; ir += kMR) {
      const int mv = int(std::min<int64_t>(kMR, mb - ir));
      const AType* a[kMR];
      for (int i = 0; i < kMR; ++i) a[i] = p.a + (m0 + ir + std::min(i, mv - 1)) * p.lda;
      ukr<T>(Kp / 4, a, ws.bpack + jp * Kp * kNR, ws.wsum + jp * kNR, p.xs + m0 + ir, p.ws + n, p.bias ? p.bias + n : nullptr,
             p.out + (m0 + ir) * p.ldo + n, p.ldo, mv, nv);
    }
  }
}

inline bool takes_gemm(int64_t M) { return M > kGemvMaxRows; }
#else
inline bool takes_gemm(int64_t) { return false; }
#endif

// ---- Driver ------------------------------------------------------------------------------------------------

struct Item {
  int64_t prob;
  int64_t m0, m1, n0, n1;
  bool gemm;
  double cost;
};

// Computes products[0..count) (their x operands already prepared): cuts them into items, balances the items'
// estimated cost over the threads (contiguous ranges), runs them.
template <class T>
void run(ExecContext& ex, const Mat<T>* probs, int64_t count) {
  int64_t nitems = 0, maxKp = 0;
  bool any_gemm = false;
  for (int64_t q = 0; q < count; ++q) {
    const Mat<T>& p = probs[q];
    if (p.M == 0 || p.N == 0) continue;
    if (p.K == 0) {  // acc = 0 (x and w may be NULL)
      for (int64_t m = 0; m < p.M; ++m)
        for (int64_t n = 0; n < p.N; ++n) p.out[m * p.ldo + n] = epilogue<T>(0, p.xs[m], p.ws[n], p.bias ? p.bias + n : nullptr);
      continue;
    }
    if (takes_gemm(p.M)) {
      nitems += ((p.M + kMC - 1) / kMC) * ((p.N + kNC - 1) / kNC);
      any_gemm = true;
      maxKp = std::max(maxKp, padded_k(p.K));
    } else {
      nitems += (p.N + kGemvChunk - 1) / kGemvChunk;
    }
  }
  if (nitems == 0) return;
  Item* items = static_cast<Item*>(ex.scratch(sizeof(Item) * size_t(nitems)));
  int64_t ni = 0;
  double total = 0;
  for (int64_t q = 0; q < count; ++q) {
    const Mat<T>& p = probs[q];
    if (p.M == 0 || p.N == 0 || p.K == 0) continue;
    // Cost ~ multiply-adds plus a per-weight-element term for streaming (and packing) the weights.
    auto add = [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1, bool g) {
      const double c = double(n1 - n0) * double(p.K) * double(m1 - m0 + 8);
      items[ni++] = Item{q, m0, m1, n0, n1, g, c};
      total += c;
    };
    if (takes_gemm(p.M)) {
      for (int64_t n0 = 0; n0 < p.N; n0 += kNC)
        for (int64_t m0 = 0; m0 < p.M; m0 += kMC) add(m0, std::min(p.M, m0 + kMC), n0, std::min(p.N, n0 + kNC), true);
    } else {
      for (int64_t n0 = 0; n0 < p.N; n0 += kGemvChunk) add(0, p.M, n0, std::min(p.N, n0 + kGemvChunk), false);
    }
  }
  int64_t parts = std::min<int64_t>(ex.num_threads, nitems);
  parts = std::max<int64_t>(1, std::min<int64_t>(parts, int64_t(total / kMinPartCost)));
  int64_t* bounds = static_cast<int64_t*>(ex.scratch(sizeof(int64_t) * size_t(parts + 1)));
  {
    double acc = 0;
    int64_t t = 0;
    bounds[0] = 0;
    for (int64_t i = 0; i < nitems; ++i) {
      const double mid = acc + 0.5 * items[i].cost;
      while (t + 1 < parts && mid >= total * double(t + 1) / double(parts)) bounds[++t] = i;
      acc += items[i].cost;
    }
    while (t + 1 <= parts) bounds[++t] = nitems;
  }
#if defined(OPDEV_I8_VNNI)
  const size_t ws_bytes = any_gemm ? (Workspace::bytes(maxKp) + 63) / 64 * 64 : 0;
  char* wsmem = ws_bytes ? static_cast<char*>(ex.scratch(ws_bytes * size_t(parts))) : nullptr;
#else
  (void)any_gemm;
#endif
  parallel_for(ex, parts, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
#if defined(OPDEV_I8_VNNI)
      Workspace ws;
      if (wsmem) {
        char* base = wsmem + ws_bytes * size_t(t);
        ws.wsum = reinterpret_cast<int32_t*>(base);
        ws.bpack = reinterpret_cast<int8_t*>(base + size_t(kNC) * sizeof(int32_t) + 64);
      }
#endif
      for (int64_t i = bounds[t]; i < bounds[t + 1]; ++i) {
        const Item& it = items[i];
#if defined(OPDEV_I8_VNNI)
        if (it.gemm) {
          run_gemm(probs[it.prob], it.m0, it.m1, it.n0, it.n1, ws);
          continue;
        }
#endif
        run_gemv(probs[it.prob], it.m0, it.m1, it.n0, it.n1);
      }
    }
  });
}

}  // namespace opdev::cpu::OPDEV_CPU_ISA_NS::gemm_i8
