// cpu: paged_attention, flash-attention style.
//
// A work item is (sequence, range of kv heads, tile of query positions, kv chunk). Its rows are the
// query rows of its positions for all G = Hq / Hk query heads of each of its kv heads, so every K and V
// row it reads from the paged cache serves the whole group. It walks its keys in tiles of kKeyTile
// with an online softmax: per tile, scores = scale * q.k (float32, vectorised over D, one horizontal sum
// per row and key), the running max and sum are updated, the accumulator is rescaled only when the max
// grows, and p * v is accumulated over D. No score matrix beyond one tile exists.
//
// Two shapes of items:
//  - long queries (prefill, chunked prefill): one kv head and up to kRowsPerItem rows per item;
//  - short queries (q_len <= kShortQ: decode, speculative decode): all kv heads in one item (split into
//    head groups only when there are fewer such items than threads), so each slot's K and V rows are read
//    as one contiguous span, and a context longer than kChunk keys is split into kv chunks. Each chunk
//    leaves its (max, sum, unnormalised acc) per row and a second pass combines the chunks in chunk order.
// The kv chunk split depends only on q_len and kv_len, never on the thread count; the head groups do
// depend on it, but a row's arithmetic never depends on the other heads of its item. Every item is
// computed by one thread with the same code, so results do not depend on the thread count. Deterministic contexts
// never split, so a query row's result is the same in both item shapes (batch invariance).
//
// bfloat16 long-query items on AVX-512 BF16 (outside deterministic contexts) run run_item_pairs: blocks of
// 16 query rows held as vectors over the rows ("row lanes"), so that Q.K, the online softmax and P.V need
// no horizontal sums. Per key tile, a block's 16 score vectors (one per key, lane = row) are D / 2
// vdpbf16ps each, with q transposed into pairs x rows once per item and the tile's K into pairs x keys
// once per tile (each key's pair is broadcast from it); max, exp and sum run across the 16 vectors; P is
// rounded to bf16 (the contract allows that rounding, see docs/OPS.md) and multiplied with the tile's V,
// packed once as key pairs x D.
// Everything else runs the float32 kernels below.
//
// The paged cache defeats the hardware prefetchers (each block is somewhere else), so the rows of the
// next key tile are prefetched one slot at a time while the current tile's scores are computed.
// Items are handed to threads as contiguous ranges of roughly equal cost (query-key pairs), which keeps
// the items of one (sequence, kv head) together: their K/V rows stay in that core's cache.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/gemm_kernels.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

constexpr int64_t kKeyTile = 16;       // keys per online-softmax step (a multiple of every kW)
constexpr int64_t kRowsPerItem = 32;   // target query rows (positions x group heads) of an item
constexpr int64_t kChunk = 512;        // kv chunk of split sequences (vLLM's paged_attention_v2 partition)
constexpr int64_t kShortQ = 8;         // sequences with q_len <= this: all-heads items, kv chunks
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

static_assert(kKeyTile % kW == 0, "a key tile is whole vectors");
#if defined(__AVX512BF16__)
static_assert(kKeyTile == 16, "the pairs path holds a tile's 16 score vectors of a row block in registers");
#endif

struct Seq {
  int64_t q0, q_len, kv_len;
  bool short_q;      // q_len <= kShortQ: all kv heads in one item, kv split into chunks
  int64_t chunks;    // kv chunks (1 unless split)
  int64_t part_row;  // first row of this sequence's partials (split sequences only)
};

struct Item {
  int64_t b, kvh0, nh, qi0, nq, chunk;  // kv heads kvh0 .. kvh0 + nh - 1
};

// Per-thread working set of one item: q rows (float, zero-padded to Dp), accumulators, a score tile, and
// the running max / sum per row.
struct Work {
  float *q, *acc, *s, *m, *l;
  // bf16 pairs path: q as [row block][D2][16 rows] pairs, the tile's V as [kKeyTile / 2][Dp] key pairs,
  // the tile's K as [D2][kKeyTile] pairs, a block's p as [kKeyTile / 2][16 rows] bf16 pairs and its
  // rescale factors [16], and the rows' key ends.
  uint32_t *qt, *kt, *vt, *pt;
  float* alpha;
  int32_t* ends;
};

// bfloat16 on AVX-512 with BF16 runs Q.K and P.V as vdpbf16ps on bf16 pairs (as the linear's pair kernels):
// q and K are bf16 already (exact products, float32 sums); p is rounded to bf16 for P.V, as
// FlashAttention-2 rounds P to the input dtype before its P.V product, while the softmax sum l keeps the
// float32 p. Everything else, and every other dtype and ISA, computes in float32.
template <class T>
constexpr bool kPairs = gemm::uses_pairs<T>::value;

struct Params {
  int64_t Hq, Hk, G, D, Dp, BS;
  float scale;
  bool causal;
  bool pairs;  // bf16 pair kernels allowed for long-query items (not in deterministic contexts)
  const Seq* seqs;
  const TensorView *out, *lse, *q, *kc, *vc, *bt;
  float *pacc, *pm, *pl;  // partials of split sequences: row-major [rows, Dp], [rows], [rows]
};

// Keys that query position i of a sequence sees (bottom-right aligned causal mask).
inline int64_t visible(const Params& p, const Seq& s, int64_t i) {
  if (!p.causal) return s.kv_len;
  const int64_t n = s.kv_len - s.q_len + i + 1;
  return n < 0 ? 0 : (n > s.kv_len ? s.kv_len : n);
}

inline void chunk_range(const Seq& s, int64_t c, int64_t* lo, int64_t* hi) {
  if (s.chunks == 1) {
    *lo = 0;
    *hi = s.kv_len;
  } else {
    *lo = c * kChunk;
    *hi = std::min(s.kv_len, (c + 1) * kChunk);
  }
}

// scores[r][jj] = scale * q_r . k_jj for NR rows starting at q (row stride Dp), one key.
template <int NR, class T>
inline void dot_rows(const float* q, int64_t Dp, const T* k, int64_t D, float scale, float* s, int64_t s_stride) {
  vf a[NR];
  for (int r = 0; r < NR; ++r) a[r] = vzero();
  int64_t d = 0;
  for (; d + kW <= D; d += kW) {
    const vf kv = vload(k + d);
    for (int r = 0; r < NR; ++r) a[r] = vfma(vload(q + r * Dp + d), kv, a[r]);
  }
  if (d < D) {  // q is zero-padded to Dp, so only k needs a partial load
    const vf kv = vload_n(k + d, int(D - d));
    for (int r = 0; r < NR; ++r) a[r] = vfma(vload(q + r * Dp + d), kv, a[r]);
  }
  for (int r = 0; r < NR; ++r) s[r * s_stride] = hsum(a[r]) * scale;
}

// acc[r][d0 .. d0+kW) += sum_jj p[r][jj] * v_jj[d0 ..] for NR rows and nk keys (rows v[jj] + voff); n
// valid lanes of V.
template <int NR, class T>
inline void pv_rows(float* acc, int64_t Dp, const float* p, const T* const* v, int64_t voff, int64_t nk, int64_t d0, int n) {
  vf a[NR];
  for (int r = 0; r < NR; ++r) a[r] = vload(acc + r * Dp + d0);
  if (n == kW) {
    for (int64_t jj = 0; jj < nk; ++jj) {
      const vf vv = vload(v[jj] + voff + d0);
      for (int r = 0; r < NR; ++r) a[r] = vfma(vset(p[r * kKeyTile + jj]), vv, a[r]);
    }
  } else {
    for (int64_t jj = 0; jj < nk; ++jj) {
      const vf vv = vload_n(v[jj] + voff + d0, n);
      for (int r = 0; r < NR; ++r) a[r] = vfma(vset(p[r * kKeyTile + jj]), vv, a[r]);
    }
  }
  for (int r = 0; r < NR; ++r) vstore(acc + r * Dp + d0, a[r]);
}

#if defined(__AVX512BF16__)
// 16 x 16 transpose of 32-bit lanes: lane j of r[i] goes to lane i of r[j].
inline void transpose16x16(__m512i r[16]) {
  __m512i a[16], b[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    b[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
    b[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
    b[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
    b[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  for (int i = 0; i < 16; i += 8)
    for (int j = 0; j < 4; ++j) {
      a[i + j] = _mm512_shuffle_i32x4(b[i + j], b[i + j + 4], 0x88);
      a[i + j + 4] = _mm512_shuffle_i32x4(b[i + j], b[i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_i32x4(a[j], a[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_i32x4(a[j], a[j + 8], 0xdd);
  }
}

// out[t][j] = (x_j[2t], x_j[2t + 1]) for the rows x[j] + off (D elements) j < n, zeros past D and for
// j >= n, t < ceil(D / 2): 16 rows as pairs x rows, 32 d per 16 x 16 transpose. Packs a block's q rows
// (pairs x row lanes, once per item) and a tile's K rows (pairs x keys, the layout the score loop
// broadcasts from with one base pointer).
inline void pack_pairs_t(const bf16_t* const* x, int64_t off, int64_t n, int64_t D, uint32_t* out) {
  for (int64_t d = 0; d < D; d += 32) {
    const int64_t nd = std::min<int64_t>(32, D - d);
    const __mmask32 mask = __mmask32(nd == 32 ? ~0u : (1u << nd) - 1);
    __m512i r[16];
    for (int64_t j = 0; j < 16; ++j) r[j] = j < n ? _mm512_maskz_loadu_epi16(mask, x[j] + off + d) : _mm512_setzero_si512();
    transpose16x16(r);
    for (int64_t t = 0; t < (nd + 1) / 2; ++t) _mm512_storeu_si512(out + (d / 2 + t) * 16, r[t]);
  }
}

// vt[t][d] = (v_2t[d], v_2t+1[d]) for key pairs t < ceil(nk / 2) and d < Dp (zeros past D and for the
// partner of an odd last key). Rows v[j] + off.
inline void pack_v_pairs(const bf16_t* const* v, int64_t off, int64_t nk, int64_t D, int64_t Dp, uint32_t* vt) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
                                       19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t t = 0; 2 * t < nk; ++t)
    for (int64_t d = 0; d < Dp; d += kW) {
      const __mmask16 mask = __mmask16(d + kW <= D ? 0xffffu : (1u << (D - d)) - 1);
      const __m256i lo = _mm256_maskz_loadu_epi16(mask, v[2 * t] + off + d);
      const __m256i hi = 2 * t + 1 < nk ? _mm256_maskz_loadu_epi16(mask, v[2 * t + 1] + off + d) : _mm256_setzero_si256();
      _mm512_storeu_si512(vt + t * Dp + d, _mm512_permutexvar_epi16(idx, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)));
    }
}

// One key tile of one 16-row block (row lanes; lanes >= nr are ignored): scores s_j = scale * q . k_j of
// the 16 keys (kt: the tile's K as pairs x keys, zeros past its end), masked to -inf at or past each row's
// key end (ends, absolute), then the online softmax update of the rows' max m and sum l; leaves the
// rescale factors in alpha[16] and p rounded to bf16 key pairs in pt[t][lane]. Each score is one fixed
// chain of d pairs; a row's softmax state is updated lane-wise, with the same operations for every row.
inline void tile_block(const uint32_t* qt, const uint32_t* kt, int64_t D2, float scale, int64_t j0, const int32_t* ends, float* m,
                       float* l, int64_t nr, float* alpha, uint32_t* pt) {
  __m512 s[kKeyTile];
  for (int j = 0; j < kKeyTile; ++j) s[j] = _mm512_setzero_ps();
  for (int64_t t = 0; t < D2; ++t) {
    const __m512bh qv = (__m512bh)_mm512_loadu_si512(qt + t * 16);
    for (int j = 0; j < kKeyTile; ++j) s[j] = _mm512_dpbf16_ps(s[j], (__m512bh)_mm512_set1_epi32(int(kt[t * kKeyTile + j])), qv);
  }
  const __mmask16 lanes = __mmask16(nr >= 16 ? 0xffffu : (1u << nr) - 1);
  const __m512 ninf = _mm512_set1_ps(kNegInf), vscale = _mm512_set1_ps(scale);
  const __m512i end = _mm512_maskz_loadu_epi32(lanes, ends);
  __m512 mt = ninf;
  for (int j = 0; j < kKeyTile; ++j) {
    const __mmask16 ok = _mm512_cmpgt_epi32_mask(end, _mm512_set1_epi32(int(j0 + j)));
    s[j] = _mm512_mask_mov_ps(ninf, ok, _mm512_mul_ps(s[j], vscale));
    mt = _mm512_max_ps(s[j], mt);  // a NaN score leaves mt as it was; its p is NaN below
  }
  const __m512 m_old = _mm512_maskz_loadu_ps(lanes, m);
  const __m512 m_new = _mm512_max_ps(mt, m_old);
  // Rows that have seen nothing yet keep m = -inf: exponents against 0 there give p = 0 and alpha = 0.
  const __m512 m_ref = _mm512_mask_mov_ps(m_new, _mm512_cmp_ps_mask(m_new, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
  const __m512 a = vexp(vf{_mm512_sub_ps(m_old, m_ref)}).v;  // 1 where the max did not grow
  __m512 sum = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, l), a);
  for (int j = 0; j < kKeyTile; ++j) {
    s[j] = vexp(vf{_mm512_sub_ps(s[j], m_ref)}).v;
    sum = _mm512_add_ps(sum, s[j]);
  }
  _mm512_mask_storeu_ps(m, lanes, m_new);
  _mm512_mask_storeu_ps(l, lanes, sum);
  _mm512_storeu_ps(alpha, a);
  for (int t = 0; t < kKeyTile / 2; ++t) {
    const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(s[2 * t]));
    const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(s[2 * t + 1]));
    _mm512_storeu_si512(pt + t * 16, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
  }
}

// acc[r][d0 .. d0 + 16) = alpha[r] * acc[r][..] + sum_j bf16(p[r][j]) * v_j[d0 ..] for NR rows (row r's
// lane values alpha[r], pt[t * 16 + r]) and the tile's key pairs t < npairs of the packed V (vt, row
// stride Dp), two keys per vdpbf16ps.
template <int NR>
inline void pv_block(float* acc, int64_t Dp, const float* alpha, const uint32_t* pt, const uint32_t* vt, int64_t npairs, int64_t d0) {
  __m512 a[NR];
  for (int r = 0; r < NR; ++r) a[r] = _mm512_mul_ps(_mm512_loadu_ps(acc + r * Dp + d0), _mm512_set1_ps(alpha[r]));
  for (int64_t t = 0; t < npairs; ++t) {
    const __m512bh vv = (__m512bh)_mm512_loadu_si512(vt + t * Dp + d0);
    for (int r = 0; r < NR; ++r) a[r] = _mm512_dpbf16_ps(a[r], (__m512bh)_mm512_set1_epi32(int(pt[t * 16 + r])), vv);
  }
  for (int r = 0; r < NR; ++r) _mm512_storeu_ps(acc + r * Dp + d0, a[r]);
}
#endif

// The remainder block of row_blocks: n (<= N) rows at r as one NR = n kernel.
template <int N, class F>
inline void row_block_rest(int64_t r, int64_t n, F& f) {
  if constexpr (N > 0) {
    if (n == N) f(r, std::integral_constant<int, N>{});
    else row_block_rest<N - 1>(r, n, f);
  }
}

// The NR-row kernels over rows [r0, r1) in blocks of MaxNR and one block of the remainder: 8 rows for the
// float32 kernels, 16 for the bf16 pair kernels (vdpbf16ps has a latency of ~6 cycles at 2 per cycle, so
// a block needs about 12 independent accumulators to keep both units busy).
template <int MaxNR, class F>
inline void row_blocks(int64_t r0, int64_t r1, F&& f) {
  int64_t r = r0;
  for (; r + MaxNR <= r1; r += MaxNR) f(r, std::integral_constant<int, MaxNR>{});
  if (r < r1) row_block_rest<MaxNR - 1>(r, r1 - r, f);
}

// Slot pointers (first kv head of the item) of keys [j0, j0 + nk): one block-table read per block.
template <class T>
inline void slot_rows(const Params& p, const int32_t* bt, const T* kbase, const T* vbase, int64_t j0, int64_t nk, const T** kp,
                      const T** vp) {
  int64_t col = j0 / p.BS, pos = j0 - col * p.BS;
  int64_t blk = bt[col * p.bt->strides[1]];
  for (int64_t jj = 0; jj < nk; ++jj, ++pos) {
    if (pos == p.BS) {
      pos = 0;
      blk = bt[++col * p.bt->strides[1]];
    }
    kp[jj] = kbase + blk * p.kc->strides[0] + pos * p.kc->strides[1];
    vp[jj] = vbase + blk * p.vc->strides[0] + pos * p.vc->strides[1];
  }
}

// Asks for one slot row of the next tile while this one is computed: the slots are scattered through
// the cache by the block table, which the hardware prefetchers cannot follow. The requests are issued
// one slot at a time between the score computations; a burst of a whole tile's lines stalls on the
// miss queues instead of overlapping the arithmetic.
inline void prefetch_span(const void* row, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(static_cast<const char*>(row) + off);
}

// out = acc / l (and lse = m + log l) of an unsplit item's rows r = hh * RH + position * G + g.
template <class T>
void write_rows(const Params& p, const Item& it, const Work& w) {
  const Seq& sq = p.seqs[it.b];
  const int64_t G = p.G, D = p.D, Dp = p.Dp, RH = it.nq * G, R = it.nh * RH;
  T* obase = p.out->ptr<T>();
  for (int64_t r = 0; r < R; ++r) {
    const int64_t t = sq.q0 + it.qi0 + (r % RH) / G, h = (it.kvh0 + r / RH) * G + r % G;
    T* o = obase + t * p.out->strides[0] + h * p.out->strides[1];
    const float* ar = w.acc + r * Dp;
    // A row that saw no key has l = 0 and acc = 0: out = 0, lse = -inf.
    const bool any = w.l[r] > 0 || std::isnan(w.l[r]);
    const vf vl = vset(any ? w.l[r] : 1.0f);
    int64_t d = 0;
    for (; d + kW <= D; d += kW) vstore(o + d, vload(ar + d) / vl);
    if (d < D) vstore_n(o + d, vload(ar + d) / vl, int(D - d));
    if (p.lse->present)
      p.lse->ptr<float>()[t * p.lse->strides[0] + h * p.lse->strides[1]] = any ? w.m[r] + std::log(w.l[r]) : kNegInf;
  }
}

#if defined(__AVX512BF16__)
// A bfloat16 long-query item (one sequence, unsplit) with the pair kernels: rows r = hh * RH + position *
// G + g as in run_item, in blocks of 16 rows per kv head (row lanes).
inline void run_item_pairs(const Params& p, const Item& it, const Work& w) {
  const Seq& sq = p.seqs[it.b];
  const int64_t G = p.G, D = p.D, Dp = p.Dp, RH = it.nq * G, R = it.nh * RH;
  const int64_t NB = (RH + 15) / 16, D2 = (D + 1) / 2;  // row blocks per head, pairs per row
  auto end_of = [&](int64_t pos) { return std::min(visible(p, sq, it.qi0 + pos), sq.kv_len); };
  const bf16_t* qbase = p.q->ptr<const bf16_t>();
  for (int64_t hh = 0; hh < it.nh; ++hh)
    for (int64_t b = 0; b < NB; ++b) {
      const int64_t nr = std::min<int64_t>(16, RH - 16 * b);
      const bf16_t* qr[16];
      for (int64_t i = 0; i < nr; ++i) {
        const int64_t r = 16 * b + i;  // within the head
        qr[i] = qbase + (sq.q0 + it.qi0 + r / G) * p.q->strides[0] + ((it.kvh0 + hh) * G + r % G) * p.q->strides[1];
      }
      pack_pairs_t(qr, 0, nr, D, w.qt + (hh * NB + b) * D2 * 16);
    }
  for (int64_t r = 0; r < R; ++r) {
    w.m[r] = kNegInf;
    w.l[r] = 0;
    w.ends[r] = int32_t(end_of((r % RH) / G));
  }
  std::fill(w.acc, w.acc + R * Dp, 0.0f);
  const int64_t key_end = end_of(it.nq - 1);
  const int64_t ks2 = p.kc->strides[2], vs2 = p.vc->strides[2];
  const bf16_t* kbase = p.kc->ptr<const bf16_t>() + it.kvh0 * ks2;
  const bf16_t* vbase = p.vc->ptr<const bf16_t>() + it.kvh0 * vs2;
  const int32_t* bt = p.bt->ptr<const int32_t>() + it.b * p.bt->strides[0];
  const int64_t row_bytes = D * int64_t(sizeof(bf16_t));
  const bf16_t* ptr[2][2][kKeyTile];
  int cur = 0;
  if (key_end > 0) slot_rows(p, bt, kbase, vbase, 0, std::min(kKeyTile, key_end), ptr[0][0], ptr[0][1]);
  int64_t first_pos = 0;
  for (int64_t j0 = 0; j0 < key_end; j0 += kKeyTile, cur ^= 1) {
    const int64_t nk = std::min(kKeyTile, key_end - j0);
    int64_t nn = 0;  // keys of the next tile, prefetched one (K, V) row pair per d step of P.V
    if (j0 + kKeyTile < key_end) {
      nn = std::min(kKeyTile, key_end - j0 - kKeyTile);
      slot_rows(p, bt, kbase, vbase, j0 + kKeyTile, nn, ptr[cur ^ 1][0], ptr[cur ^ 1][1]);
    }
    // The next (key, head) row pair to prefetch: (pf_j, pf_h), done at pf_h == nh.
    int64_t pf_j = 0, pf_h = nn > 0 ? 0 : it.nh;
    auto prefetch_next = [&] {
      prefetch_span(ptr[cur ^ 1][0][pf_j] + pf_h * ks2, row_bytes);
      prefetch_span(ptr[cur ^ 1][1][pf_j] + pf_h * vs2, row_bytes);
      if (++pf_j == nn) pf_j = 0, ++pf_h;
    };
    while (end_of(first_pos) <= j0) ++first_pos;
    const int64_t r0 = first_pos * G;  // first active row of each head
    for (int64_t hh = 0; hh < it.nh; ++hh) {
      pack_pairs_t(ptr[cur][0], hh * ks2, nk, D, w.kt);
      pack_v_pairs(ptr[cur][1], hh * vs2, nk, D, Dp, w.vt);
      for (int64_t b = r0 / 16; b < NB; ++b) {
        const int64_t bs = hh * RH + 16 * b, nr = std::min<int64_t>(16, RH - 16 * b);
        tile_block(w.qt + (hh * NB + b) * D2 * 16, w.kt, D2, p.scale, j0, w.ends + bs, w.m + bs, w.l + bs, nr, w.alpha, w.pt);
        const int64_t lo = std::max<int64_t>(0, r0 - 16 * b);  // rows before it have finished: p = 0, alpha = 1
        for (int64_t d = 0; d < Dp; d += kW) {
          if (pf_h < it.nh) prefetch_next();
          row_blocks<16>(lo, nr, [&](int64_t i, auto n) {
            pv_block<decltype(n)::value>(w.acc + (bs + i) * Dp, Dp, w.alpha + i, w.pt + i, w.vt, (nk + 1) / 2, d);
          });
        }
      }
    }
    while (pf_h < it.nh) prefetch_next();
  }
  write_rows<bf16_t>(p, it, w);
}
#endif

// One work item: rows r = hh * RH + position * G + g (RH = nq * G) for the item's kv heads
// kvh0 + hh, query positions qi0 + position and group heads g; query head h = (kvh0 + hh) * G + g.
template <class T>
void run_item(const Params& p, const Item& it, const Work& w) {
  const Seq& sq = p.seqs[it.b];
  const int64_t G = p.G, D = p.D, Dp = p.Dp, RH = it.nq * G, R = it.nh * RH;
  int64_t k_lo, k_hi;
  chunk_range(sq, it.chunk, &k_lo, &k_hi);
  auto token_of = [&](int64_t r) { return sq.q0 + it.qi0 + (r % RH) / G; };
  auto head_of = [&](int64_t r) { return (it.kvh0 + r / RH) * G + r % G; };
  const T* qbase = p.q->ptr<const T>();
  // The bf16 pair kernels take the long-query items (compute-bound; 1.5x on the prefill case) unless the
  // context is deterministic. Short-query items (decode, memory-bound) measured up to 1.2-1.5x slower with
  // them at batch >= 4 and long contexts, and a deterministic context needs the same arithmetic for a
  // row in both item shapes (batch invariance).
#if defined(__AVX512BF16__)
  if constexpr (kPairs<T>) if (p.pairs && !sq.short_q) return run_item_pairs(p, it, w);
#endif
  for (int64_t r = 0; r < R; ++r) {
    const T* src = qbase + token_of(r) * p.q->strides[0] + head_of(r) * p.q->strides[1];
    w.m[r] = kNegInf;
    w.l[r] = 0;
    float* dst = w.q + r * Dp;
    int64_t d = 0;
    for (; d + kW <= D; d += kW) vstore(dst + d, vload(src + d));
    if (d < D) vstore(dst + d, vload_n(src + d, int(D - d)));  // zero-fills up to Dp
  }
  std::fill(w.acc, w.acc + R * Dp, 0.0f);
  // Keys [k_lo, end(pos)) for each position; end is non-decreasing in the position, so the rows still
  // active at key j0 are a suffix of each head's rows.
  auto end_of = [&](int64_t pos) { return std::min(visible(p, sq, it.qi0 + pos), k_hi); };
  const int64_t key_end = end_of(it.nq - 1);
  const int64_t ks2 = p.kc->strides[2], vs2 = p.vc->strides[2];
  const T* kbase = p.kc->ptr<const T>() + it.kvh0 * ks2;
  const T* vbase = p.vc->ptr<const T>() + it.kvh0 * vs2;
  const int32_t* bt = p.bt->ptr<const int32_t>() + it.b * p.bt->strides[0];
  // The item's heads of one slot span (nh - 1) * stride + D elements.
  const int64_t kspan = ((it.nh - 1) * ks2 + D) * int64_t(sizeof(T)), vspan = ((it.nh - 1) * vs2 + D) * int64_t(sizeof(T));
  // Slot pointers of the current and the next tile (prefetched one tile ahead).
  const T* ptr[2][2][kKeyTile];
  int cur = 0;
  if (k_lo < key_end) slot_rows(p, bt, kbase, vbase, k_lo, std::min(kKeyTile, key_end - k_lo), ptr[0][0], ptr[0][1]);
  int64_t first_pos = 0;
  for (int64_t j0 = k_lo; j0 < key_end; j0 += kKeyTile, cur ^= 1) {
    const int64_t nk = std::min(kKeyTile, key_end - j0);
    int64_t nn = 0;  // keys of the next tile
    if (j0 + kKeyTile < key_end) {
      nn = std::min(kKeyTile, key_end - j0 - kKeyTile);
      slot_rows(p, bt, kbase, vbase, j0 + kKeyTile, nn, ptr[cur ^ 1][0], ptr[cur ^ 1][1]);
    }
    const T* const* kp = ptr[cur][0];
    const T* const* vp = ptr[cur][1];
    while (end_of(first_pos) <= j0) ++first_pos;
    const int64_t r0 = first_pos * G;  // first active row of each head
    // Scores of the active rows, slot by slot (the item's heads of a slot are adjacent in memory).
    for (int64_t jj = 0; jj < nk; ++jj) {
      if (jj < nn) {  // spread over the tile, so that the requests overlap the arithmetic
        prefetch_span(ptr[cur ^ 1][0][jj], kspan);
        prefetch_span(ptr[cur ^ 1][1][jj], vspan);
      }
      for (int64_t hh = 0; hh < it.nh; ++hh) {
        const T* krow = kp[jj] + hh * ks2;
        row_blocks<8>(hh * RH + r0, (hh + 1) * RH, [&](int64_t r, auto nr) {
          dot_rows<decltype(nr)::value>(w.q + r * Dp, Dp, krow, D, p.scale, w.s + r * kKeyTile + jj, kKeyTile);
        });
      }
    }
    for (int64_t hh = 0; hh < it.nh; ++hh)
      for (int64_t r = hh * RH + r0; r < (hh + 1) * RH; ++r) {
        float* sr = w.s + r * kKeyTile;
        // Keys past the row's end and lanes past nk are -inf.
        const int64_t valid = std::min(nk, end_of((r % RH) / G) - j0);
        for (int64_t jj = valid; jj < kKeyTile; ++jj) sr[jj] = kNegInf;
        // Online softmax: new max, rescale factor of the old state, p = exp(s - max).
        vf mx = vload(sr);
        for (int64_t v = kW; v < kKeyTile; v += kW) mx = vmax(mx, vload(sr + v));
        const float tmax = hmax(mx);
        const float m_new = tmax > w.m[r] || std::isnan(tmax) ? tmax : w.m[r];
        if (m_new == kNegInf) {  // nothing visible yet (only with -inf scores)
          std::fill(sr, sr + kKeyTile, 0.0f);
          continue;
        }
        const vf vm = vset(m_new);
        vf sum = vzero();
        for (int64_t v = 0; v < kKeyTile; v += kW) {
          const vf e = vexp(vload(sr + v) - vm);
          vstore(sr + v, e);
          sum = sum + e;
        }
        if (m_new != w.m[r]) {
          const float alpha = std::exp(w.m[r] - m_new);  // 0 for the first visible tile
          w.l[r] *= alpha;
          float* ar = w.acc + r * Dp;
          const vf va = vset(alpha);
          for (int64_t d = 0; d < Dp; d += kW) vstore(ar + d, vload(ar + d) * va);
          w.m[r] = m_new;
        }
        w.l[r] += hsum(sum);
      }
    for (int64_t hh = 0; hh < it.nh; ++hh)
      for (int64_t d = 0; d < D; d += kW) {
        const int n = int(std::min<int64_t>(kW, D - d));
        row_blocks<8>(hh * RH + r0, (hh + 1) * RH, [&](int64_t r, auto nr) {
          pv_rows<decltype(nr)::value>(w.acc + r * Dp, Dp, w.s + r * kKeyTile, vp, hh * vs2, nk, d, n);
        });
      }
  }
  if (sq.chunks > 1) {
    // Partials of chunk `chunk`: rows [part_row + chunk * q_len * Hq + i * Hq + h].
    for (int64_t r = 0; r < R; ++r) {
      const int64_t row = sq.part_row + it.chunk * sq.q_len * p.Hq + (token_of(r) - sq.q0) * p.Hq + head_of(r);
      std::copy(w.acc + r * Dp, w.acc + (r + 1) * Dp, p.pacc + row * Dp);
      p.pm[row] = w.m[r];
      p.pl[row] = w.l[r];
    }
    return;
  }
  write_rows<T>(p, it, w);
}

// Combines the chunks of one row of a split sequence, in chunk order.
template <class T>
void combine_row(const Params& p, const Seq& sq, int64_t i, int64_t h) {
  const int64_t stride = sq.q_len * p.Hq, row0 = sq.part_row + i * p.Hq + h;
  float M = kNegInf;
  for (int64_t c = 0; c < sq.chunks; ++c) {
    const float mc = p.pm[row0 + c * stride];
    M = mc > M || std::isnan(mc) ? mc : M;
  }
  const int64_t t = sq.q0 + i;
  T* o = p.out->ptr<T>() + t * p.out->strides[0] + h * p.out->strides[1];
  float* lse = p.lse->present ? p.lse->ptr<float>() + t * p.lse->strides[0] + h * p.lse->strides[1] : nullptr;
  const int64_t D = p.D, Dp = p.Dp;
  if (M == kNegInf) {  // no chunk saw a key
    for (int64_t d = 0; d < D; ++d) o[d] = from_f32<T>(0.0f);
    if (lse) *lse = kNegInf;
    return;
  }
  float L = 0;
  for (int64_t c = 0; c < sq.chunks; ++c) L += p.pl[row0 + c * stride] * std::exp(p.pm[row0 + c * stride] - M);
  const vf vl = vset(L);
  for (int64_t d = 0; d < D; d += kW) {
    vf a = vzero();
    for (int64_t c = 0; c < sq.chunks; ++c) {
      const float wc = std::exp(p.pm[row0 + c * stride] - M);
      a = vfma(vset(wc), vload(p.pacc + (row0 + c * stride) * Dp + d), a);
    }
    if (d + kW <= D) vstore(o + d, a / vl);
    else vstore_n(o + d, a / vl, int(D - d));
  }
  if (lse) *lse = M + std::log(L);
}

template <class A>
A* scratch_array(ExecContext& ex, int64_t n) {
  return static_cast<A*>(ex.scratch(sizeof(A) * size_t(std::max<int64_t>(n, 1)), 64));
}

}  // namespace

opdev_status paged_attention(ExecContext& ex, const paged_attention_args& a) {
  Params p;
  p.Hq = a.q.size(1);
  p.D = a.q.size(2);
  p.Dp = (p.D + kW - 1) / kW * kW;
  p.BS = a.key_cache.size(1);
  p.Hk = a.key_cache.size(2);
  p.G = p.Hq / p.Hk;
  p.scale = float(a.scale);
  p.causal = a.causal;
  p.pairs = !ex.deterministic;
  p.out = &a.out;
  p.lse = &a.softmax_lse;
  p.q = &a.q;
  p.kc = &a.key_cache;
  p.vc = &a.value_cache;
  p.bt = &a.block_table;
  const int64_t B = a.seq_lens_kv.size(0);

  // Sequences, split decisions and partial rows. Short-query sequences (decode) take all kv heads in one
  // item, so that each slot's K and V rows are read as one contiguous span; the others take one kv head
  // and a tile of positions per item.
  Seq* seqs = scratch_array<Seq>(ex, B);
  const int32_t* cu = a.cu_seqlens_q.ptr<const int32_t>();
  const int32_t* kvl = a.seq_lens_kv.ptr<const int32_t>();
  int64_t part_rows = 0, n_items = 0, short_items = 0;
  const int64_t nq_tile = std::max<int64_t>(1, kRowsPerItem / p.G);
  for (int64_t b = 0; b < B; ++b) {
    Seq& s = seqs[b];
    s.q0 = cu[b * a.cu_seqlens_q.strides[0]];
    s.q_len = cu[(b + 1) * a.cu_seqlens_q.strides[0]] - s.q0;
    s.kv_len = kvl[b * a.seq_lens_kv.strides[0]];
    s.short_q = s.q_len <= kShortQ;
    // Deterministic contexts never split: a split sequence combines partial softmaxes in another order
    // than the same query in a long-query item, so its result would depend on the batch's shape.
    s.chunks = !ex.deterministic && s.short_q && s.kv_len > kChunk ? (s.kv_len + kChunk - 1) / kChunk : 1;
    s.part_row = part_rows;
    if (s.chunks > 1) part_rows += s.chunks * s.q_len * p.Hq;
    if (s.q_len > 0) n_items += s.short_q ? s.chunks : p.Hk * ((s.q_len + nq_tile - 1) / nq_tile);
    if (s.q_len > 0 && s.short_q) short_items += s.chunks;
  }
  // Fewer short-query items than threads (decode at batch 1): their kv heads are split into groups, so
  // that every thread gets work. A row's arithmetic does not depend on the other heads of its item.
  const int64_t hgroups = short_items == 0 || short_items >= ex.num_threads
                              ? 1
                              : std::min<int64_t>(p.Hk, (ex.num_threads + short_items - 1) / short_items);
  n_items += short_items * (hgroups - 1);
  p.seqs = seqs;
  p.pacc = scratch_array<float>(ex, part_rows * p.Dp);
  p.pm = scratch_array<float>(ex, part_rows);
  p.pl = scratch_array<float>(ex, part_rows);

  // Items in (sequence, kv head, query tile, chunk) order, with their cumulative cost.
  Item* items = scratch_array<Item>(ex, n_items);
  double* cum = scratch_array<double>(ex, n_items + 1);
  int64_t n = 0, max_rows = 1;
  cum[0] = 0;
  auto add_item = [&](const Seq& s, const Item& it) {
    int64_t lo, hi;
    chunk_range(s, it.chunk, &lo, &hi);
    double pairs = 0;
    for (int64_t i = it.qi0; i < it.qi0 + it.nq; ++i) pairs += double(std::max<int64_t>(0, std::min(visible(p, s, i), hi) - lo));
    const int64_t rows = it.nh * it.nq * p.G;
    max_rows = std::max(max_rows, rows);
    items[n] = it;
    cum[n + 1] = cum[n] + double(it.nh * p.G) * pairs * double(p.D) + double(rows * p.D);
    ++n;
  };
  for (int64_t b = 0; b < B; ++b) {
    const Seq& s = seqs[b];
    if (s.q_len == 0) continue;
    if (s.short_q) {
      for (int64_t c = 0; c < s.chunks; ++c)
        for (int64_t g = 0; g < hgroups; ++g) {
          const int64_t h0 = p.Hk * g / hgroups, h1 = p.Hk * (g + 1) / hgroups;
          add_item(s, Item{b, h0, h1 - h0, 0, s.q_len, c});
        }
    } else {
      for (int64_t kvh = 0; kvh < p.Hk; ++kvh)
        for (int64_t qi0 = 0; qi0 < s.q_len; qi0 += nq_tile) add_item(s, Item{b, kvh, 1, qi0, std::min(nq_tile, s.q_len - qi0), 0});
    }
  }

  // One slot per thread, each a contiguous item range of about equal cost.
  const int64_t slots = std::max<int64_t>(1, std::min<int64_t>(ex.num_threads, n_items));
  int64_t* first = scratch_array<int64_t>(ex, slots + 1);
  for (int64_t s = 0, i = 0; s <= slots; ++s) {
    const double target = cum[n_items] * double(s) / double(slots);
    while (i < n_items && cum[i] < target) ++i;
    first[s] = s == slots ? n_items : i;
  }
  Work* work = scratch_array<Work>(ex, slots);
  for (int64_t s = 0; s < slots; ++s) {
    work[s].q = scratch_array<float>(ex, max_rows * p.Dp);
    work[s].acc = scratch_array<float>(ex, max_rows * p.Dp);
    work[s].s = scratch_array<float>(ex, max_rows * kKeyTile);
    work[s].m = scratch_array<float>(ex, max_rows);
    work[s].l = scratch_array<float>(ex, max_rows);
    // Pairs path: up to max_rows / 16 + 1 row blocks per kv head of an item (one head per long item).
    const int64_t D2 = (p.D + 1) / 2, blocks = max_rows / 16 + 1;
    work[s].qt = scratch_array<uint32_t>(ex, blocks * D2 * 16);
    work[s].vt = scratch_array<uint32_t>(ex, (kKeyTile / 2) * p.Dp);
    work[s].pt = scratch_array<uint32_t>(ex, (kKeyTile / 2) * 16);
    work[s].alpha = scratch_array<float>(ex, 16);
    work[s].ends = scratch_array<int32_t>(ex, max_rows);
    work[s].kt = scratch_array<uint32_t>(ex, D2 * kKeyTile);
  }

  dispatch_float(a.q.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Each call gets a distinct first slot, whose working set it uses for all its slots.
    parallel_for(ex, slots, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t i = first[s0]; i < first[s1]; ++i) run_item<T>(p, items[i], work[s0]);
    });
    if (part_rows == 0) return;
    // Combine pass over the rows of split sequences (each sequence's rows: q_len * Hq).
    int64_t* split_seq = scratch_array<int64_t>(ex, B);
    int64_t* row_start = scratch_array<int64_t>(ex, B + 1);
    int64_t ns = 0, rows = 0;
    for (int64_t b = 0; b < B; ++b)
      if (seqs[b].chunks > 1) {
        split_seq[ns] = b;
        row_start[ns++] = rows;
        rows += seqs[b].q_len * p.Hq;
      }
    row_start[ns] = rows;
    parallel_for(ex, rows, 16, [&](int64_t r0, int64_t r1) {
      int64_t k = std::upper_bound(row_start, row_start + ns + 1, r0) - row_start - 1;
      for (int64_t r = r0; r < r1; ++r) {
        while (r >= row_start[k + 1]) ++k;
        const Seq& s = seqs[split_seq[k]];
        const int64_t local = r - row_start[k];
        combine_row<T>(p, s, local / p.Hq, local % p.Hq);
      }
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
