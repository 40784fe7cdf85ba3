// Matrix-product kernels of the cpu backend, shared by linear and grouped_matmul. Raw pointers, sizes
// and strides only (no views, no contexts besides the thread pool in run()), so that later work
// (pre-packed weights, int8 W8A8) can reuse the pieces. Compiled once per ISA: included by cpu/matmul.cpp
// only, inside namespace opdev::cpu::<isa>::gemm.
//
// A product is out[M, N] = x[M, K] . w[N, K]^T (+ bias[N]): rows of x, w and out strided, inner dimension
// contiguous. Each out element is a float32 accumulation over k = 0..K-1 (one chain, or in gemv tiles two
// interleaved chains added at the end), the bias added in float32, then rounded once to the storage type T.
//
// Two paths, chosen by the product's row count M (never by the thread count, so results are
// reproducible; deterministic contexts always take gemv, see takes_gemm):
//  - gemv (M <= kGemvMaxRows: decode, MoE experts with few rows). One weight row x 1-2 x rows (M <= 2)
//    or tiles of 4 (deterministic: 2) weight rows x up to 4 x rows, read straight from x and w; accumulators
//    are vectors along K, two chains per output for 1-2 rows and in deterministic contexts, one otherwise
//    (vdpbf16ps on bf16 pairs for bfloat16 on AVX-512, FMA otherwise), one horizontal sum per output.
//    Every weight row is streamed from memory once (sequential streams; the one-row decode tiles also
//    prefetch kStreamAhead bytes ahead in software); threads split N.
//  - gemm (larger M: prefill, MoE experts with many rows). Blocked like BLIS: K in kc blocks (only past
//    2048/4096 elements), rows in mc blocks, columns (weight rows) in nc blocks. The weight block is
//    packed (transposed) into NR-column micro-panels in per-thread workspace; an MR x NR outer-product
//    micro-kernel broadcasts x and keeps MR x NR float32 accumulators in registers; partial sums of
//    later kc blocks continue from a float32 tile buffer, so each element is still one sequential
//    accumulation. bfloat16 on AVX-512 packs k-pairs and runs vdpbf16ps on x's bf16 pairs (exact
//    products, float32 sums) where the context's tuning says Pairs (tuning.h: not on Intel cores, whose
//    vdpbf16ps runs at half the FMA rate); float16, and bfloat16 otherwise, converts x to float32 once per
//    call and w while packing, and runs the float32 FMA micro-kernel.
// Work is cut into items (an n-range of one product for gemv, an mc x nc block for gemm), each computed
// entirely by one thread with a fixed K order: K is never split across threads. Items are spread over
// threads by an estimated cost, so MoE experts of different sizes balance, and only experts with rows
// are products at all.
//
// Measured on the 2-core Zen 5 (one thread, bf16 / f32 / f16): gemm 450-490 / 220-240 / 235-250
// GFLOP/s at M = 512, i.e. ~95% / ~90% of one core's peak; the per-call weight pack is the main cost
// at M = 17..64 (about half the time at 32 rows, cold weights), which pre-packed weights would remove.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/tuning.h"

namespace opdev::cpu::OPDEV_CPU_ISA_NS::gemm {

// ---- Tuning constants (per ISA) -------------------------------------------------------------------

#if defined(__AVX512F__)
constexpr int kMR = 8;          // 8 x 32 tile: 16 zmm accumulators, 2 B loads + 8 broadcasts per k
constexpr int64_t kMC = 256;    // rows per gemm item: B is packed once per mc rows
#elif defined(__AVX2__)
constexpr int kMR = 6;          // 6 x 16 tile: 12 ymm accumulators (Haswell-style)
constexpr int64_t kMC = 192;
#else
constexpr int kMR = 4;
constexpr int64_t kMC = 128;
#endif
constexpr int kNR = 2 * kW;          // micro-tile width: two vectors
// K is blocked only past these (elements), into equal blocks: a whole weight row is packed in one
// sequential read (DRAM streams better than with short kc segments, and no float32 partial sums are
// spilled), while the B micro-panel (kc x NR, <= 256 KB) and a tile's x rows (<= 64 KB) stream from L2.
constexpr int64_t kKC = 2048;        // float32 kernel
constexpr int64_t kKCPair = 4096;    // bf16-pair kernel: same bytes
constexpr int64_t kNC = 128;         // columns (weight rows) per gemm item; multiple of kNR
constexpr int64_t kPackAhead = 2;    // panels between the one packed and the one prefetched
constexpr int64_t kGemvMaxRows = 16; // products with at most this many rows take the gemv path
constexpr int64_t kGemvChunk = 64;   // weight rows per gemv item
// Bytes between a decode stream's load and its software prefetch (gemv tiles of one weight row, here and in
// gemm_i8_kernels.h). The hardware prefetchers alone leave one thread's stream 10-30% below what it reaches
// with this (docs/PERFORMANCE.md "Software prefetch in the decode streams"); 2 KiB was the best of 0.5 / 1 / 2 /
// 4 KiB for the int8 stream at 1 thread and beat 4 KiB for bf16 at 2 threads.
constexpr uintptr_t kStreamAhead = 2048;
constexpr double kMinPartCost = double(1 << 22);  // less work than this per thread (~10 us) is not split further

static_assert(kNC % kNR == 0 && kMC % kMR == 0 && kKC % 2 == 0 && kKCPair % 2 == 0, "blocking");

// Prefetches the line kStreamAhead bytes after p into L1. The address is integer arithmetic (no pointer past
// the object is formed), and a prefetch never faults: past the end of the weights it is dropped.
inline void stream_prefetch(const void* p) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + kStreamAhead), 0, 3);
}

// bfloat16 on AVX-512 with BF16 can run the pair kernels (vdpbf16ps): always in gemv, in gemm where the
// context's tuning says so (see pairs_gemm); everything else computes in float32.
template <class T>
struct uses_pairs : std::false_type {};
#if defined(__AVX512BF16__)
template <>
struct uses_pairs<bf16_t> : std::true_type {};
#endif

// One product out[M, N] = x[M, K] . w[N, K]^T (+ bias[N]); ld* are row strides in elements.
template <class T>
struct Mat {
  const T* x;
  int64_t ldx;
  const T* w;
  int64_t ldw;
  const T* bias;  // [N] contiguous, or nullptr
  T* out;
  int64_t ldo;
  int64_t M, N, K;
};

// ---- Transposes (packing) ---------------------------------------------------------------------------

// Transposes kW x kW 32-bit lanes in place: r[i] lane j <-> r[j] lane i.
#if defined(__AVX512F__)
inline void transpose(vf* r) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i].v, r[i + 1].v);
    t[i + 1] = _mm512_unpackhi_ps(r[i].v, r[i + 1].v);
  }
  __m512 u[16];
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // u[4q + c] holds column c (and c + 4, 8, 12 in its other 128-bit lanes) of rows 4q..4q+3.
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);       // columns c, c + 8 of rows 0..7
    t[4 + c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);   // columns c + 4, c + 12 of rows 0..7
    t[8 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
  }
  for (int c = 0; c < 8; ++c) {
    r[c].v = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[c + 8].v = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
  }
}
#elif defined(__AVX2__)
inline void transpose(vf* r) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i].v, r[i + 1].v);
    t[i + 1] = _mm256_unpackhi_ps(r[i].v, r[i + 1].v);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    r[c].v = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[c + 4].v = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}
#else
inline void transpose(vf* r) {
  for (int i = 0; i < kW; ++i)
    for (int j = i + 1; j < kW; ++j) std::swap(r[i].v[j], r[j].v[i]);
}
#endif

// Packs columns k0..k0+kc of nv <= kNR weight rows (w points at row 0, column k0) as one float32
// micro-panel dst[kc][kNR]; rows nv..kNR-1 are zero. The pf_rows rows at pf (a later panel, same
// columns) are prefetched meanwhile: these weight reads are the gemm path's main DRAM traffic.
template <class T>
inline void pack_b(const T* w, int64_t ldw, int nv, int64_t kc, float* dst, const T* pf, int pf_rows) {
  for (int g = 0; g < kNR / kW; ++g) {
    for (int64_t kk = 0; kk < kc; kk += kW) {
      const int cnt = int(std::min<int64_t>(kW, kc - kk));
      vf r[kW];
      for (int t = 0; t < kW; ++t) {
        const int j = g * kW + t;
        const T* src = w + j * ldw + kk;
        r[t] = j >= nv ? vzero() : cnt == kW ? vload(src) : vload_n(src, cnt);
        if (j < pf_rows) __builtin_prefetch(pf + j * ldw + kk, 0, 2);
      }
      transpose(r);
      for (int t = 0; t < cnt; ++t) vstore(dst + (kk + t) * kNR + g * kW, r[t]);
    }
  }
}

// x rows as float32 (float16, and bfloat16 without the pair kernel): dst[0..kc) = x[0..kc).
template <class T>
inline void convert_row(const T* x, int64_t kc, float* dst) {
  int64_t k = 0;
  for (; k + kW <= kc; k += kW) vstore(dst + k, vload(x + k));
  if (k < kc) vstore_n(dst + k, vload_n(x + k, int(kc - k)), int(kc - k));
}

#if defined(__AVX512BF16__)
// Packs kc bf16 columns of nv <= kNR weight rows as k-pairs: dst[p][kNR] holds the dword
// (w[j][2p], w[j][2p + 1]) for p < ceil(kc / 2); an odd tail pairs with zero, rows >= nv are zero.
// pf as for pack_b.
inline void pack_b_pairs(const bf16_t* w, int64_t ldw, int nv, int64_t kc, uint32_t* dst, const bf16_t* pf, int pf_rows) {
  const int64_t kp = (kc + 1) / 2;
  for (int g = 0; g < kNR / 16; ++g) {
    for (int64_t pp = 0; pp < kp; pp += 16) {
      const int64_t e0 = 2 * pp;
      const int cnt_e = int(std::min<int64_t>(32, kc - e0));
      const int cnt_p = int(std::min<int64_t>(16, kp - pp));
      const __mmask32 mask = cnt_e == 32 ? ~__mmask32(0) : __mmask32((1u << cnt_e) - 1);
      vf r[16];
      for (int t = 0; t < 16; ++t) {
        const int j = g * 16 + t;
        r[t].v = j >= nv ? _mm512_setzero_ps() : _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, w + j * ldw + e0));
        if (j < pf_rows) _mm_prefetch(reinterpret_cast<const char*>(pf + j * ldw + e0), _MM_HINT_T1);
      }
      transpose(r);
      for (int t = 0; t < cnt_p; ++t) _mm512_storeu_ps(dst + (pp + t) * kNR + g * 16, r[t].v);
    }
  }
}
#endif

// ---- Micro-kernels ------------------------------------------------------------------------------------

// Final store of an MR x NR tile: not last: c = acc (float32, full tile); last: out = T(acc + bias) for the
// mv x nv valid part.
template <class T>
inline void store_tile(vf (&acc)[kMR][2], float* c, int64_t ldc, bool last, T* out, int64_t ldo, int mv, int nv,
                       const T* bias) {
  if (!last) {
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      vstore(c + i * ldc, acc[i][0]);
      vstore(c + i * ldc + kW, acc[i][1]);
    }
    return;
  }
  vf bv[2] = {vzero(), vzero()};
  if (bias) {
    for (int h = 0; h < 2; ++h) {
      const int cols = nv - h * kW;
      if (cols >= kW) bv[h] = vload(bias + h * kW);
      else if (cols > 0) bv[h] = vload_n(bias + h * kW, cols);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
    if (i >= mv) break;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const int cols = nv - h * kW;
      const vf v = bias ? acc[i][h] + bv[h] : acc[i][h];
      T* o = out + i * ldo + h * kW;
      if (cols >= kW) vstore(o, v);
      else if (cols > 0) vstore_n(o, v, cols);
    }
  }
}

// acc = (first ? 0 : c) + sum_{k < kc} a_i[k] * b[k][j] over an MR x NR tile, a_i float32 rows, b a
// packed float32 micro-panel; then store_tile.
template <class T>
inline void ukr_f32(int64_t kc, const float* const* a, const float* b, float* c, int64_t ldc, bool first, bool last,
                    T* out, int64_t ldo, int mv, int nv, const T* bias) {
  vf acc[kMR][2];
  const float* ap[kMR];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
    ap[i] = a[i];
    acc[i][0] = first ? vzero() : vload(c + i * ldc);
    acc[i][1] = first ? vzero() : vload(c + i * ldc + kW);
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const vf b0 = vload(b + k * kNR), b1 = vload(b + k * kNR + kW);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const vf ai = vset(ap[i][k]);
      acc[i][0] = vfma(ai, b0, acc[i][0]);
      acc[i][1] = vfma(ai, b1, acc[i][1]);
    }
  }
  store_tile(acc, c, ldc, last, out, ldo, mv, nv, bias);
}

#if defined(__AVX512BF16__)
// The pair kernel: a_i bf16 rows, b packed k-pairs; kp full pairs, then (half) one odd element paired
// with zero. Each lane accumulates acc += a0*b0 + a1*b1 (exact products, float32 sums).
inline void ukr_pairs(int64_t kp, bool half, const bf16_t* const* a, const uint32_t* b, float* c, int64_t ldc, bool first,
                      bool last, bf16_t* out, int64_t ldo, int mv, int nv, const bf16_t* bias) {
  vf acc[kMR][2];
  const bf16_t* ap[kMR];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
    ap[i] = a[i];
    acc[i][0] = first ? vzero() : vload(c + i * ldc);
    acc[i][1] = first ? vzero() : vload(c + i * ldc + kW);
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < kp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * kNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * kNR + 16);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      int32_t pair;
      std::memcpy(&pair, ap[i] + 2 * p, 4);
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
      acc[i][0].v = _mm512_dpbf16_ps(acc[i][0].v, ai, b0);
      acc[i][1].v = _mm512_dpbf16_ps(acc[i][1].v, ai, b1);
    }
  }
  if (half) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + kp * kNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + kp * kNR + 16);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(int32_t(ap[i][2 * kp].bits));
      acc[i][0].v = _mm512_dpbf16_ps(acc[i][0].v, ai, b0);
      acc[i][1].v = _mm512_dpbf16_ps(acc[i][1].v, ai, b1);
    }
  }
  store_tile(acc, c, ldc, last, out, ldo, mv, nv, bias);
}
#endif

// ---- gemv tiles ----------------------------------------------------------------------------------------

// An output of a gemv tile is accumulated in C float32 chains (1 or 2): vector block b of k (32 bf16
// pairs, or kW floats) goes to chain b % C, the chains are added (0 + 1), then one horizontal sum.
// Two chains halve the latency chain of a weight row's vdpbf16ps / FMA sequence, which bounds a single
// thread's stream: a standalone bf16 gemv over 311 MB at 1 thread read at 0.945 / 0.883 of the plain read
// bandwidth with one chain and 0.976 / 0.923 with two (medians of 30 rounds, two sessions), 1.007 against
// 1.015 at 2 threads. The decode tiles (1-2 x rows) use two; tiles of 3-16 rows use two only in
// deterministic contexts, where a row's result must not depend on the tile (batch invariance), and one
// otherwise: as 4 x 4 tiles they run 1.3x faster than the 4 x 2 tiles two chains leave registers for
// (pp16 of the dense model 297-315 against 221-245 tok/s).

// res[i][j] = hsum(acc[0][i][j] (+ acc[1][i][j])). With one chain of 16 accumulators on AVX-512, one
// transposing add tree (45 ops instead of 16 separate reductions) that adds in the same order as GCC's
// _mm512_reduce_add_ps (hsum): l and l + 8, then l and l + 4, then l and l + 2, then l and l + 1. Either
// way each result is bitwise hsum(acc).
template <int C, int MB, int NB>
inline void reduce_tile(vf (&acc)[C][MB][NB], float (&res)[MB][NB]) {
  static_assert(C == 1 || C == 2, "one or two chains");
  if constexpr (C == 2) {
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < NB; ++j) res[i][j] = hsum(acc[0][i][j] + acc[1][i][j]);
    return;
  }
#if defined(__AVX512F__)
  if constexpr (MB * NB == 16) {
    const vf* v = &acc[0][0][0];
    __m512 u[8], w[4];
    for (int i = 0; i < 8; ++i)
      u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i].v, v[2 * i + 1].v, 0x44), _mm512_shuffle_f32x4(v[2 * i].v, v[2 * i + 1].v, 0xEE));
    for (int i = 0; i < 4; ++i)
      w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88), _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
    // 128-bit lane j of w[i] holds four partial sums of v[4i + j].
    const __m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(w[0], w[1]), _mm512_unpackhi_ps(w[0], w[1]));
    const __m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(w[2], w[3]), _mm512_unpackhi_ps(w[2], w[3]));
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 2, 3, 2)));
    alignas(64) float t[16];
    _mm512_store_ps(t, r);  // t[4j + i] = sum of v[4i + j]
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        const int q = 4 * i + j;  // v[q] = acc[0][q / NB][q % NB]
        res[q / NB][q % NB] = t[4 * j + i];
      }
    return;
  }
#endif
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) res[i][j] = hsum(acc[0][i][j]);
}

// The chain order of the gemv tiles, in one place: calls block(partial, c, k, n) for k = 0..K-1 in blocks
// of B elements, block b into chain c = b % C (partial: the last block, n < B elements). partial and c are
// compile-time constants and everything is inlined: a runtime chain index, or a call, would keep the
// accumulators in memory (measured: pp16 of the dense model 25% slower).
template <int C, int B, class F>
__attribute__((always_inline)) inline void for_chain_blocks(int64_t K, F&& block) {
  const std::false_type full{};
  const std::true_type partial{};
  const std::integral_constant<int, 0> c0{};
  const std::integral_constant<int, C - 1> c1{};  // the odd blocks' chain
  int64_t k = 0;
  for (; k + 2 * B <= K; k += 2 * B) {
    block(full, c0, k, B);
    block(full, c1, k + B, B);
  }
  if (k + B <= K) {
    block(full, c0, k, B);
    if (k + B < K) block(partial, c1, k + B, int(K - k - B));
  } else if (k < K) {
    block(partial, c0, k, int(K - k));
  }
}

// res[i][j] = sum_k x_i[k] * w_j[k] for MB x rows and NB weight rows, float32 vectors along K in C
// chains. Tiles of one weight row (decode: one sequential stream per thread) prefetch kStreamAhead bytes
// ahead in that stream; wider tiles rely on the hardware prefetchers (prefetching the next tile measured
// 2-7% slower, see docs/PERFORMANCE.md "Decode matrix-vector products").
template <class T, int C, int MB, int NB>
inline void gemv_tile(const T* const* xr, const T* const* wr, int64_t K, float (&res)[MB][NB]) {
  vf acc[C][MB][NB];
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < NB; ++j) acc[c][i][j] = vzero();
#if defined(__AVX512BF16__)
  if constexpr (uses_pairs<T>::value) {
    // One block of 32 bf16 (16 pairs) into chain c; partial: a last block of n < 32 (masked loads).
    for_chain_blocks<C, 32>(K, [&](auto partial, auto c, int64_t k, int n) __attribute__((always_inline)) {
      const __mmask32 mask = __mmask32((1u << (n & 31)) - 1);
      if constexpr (NB == 1) stream_prefetch(wr[0] + k);
      __m512bh wv[NB];
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j)
        wv[j] = (__m512bh)(partial ? _mm512_maskz_loadu_epi16(mask, wr[j] + k) : _mm512_loadu_si512(wr[j] + k));
#pragma GCC unroll 8
      for (int i = 0; i < MB; ++i) {
        const __m512bh xv = (__m512bh)(partial ? _mm512_maskz_loadu_epi16(mask, xr[i] + k) : _mm512_loadu_si512(xr[i] + k));
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) acc[c][i][j].v = _mm512_dpbf16_ps(acc[c][i][j].v, xv, wv[j]);
      }
    });
    reduce_tile<C, MB, NB>(acc, res);
    return;
  }
#endif
  // One block of kW floats into chain c; partial: a last block of n < kW.
  for_chain_blocks<C, kW>(K, [&](auto partial, auto c, int64_t k, int n) __attribute__((always_inline)) {
    if constexpr (NB == 1) stream_prefetch(wr[0] + k);
    vf wv[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) wv[j] = partial ? vload_n(wr[j] + k, n) : vload(wr[j] + k);
#pragma GCC unroll 8
    for (int i = 0; i < MB; ++i) {
      const vf xv = partial ? vload_n(xr[i] + k, n) : vload(xr[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[c][i][j] = vfma(xv, wv[j], acc[c][i][j]);
    }
  });
  reduce_tile<C, MB, NB>(acc, res);
}

// The rows m..m + MB (the last one repeated past m1) against the weight rows of wr; stores the valid part.
template <class T, int C, int MB, int NB>
inline void gemv_block(const Mat<T>& p, const T* const* wr, int64_t m, int64_t m1, int64_t n, int nv) {
  const T* xr[MB];
  for (int i = 0; i < MB; ++i) xr[i] = p.x + std::min(m + i, m1 - 1) * p.ldx;
  float res[MB][NB];
  gemv_tile<T, C, MB, NB>(xr, wr, p.K, res);
  const int mb = int(std::min<int64_t>(MB, m1 - m));
  for (int i = 0; i < mb; ++i) {
    T* o = p.out + (m + i) * p.ldo + n;
    for (int j = 0; j < nv; ++j) o[j] = from_f32<T>(p.bias ? res[i][j] + to_f32(p.bias[n + j]) : res[i][j]);
  }
}

// Rows m0..m1 x weight rows n0..n1 of product p: tiles of NB weight rows (the last row repeated past n1,
// results dropped), each against the x rows in blocks of at most MB, C chains.
template <class T, int C, int MB, int NB>
void gemv_rows(const Mat<T>& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n += NB) {
    const T* wr[NB];
    for (int j = 0; j < NB; ++j) wr[j] = p.w + std::min(n + j, n1 - 1) * p.ldw;
    const int nv = int(std::min<int64_t>(NB, n1 - n));
    for (int64_t m = m0; m < m1; m += MB) {
      switch (std::min<int64_t>(MB, m1 - m)) {
        case 1: gemv_block<T, C, 1, NB>(p, wr, m, m1, n, nv); break;
        case 2: gemv_block<T, C, (MB < 2 ? MB : 2), NB>(p, wr, m, m1, n, nv); break;
        case 3: gemv_block<T, C, (MB < 3 ? MB : 3), NB>(p, wr, m, m1, n, nv); break;
        default: gemv_block<T, C, MB, NB>(p, wr, m, m1, n, nv); break;
      }
    }
  }
}

// Rows m0..m1 (at most kGemvMaxRows, or any count in deterministic contexts) x weight rows n0..n1 of
// product p. One or two rows (decode): one weight row at a time in two chains, i.e. each thread reads its
// weight rows as one sequential stream (measured against 8 and 4 interleaved row streams on the Zen 5 VM:
// 0.96 / 1.02 of the plain read bandwidth at 1 / 2 threads against 0.90 / 0.98 for 8 rows and less for 4;
// the rows' independent accumulation chains overlap out of order). More rows: 4 x 4 tiles in one chain
// (16 accumulators, each weight vector used 4 times), or in deterministic contexts 4 x 2 tiles in the
// decode tiles' two chains, so that every output is hsum(the same two chains over k) whatever the row
// count (batch invariance; see "gemv tiles" above).
template <class T>
void run_gemv(const Mat<T>& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1, bool deterministic) {
  if (m1 - m0 <= 2) return gemv_rows<T, 2, 2, 1>(p, m0, m1, n0, n1);
  if (deterministic) return gemv_rows<T, 2, 4, 2>(p, m0, m1, n0, n1);
  gemv_rows<T, 1, 4, 4>(p, m0, m1, n0, n1);
}

// ---- gemm blocks ---------------------------------------------------------------------------------------

// Per-thread workspace of the gemm path.
struct Workspace {
  void* bpack = nullptr;  // packed weight block: ceil(nc / NR) micro-panels of kc x NR (float32 or bf16 pairs)
  float* cbuf = nullptr;  // float32 partial sums [kMC][kNC] between k blocks (only when K is blocked)
  static constexpr size_t kBpackBytes = size_t(kKC) * kNC * sizeof(float);
  static constexpr size_t kCbufBytes = size_t(kMC) * kNC * sizeof(float);
  static_assert(size_t(kKCPair / 2) * kNC * sizeof(uint32_t) <= kBpackBytes, "pair panel fits");
};

// Does the gemm path of this context run T's products on the pair kernel?
template <class T>
inline bool pairs_gemm(const ExecContext& ex) {
  return uses_pairs<T>::value && tuning(ex).bf16_gemm == Bf16Gemm::Pairs;
}

// The k block of a product: K split into equal blocks of at most KCB elements, a multiple of 32 but the
// last (so only the last block of the pair kernel can end on an odd element). A function of K and the
// kernel alone.
inline int64_t k_block(int64_t K, bool pairs) {
  const int64_t KCB = pairs ? kKCPair : kKC;
  const int64_t nkb = (K + KCB - 1) / KCB;
  return ((K + nkb - 1) / nkb + 31) / 32 * 32;
}

// Rows m0..m1 (<= kMC) x weight rows n0..n1 (<= kNC) of product p. a/lda: the product's x rows as the
// micro-kernel reads them: float32 (float, or x converted once per call), or bf16 for the pair kernel.
template <class T, bool pairs>
void run_gemm(const Mat<T>& p, const void* a_base, int64_t lda, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
              const Workspace& ws) {
  static_assert(!pairs || uses_pairs<T>::value, "the pair kernel takes bfloat16 on AVX512-BF16");
  using A = std::conditional_t<pairs, T, float>;
  const A* xa = static_cast<const A*>(a_base);
  const int64_t mb = m1 - m0, nb = n1 - n0, K = p.K;
  const int64_t npan = (nb + kNR - 1) / kNR;
  const int64_t kcb = k_block(K, pairs), nkb = (K + kcb - 1) / kcb;
  constexpr int64_t ldc = kNC;
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const int64_t k0 = kb * kcb, kc = std::min(kcb, K - k0);
    const bool first = kb == 0, last = kb == nkb - 1;
    const int64_t kcp = pairs ? (kc + 1) / 2 : kc;  // packed rows per micro-panel
    for (int64_t jp = 0; jp < npan; ++jp) {
      const int64_t row = n0 + jp * kNR;
      const int nv = int(std::min<int64_t>(kNR, nb - jp * kNR));
      const T* src = p.w + row * p.ldw + k0;
      // Prefetch the rows after this panel (the next panel, or the next item's: items run in n order),
      // as far as the matrix goes.
      const int64_t pf_row = std::min(row + kPackAhead * kNR, p.N - 1);
      const int pf_rows = int(std::min<int64_t>(kNR, p.N - pf_row));
      const T* pf = p.w + pf_row * p.ldw + k0;
#if defined(__AVX512BF16__)
      if constexpr (pairs) pack_b_pairs(src, p.ldw, nv, kc, static_cast<uint32_t*>(ws.bpack) + jp * kcp * kNR, pf, pf_rows);
      else
#endif
        pack_b(src, p.ldw, nv, kc, static_cast<float*>(ws.bpack) + jp * kcp * kNR, pf, pf_rows);
    }
    for (int64_t jp = 0; jp < npan; ++jp) {
      const int nv = int(std::min<int64_t>(kNR, nb - jp * kNR));
      const int64_t n = n0 + jp * kNR;
      const T* bias = p.bias ? p.bias + n : nullptr;
      for (int64_t ir = 0; ir < mb; ir += kMR) {
        const int mv = int(std::min<int64_t>(kMR, mb - ir));
        float* c = ws.cbuf ? ws.cbuf + ir * ldc + jp * kNR : nullptr;
        T* out = p.out + (m0 + ir) * p.ldo + n;
        // Rows past the block's end repeat its last row (results dropped).
        const A* a[kMR];
        for (int i = 0; i < kMR; ++i) a[i] = xa + (m0 + ir + std::min(i, mv - 1)) * lda + k0;
#if defined(__AVX512BF16__)
        if constexpr (pairs)
          ukr_pairs(kc / 2, kc % 2 != 0, a, static_cast<const uint32_t*>(ws.bpack) + jp * kcp * kNR, c, ldc, first, last, out,
                    p.ldo, mv, nv, bias);
        else
#endif
          ukr_f32(kc, a, static_cast<const float*>(ws.bpack) + jp * kcp * kNR, c, ldc, first, last, out, p.ldo, mv, nv, bias);
      }
    }
  }
}

// ---- Driver --------------------------------------------------------------------------------------------

struct Item {
  int64_t prob;  // index into the products
  int64_t m0, m1, n0, n1;
  bool gemm;
  double cost;
};

// Deterministic contexts take the gemv path at every M: its per-element arithmetic does not depend on M
// (each x row has its own accumulators, tiles past the ends repeat rows), so a row's result does not
// depend on the other rows of the batch (batch invariance), at the price of prefill speed.
inline bool takes_gemm(int64_t M, int64_t K, bool deterministic) { return !deterministic && M > kGemvMaxRows && K > 0; }

// Computes products[0..count): cuts them into items, balances the items' estimated cost over the threads
// (contiguous ranges, so each thread mostly reads its own weights), runs them.
template <class T>
void run(ExecContext& ex, const Mat<T>* probs, int64_t count) {
  const bool pairs = pairs_gemm<T>(ex);
  const bool convert = !pairs && !std::is_same_v<T, float>;
  // K == 0: out = bias (or 0); x and w may be NULL.
  int64_t nitems = 0, conv_elems = 0;
  bool any_gemm = false, blocked_k = false;
  for (int64_t q = 0; q < count; ++q) {
    const Mat<T>& p = probs[q];
    if (p.M == 0 || p.N == 0) continue;
    if (p.K == 0) {
      for (int64_t m = 0; m < p.M; ++m)
        for (int64_t n = 0; n < p.N; ++n) p.out[m * p.ldo + n] = p.bias ? p.bias[n] : from_f32<T>(0.0f);
      continue;
    }
    if (takes_gemm(p.M, p.K, ex.deterministic)) {
      nitems += ((p.M + kMC - 1) / kMC) * ((p.N + kNC - 1) / kNC);
      any_gemm = true;
      blocked_k |= k_block(p.K, pairs) < p.K;
      conv_elems += p.M * p.K;
    } else {
      nitems += (p.N + kGemvChunk - 1) / kGemvChunk;
    }
  }
  if (nitems == 0) return;

  // The gemm path's x operand: x itself, or (float16; bfloat16 off the pair kernel) x converted to
  // float32 once per call, shared by all threads.
  struct Operand {
    const void* a;
    int64_t lda;
  };
  Operand* ops = static_cast<Operand*>(ex.scratch(sizeof(Operand) * size_t(count)));
  float* conv = convert && conv_elems ? static_cast<float*>(ex.scratch(sizeof(float) * size_t(conv_elems))) : nullptr;
  {
    int64_t off = 0;
    for (int64_t q = 0; q < count; ++q) {
      const Mat<T>& p = probs[q];
      ops[q] = Operand{p.x, p.ldx};
      if (conv && takes_gemm(p.M, p.K, ex.deterministic) && p.N > 0) {
        ops[q] = Operand{conv + off, p.K};
        off += p.M * p.K;
      }
    }
    if (conv) {
      // Rows of the converted products, numbered flat, split over threads.
      int64_t* rstart = static_cast<int64_t*>(ex.scratch(sizeof(int64_t) * size_t(count + 1)));
      rstart[0] = 0;
      for (int64_t q = 0; q < count; ++q) rstart[q + 1] = rstart[q] + (ops[q].a == static_cast<const void*>(probs[q].x) ? 0 : probs[q].M);
      parallel_for(ex, rstart[count], 16, [&](int64_t r0, int64_t r1) {
        int64_t q = std::upper_bound(rstart, rstart + count + 1, r0) - rstart - 1;
        for (int64_t r = r0; r < r1; ++r) {
          while (r >= rstart[q + 1]) ++q;
          const Mat<T>& p = probs[q];
          const int64_t m = r - rstart[q];
          convert_row(p.x + m * p.ldx, p.K, static_cast<float*>(const_cast<void*>(ops[q].a)) + m * p.K);
        }
      });
    }
  }

  Item* items = static_cast<Item*>(ex.scratch(sizeof(Item) * size_t(nitems)));
  int64_t ni = 0;
  double total = 0;
  for (int64_t q = 0; q < count; ++q) {
    const Mat<T>& p = probs[q];
    if (p.M == 0 || p.N == 0 || p.K == 0) continue;
    // Cost ~ multiply-adds plus a per-weight-element term for streaming and packing the weights.
    auto add = [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1, bool g) {
      const double c = double(n1 - n0) * double(p.K) * double(m1 - m0 + 8);
      items[ni++] = Item{q, m0, m1, n0, n1, g, c};
      total += c;
    };
    if (takes_gemm(p.M, p.K, ex.deterministic)) {
      for (int64_t n0 = 0; n0 < p.N; n0 += kNC)
        for (int64_t m0 = 0; m0 < p.M; m0 += kMC) add(m0, std::min(p.M, m0 + kMC), n0, std::min(p.N, n0 + kNC), true);
    } else {
      for (int64_t n0 = 0; n0 < p.N; n0 += kGemvChunk) add(0, p.M, n0, std::min(p.N, n0 + kGemvChunk), false);
    }
  }
  int64_t parts = std::min<int64_t>(ex.num_threads, nitems);
  parts = std::max<int64_t>(1, std::min<int64_t>(parts, int64_t(total / kMinPartCost)));
  // bounds[t] = first item of part t: items whose cost-weighted midpoint falls in part t's share.
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
  const size_t ws_bytes = any_gemm ? Workspace::kBpackBytes + (blocked_k ? Workspace::kCbufBytes : 0) : 0;
  char* wsmem = ws_bytes ? static_cast<char*>(ex.scratch(ws_bytes * size_t(parts))) : nullptr;
  parallel_for(ex, parts, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      Workspace ws;
      if (wsmem) {
        char* base = wsmem + ws_bytes * size_t(t);
        ws.bpack = base;
        if (blocked_k) ws.cbuf = reinterpret_cast<float*>(base + Workspace::kBpackBytes);
      }
      for (int64_t i = bounds[t]; i < bounds[t + 1]; ++i) {
        const Item& it = items[i];
        if (it.gemm && pairs)
          run_gemm<T, uses_pairs<T>::value>(probs[it.prob], ops[it.prob].a, ops[it.prob].lda, it.m0, it.m1, it.n0, it.n1, ws);
        else if (it.gemm)
          run_gemm<T, false>(probs[it.prob], ops[it.prob].a, ops[it.prob].lda, it.m0, it.m1, it.n0, it.n1, ws);
        else run_gemv(probs[it.prob], it.m0, it.m1, it.n0, it.n1, ex.deterministic);
      }
    }
  });
}

}  // namespace opdev::cpu::OPDEV_CPU_ISA_NS::gemm
