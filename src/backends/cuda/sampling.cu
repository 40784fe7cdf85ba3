// cuda: sample (greedy, temperature, top-k, top-p; the exponential race keyed by Philox4x32-10).
//
// The contract (opdev.h, docs/OPS.md "Decisions beyond the guide") fixes every draw: l = x / T in float32
// (NaN -> -inf), the order "descending l, lower index first", top-k = the first k of that order, top-p =
// the longest prefix of the top-k whose mass before each token is below top_p * (mass of the top-k), and
// the winner argmax (l_i - m) - log(-log(u_i)) over the kept tokens with u_i from Philox (counter (i, step),
// key seed). Nothing here depends on the thread count or the batch: every reduction is an integer sum, a
// maximum of unique integer keys, or an argmax with ties to the lower index.
//
// Keys. Token i of a row gets the 64-bit composite key ck = (ord(l_i) << 32) | (2^32 - 1 - i), ord the
// order-preserving bits of a float (-0 folded onto +0): distinct tokens have distinct keys and "ck larger"
// is exactly "ranks earlier". A kept set is then a prefix of the order, i.e. {ck >= cut} for the key `cut`
// of its last token. Masses are e_i = exp(l_i - m) in float32 (as the cpu backend; m = max l, an infinite
// m gives 1 to its own tokens and 0 to the rest), held in fixed point (e * 2^S, S = 62 - bits(V)) so that
// every sum of masses is an exact, order-free integer.
//
// Kernels (a fixed sequence; a row that needs no step returns at once; grids are chunks of 4096 tokens x
// rows, so that even one row spreads over the GPU):
//   max      every row: the largest ck (greedy rows: of ord(x), NaN lowest) -> m and the first index of
//            the maximum (atomicMax of the 64-bit key).
//   hist     filtered rows (top-k or top-p): a histogram of the top 11 bits of ck (2048 bins: count and
//            mass), per block in shared memory (equal bins of a warp merged with __match_any_sync), then
//            added to the row's global histogram with integer atomics.
//   plan     one block per filtered row scans the bins in rank order: with top-k, the bin of the k-th
//            token (the tokens to resolve are those of that bin and above); with top-p only, the bin of the
//            last kept token (the last bin whose first token has mass-before < top_p * total).
//   compact  the tokens of those bins into a per-row list (up to 16384; more falls back to scanning the
//            row in the next step).
//   resolve  one block per filtered row finds the exact cut on the list: a radix descent over the
//            remaining bits of ck (11/11/10-bit digits, count and mass histograms in shared memory) until a
//            bucket holds <= 4096 tokens, which are then sorted (bitonic, in shared memory) and scanned.
//            Top-k: the k-th token. Top-p: the last token whose mass-before is below the limit (with top-k
//            too: the limit is top_p * the top-k's mass, and only tokens with ck >= the k cut count).
//   race     every sampled row, per chunk: the kept tokens (ck >= cut) that can still win (the cpu
//            backend's bound: (l - m) + 17.5 >= the race value of the first token) get a float32 race value
//            from the Philox word; the few within 1e-3 of the chunk's best (float32 error is below 1e-5)
//            are evaluated exactly in float64 (the cpu backend's formulas) and the chunk's argmax kept.
//   final    per row: the argmax over the chunks (greedy rows: the index from `max`).
// Per-row parameters come from device memory: only what memory safety needs is guarded (any top_k, any
// temperature or top_p bits give some token id in [0, V)).
#include <algorithm>
#include <climits>
#include <cmath>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kThreads = 256;                  // blocks of the chunked passes
constexpr int kItems = 16;                     // tokens per thread in a chunk
constexpr int64_t kChunk = int64_t(kThreads) * kItems;
constexpr int kBins = 2048;                    // first digit: the top 11 bits of ck
constexpr int kPlanThreads = 512;              // blocks of the per-row plan / resolve kernels
constexpr int kSortCap = 4096;                 // tokens sorted in shared memory
constexpr int64_t kListCap = 16384;            // tokens compacted per row
constexpr double kMaxGumbel = 17.5;            // > -log(-log(1 - 2^-25)) = 17.33, the largest noise term
constexpr float kPrescreenTol = 1e-3f;         // float32 race values are within 1e-5 of the float64 ones

static_assert(kBins % kPlanThreads == 0 && kSortCap % kPlanThreads == 0, "per-thread shares");

struct RowState {
  unsigned long long maxc;        // max: the largest key (zero-initialised)
  unsigned long long cut;         // resolve: the key of the last kept token (0: all kept)
  unsigned long long base_count;  // plan: tokens ranking before the resolve range
  unsigned long long base_mass;   // plan: their mass
  unsigned long long range_n;     // plan: tokens in the resolve range (bins lo..hi)
  double limit;                   // plan: top_p * total mass (top-p without top-k)
  unsigned lo_bin, hi_bin;        // plan: the resolve range of first-digit bins
  unsigned list_n;                // compact: list length (zero-initialised)
  int stage;                      // plan: 0 none, 1 top-k (then top-p), 2 top-p only
};

struct RaceResult {
  double v;
  long long idx;  // < 0: no candidate in the chunk
};

struct SampleParams {
  const void* logits;
  int64_t stride;  // row stride in elements
  int64_t B, V;
  const float* temperature;
  const int32_t* top_k;
  const float* top_p;
  const int64_t* seeds;
  const int64_t* steps;
  int32_t* ids;
  RowState* st;                  // [B]
  uint32_t* hcnt;                // [B][kBins]
  unsigned long long* hmass;     // [B][kBins]
  uint32_t* list;                // [B][list_cap]
  RaceResult* race;              // [B][nchunks]
  int64_t nchunks, list_cap;
  double mass_scale;             // 2^S
};

struct RowCfg {
  float temp, top_p;
  int64_t k;  // top-k in [1, V]
  bool greedy, use_p, filtered;
  uint64_t seed, step;
};

__device__ __forceinline__ RowCfg row_cfg(const SampleParams& p, int64_t b) {
  RowCfg c;
  c.temp = p.temperature[b];
  c.top_p = p.top_p[b];
  const int64_t tk = p.top_k[b];
  c.k = tk > 0 && tk < p.V ? tk : p.V;
  c.greedy = c.temp == 0.0f;
  c.use_p = c.top_p < 1.0f;  // NaN: no filter
  c.filtered = !c.greedy && (c.k < p.V || c.use_p);
  c.seed = uint64_t(p.seeds[b]);
  c.step = uint64_t(p.steps[b]);
  return c;
}

// ---- keys, masses, Philox -------------------------------------------------------------------------------

// Order-preserving bits of a float that is not NaN; -0 and +0 get the same key (they compare equal).
__device__ __forceinline__ uint32_t ord_key(float f) {
  const uint32_t u = __float_as_uint(f == 0.0f ? 0.0f : f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}

// Greedy ranks the raw logits: NaN below every number (key 0; ord(-inf) = 0x007FFFFF).
__device__ __forceinline__ uint32_t greedy_key(float v) { return v != v ? 0u : ord_key(v); }

template <class T>
__device__ __forceinline__ float scaled(T x, float temp) {
  const float l = to_float<T>(x) / temp;  // IEEE division, as the cpu backend
  return l != l ? -INFINITY : l;
}

__device__ __forceinline__ unsigned long long composite(uint32_t key, int64_t i) {
  return (static_cast<unsigned long long>(key) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(i));
}

__device__ __forceinline__ int64_t composite_index(unsigned long long c) {
  return int64_t(0xFFFFFFFFu - static_cast<uint32_t>(c));
}

// e = exp(l - m) in float32 (the cpu backend's unnormalised probability) in fixed point.
__device__ __forceinline__ unsigned long long mass_of(float l, float m, double scale) {
  const float e = isinf(m) ? (l == m ? 1.0f : 0.0f) : expf(l - m);
  return __double2ull_rn(double(e) * scale);  // e in [0, 1]: at most 2^S
}

// (l - m) with an infinite maximum shifting its own tokens to 0 (the cpu backend's `shifted`).
__device__ __forceinline__ double shifted(float l, float m) { return l == m ? 0.0 : double(l) - double(m); }

// The first word of Philox4x32-10, counter (i low, i high, step low, step high), key (seed low, seed high).
__device__ __forceinline__ uint32_t philox_word0(uint64_t i, uint64_t step, uint64_t seed) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(i), c1 = uint32_t(i >> 32), c2 = uint32_t(step), c3 = uint32_t(step >> 32);
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint32_t hi0 = __umulhi(kM0, c0), lo0 = kM0 * c0;
    const uint32_t hi1 = __umulhi(kM1, c2), lo1 = kM1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
  }
  return c0;
}

// The race's noise term -log(-log(u)), u = ((w >> 8) + 0.5) / 2^24 (exact in float64), as the cpu backend.
__device__ __forceinline__ double gumbel_exact(uint32_t w) {
  const double u = (double(w >> 8) + 0.5) * (1.0 / 16777216.0);
  return -log(-log(u));
}

// The same in float32, within 1e-5: -log(u) from log(u) for u < 1/2 and from log1p(u - 1) above (both
// arguments exact in float32), then -log of it.
__device__ __forceinline__ float gumbel_approx(uint32_t w) {
  const uint32_t a = w >> 8;
  const float h = a < (1u << 23) ? -logf((float(a) + 0.5f) * 0x1p-24f)
                                 : -log1pf(-(float(16777216u - a) - 0.5f) * 0x1p-24f);
  return -logf(h);
}

// ---- warp / block helpers --------------------------------------------------------------------------------

// Adds (1, mass) to bin `bin` of a shared-memory histogram for the lanes with q set; lanes of a warp with
// the same bin are merged first (one atomic per distinct bin). Called by all 32 lanes; stage: 32 slots.
__device__ __forceinline__ void warp_add(bool q, uint32_t bin, unsigned long long mass, uint32_t* hc,
                                         unsigned long long* hm, unsigned long long* stage) {
  const int lane = threadIdx.x & 31;
  const unsigned act = __ballot_sync(kFullMask, q);
  unsigned peers = 0;
  if (q) {
    peers = __match_any_sync(act, bin);
    stage[lane] = mass;
  }
  __syncwarp();
  if (q && lane == __ffs(peers) - 1) {
    unsigned long long s = 0;
    for (unsigned r = peers; r; r &= r - 1) s += stage[__ffs(r) - 1];
    atomicAdd(hc + bin, unsigned(__popc(peers)));
    if (s) atomicAdd(hm + bin, s);
  }
  __syncwarp();
}

// Exclusive block scan of two 64-bit values per thread; ws: 64 slots. Ends with __syncthreads.
__device__ void block_excl_scan2(unsigned long long& a, unsigned long long& b, unsigned long long* ws) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  unsigned long long xa = a, xb = b;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long ya = __shfl_up_sync(kFullMask, xa, o), yb = __shfl_up_sync(kFullMask, xb, o);
    if (lane >= o) {
      xa += ya;
      xb += yb;
    }
  }
  if (lane == 31) {
    ws[warp] = xa;
    ws[32 + warp] = xb;
  }
  __syncthreads();
  if (warp == 0) {
    unsigned long long wa = lane < nw ? ws[lane] : 0, wb = lane < nw ? ws[32 + lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const unsigned long long ya = __shfl_up_sync(kFullMask, wa, o), yb = __shfl_up_sync(kFullMask, wb, o);
      if (lane >= o) {
        wa += ya;
        wb += yb;
      }
    }
    if (lane < nw) {
      ws[lane] = wa;
      ws[32 + lane] = wb;
    }
  }
  __syncthreads();
  const unsigned long long pa = warp > 0 ? ws[warp - 1] : 0, pb = warp > 0 ? ws[31 + warp] : 0;
  a = pa + xa - a;
  b = pb + xb - b;
  __syncthreads();
}

// Block-wide sum (every thread gets it); ws: 32 slots.
__device__ unsigned long long block_sum(unsigned long long v, unsigned long long* ws) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  if (lane == 0) ws[warp] = v;
  __syncthreads();
  unsigned long long t = 0;
  for (int w = 0; w < nw; ++w) t += ws[w];
  __syncthreads();
  return t;
}

// Block-wide maximum of an int (every thread gets it); ws: 32 slots.
__device__ int block_max_int(int v, int* ws) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kFullMask, v, o));
  if (lane == 0) ws[warp] = v;
  __syncthreads();
  int t = INT_MIN;
  for (int w = 0; w < nw; ++w) t = max(t, ws[w]);
  __syncthreads();
  return t;
}

// Race order: larger value first, then the lower index; idx < 0 is "none".
__device__ __forceinline__ void race_offer(double& bv, long long& bi, double v, long long i) {
  if (i >= 0 && (bi < 0 || v > bv || (v == bv && i < bi))) {
    bv = v;
    bi = i;
  }
}

__device__ __forceinline__ void warp_race(double& bv, long long& bi) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const double v = __shfl_xor_sync(kFullMask, bv, o);
    const long long i = __shfl_xor_sync(kFullMask, bi, o);
    race_offer(bv, bi, v, i);
  }
}

// ---- max ---------------------------------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kThreads) sample_max_kernel(SampleParams p) {
  __shared__ unsigned long long red[kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t b = blockIdx.y; b < p.B; b += gridDim.y) {
    const RowCfg c = row_cfg(p, b);
    const T* x = static_cast<const T*>(p.logits) + b * p.stride;
    if (c.filtered && blockIdx.x == 0)  // the histogram the next kernel accumulates into
      for (int i = threadIdx.x; i < kBins; i += kThreads) {
        p.hcnt[b * kBins + i] = 0;
        p.hmass[b * kBins + i] = 0;
      }
    unsigned long long best = 0;
    const int64_t i0 = int64_t(blockIdx.x) * kChunk + threadIdx.x;
#pragma unroll 4
    for (int it = 0; it < kItems; ++it) {
      const int64_t i = i0 + int64_t(it) * kThreads;
      if (i < p.V) {
        const uint32_t key = c.greedy ? greedy_key(to_float<T>(x[i])) : ord_key(scaled(x[i], c.temp));
        const unsigned long long ck = composite(key, i);
        best = ck > best ? ck : best;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const unsigned long long v = __shfl_xor_sync(kFullMask, best, o);
      best = v > best ? v : best;
    }
    if (lane == 0) red[warp] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < kThreads / 32; ++w) best = red[w] > best ? red[w] : best;
      atomicMax(&p.st[b].maxc, best);
    }
    __syncthreads();
  }
}

// ---- hist --------------------------------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kThreads) sample_hist_kernel(SampleParams p) {
  __shared__ uint32_t hc[kBins];
  __shared__ unsigned long long hm[kBins];
  __shared__ unsigned long long stage[kThreads];
  const int warp = threadIdx.x >> 5;
  for (int64_t b = blockIdx.y; b < p.B; b += gridDim.y) {
    const RowCfg c = row_cfg(p, b);
    if (!c.filtered) continue;  // block-uniform
    const T* x = static_cast<const T*>(p.logits) + b * p.stride;
    const float m = key_value(uint32_t(p.st[b].maxc >> 32));
    for (int i = threadIdx.x; i < kBins; i += kThreads) {
      hc[i] = 0;
      hm[i] = 0;
    }
    __syncthreads();
    const int64_t i0 = int64_t(blockIdx.x) * kChunk + threadIdx.x;
    for (int it = 0; it < kItems; ++it) {  // uniform trip count: warp_add is warp-collective
      const int64_t i = i0 + int64_t(it) * kThreads;
      const bool q = i < p.V;
      uint32_t bin = 0;
      unsigned long long mass = 0;
      if (q) {
        const float l = scaled(x[i], c.temp);
        bin = ord_key(l) >> 21;
        mass = mass_of(l, m, p.mass_scale);
      }
      warp_add(q, bin, mass, hc, hm, stage + warp * 32);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kBins; i += kThreads)
      if (hc[i]) {
        atomicAdd(p.hcnt + b * kBins + i, hc[i]);
        if (hm[i]) atomicAdd(p.hmass + b * kBins + i, hm[i]);
      }
    __syncthreads();
  }
}

// ---- plan / resolve (one block of kPlanThreads per row) -------------------------------------------------

struct BinChoice {
  int bin;
  unsigned long long count_before, mass_before, count;
};

struct EngineSmem {
  union {
    struct {
      uint32_t cnt[kBins];
      unsigned long long mass[kBins];
    } h;
    unsigned long long keys[kSortCap];
  } u;
  unsigned long long stage[kPlanThreads];
  unsigned long long scan[64];
  int iws[32];
  int pos_best, pos_first;
  unsigned n;
  BinChoice choice;
  unsigned long long result;
};

// Walks nb bins in rank order (bin nb - 1 first; cnt / mass in any memory) and picks:
//  - by count: the bin holding the token of rank `rank` (base_count tokens rank before bin nb - 1);
//  - by mass: the last nonempty bin whose first token's mass-before (base_mass plus the masses of the
//    bins before it) is below `limit` (the bin of the last kept token); if none, the first nonempty bin.
// Returns the bin, the count and mass of the tokens before it, and its count. Every thread gets it.
__device__ BinChoice bin_select(const uint32_t* cnt, const unsigned long long* mass, int nb, bool by_mass,
                                unsigned long long rank, unsigned long long base_count,
                                unsigned long long base_mass, double limit, EngineSmem& sm) {
  constexpr int kPer = kBins / kPlanThreads;
  uint32_t c[kPer];
  unsigned long long mm[kPer];
  unsigned long long cs = 0, ms = 0;
#pragma unroll
  for (int q = 0; q < kPer; ++q) {
    const int pos = threadIdx.x * kPer + q, bin = nb - 1 - pos;
    c[q] = pos < nb ? cnt[bin] : 0;
    mm[q] = pos < nb ? mass[bin] : 0;
    cs += c[q];
    ms += mm[q];
  }
  if (threadIdx.x == 0) {
    sm.pos_best = -1;
    sm.pos_first = INT_MAX;
    sm.choice = BinChoice{nb - 1, base_count, base_mass, 0};  // replaced below (consistent histograms)
  }
  block_excl_scan2(cs, ms, sm.scan);  // synchronises, so the initialisation above is visible
  const unsigned long long cs0 = base_count + cs, ms0 = base_mass + ms;
  unsigned long long cb = cs0, mb = ms0;
#pragma unroll
  for (int q = 0; q < kPer; ++q) {
    const int pos = threadIdx.x * kPer + q;
    if (pos < nb && c[q] > 0) {
      if (!by_mass) {
        if (cb <= rank && rank < cb + c[q]) sm.choice = BinChoice{nb - 1 - pos, cb, mb, c[q]};
      } else {
        atomicMin(&sm.pos_first, pos);
        if (double(mb) < limit) atomicMax(&sm.pos_best, pos);
      }
    }
    cb += c[q];
    mb += mm[q];
  }
  __syncthreads();
  if (by_mass) {
    const int chosen = sm.pos_best >= 0 ? sm.pos_best : sm.pos_first;
    cb = cs0;
    mb = ms0;
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
      if (threadIdx.x * kPer + q == chosen) sm.choice = BinChoice{nb - 1 - chosen, cb, mb, c[q]};
      cb += c[q];
      mb += mm[q];
    }
    __syncthreads();
  }
  const BinChoice ch = sm.choice;
  __syncthreads();
  return ch;
}

// The tokens a resolve step looks at: a list of indices, or the whole row restricted to first-digit bins
// lo..hi (when the list would have overflowed).
struct Source {
  const uint32_t* list;  // nullptr: the whole row
  int64_t n;             // list length or V
  unsigned lo, hi;
};

template <class T>
__device__ __forceinline__ bool source_token(const T* x, float temp, const Source& s, int64_t j, float& l,
                                             unsigned long long& ck) {
  const int64_t i = s.list ? int64_t(s.list[j]) : j;
  l = scaled(x[i], temp);
  const uint32_t key = ord_key(l);
  if (!s.list && ((key >> 21) < s.lo || (key >> 21) > s.hi)) return false;
  ck = composite(key, i);
  return true;
}

__device__ void bitonic_sort_desc(unsigned long long* keys, int n) {
  for (int k = 2; k <= n; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int ixj = i ^ j;
        if (ixj > i) {
          const unsigned long long a = keys[i], b = keys[ixj];
          if ((i & k) == 0 ? a < b : a > b) {
            keys[i] = b;
            keys[ixj] = a;
          }
        }
      }
      __syncthreads();
    }
}

// Finds the key of one token among the source tokens with ck >= floor_ck (at most bucket_n of them):
//  - by count: the token of rank `rank` (base_count of the counted tokens rank before all of them);
//  - by mass: the last token whose mass-before (base_mass plus the masses of the counted tokens ranking
//    before it) is below `limit` (the first token when none is).
// A radix descent over ck narrows the bucket until it holds <= kSortCap tokens, which are sorted.
template <class T>
__device__ unsigned long long select_cut(const T* x, float temp, float m, double mscale, const Source& src,
                                         bool by_mass, unsigned long long rank, unsigned long long base_count,
                                         unsigned long long base_mass, double limit, unsigned long long floor_ck,
                                         unsigned long long bucket_n, EngineSmem& sm) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned long long prefix = 0;  // the top `consumed` bits of the bucket's keys
  int consumed = 0;
  for (int level = 0; bucket_n > kSortCap && consumed < 64; ++level) {
    const int w = level % 3 == 2 ? 10 : 11, shift = 64 - consumed - w, nb = 1 << w;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) {
      sm.u.h.cnt[i] = 0;
      sm.u.h.mass[i] = 0;
    }
    __syncthreads();
    for (int64_t j0 = int64_t(warp) * 32; j0 < src.n; j0 += blockDim.x) {  // warp-uniform trip count
      const int64_t j = j0 + lane;
      bool q = false;
      uint32_t bin = 0;
      unsigned long long mass = 0;
      float l;
      unsigned long long ck;
      if (j < src.n && source_token(x, temp, src, j, l, ck) && ck >= floor_ck &&
          (consumed == 0 || (ck >> (64 - consumed)) == prefix)) {
        q = true;
        bin = uint32_t(ck >> shift) & uint32_t(nb - 1);
        if (by_mass) mass = mass_of(l, m, mscale);
      }
      warp_add(q, bin, mass, sm.u.h.cnt, sm.u.h.mass, sm.stage + warp * 32);
    }
    __syncthreads();
    const BinChoice ch = bin_select(sm.u.h.cnt, sm.u.h.mass, nb, by_mass, rank, base_count, base_mass, limit, sm);
    prefix = (prefix << w) | unsigned(ch.bin);
    consumed += w;
    base_count = ch.count_before;
    base_mass = ch.mass_before;
    bucket_n = ch.count;
  }
  if (consumed == 64) return prefix;  // the whole key: one token

  // Collect the bucket (order irrelevant: it is sorted next).
  if (threadIdx.x == 0) sm.n = 0;
  __syncthreads();
  for (int64_t j = threadIdx.x; j < src.n; j += blockDim.x) {
    float l;
    unsigned long long ck;
    if (source_token(x, temp, src, j, l, ck) && ck >= floor_ck &&
        (consumed == 0 || (ck >> (64 - consumed)) == prefix)) {
      const unsigned pos = atomicAdd(&sm.n, 1u);
      if (pos < unsigned(kSortCap)) sm.u.keys[pos] = ck;
    }
  }
  __syncthreads();
  const int n = int(min(sm.n, unsigned(kSortCap)));
  int npow = 1;
  while (npow < n) npow <<= 1;
  for (int i = n + threadIdx.x; i < npow; i += blockDim.x) sm.u.keys[i] = 0;  // padding sorts last
  __syncthreads();
  bitonic_sort_desc(sm.u.keys, npow);

  if (!by_mass) {
    if (threadIdx.x == 0) {
      const unsigned long long r = rank - base_count;  // < n for consistent data
      sm.result = sm.u.keys[n > 0 ? int(min(r, (unsigned long long)(n - 1))) : 0];
    }
  } else {
    constexpr int kPer = kSortCap / kPlanThreads;
    unsigned long long mm[kPer], s = 0, dummy = 0;
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
      const int j = threadIdx.x * kPer + q;
      mm[q] = j < n ? mass_of(key_value(uint32_t(sm.u.keys[j] >> 32)), m, mscale) : 0;
      s += mm[q];
    }
    block_excl_scan2(s, dummy, sm.scan);
    unsigned long long before = base_mass + s;
    int best = -1;
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
      const int j = threadIdx.x * kPer + q;
      if (j < n && double(before) < limit) best = j;
      before += mm[q];
    }
    best = block_max_int(best, sm.iws);
    if (threadIdx.x == 0) sm.result = sm.u.keys[best > 0 ? best : 0];
  }
  __syncthreads();
  const unsigned long long r = sm.result;
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kPlanThreads) sample_plan_kernel(SampleParams p) {
  __shared__ EngineSmem sm;
  for (int64_t b = blockIdx.x; b < p.B; b += gridDim.x) {
    const RowCfg c = row_cfg(p, b);
    if (!c.filtered) continue;  // block-uniform
    RowState& s = p.st[b];
    const uint32_t* hc = p.hcnt + b * kBins;
    const unsigned long long* hm = p.hmass + b * kBins;
    if (c.k < p.V) {
      // Resolve the k-th token among the tokens of its bin and above (top-p, if any, needs all of them).
      const BinChoice ch = bin_select(hc, hm, kBins, false, (unsigned long long)(c.k - 1), 0, 0, 0.0, sm);
      if (threadIdx.x == 0) {
        s.stage = 1;
        s.lo_bin = unsigned(ch.bin);
        s.hi_bin = kBins - 1;
        s.base_count = 0;
        s.base_mass = 0;
        s.range_n = ch.count_before + ch.count;
      }
    } else {
      unsigned long long part = 0;
      for (int i = threadIdx.x; i < kBins; i += kPlanThreads) part += hm[i];
      const unsigned long long total = block_sum(part, sm.scan);
      const double limit = double(c.top_p) * double(total);
      const BinChoice ch = bin_select(hc, hm, kBins, true, 0, 0, 0, limit, sm);
      if (threadIdx.x == 0) {
        s.stage = 2;
        s.lo_bin = s.hi_bin = unsigned(ch.bin);
        s.base_count = ch.count_before;
        s.base_mass = ch.mass_before;
        s.range_n = ch.count;
        s.limit = limit;
      }
    }
    __syncthreads();
  }
}

// ---- compact -----------------------------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kThreads) sample_compact_kernel(SampleParams p) {
  const int lane = threadIdx.x & 31;
  for (int64_t b = blockIdx.y; b < p.B; b += gridDim.y) {
    const RowState& s = p.st[b];
    const int stage = s.stage;
    const unsigned long long range_n = s.range_n;
    const unsigned lo = s.lo_bin, hi = s.hi_bin;
    if (stage == 0 || range_n > (unsigned long long)p.list_cap) continue;  // block-uniform
    const float temp = p.temperature[b];
    const T* x = static_cast<const T*>(p.logits) + b * p.stride;
    uint32_t* list = p.list + b * p.list_cap;
    const int64_t i0 = int64_t(blockIdx.x) * kChunk + threadIdx.x;
    for (int it = 0; it < kItems; ++it) {
      const int64_t i = i0 + int64_t(it) * kThreads;
      bool q = false;
      if (i < p.V) {
        const uint32_t bin = ord_key(scaled(x[i], temp)) >> 21;
        q = bin >= lo && bin <= hi;
      }
      const unsigned act = __ballot_sync(kFullMask, q);
      unsigned base = 0;
      if (lane == 0 && act) base = atomicAdd(&p.st[b].list_n, unsigned(__popc(act)));
      base = __shfl_sync(kFullMask, base, 0);
      if (q) {
        const unsigned pos = base + __popc(act & ((1u << lane) - 1u));
        if (pos < unsigned(p.list_cap)) list[pos] = uint32_t(i);
      }
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kPlanThreads) sample_resolve_kernel(SampleParams p) {
  __shared__ EngineSmem sm;
  for (int64_t b = blockIdx.x; b < p.B; b += gridDim.x) {
    const RowState s = p.st[b];
    if (s.stage == 0) continue;  // block-uniform
    const RowCfg c = row_cfg(p, b);
    const T* x = static_cast<const T*>(p.logits) + b * p.stride;
    const float m = key_value(uint32_t(s.maxc >> 32));
    Source src;
    src.lo = s.lo_bin;
    src.hi = s.hi_bin;
    if (s.range_n <= (unsigned long long)p.list_cap) {
      src.list = p.list + b * p.list_cap;
      src.n = std::min<int64_t>(int64_t(s.list_n), p.list_cap);
    } else {
      src.list = nullptr;
      src.n = p.V;
    }
    unsigned long long cut;
    if (s.stage == 1) {
      const unsigned long long kcut = select_cut(x, c.temp, m, p.mass_scale, src, false, (unsigned long long)(c.k - 1),
                                                 0, 0, 0.0, 0, s.range_n, sm);
      cut = kcut;
      if (c.use_p) {
        // The top-k's mass (all of it lies in the source), then top-p among the top-k.
        unsigned long long part = 0;
        for (int64_t j = threadIdx.x; j < src.n; j += blockDim.x) {
          float l;
          unsigned long long ck;
          if (source_token(x, c.temp, src, j, l, ck) && ck >= kcut) part += mass_of(l, m, p.mass_scale);
        }
        const unsigned long long total = block_sum(part, sm.scan);
        const double limit = double(c.top_p) * double(total);
        cut = select_cut(x, c.temp, m, p.mass_scale, src, true, 0, 0, 0, limit, kcut, s.range_n, sm);
      }
    } else {
      cut = select_cut(x, c.temp, m, p.mass_scale, src, true, 0, s.base_count, s.base_mass, s.limit, 0, s.range_n, sm);
    }
    if (threadIdx.x == 0) p.st[b].cut = cut;
    __syncthreads();
  }
}

// ---- race / final ----------------------------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kThreads) sample_race_kernel(SampleParams p) {
  __shared__ float redf[kThreads / 32];
  __shared__ double redv[kThreads / 32];
  __shared__ long long redi[kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t b = blockIdx.y; b < p.B; b += gridDim.y) {
    const RowCfg c = row_cfg(p, b);
    if (c.greedy) continue;  // block-uniform
    const T* x = static_cast<const T*>(p.logits) + b * p.stride;
    const unsigned long long maxc = p.st[b].maxc, cut = p.st[b].cut;
    const float m = key_value(uint32_t(maxc >> 32));
    // The first token is always kept; its race value bounds the winner's from below.
    const double v0 = gumbel_exact(philox_word0(uint64_t(composite_index(maxc)), c.step, c.seed));
    const int64_t i0 = int64_t(blockIdx.x) * kChunk + threadIdx.x;
    float vf[kItems];
    float best = -INFINITY;
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      vf[it] = -INFINITY;
      const int64_t i = i0 + int64_t(it) * kThreads;
      if (i < p.V) {
        const float l = scaled(x[i], c.temp);
        if (composite(ord_key(l), i) >= cut && !(shifted(l, m) + kMaxGumbel < v0)) {
          const float sh = l == m ? 0.0f : l - m;
          vf[it] = sh + gumbel_approx(philox_word0(uint64_t(i), c.step, c.seed));
          best = fmaxf(best, vf[it]);
        }
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) best = fmaxf(best, __shfl_xor_sync(kFullMask, best, o));
    if (lane == 0) redf[warp] = best;
    __syncthreads();
    for (int w = 0; w < kThreads / 32; ++w) best = fmaxf(best, redf[w]);
    // Exact float64 race values for the tokens near the chunk's best.
    double bv = 0.0;
    long long bi = -1;
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      if (vf[it] > -INFINITY && vf[it] >= best - kPrescreenTol) {
        const int64_t i = i0 + int64_t(it) * kThreads;
        const float l = scaled(x[i], c.temp);
        race_offer(bv, bi, shifted(l, m) + gumbel_exact(philox_word0(uint64_t(i), c.step, c.seed)), i);
      }
    }
    warp_race(bv, bi);
    if (lane == 0) {
      redv[warp] = bv;
      redi[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < kThreads / 32; ++w) race_offer(bv, bi, redv[w], redi[w]);
      p.race[b * p.nchunks + blockIdx.x] = RaceResult{bv, bi};
    }
    __syncthreads();
  }
}

__global__ void __launch_bounds__(128) sample_final_kernel(SampleParams p) {
  const int lane = threadIdx.x & 31;
  for (int64_t b = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5); b < p.B; b += int64_t(gridDim.x) * 4) {
    const RowCfg c = row_cfg(p, b);
    const unsigned long long maxc = p.st[b].maxc;
    if (c.greedy) {
      if (lane == 0) p.ids[b] = int32_t(composite_index(maxc));
      continue;
    }
    double bv = 0.0;
    long long bi = -1;
    for (int64_t q = lane; q < p.nchunks; q += 32) {
      const RaceResult r = p.race[b * p.nchunks + q];
      race_offer(bv, bi, r.v, r.idx);
    }
    warp_race(bv, bi);
    if (lane == 0) p.ids[b] = int32_t(bi >= 0 ? bi : composite_index(maxc));
  }
}

template <class T>
void launch_sample(ExecContext& ex, const SampleParams& p) {
  cudaStream_t st = stream(ex);
  const dim3 chunks(unsigned(p.nchunks), unsigned(std::min<int64_t>(p.B, 65535)));
  const unsigned rows = unsigned(std::min<int64_t>(p.B, int64_t(1) << 16));
  sample_max_kernel<T><<<chunks, kThreads, 0, st>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  sample_hist_kernel<T><<<chunks, kThreads, 0, st>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  sample_plan_kernel<<<rows, kPlanThreads, 0, st>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  sample_compact_kernel<T><<<chunks, kThreads, 0, st>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  sample_resolve_kernel<T><<<rows, kPlanThreads, 0, st>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  sample_race_kernel<T><<<chunks, kThreads, 0, st>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  sample_final_kernel<<<unsigned(std::min<int64_t>(ceil_div(p.B, 4), int64_t(1) << 16)), 128, 0, st>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
}

}  // namespace

opdev_status sample(ExecContext& ex, const sample_args& a) {
  const int64_t B = a.logits.size(0), V = a.logits.size(1);
  if (B == 0 || V == 0) return OPDEV_STATUS_SUCCESS;
  SampleParams p{};
  p.logits = a.logits.data;
  p.stride = B > 1 ? a.logits.strides[0] : 0;
  p.B = B;
  p.V = V;
  p.temperature = a.temperature.ptr<const float>();
  p.top_k = a.top_k.ptr<const int32_t>();
  p.top_p = a.top_p.ptr<const float>();
  p.seeds = a.seeds.ptr<const int64_t>();
  p.steps = a.steps.ptr<const int64_t>();
  p.ids = a.ids_out.ptr<int32_t>();
  p.nchunks = ceil_div(V, kChunk);
  p.list_cap = std::min<int64_t>(V, kListCap);
  int bits = 0;  // bits(V): V tokens of mass <= 2^S sum below 2^62
  while (bits < 63 && (int64_t(1) << bits) <= V) ++bits;
  p.mass_scale = std::ldexp(1.0, 62 - bits);

  auto align = [](size_t n) { return (n + 255) / 256 * 256; };
  const size_t st_bytes = align(sizeof(RowState) * size_t(B));
  const size_t hc_bytes = align(sizeof(uint32_t) * size_t(B) * kBins);
  const size_t hm_bytes = align(sizeof(unsigned long long) * size_t(B) * kBins);
  const size_t list_bytes = align(sizeof(uint32_t) * size_t(B) * size_t(p.list_cap));
  const size_t race_bytes = align(sizeof(RaceResult) * size_t(B) * size_t(p.nchunks));
  char* ws = static_cast<char*>(ex.scratch(st_bytes + hc_bytes + hm_bytes + list_bytes + race_bytes, 256));
  p.st = reinterpret_cast<RowState*>(ws);
  p.hcnt = reinterpret_cast<uint32_t*>(ws + st_bytes);
  p.hmass = reinterpret_cast<unsigned long long*>(ws + st_bytes + hc_bytes);
  p.list = reinterpret_cast<uint32_t*>(ws + st_bytes + hc_bytes + hm_bytes);
  p.race = reinterpret_cast<RaceResult*>(ws + st_bytes + hc_bytes + hm_bytes + list_bytes);
  OPDEV_CUDA_CHECK(cudaMemsetAsync(p.st, 0, sizeof(RowState) * size_t(B), stream(ex)));
  OPDEV_CUDA_FLOAT_SWITCH(a.logits.dtype, T, { launch_sample<T>(ex, p); });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
