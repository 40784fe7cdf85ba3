// cuda: moe_gating_topk, moe_permute, moe_unpermute.
//
// moe_gating_topk: one warp per token (4 warps per block, grid-stride over tokens). The warp computes the
// token's scores in float64 into a per-warp slot (shared memory when 4 slots fit in 48 KiB, i.e. E up to
// about 1400; otherwise slots in scratch memory and a capped grid): softmax (max, exp, sum, divide) or
// sigmoid, plus the correction bias, with the float64 reference's formulas, so that the selection order
// is the reference's (the cpu backend reaches the same order with float32 keys checked against an error
// bound and a float64 re-selection; here float64 is cheap enough to use always). Selection is a sequence
// of warp-wide argmax passes under the strict total order "descending key, NaN after every number, lower
// index first": the j-th pick is the best candidate ranking after the (j-1)-th, so no candidate needs to
// be marked. Groups (n_group > 1, topk_group < n_group): each lane scores whole groups (sum of the two
// best keys of the group), topk_group passes pick the groups, then the k expert passes skip experts of
// groups not picked. Weights are the unbiased scores of the chosen experts (recomputed with the same
// float64 operations), renormalised by their sum in slot order, times routed_scaling_factor, rounded to
// float32 once.
//
// moe_permute: a stable counting sort of the flat indices i = t*k + j by expert, in integer arithmetic
// (deterministic whatever the thread scheduling). An expert id outside [0, E) (device data) goes to an
// extra bucket E after all experts: its sorted_rows entries follow the valid ones (sorted_rows stays a
// permutation), expert_offsets[E] counts the valid rows only, its permuted_x row is written as zeros and
// the op's bit is set in the error word. The flat indices are cut into tiles of TS (>= 1024) indices,
// one warp per tile:
//   1. count: the warp walks its tile 32 indices at a time; __match_any_sync groups equal buckets and the
//      lowest lane of a group adds the group's size to the tile's private row of counts M[tile][bucket];
//   2. column scan: one warp per bucket turns M[.][bucket] into exclusive prefix counts over the tiles
//      and writes the bucket's total;
//   3. scan: one block turns the E+1 totals into bucket starts (and writes expert_offsets);
//   4. scatter: each warp walks its tile again in order; an index goes to start[b] + M[tile][b] + (its
//      rank among the equal buckets of the 32), and the group's leader advances M[tile][b]. Walking in
//      order makes the sort stable.
// A problem with one tile (T*k <= 1024, e.g. decode) runs all four steps in one single-block kernel. Then
// a gather copies the rows of x (raw bits, in the widest of 16/8/4/2-byte units that the row bytes, strides
// and pointers allow).
//
// moe_unpermute: the inverse of sorted_rows in scratch (inv[sorted_rows[r]] = r, with atomicMax so that a
// duplicated value on the device gives the same result every run; an out-of-range value is skipped and
// reported; a flat index left without a row zeroes its token's output row and is reported). Then one block of
// 128 threads per (token, column chunk), a thread per 16-byte vector of columns (one column when rows or
// pointers do not allow vectors), accumulates sum_j w[t, j] * y[inv[t*k + j]] with fmaf in float32 in slot
// order j = 0..k-1 (as the cpu backend) and rounds once.
#include <algorithm>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ int64_t ceil_div_dev(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- moe_gating_topk ------------------------------------------------------------------------------------

constexpr int kGateWarps = 4;

struct GateParams {
  const void* logits;
  int64_t logits_stride;
  const float* bias;  // nullptr: no correction bias
  float* weights;
  int64_t weights_stride;
  int32_t* ids;
  int64_t ids_stride;
  int64_t tokens, E, k, gsize;
  int64_t G, topk_group;
  bool softmax, renormalize, grouped;
  double scale;
  unsigned char* global_slots;  // nullptr: the per-warp slots live in shared memory
  int64_t slot_bytes;
};

// "x (index a) ranks before y (index b)": descending key, every NaN after every number, equal keys (and
// NaNs among themselves) toward the lower index. The cpu backend's RanksBefore.
__device__ __forceinline__ bool ranks_before(double x, long long a, double y, long long b) {
  const bool nx = x != x, ny = y != y;
  if (nx || ny) return nx == ny ? a < b : ny;
  return x > y || (x == y && a < b);
}

struct Cand {
  double key;
  long long idx;  // < 0: none
};

__device__ __forceinline__ void offer(Cand& c, double key, long long idx) {
  if (c.idx < 0 || ranks_before(key, idx, c.key, c.idx)) {
    c.key = key;
    c.idx = idx;
  }
}

// The best candidate of the warp (every lane gets it: the best of a strict total order is unique).
__device__ __forceinline__ Cand warp_best(Cand c) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const double k = __shfl_xor_sync(kFullMask, c.key, o);
    const long long i = __shfl_xor_sync(kFullMask, c.idx, o);
    if (i >= 0) offer(c, k, i);
  }
  return c;
}

// Candidates of a pass: those ranking after the previous pick (all when there is none).
__device__ __forceinline__ bool ranks_after(const Cand& prev, double key, long long idx) {
  return prev.idx < 0 || ranks_before(prev.key, prev.idx, key, idx);
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

template <class T>
__global__ void __launch_bounds__(kGateWarps * 32) gating_kernel(GateParams p) {
  extern __shared__ __align__(16) unsigned char gate_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t gw = int64_t(blockIdx.x) * kGateWarps + warp, nw = int64_t(gridDim.x) * kGateWarps;
  unsigned char* slot = p.global_slots ? p.global_slots + gw * p.slot_bytes : gate_smem + warp * p.slot_bytes;
  // Slot layout: key[E] (float64), gscore[G] (float64), chosen[k] (int32), kept[G] (int32).
  double* key = reinterpret_cast<double*>(slot);
  double* gscore = key + p.E;
  int32_t* chosen = reinterpret_cast<int32_t*>(gscore + p.G);
  int32_t* kept = chosen + p.k;
  const int64_t E = p.E, gs = p.gsize;

  for (int64_t t = gw; t < p.tokens; t += nw) {
    const T* l = static_cast<const T*>(p.logits) + t * p.logits_stride;
    // Scores s and keys s + bias, float64 (the reference's formulas). Each lane owns e = lane + 32 i.
    double mx = -INFINITY, sum = 1.0;
    if (p.softmax) {
      for (int64_t e = lane; e < E; e += 32) {
        const double v = double(to_float<T>(l[e]));
        key[e] = v;
        mx = mx < v ? v : mx;  // std::max(mx, v): a NaN v leaves mx
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const double v = __shfl_xor_sync(kFullMask, mx, o);
        mx = mx < v ? v : mx;
      }
      double part = 0.0;
      for (int64_t e = lane; e < E; e += 32) {
        const double ev = exp(key[e] - mx);
        key[e] = ev;
        part += ev;
      }
      sum = warp_sum_d(part);  // a NaN or +inf logit (or all -inf) makes it, and every score, NaN
      for (int64_t e = lane; e < E; e += 32) {
        const double s = key[e] / sum;
        key[e] = p.bias ? s + double(p.bias[e]) : s;
      }
    } else {
      for (int64_t e = lane; e < E; e += 32) {
        const double s = 1.0 / (1.0 + exp(-double(to_float<T>(l[e]))));
        key[e] = p.bias ? s + double(p.bias[e]) : s;
      }
    }
    __syncwarp();

    // Groups: score = the sum of the group's two best keys (its only key for groups of one); keep the
    // topk_group best groups.
    if (p.grouped) {
      for (int64_t g = lane; g < p.G; g += 32) {
        Cand b1{0.0, -1}, b2{0.0, -1};
        for (int64_t e = g * gs; e < (g + 1) * gs; ++e) {
          const double v = key[e];
          if (b1.idx < 0 || ranks_before(v, e, b1.key, b1.idx)) {
            b2 = b1;
            b1 = Cand{v, e};
          } else if (b2.idx < 0 || ranks_before(v, e, b2.key, b2.idx)) {
            b2 = Cand{v, e};
          }
        }
        gscore[g] = gs == 1 ? b1.key : b1.key + b2.key;
        kept[g] = 0;
      }
      __syncwarp();
      Cand prev{0.0, -1};
      for (int64_t i = 0; i < p.topk_group; ++i) {
        Cand c{0.0, -1};
        for (int64_t g = lane; g < p.G; g += 32) {
          const double v = gscore[g];
          if (ranks_after(prev, v, g)) offer(c, v, g);
        }
        c = warp_best(c);
        if (c.idx < 0) break;  // not reached: topk_group <= n_group
        if (lane == 0) kept[c.idx] = 1;
        prev = c;
      }
      __syncwarp();
    }

    // Experts: k passes, the j-th pick the best eligible expert ranking after the (j-1)-th.
    Cand prev{0.0, -1};
    int32_t* ids = p.ids + t * p.ids_stride;
    for (int64_t j = 0; j < p.k; ++j) {
      Cand c{0.0, -1};
      for (int64_t e = lane; e < E; e += 32) {
        if (p.grouped && !kept[uint32_t(e) / uint32_t(gs)]) continue;  // E < 2^31
        const double v = key[e];
        if (ranks_after(prev, v, e)) offer(c, v, e);
      }
      c = warp_best(c);
      // The front-end guarantees k <= the eligible experts, so a pick always exists; stay in bounds anyway.
      const int32_t id = c.idx < 0 ? 0 : int32_t(c.idx);
      if (lane == 0) {
        chosen[j] = id;
        ids[j] = id;
      }
      if (c.idx >= 0) prev = c;
    }
    __syncwarp();

    // Weights: the unbiased scores of the chosen experts (the same float64 operations as above, so the
    // same bits), summed in slot order, renormalised, scaled, rounded once.
    double* sv = key;  // the keys are no longer needed: sv[j] = s of slot j (k <= E)
    for (int64_t j = lane; j < p.k; j += 32) {
      const double v = double(to_float<T>(l[chosen[j]]));
      sv[j] = p.softmax ? exp(v - mx) / sum : 1.0 / (1.0 + exp(-v));
    }
    __syncwarp();
    double wsum = 0.0;
    if (lane == 0)
      for (int64_t j = 0; j < p.k; ++j) wsum += sv[j];
    wsum = __shfl_sync(kFullMask, wsum, 0);
    float* w = p.weights + t * p.weights_stride;
    for (int64_t j = lane; j < p.k; j += 32) {
      double v = sv[j];
      if (p.renormalize) v /= wsum;
      w[j] = float(v * p.scale);
    }
    __syncwarp();  // the slot is reused by the warp's next token
  }
}

// ---- moe_permute ----------------------------------------------------------------------------------------

struct PermuteParams {
  const void* ids;
  bool ids64;
  int64_t ids_stride;
  int64_t k, R, E, NB;  // NB = E + 1 buckets (bucket E: out-of-range ids)
  int64_t tile, ntiles;
  int32_t* M;           // [ntiles][NB]: per-tile counts, then per-tile cursors
  int32_t* S;           // [NB]: bucket totals, then bucket starts (S[E] = the number of valid rows)
  int32_t* rows;        // sorted_rows [R]
  int64_t* offsets;     // expert_offsets [E+1]
  unsigned* error_word;
};

__device__ __forceinline__ long long bucket_of(const PermuteParams& p, int64_t i, bool& bad) {
  // i < R <= 2^31 - 1 (front-end), so 32-bit division is exact (and has no 64-bit division call).
  const int64_t t = uint32_t(i) / uint32_t(p.k), j = i - t * p.k, off = t * p.ids_stride + j;
  const int64_t id =
      p.ids64 ? static_cast<const int64_t*>(p.ids)[off] : int64_t(static_cast<const int32_t*>(p.ids)[off]);
  bad = id < 0 || id >= p.E;
  return bad ? p.E : id;
}

// Counts the buckets of flat indices [lo, hi) into row (zeroed by the caller). Called by a whole warp.
__device__ void warp_count_tile(const PermuteParams& p, int32_t* row, int64_t lo, int64_t hi) {
  const int lane = threadIdx.x & 31;
  for (int64_t base = lo; base < hi; base += 32) {
    const int64_t i = base + lane;
    const bool in = i < hi;
    bool bad = false;
    const long long b = in ? bucket_of(p, i, bad) : 0;
    if (in && bad) report_bad_index(p.error_word, OPDEV_OP_MOE_PERMUTE);
    const unsigned act = __ballot_sync(kFullMask, in);
    if (in) {
      const unsigned peers = __match_any_sync(act, b);
      if (lane == __ffs(peers) - 1) row[b] += __popc(peers);
    }
    __syncwarp();
  }
}

// Places the flat indices [lo, hi) in order: index i of bucket b goes to S[b] + row[b] + (its rank among
// the lanes of the same step with bucket b); row[b] then advances. Called by a whole warp.
__device__ void warp_scatter_tile(const PermuteParams& p, int32_t* row, int64_t lo, int64_t hi) {
  const int lane = threadIdx.x & 31;
  for (int64_t base = lo; base < hi; base += 32) {
    const int64_t i = base + lane;
    const bool in = i < hi;
    bool bad = false;
    const long long b = in ? bucket_of(p, i, bad) : 0;
    const unsigned act = __ballot_sync(kFullMask, in);
    unsigned peers = 0;
    if (in) {
      peers = __match_any_sync(act, b);
      const int rank = __popc(peers & ((1u << lane) - 1u));
      p.rows[int64_t(p.S[b]) + row[b] + rank] = int32_t(i);
    }
    __syncwarp();  // every lane has read row[b] before its leader advances it
    if (in && lane == __ffs(peers) - 1) row[b] += __popc(peers);
    __syncwarp();
  }
}

// Exclusive scan of S[0..NB) in place (one block, blockDim a multiple of 32); also writes expert_offsets.
__device__ void block_scan_starts(const PermuteParams& p) {
  __shared__ long long warp_total[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  long long carry = 0;
  for (int64_t base = 0; base < p.NB; base += blockDim.x) {
    const int64_t b = base + threadIdx.x;
    const long long v = b < p.NB ? p.S[b] : 0;
    long long x = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const long long y = __shfl_up_sync(kFullMask, x, o);
      if (lane >= o) x += y;
    }
    if (lane == 31) warp_total[warp] = x;
    __syncthreads();
    if (warp == 0) {
      long long w = lane < nwarps ? warp_total[lane] : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const long long y = __shfl_up_sync(kFullMask, w, o);
        if (lane >= o) w += y;
      }
      if (lane < nwarps) warp_total[lane] = w;
    }
    __syncthreads();
    const long long before = carry + (warp > 0 ? warp_total[warp - 1] : 0) + x - v;
    if (b < p.NB) {
      p.S[b] = int32_t(before);
      p.offsets[b] = before;
    }
    carry += warp_total[nwarps - 1];
    __syncthreads();
  }
}

// One tile (T*k <= TS): everything in one block.
__global__ void __launch_bounds__(256) permute_small_kernel(PermuteParams p) {
  int32_t* row = p.M;
  for (int64_t b = threadIdx.x; b < p.NB; b += blockDim.x) row[b] = 0;
  __syncthreads();
  if (threadIdx.x < 32) warp_count_tile(p, row, 0, p.R);
  __syncthreads();
  for (int64_t b = threadIdx.x; b < p.NB; b += blockDim.x) {
    p.S[b] = row[b];
    row[b] = 0;
  }
  __syncthreads();
  block_scan_starts(p);
  __syncthreads();
  if (threadIdx.x < 32) warp_scatter_tile(p, row, 0, p.R);
}

__global__ void __launch_bounds__(128) permute_count_kernel(PermuteParams p) {
  const int64_t tile = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (tile >= p.ntiles) return;  // warp-uniform
  int32_t* row = p.M + tile * p.NB;
  for (int64_t b = threadIdx.x & 31; b < p.NB; b += 32) row[b] = 0;
  __syncwarp();
  const int64_t lo = tile * p.tile;
  warp_count_tile(p, row, lo, min(p.R, lo + p.tile));
}

// One warp per bucket: exclusive prefix counts over the tiles, the bucket's total into S.
__global__ void __launch_bounds__(128) permute_colscan_kernel(PermuteParams p) {
  const int64_t b = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (b >= p.NB) return;  // warp-uniform
  const int lane = threadIdx.x & 31;
  long long carry = 0;
  for (int64_t t0 = 0; t0 < p.ntiles; t0 += 32) {
    const int64_t t = t0 + lane;
    const long long v = t < p.ntiles ? p.M[t * p.NB + b] : 0;
    long long x = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const long long y = __shfl_up_sync(kFullMask, x, o);
      if (lane >= o) x += y;
    }
    if (t < p.ntiles) p.M[t * p.NB + b] = int32_t(carry + x - v);
    carry += __shfl_sync(kFullMask, x, 31);
  }
  if (lane == 0) p.S[b] = int32_t(carry);
}

__global__ void __launch_bounds__(1024) permute_scan_kernel(PermuteParams p) { block_scan_starts(p); }

__global__ void __launch_bounds__(128) permute_scatter_kernel(PermuteParams p) {
  const int64_t tile = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (tile >= p.ntiles) return;  // warp-uniform
  const int64_t lo = tile * p.tile;
  warp_scatter_tile(p, p.M + tile * p.NB, lo, min(p.R, lo + p.tile));
}

struct GatherParams {
  void* out;
  const void* x;
  const int32_t* rows;
  const int32_t* nvalid;  // rows r >= *nvalid came from out-of-range ids: zeros
  int64_t R, k;
  int64_t units;                  // units of U per row
  int64_t out_stride, x_stride;   // in units of U
};

template <class U>
__global__ void __launch_bounds__(256) permute_gather_kernel(GatherParams g) {
  const int64_t nvalid = *g.nvalid;
  for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < g.R; r += int64_t(gridDim.y) * blockDim.y) {
    U* dst = static_cast<U*>(g.out) + r * g.out_stride;
    const int64_t c0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
    if (r >= nvalid) {
      for (int64_t c = c0; c < g.units; c += step) dst[c] = U{};
      continue;
    }
    const U* src = static_cast<const U*>(g.x) + int64_t(uint32_t(g.rows[r]) / uint32_t(g.k)) * g.x_stride;
    for (int64_t c = c0; c < g.units; c += step) dst[c] = src[c];
  }
}

// blockDim.x a power of two <= 256 sized to the row's units; blockDim.y = 256 / blockDim.x rows.
void gather_dims(int64_t rows, int64_t units, dim3& grid, dim3& block) {
  unsigned bx = 1;
  while (bx < 256 && int64_t(bx) < units) bx <<= 1;
  block = dim3(bx, 256 / bx, 1);
  grid = dim3(unsigned(std::min<int64_t>(ceil_div(units, bx), int64_t(1) << 16)),
              unsigned(std::min<int64_t>(ceil_div(rows, block.y), 65535)), 1);
}

template <class U>
void launch_gather(ExecContext& ex, GatherParams g, int64_t row_bytes, int64_t out_sb, int64_t x_sb) {
  g.units = row_bytes / int64_t(sizeof(U));
  g.out_stride = out_sb / int64_t(sizeof(U));
  g.x_stride = x_sb / int64_t(sizeof(U));
  dim3 grid, block;
  gather_dims(g.R, g.units, grid, block);
  permute_gather_kernel<U><<<grid, block, 0, stream(ex)>>>(g);
  OPDEV_CUDA_CHECK_LAUNCH();
}

// ---- moe_unpermute --------------------------------------------------------------------------------------

__global__ void __launch_bounds__(256) unpermute_inverse_kernel(const int32_t* rows, int32_t* inv, int64_t R,
                                                               unsigned* error_word) {
  for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < R; r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = rows[r];
    if (v < 0 || v >= R) report_bad_index(error_word, OPDEV_OP_MOE_UNPERMUTE);
    else atomicMax(inv + v, int32_t(r));
  }
}

struct UnpermuteParams {
  void* out;
  const void* y;
  const float* w;
  const int32_t* inv;
  int64_t tokens, H, k;
  int64_t out_stride, y_stride, w_stride;  // elements
  unsigned* error_word;
};

constexpr int kUnpermuteThreads = 128;

// W = elements per thread access: kVec<T> (16-byte vectors) or 1.
template <class T, int W>
__global__ void __launch_bounds__(kUnpermuteThreads) unpermute_kernel(UnpermuteParams p) {
  const int64_t chunk = int64_t(kUnpermuteThreads) * W, nchunks = ceil_div_dev(p.H, chunk);
  for (int64_t item = blockIdx.x; item < p.tokens * nchunks; item += gridDim.x) {
    const int64_t t = item / nchunks, h = (item - t * nchunks) * chunk + int64_t(threadIdx.x) * W;
    const int32_t* inv = p.inv + t * p.k;
    const float* w = p.w + t * p.w_stride;
    T* o = static_cast<T*>(p.out) + t * p.out_stride;
    bool ok = true;
    for (int64_t j = 0; j < p.k; ++j) ok = ok && inv[j] >= 0;
    if (!ok) {  // sorted_rows was not a permutation: a slot has no row
      if (h == 0) report_bad_index(p.error_word, OPDEV_OP_MOE_UNPERMUTE);
      if (h < p.H)
        for (int q = 0; q < W; ++q) o[h + q] = from_float<T>(0.0f);
      continue;
    }
    if (h >= p.H) continue;
    float acc[W];
#pragma unroll
    for (int q = 0; q < W; ++q) acc[q] = 0.0f;
    for (int64_t j = 0; j < p.k; ++j) {
      const float wj = w[j];
      const T* y = static_cast<const T*>(p.y) + int64_t(inv[j]) * p.y_stride + h;
      if constexpr (W > 1) {
        float v[W];
        load_vec<T>(y, v);
#pragma unroll
        for (int q = 0; q < W; ++q) acc[q] = fmaf(wj, v[q], acc[q]);
      } else {
        acc[0] = fmaf(wj, to_float<T>(y[0]), acc[0]);
      }
    }
    if constexpr (W > 1) {
      store_vec<T>(o + h, acc);
    } else {
      o[h] = from_float<T>(acc[0]);
    }
  }
}

}  // namespace

// ---- host entry points -------------------------------------------------------------------------------------

opdev_status moe_gating_topk(ExecContext& ex, const moe_gating_topk_args& a) {
  const int64_t tokens = a.logits.size(0), E = a.logits.size(1), k = a.topk_ids.size(1);
  if (tokens == 0) return OPDEV_STATUS_SUCCESS;
  GateParams p{};
  p.logits = a.logits.data;
  p.logits_stride = a.logits.strides[0];
  p.bias = a.correction_bias.present ? a.correction_bias.ptr<const float>() : nullptr;
  p.weights = a.topk_weights.ptr<float>();
  p.weights_stride = a.topk_weights.strides[0];
  p.ids = a.topk_ids.ptr<int32_t>();
  p.ids_stride = a.topk_ids.strides[0];
  p.tokens = tokens;
  p.E = E;
  p.k = k;
  p.G = a.n_group;
  p.gsize = E / a.n_group;
  p.topk_group = a.topk_group;
  p.softmax = a.scoring == OPDEV_MOE_SCORING_SOFTMAX;
  p.renormalize = a.renormalize;
  p.grouped = a.n_group > 1 && a.topk_group < a.n_group;
  p.scale = a.routed_scaling_factor;
  p.slot_bytes = (8 * E + 8 * p.G + 4 * k + 4 * p.G + 15) / 16 * 16;
  const int64_t block_bytes = kGateWarps * p.slot_bytes;
  int64_t blocks = ceil_div(tokens, kGateWarps);
  size_t smem = 0;
  if (block_bytes <= 48 * 1024) {
    smem = size_t(block_bytes);
    blocks = std::min<int64_t>(blocks, int64_t(1) << 20);
  } else {
    // Large E: the slots go to scratch memory, at most 256 MiB of them (the warps loop over the tokens).
    const int64_t cap = std::max<int64_t>(1, std::min<int64_t>(1024, (int64_t(256) << 20) / block_bytes));
    blocks = std::clamp<int64_t>(blocks, 1, cap);
    p.global_slots = static_cast<unsigned char*>(ex.scratch(size_t(blocks * block_bytes), 256));
  }
  OPDEV_CUDA_FLOAT_SWITCH(a.logits.dtype, T, {
    gating_kernel<T><<<unsigned(blocks), kGateWarps * 32, smem, stream(ex)>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status moe_permute(ExecContext& ex, const moe_permute_args& a) {
  const int64_t tokens = a.x.size(0), H = a.x.size(1), k = a.topk_ids.size(1), R = tokens * k;
  const int64_t E = a.expert_offsets.size(0) - 1, NB = E + 1;
  cudaStream_t st = stream(ex);
  if (R == 0) {
    OPDEV_CUDA_CHECK(cudaMemsetAsync(a.expert_offsets.data, 0, sizeof(int64_t) * size_t(NB), st));
    return OPDEV_STATUS_SUCCESS;
  }
  PermuteParams p{};
  p.ids = a.topk_ids.data;
  p.ids64 = a.topk_ids.dtype == DType::I64;
  p.ids_stride = a.topk_ids.strides[0];
  p.k = k;
  p.R = R;
  p.E = E;
  p.NB = NB;
  p.rows = a.sorted_rows.ptr<int32_t>();
  p.offsets = a.expert_offsets.ptr<int64_t>();
  p.error_word = state(ex).error_word;
  // Tiles of >= 1024 indices, at most 1024 of them and at most 2^24 cells of M.
  constexpr int64_t kMinTile = 1024, kMaxTiles = 1024, kMaxCells = int64_t(1) << 24;
  int64_t ntiles = std::min(ceil_div(R, kMinTile), kMaxTiles);
  ntiles = std::max<int64_t>(1, std::min(ntiles, kMaxCells / NB));
  p.tile = ceil_div(ceil_div(R, ntiles), 32) * 32;
  p.ntiles = ceil_div(R, p.tile);
  char* ws = static_cast<char*>(ex.scratch(sizeof(int32_t) * size_t(p.ntiles * NB + NB) + 256, 256));
  p.M = reinterpret_cast<int32_t*>(ws);
  p.S = p.M + p.ntiles * NB;
  if (p.ntiles == 1) {
    permute_small_kernel<<<1, 256, 0, st>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
  } else {
    permute_count_kernel<<<unsigned(ceil_div(p.ntiles, 4)), 128, 0, st>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
    permute_colscan_kernel<<<unsigned(ceil_div(NB, 4)), 128, 0, st>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
    permute_scan_kernel<<<1, 1024, 0, st>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
    permute_scatter_kernel<<<unsigned(ceil_div(p.ntiles, 4)), 128, 0, st>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
  }
  if (H == 0) return OPDEV_STATUS_SUCCESS;

  GatherParams g{};
  g.out = a.permuted_x.data;
  g.x = a.x.data;
  g.rows = p.rows;
  g.nvalid = p.S + E;
  g.R = R;
  g.k = k;
  const int64_t size = int64_t(a.x.itemsize()), row_bytes = H * size;
  // Strides of size-1 dimensions are never stepped.
  const int64_t out_sb = R > 1 ? a.permuted_x.strides[0] * size : 0;
  const int64_t x_sb = tokens > 1 ? a.x.strides[0] * size : 0;
  const int64_t all = row_bytes | out_sb | x_sb | int64_t(reinterpret_cast<uintptr_t>(a.permuted_x.data)) |
                      int64_t(reinterpret_cast<uintptr_t>(a.x.data));
  if (all % 16 == 0) launch_gather<uint4>(ex, g, row_bytes, out_sb, x_sb);
  else if (all % 8 == 0) launch_gather<uint2>(ex, g, row_bytes, out_sb, x_sb);
  else if (all % 4 == 0) launch_gather<uint32_t>(ex, g, row_bytes, out_sb, x_sb);
  else launch_gather<uint16_t>(ex, g, row_bytes, out_sb, x_sb);
  return OPDEV_STATUS_SUCCESS;
}

opdev_status moe_unpermute(ExecContext& ex, const moe_unpermute_args& a) {
  const int64_t tokens = a.out.size(0), H = a.out.size(1), k = a.topk_weights.size(1), R = tokens * k;
  if (tokens == 0 || H == 0) return OPDEV_STATUS_SUCCESS;
  cudaStream_t st = stream(ex);
  UnpermuteParams p{};
  p.out = a.out.data;
  p.y = a.permuted_y.data;
  p.w = a.topk_weights.ptr<const float>();
  p.tokens = tokens;
  p.H = H;
  p.k = k;
  p.out_stride = tokens > 1 ? a.out.strides[0] : 0;
  p.y_stride = R > 1 ? a.permuted_y.strides[0] : 0;
  p.w_stride = a.topk_weights.strides[0];
  p.error_word = state(ex).error_word;
  if (R > 0) {
    int32_t* inv = static_cast<int32_t*>(ex.scratch(sizeof(int32_t) * size_t(R), 256));
    OPDEV_CUDA_CHECK(cudaMemsetAsync(inv, 0xFF, sizeof(int32_t) * size_t(R), st));  // -1: no row yet
    unpermute_inverse_kernel<<<grid_for(R, 256), 256, 0, st>>>(a.sorted_rows.ptr<const int32_t>(), inv, R,
                                                                p.error_word);
    OPDEV_CUDA_CHECK_LAUNCH();
    p.inv = inv;
  }
  OPDEV_CUDA_FLOAT_SWITCH(a.out.dtype, T, {
    const bool vec = vec16_rows_ok(a.out, H, p.out_stride) && vec16_rows_ok(a.permuted_y, H, p.y_stride);
    const int64_t chunk = int64_t(kUnpermuteThreads) * (vec ? kVec<T> : 1);
    const unsigned grid = grid_for(tokens * ceil_div(H, chunk), 1);
    if (vec) unpermute_kernel<T, kVec<T>><<<grid, kUnpermuteThreads, 0, st>>>(p);
    else unpermute_kernel<T, 1><<<grid, kUnpermuteThreads, 0, st>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
  });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
