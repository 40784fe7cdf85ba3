// cuda: paged_attention (prefill, chunked prefill, decode and speculative decode in one op).
//
// Work is organised per sequence and decided on the device (the host knows Tq and B but not the
// per-sequence q_len / kv_len). A one-block prologue kernel validates cu_seqlens_q and seq_lens_kv,
// records each sequence (q0, q_len, kv_len, bad flag) and builds two work lists as prefix sums of
// per-sequence item counts; the main kernels get grids sized by host-side upper bounds (kv length bound:
// max_blocks * block_size), find their sequence by binary search in the prefix sums, and blocks past the
// list exit at once.
//
//  - Short sequences (q_len <= kShortQ = 8: decode, speculative decode), every dtype and head_dim:
//    split-KV flash decoding on CUDA cores (attn_simt_kernel). A block = 4 warps handles one query
//    position x up to 8 query heads of one GQA group (so each K/V byte is read once per group of <= 8
//    heads), for one range of kpb keys (a split). Lanes split head_dim in 16-byte chunks (LK lanes per
//    key, 32 / LK keys per warp step); the K and V rows of a warp's next two steps are in flight (16-byte
//    loads into a register ring) while a step is computed. Scores are reduced over the LK lanes with
//    shuffles; each lane group runs its own online softmax in float32 (p = exp2((s - m) * log2 e)), and
//    the groups / warps merge in a fixed order (butterfly, then warps 1, 2, 3 into warp 0). With one split
//    the block writes out / lse; otherwise it writes (max, sum, unnormalised acc) per row and split to
//    scratch and attn_combine_kernel reduces the splits in split order. The split comes from the SM count
//    and the kv bound; in deterministic mode kpb is fixed (kDetKeysPerSplit), so a row's bits do not
//    depend on the batch (one split gives the same bits as the combine of one). The price: the split
//    count, and the float32 partials in scratch (items x kv heads x splits x rows x head_dim), follow the
//    block table's width rather than the real kv lengths: a 512-sequence decode over a 131072-key wide
//    table at Hk = 8, G = 8, D = 128 needs 1 GiB (OUT_OF_MEMORY where the device lacks it).
//  - Long sequences (q_len > 8), bf16 / f16 with head_dim 64, 128 or 256 and 16-byte aligned rows:
//    FlashAttention-2 style tensor-core kernel (attn_tc_kernel). A block = 4 warps handles 64 query rows
//    (16 per warp) of one query head; K/V tiles of BN keys (64; 32 for head_dim 256) are gathered from the
//    paged cache (each key's block and slot through the block table, computed per tile into shared memory
//    two tiles ahead) with cp.async into double-buffered, XOR-swizzled shared memory; S = Q K^T with
//    mma.sync m16n8k16 (float32 accumulation, ldmatrix fragments), online softmax in registers (exp2f,
//    log2 e folded into one fma), causal tiles past the tile's last visible key skipped and only diagonal /
//    tail tiles masked. P V on tensor cores, in the context's AttnP mode (cuda_common.cuh): by default P is
//    rounded to the dtype once, as FlashAttention-2 does (docs/OPS.md's bound adds that rounding); with
//    OPDEV_CUDA_ATTN_P=split it is split into 3 bf16 terms (hi + mid + lo, 24 bits) or 2 f16 terms (22
//    bits), each multiplied with V, so P stays exact. f16 scales P by 2^15 so that small weights stay
//    normal (the scale cancels in out = acc / l) and sums each 32 keys' P V in fresh registers before
//    adding it to the output in float32 (the tensor cores' truncating accumulation would otherwise err
//    relative to the running output, visible at f16's tolerance). Head dim
//    256 runs two blocks per tile (grid z), each owning 128 output columns and recomputing S, so the output
//    accumulator fits in registers. The output tile is staged through shared memory for 16-byte stores.
//  - Long sequences otherwise (float32, other head dims, unaligned views): attn_simt_kernel without
//    splits, items of up to 8 rows (query positions x heads of a group).
//
// Index data on the device is checked where it is used: a sequence with cu_seqlens_q entries out of order
// or outside [0, Tq] is skipped; one with seq_lens_kv outside [0, max_blocks * block_size] gets zero rows
// (lse -inf); a block-table entry outside [0, num_blocks) on a visible key zeroes the rows of the tile /
// item that reads it. Each sets the op's bit in the error word (report_bad_index).
#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

constexpr int kShortQ = 8;              // q_len <= kShortQ: split-KV path
constexpr int kWarps = 4;               // warps per block of every main kernel
constexpr int kThreads = 32 * kWarps;
constexpr int kTcRows = 64;             // query rows per tensor-core block (16 per warp)
constexpr int64_t kDetKeysPerSplit = 2048;  // deterministic mode: fixed kv split
constexpr int64_t kMinKeysPerSplit = 256;
constexpr int kPrologueThreads = 512;
constexpr int64_t kKeyMargin = 4096;
constexpr float kLog2e = 1.4426950408889634f;

struct SeqInfo {
  int q0, q_len, kv_len, bad;  // bad: kv_len out of range (rows are written as zeros)
};

// What every kernel needs of the call.
struct Common {
  const void* q;
  void* out;
  float* lse;  // nullptr when absent
  const void* kc;
  const void* vc;
  const int32_t* bt;
  int64_t q_s0, q_s1, o_s0, o_s1, l_s0, l_s1;
  int64_t k_s0, k_s1, k_s2, v_s0, v_s1, v_s2, bt_s0, bt_s1;
  int64_t num_blocks;
  int block_size, B, Hq, Hk, G, D;
  float scale;
  int causal;
  const SeqInfo* seqs;
  const long long* start;  // [B + 1] prefix sums of the kernel's item counts
  unsigned* error_word;
};

// The CUDA-core kernel's item shape and split.
struct SimtArgs {
  int lk;          // lanes per key (power of 2, <= 32)
  int hpi, hc;     // heads per item, head chunks per position (hc * hpi >= G)
  int np;          // query positions per item
  int nsplit;      // kv splits (grid z); 1: write out / lse directly
  long long kpb;   // keys per split
  float* pacc;     // split partials: [rows, D] unnormalised acc
  float2* pml;     // [rows] (max, sum); sum = -1 marks a split that read a bad block-table entry
};

__device__ __forceinline__ int vis_end(int kv, int q_len, int pos, int causal) {
  if (!causal) return kv;
  const int n = kv - q_len + pos + 1;  // no overflow: 0 <= pos < q_len, kv >= 0
  return n < 0 ? 0 : (n > kv ? kv : n);
}

// Largest b in [0, B) with start[b] <= i (start[0] = 0 <= i < start[B]).
__device__ __forceinline__ int find_seq(const long long* start, int B, long long i) {
  int lo = 0, hi = B;
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (start[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}

// Keys [0, visible) of a sequence live at block_table[b, j / BS], slot j % BS. Returns false (and sets bad)
// for an entry outside [0, num_blocks).
__device__ __forceinline__ bool locate(const Common& c, const int32_t* bt_row, int j, int64_t* koff, int64_t* voff,
                                       bool* bad) {
  const int col = int(unsigned(j) / unsigned(c.block_size));
  const int slot = j - col * c.block_size;
  const int blk = bt_row[int64_t(col) * c.bt_s1];
  if (blk < 0 || int64_t(blk) >= c.num_blocks) {
    *bad = true;
    return false;
  }
  *koff = int64_t(blk) * c.k_s0 + int64_t(slot) * c.k_s1;
  *voff = int64_t(blk) * c.v_s0 + int64_t(slot) * c.v_s1;
  return true;
}

// ---- prologue: validate the sequences, build the two work lists ---------------------------------------

struct PrologueArgs {
  const int32_t* cu;
  int64_t cu_s;
  const int32_t* kvl;
  int64_t kv_s;
  int B, Tq;
  long long max_kv;  // max_blocks * block_size (capped at INT32_MAX)
  int short_items;   // items per query position of a short sequence (head chunks)
  int long_tc;       // long sequences: 1 = tensor-core tiles of long_rows positions, 0 = simt items
  int long_rows;     // positions per long item
  int long_hc;       // items per position tile of a long sequence (simt head chunks; 1 for tc)
  SeqInfo* seqs;
  long long* start_s;  // [B + 1]
  long long* start_l;  // [B + 1]
  unsigned* error_word;
};

// Block-wide exclusive scan of two values (blockDim.x = kPrologueThreads); returns the block totals.
__device__ __forceinline__ void block_scan2(long long& a, long long& b, long long* tot_a, long long* tot_b) {
  __shared__ long long wa[kPrologueThreads / 32], wb[kPrologueThreads / 32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  long long ia = a, ib = b;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const long long ta = __shfl_up_sync(0xffffffffu, ia, o), tb = __shfl_up_sync(0xffffffffu, ib, o);
    if (lane >= o) {
      ia += ta;
      ib += tb;
    }
  }
  if (lane == 31) {
    wa[w] = ia;
    wb[w] = ib;
  }
  __syncthreads();
  if (w == 0) {
    long long xa = lane < nw ? wa[lane] : 0, xb = lane < nw ? wb[lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const long long ta = __shfl_up_sync(0xffffffffu, xa, o), tb = __shfl_up_sync(0xffffffffu, xb, o);
      if (lane >= o) {
        xa += ta;
        xb += tb;
      }
    }
    if (lane < nw) {
      wa[lane] = xa;  // inclusive over warps
      wb[lane] = xb;
    }
  }
  __syncthreads();
  const long long pa = w > 0 ? wa[w - 1] : 0, pb = w > 0 ? wb[w - 1] : 0;
  *tot_a = wa[nw - 1];
  *tot_b = wb[nw - 1];
  a = pa + ia - a;
  b = pb + ib - b;
  __syncthreads();  // wa / wb are reused by the next call
}

__global__ void __launch_bounds__(kPrologueThreads) attn_prologue_kernel(PrologueArgs p) {
  const int tid = threadIdx.x;
  if (tid == 0) {
    const int first = p.cu[0], last = p.cu[int64_t(p.B) * p.cu_s];
    if (first != 0 || last != p.Tq) report_bad_index(p.error_word, OPDEV_OP_PAGED_ATTENTION);
  }
  long long carry_s = 0, carry_l = 0;
  for (int base = 0; base < p.B; base += blockDim.x) {
    const int b = base + tid;
    long long ns = 0, nl = 0;
    if (b < p.B) {
      const int q0 = p.cu[int64_t(b) * p.cu_s], q1 = p.cu[int64_t(b + 1) * p.cu_s];
      const int kv = p.kvl[int64_t(b) * p.kv_s];
      const bool ok_cu = q0 >= 0 && q0 <= q1 && q1 <= p.Tq;
      const bool ok_kv = kv >= 0 && (long long)kv <= p.max_kv;
      if (!ok_cu || !ok_kv) report_bad_index(p.error_word, OPDEV_OP_PAGED_ATTENTION);
      const int ql = ok_cu ? q1 - q0 : 0;
      p.seqs[b] = SeqInfo{ok_cu ? q0 : 0, ql, ok_kv ? kv : 0, ok_kv ? 0 : 1};
      if (ql > 0) {
        if (ql <= kShortQ) ns = (long long)ql * p.short_items;
        else nl = ((long long)ql + p.long_rows - 1) / p.long_rows * p.long_hc;
      }
    }
    long long tot_s, tot_l;
    block_scan2(ns, nl, &tot_s, &tot_l);
    if (b < p.B) {
      p.start_s[b] = carry_s + ns;
      p.start_l[b] = carry_l + nl;
    }
    carry_s += tot_s;
    carry_l += tot_l;
  }
  if (tid == 0) {
    p.start_s[p.B] = carry_s;
    p.start_l[p.B] = carry_l;
  }
}

// ---- CUDA-core kernel: split-KV decode and the general fallback ---------------------------------------

template <class T, int VW>
struct alignas(sizeof(T) * VW) Chunk {
  T v[VW];
};

// Rows per item the CUDA-core kernel can hold in registers for E = NC * VW elements per lane.
constexpr int simt_max_rows(int e) { return e <= 8 ? 8 : 4; }

// Merges the softmax state (mb, lb, accb) into (m, l, acc). Products are rounded separately so the merge is
// symmetric (both butterfly partners get the same bits). A side without keys has m = -inf and weight 0.
__device__ __forceinline__ float merge_max(float a, float b) { return (b > a || isnan(b)) ? b : a; }
__device__ __forceinline__ float merge_weight(float m, float mn) {
  return m == -INFINITY ? 0.0f : expf(m - mn);
}

template <class T, int VW, int NC, int RW>
__global__ void __launch_bounds__(kThreads) attn_simt_kernel(Common c, SimtArgs s) {
  constexpr int E = NC * VW;
  __shared__ float sm_acc[kWarps - 1][RW][32 * E];
  __shared__ float2 sm_ml[kWarps - 1][RW];

  const long long total = c.start[c.B];
  const long long item = blockIdx.x;
  if (item >= total) return;
  const int b = find_seq(c.start, c.B, item);
  const SeqInfo sq = c.seqs[b];
  const long long local = item - c.start[b];
  const int pt = int(local / s.hc), hcx = int(local % s.hc);
  const int p_first = pt * s.np;
  const int npos = min(s.np, sq.q_len - p_first);
  const int h_first = hcx * s.hpi;
  const int nh = min(s.hpi, c.G - h_first);
  const int nrows = min(npos * nh, RW);
  const int kvh = blockIdx.y, z = blockIdx.z;
  const int kend = sq.bad ? 0 : vis_end(sq.kv_len, sq.q_len, p_first + npos - 1, c.causal);
  const long long k_lo64 = (long long)z * s.kpb;
  if (s.nsplit > 1 && k_lo64 >= kend) return;  // no keys in this split: the combine skips it
  const int k_lo = int(k_lo64);
  const int k_hi = int(min((long long)kend, k_lo64 + s.kpb));

  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int LK = s.lk, li = lane & (LK - 1), gi = lane / LK, KPW = 32 / LK;
  const int D = c.D;

  // Rows r = position * nh + head: query rows into registers (float), their visible key ends.
  float qf[RW][E];
  int endr[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    endr[r] = 0;
#pragma unroll
    for (int e = 0; e < E; ++e) qf[r][e] = 0.0f;
    if (r < nrows) {
      const int pos = p_first + r / nh, h = kvh * c.G + h_first + r % nh;
      endr[r] = sq.bad ? 0 : vis_end(sq.kv_len, sq.q_len, pos, c.causal);
      const T* qrow = static_cast<const T*>(c.q) + int64_t(sq.q0 + pos) * c.q_s0 + int64_t(h) * c.q_s1;
#pragma unroll
      for (int ch = 0; ch < NC; ++ch) {
        const int idx = (ch * LK + li) * VW;
        if (idx < D) {
          const Chunk<T, VW> x = *reinterpret_cast<const Chunk<T, VW>*>(qrow + idx);
#pragma unroll
          for (int v = 0; v < VW; ++v) qf[r][ch * VW + v] = to_float<T>(x.v[v]);
        }
      }
    }
  }

  float m[RW], l[RW], acc[RW][E];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) acc[r][e] = 0.0f;
  }

  const T* kbase = static_cast<const T*>(c.kc) + int64_t(kvh) * c.k_s2;
  const T* vbase = static_cast<const T*>(c.vc) + int64_t(kvh) * c.v_s2;
  const int32_t* bt_row = c.bt + int64_t(b) * c.bt_s0;
  bool bad = false;

  // Loads the K and V chunks of key j of this lane (zeros when j is past the range or its block is bad).
  auto load_key = [&](int j, Chunk<T, VW>(&kr)[NC], Chunk<T, VW>(&vr)[NC]) -> bool {
    int64_t ko = 0, vo = 0;
    const bool ok = j < k_hi && locate(c, bt_row, j, &ko, &vo, &bad);
#pragma unroll
    for (int ch = 0; ch < NC; ++ch) {
      const int idx = (ch * LK + li) * VW;
      if (ok && idx < D) {
        kr[ch] = *reinterpret_cast<const Chunk<T, VW>*>(kbase + ko + idx);
        vr[ch] = *reinterpret_cast<const Chunk<T, VW>*>(vbase + vo + idx);
      } else {
#pragma unroll
        for (int v = 0; v < VW; ++v) {
          kr[ch].v[v] = from_float<T>(0.0f);
          vr[ch].v[v] = from_float<T>(0.0f);
        }
      }
    }
    return ok;
  };

  // Warp w takes the steps w, w + 4, ... of KPW keys each; lane group gi the key step_base + gi. The K / V
  // rows of the warp's next two steps are in flight while a step is computed.
  const int step = kWarps * KPW;
  Chunk<T, VW> kr[NC], vr[NC], k1[NC], v1[NC];
  int jb = k_lo + w * KPW;
  bool cur_ok = load_key(jb + gi, kr, vr);
  bool ok1 = load_key(jb + step + gi, k1, v1);
  for (; jb < k_hi; jb += step) {
    Chunk<T, VW> k2[NC], v2[NC];
    const bool ok2 = load_key(jb + 2 * step + gi, k2, v2);
    const int j = jb + gi;
    float kf[E], vf[E];
#pragma unroll
    for (int ch = 0; ch < NC; ++ch)
#pragma unroll
      for (int v = 0; v < VW; ++v) {
        kf[ch * VW + v] = to_float<T>(kr[ch].v[v]);
        vf[ch * VW + v] = to_float<T>(vr[ch].v[v]);
      }
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      if (r >= nrows) break;
      float part = 0.0f;
#pragma unroll
      for (int e = 0; e < E; ++e) part = fmaf(qf[r][e], kf[e], part);
#pragma unroll
      for (int o = 1; o < 32; o <<= 1)
        if (o < LK) part += __shfl_xor_sync(0xffffffffu, part, o);
      if (cur_ok && j < endr[r]) {
        const float sc = part * c.scale;
        if (sc > m[r]) {  // the max grows: rescale the state (alpha = 0 on the first key)
          const float alpha = exp2f((m[r] - sc) * kLog2e);
          l[r] *= alpha;
#pragma unroll
          for (int e = 0; e < E; ++e) acc[r][e] *= alpha;
          m[r] = sc;
        }
        const float p = exp2f((sc - m[r]) * kLog2e);
        l[r] += p;
#pragma unroll
        for (int e = 0; e < E; ++e) acc[r][e] = fmaf(p, vf[e], acc[r][e]);
      }
    }
#pragma unroll
    for (int ch = 0; ch < NC; ++ch) {
      kr[ch] = k1[ch];
      vr[ch] = v1[ch];
      k1[ch] = k2[ch];
      v1[ch] = v2[ch];
    }
    cur_ok = ok1;
    ok1 = ok2;
  }

  // Merge the lane groups of the warp (butterfly over the lane bits above LK).
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    if (o < LK) break;
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      if (r >= nrows) break;
      const float mo = __shfl_xor_sync(0xffffffffu, m[r], o);
      const float lo = __shfl_xor_sync(0xffffffffu, l[r], o);
      const float mn = merge_max(m[r], mo);
      const float fa = merge_weight(m[r], mn), fb = merge_weight(mo, mn);
      l[r] = __fadd_rn(__fmul_rn(l[r], fa), __fmul_rn(lo, fb));
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const float ao = __shfl_xor_sync(0xffffffffu, acc[r][e], o);
        acc[r][e] = __fadd_rn(__fmul_rn(acc[r][e], fa), __fmul_rn(ao, fb));
      }
      m[r] = mn;
    }
  }

  // Warps 1..3 hand their state to warp 0, which merges them in warp order.
  if (w > 0 && gi == 0) {
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      if (r >= nrows) break;
      if (li == 0) sm_ml[w - 1][r] = make_float2(m[r], l[r]);
#pragma unroll
      for (int ch = 0; ch < NC; ++ch)
#pragma unroll
        for (int v = 0; v < VW; ++v) sm_acc[w - 1][r][(ch * LK + li) * VW + v] = acc[r][ch * VW + v];
    }
  }
  const bool any_bad = __syncthreads_or(bad ? 1 : 0) != 0;
  if (w != 0 || gi != 0) return;
  if (any_bad && li == 0) report_bad_index(c.error_word, OPDEV_OP_PAGED_ATTENTION);
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    if (r >= nrows) break;
    for (int ww = 0; ww < kWarps - 1; ++ww) {
      const float2 ml = sm_ml[ww][r];
      const float mn = merge_max(m[r], ml.x);
      const float fa = merge_weight(m[r], mn), fb = merge_weight(ml.x, mn);
      l[r] = __fadd_rn(__fmul_rn(l[r], fa), __fmul_rn(ml.y, fb));
#pragma unroll
      for (int ch = 0; ch < NC; ++ch)
#pragma unroll
        for (int v = 0; v < VW; ++v) {
          const float ao = sm_acc[ww][r][(ch * LK + li) * VW + v];
          acc[r][ch * VW + v] = __fadd_rn(__fmul_rn(acc[r][ch * VW + v], fa), __fmul_rn(ao, fb));
        }
      m[r] = mn;
    }
  }

  // Results: out / lse, or this split's partials.
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    if (r >= nrows) break;
    const int pos = p_first + r / nh, h = kvh * c.G + h_first + r % nh;
    if (s.nsplit == 1) {
      const bool any = !any_bad && (l[r] > 0.0f || isnan(l[r]));
      T* orow = static_cast<T*>(c.out) + int64_t(sq.q0 + pos) * c.o_s0 + int64_t(h) * c.o_s1;
#pragma unroll
      for (int ch = 0; ch < NC; ++ch) {
        const int idx = (ch * LK + li) * VW;
        if (idx < D) {
          Chunk<T, VW> x;
#pragma unroll
          for (int v = 0; v < VW; ++v) x.v[v] = from_float<T>(any ? acc[r][ch * VW + v] / l[r] : 0.0f);
          *reinterpret_cast<Chunk<T, VW>*>(orow + idx) = x;
        }
      }
      if (c.lse && li == 0)
        c.lse[int64_t(sq.q0 + pos) * c.l_s0 + int64_t(h) * c.l_s1] = any ? m[r] + logf(l[r]) : -INFINITY;
    } else {
      const int64_t prow = ((item * c.Hk + kvh) * int64_t(s.nsplit) + z) * RW + r;
      float* dst = s.pacc + prow * D;
#pragma unroll
      for (int ch = 0; ch < NC; ++ch) {
        const int idx = (ch * LK + li) * VW;
        if (idx < D) {
#pragma unroll
          for (int v = 0; v < VW; ++v) dst[idx + v] = acc[r][ch * VW + v];
        }
      }
      if (li == 0) s.pml[prow] = make_float2(m[r], any_bad ? -1.0f : l[r]);
    }
  }
}

// Reduces the splits of each row of a split item in split order (one warp per row, lanes over head_dim).
template <class T, int RW>
__global__ void __launch_bounds__(kThreads) attn_combine_kernel(Common c, SimtArgs s) {
  constexpr int kMaxPer = 16;  // head_dim <= 512
  const long long total = c.start[c.B];
  const long long item = blockIdx.x;
  if (item >= total) return;
  const int b = find_seq(c.start, c.B, item);
  const SeqInfo sq = c.seqs[b];
  const long long local = item - c.start[b];
  const int pt = int(local / s.hc), hcx = int(local % s.hc);
  const int p_first = pt * s.np;
  const int npos = min(s.np, sq.q_len - p_first);
  const int h_first = hcx * s.hpi;
  const int nh = min(s.hpi, c.G - h_first);
  const int nrows = min(npos * nh, RW);
  const int kvh = blockIdx.y;
  const int kend = sq.bad ? 0 : vis_end(sq.kv_len, sq.q_len, p_first + npos - 1, c.causal);
  const int ns = int(min((long long)s.nsplit, ((long long)kend + s.kpb - 1) / s.kpb));
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int D = c.D;
  for (int r = w; r < nrows; r += kWarps) {
    const int pos = p_first + r / nh, h = kvh * c.G + h_first + r % nh;
    const int64_t prow0 = ((item * c.Hk + kvh) * int64_t(s.nsplit)) * RW + r;  // split z: + z * RW
    float M = -INFINITY;
    bool bad = false;
    for (int z = 0; z < ns; ++z) {
      const float2 ml = s.pml[prow0 + int64_t(z) * RW];
      M = merge_max(M, ml.x);
      bad |= ml.y < 0.0f;
    }
    T* orow = static_cast<T*>(c.out) + int64_t(sq.q0 + pos) * c.o_s0 + int64_t(h) * c.o_s1;
    float* lse = c.lse ? c.lse + int64_t(sq.q0 + pos) * c.l_s0 + int64_t(h) * c.l_s1 : nullptr;
    if (bad || M == -INFINITY) {  // no split saw a key (or a split read a bad block-table entry)
      for (int d = lane; d < D; d += 32) orow[d] = from_float<T>(0.0f);
      if (lse && lane == 0) *lse = -INFINITY;
      continue;
    }
    float L = 0.0f, a[kMaxPer];
#pragma unroll
    for (int k = 0; k < kMaxPer; ++k) a[k] = 0.0f;
    for (int z = 0; z < ns; ++z) {
      const int64_t prow = prow0 + int64_t(z) * RW;
      const float2 ml = s.pml[prow];
      const float wz = expf(ml.x - M);
      L += ml.y * wz;
      const float* src = s.pacc + prow * D;
#pragma unroll
      for (int k = 0; k < kMaxPer; ++k) {
        const int d = lane + 32 * k;
        if (d < D) a[k] = fmaf(wz, src[d], a[k]);
      }
    }
#pragma unroll
    for (int k = 0; k < kMaxPer; ++k) {
      const int d = lane + 32 * k;
      if (d < D) orow[d] = from_float<T>(a[k] / L);
    }
    if (lse && lane == 0) *lse = M + logf(L);
  }
}

// ---- tensor-core kernel: prefill and chunked prefill (bf16 / f16) -------------------------------------

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, or 16 zero bytes when !valid (nothing is read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d (16x8 f32) += a (16x16, row) * b (16x8, col).
template <class T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<bf16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<f16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint16_t bits16(bf16 x) { return __bfloat16_as_ushort(x); }
__device__ __forceinline__ uint16_t bits16(f16 x) { return __half_as_ushort(x); }

// P as 16-bit terms per dtype. f16 scales P by 2^15 so that small weights stay normal (the scale cancels in
// out = acc / l). Split (exact P): bf16 hi + mid + lo (8 + 8 + 8 bits), f16 hi + lo (11 + 11 bits).
// Rounded (FlashAttention-2): one term, P rounded to the dtype once (docs/OPS.md allows it).
template <class T>
struct PTerms;
template <>
struct PTerms<bf16> {
  static constexpr int split = 3;
  static constexpr float shift = 0.0f;
  static constexpr float unscale = 1.0f;
};
template <>
struct PTerms<f16> {
  static constexpr int split = 2;
  static constexpr float shift = 15.0f;
  static constexpr float unscale = 1.0f / 32768.0f;  // 2^-shift
};

// Splits x0, x1 (columns 2i, 2i+1 of an A fragment register) into NT packed terms.
template <class T, int NT>
__device__ __forceinline__ void split_pair(float x0, float x1, uint32_t (&out)[NT]) {
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const T h0 = from_float<T>(x0), h1 = from_float<T>(x1);
    out[t] = uint32_t(bits16(h0)) | (uint32_t(bits16(h1)) << 16);
    x0 -= to_float<T>(h0);  // exact: the rounding error of a 16-bit rounding of a float
    x1 -= to_float<T>(h1);
  }
}

// Swizzled shared-memory layout of a [rows, D] tile of 16-bit elements: 16-byte chunk ch of row r lives at
// chunk ch ^ (r % 8), so the 8 rows that one ldmatrix phase reads hit 8 different bank groups.
template <int D>
__device__ __forceinline__ int swz(int row, int ch) {
  return row * D + ((ch ^ (row & 7)) << 3);
}

// Output columns per tensor-core block: head_dim 256 is split into two column halves (grid z), each block
// recomputing S for its half, so that the output accumulator fits in registers (16 x 128 per warp).
template <int D>
constexpr int tc_out_cols() {
  return D > 128 ? 128 : D;
}

template <class T, int D, int BN>
constexpr size_t tc_smem_bytes() {
  return (size_t(kTcRows + 2 * BN) * D + size_t(2 * BN) * tc_out_cols<D>()) * sizeof(T);
}

// NT: 16-bit terms of P in the P V product (1: P rounded; PTerms<T>::split: exact).
template <class T, int D, int BN, int NT>
__global__ void __launch_bounds__(kThreads) attn_tc_kernel(Common c) {
  constexpr int BM = kTcRows, DO = tc_out_cols<D>(), CH = D / 8, CHV = DO / 8;
  static_assert(NT == 1 || NT == PTerms<T>::split, "P terms");
  constexpr int NTILE = BN / 8, KCH = BN / 16, DT = DO / 8;
  constexpr int KC = 2;  // k-chunks (16 keys) per P V pass: bounds the live P registers
  // bf16's tolerance is far above the tensor cores' truncating accumulation error: accumulate into O.
  constexpr bool kFresh = std::is_same_v<T, f16>;
  static_assert(KCH % KC == 0 && D % 64 == 0 && DO % 64 == 0, "tile");
  static_assert((BN * CH) % kThreads == 0 && (BN * CHV) % kThreads == 0 && (BM * CH) % kThreads == 0, "tile");
  static_assert(2 * BN <= kThreads, "offset precomputation uses one thread per key of two tiles");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);  // [BM][D]
  T* sK = sQ + BM * D;                     // [2][BN][D]
  T* sV = sK + 2 * BN * D;                 // [2][BN][DO]: this block's output columns of V
  __shared__ long long sOffK[2][BN], sOffV[2][BN];

  const long long total = c.start[c.B];
  if ((long long)blockIdx.x >= total) return;
  const long long item = total - 1 - blockIdx.x;  // heavier (later) tiles of a sequence first
  const int b = find_seq(c.start, c.B, item);
  const SeqInfo sq = c.seqs[b];
  const int p0 = int(item - c.start[b]) * BM;
  const int rows = min(BM, sq.q_len - p0);
  const int h = blockIdx.y, kvh = h / c.G, col0 = int(blockIdx.z) * DO;
  const int kend_max = sq.bad ? 0 : vis_end(sq.kv_len, sq.q_len, p0 + rows - 1, c.causal);
  const int kend_min = sq.bad ? 0 : vis_end(sq.kv_len, sq.q_len, p0, c.causal);
  const int nT = (kend_max + BN - 1) / BN;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t4 = lane & 3;
  const T* kbase = static_cast<const T*>(c.kc) + int64_t(kvh) * c.k_s2;
  const T* vbase = static_cast<const T*>(c.vc) + int64_t(kvh) * c.v_s2 + col0;
  const int32_t* bt_row = c.bt + int64_t(b) * c.bt_s0;
  bool bad = false;

  // Element offsets of the K / V rows of tile n's keys (-1: past the visible keys or a bad entry).
  auto compute_off = [&](int n, int i) {
    const int j = n * BN + i;
    int64_t ko = -1, vo = -1;
    if (j < kend_max && !locate(c, bt_row, j, &ko, &vo, &bad)) ko = vo = -1;
    sOffK[n & 1][i] = ko;
    sOffV[n & 1][i] = vo;
  };
  // The loops stay rolled: unrolled, the compiler keeps every iteration's addresses live across the main
  // loop and the kernel spills.
  auto issue_kv = [&](int n) {
    const int buf = n & 1;
    T* dk = sK + buf * BN * D;
    T* dv = sV + buf * BN * DO;
#pragma unroll 1
    for (int idx = tid; idx < BN * CH; idx += kThreads) {
      const int row = idx / CH, ch = idx % CH;
      const long long ko = sOffK[buf][row];
      cp_async16(smem_u32(dk + swz<D>(row, ch)), ko >= 0 ? kbase + ko + ch * 8 : kbase, ko >= 0);
    }
#pragma unroll 1
    for (int idx = tid; idx < BN * CHV; idx += kThreads) {
      const int row = idx / CHV, ch = idx % CHV;
      const long long vo = sOffV[buf][row];
      cp_async16(smem_u32(dv + swz<DO>(row, ch)), vo >= 0 ? vbase + vo + ch * 8 : vbase, vo >= 0);
    }
  };

  // Prologue: offsets of tiles 0 and 1, the Q tile (zero rows past q_len), tile 0.
  if (tid < BN) {
    if (0 < nT) compute_off(0, tid);
  } else if (tid < 2 * BN) {
    if (1 < nT) compute_off(1, tid - BN);
  }
  {
    const T* qb = static_cast<const T*>(c.q) + int64_t(h) * c.q_s1;
#pragma unroll 1
    for (int idx = tid; idx < BM * CH; idx += kThreads) {
      const int row = idx / CH, ch = idx % CH;
      const bool valid = row < rows;
      const T* src = valid ? qb + int64_t(sq.q0 + p0 + row) * c.q_s0 + ch * 8 : qb;
      cp_async16(smem_u32(sQ + swz<D>(row, ch)), src, valid);
    }
  }
  __syncthreads();
  if (nT > 0) issue_kv(0);
  cp_async_commit();

  float O[DT][4];
#pragma unroll
  for (int i = 0; i < DT; ++i) O[i][0] = O[i][1] = O[i][2] = O[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  int end[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int pos = p0 + warp * 16 + g + 8 * hr;  // rows past q_len are computed on zeros, never written
    end[hr] = sq.bad ? 0 : vis_end(sq.kv_len, sq.q_len, min(pos, sq.q_len - 1), c.causal);
  }
  // ldmatrix row addresses. Every 8-row phase reads rows r with r % 8 = lane % 8, so the swizzled chunk of
  // logical chunk ch = 8 * (ch / 8) + c7 is 8 * (ch / 8) + (c7 ^ (lane % 8)): four per-lane offsets (c7 / 2
  // = 0..3) plus compile-time constants cover all chunks.
  const int x7 = lane & 7;
  int qoff[4], koff[4], voff[4];
  {
    const int q_row = warp * 16 + (lane & 15), qb = lane >> 4;
    const int k_row = (lane & 7) + ((lane >> 4) << 3), kb = (lane >> 3) & 1;
    const int v_row = (lane & 7) + (((lane >> 3) & 1) << 3), vb = lane >> 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      qoff[i] = q_row * D + (((2 * i + qb) ^ x7) << 3);
      koff[i] = k_row * D + (((2 * i + kb) ^ x7) << 3);
      voff[i] = v_row * DO + (((2 * i + vb) ^ x7) << 3);
    }
  }
  const uint32_t q_addr = smem_u32(sQ);

  for (int n = 0; n < nT; ++n) {
    if (n + 1 < nT) {
      issue_kv(n + 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (n + 2 < nT && tid < BN) compute_off(n + 2, tid);
    const int buf = n & 1, j0 = n * BN;
    const uint32_t k_addr = smem_u32(sK + buf * BN * D), v_addr = smem_u32(sV + buf * BN * DO);

    // S = Q K^T (16 x BN per warp).
    float S[NTILE][4];
#pragma unroll
    for (int i = 0; i < NTILE; ++i) S[i][0] = S[i][1] = S[i][2] = S[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, q_addr + 2 * (qoff[kk & 3] + (kk >> 2) * 64));
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        uint32_t bk[4];
        ldmatrix_x4(bk, k_addr + 2 * (koff[kk & 3] + (kk >> 2) * 64 + np * 16 * D));
        mma16816<T>(S[2 * np], a, bk[0], bk[1]);
        mma16816<T>(S[2 * np + 1], a, bk[2], bk[3]);
      }
    }

    // Scale, mask (diagonal / tail tiles only), online softmax.
    const bool need_mask = j0 + BN > kend_min;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < NTILE; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float sc = S[nt][e] * c.scale;
        if (need_mask && j0 + nt * 8 + t4 * 2 + (e & 1) >= end[e >> 1]) sc = -INFINITY;
        S[nt][e] = sc;
        mx[e >> 1] = fmaxf(mx[e >> 1], sc);
      }
    float alpha[2], ml[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
      const float mn = fmaxf(m[hr], mx[hr]);
      alpha[hr] = m[hr] == -INFINITY ? 0.0f : exp2f((m[hr] - mn) * kLog2e);
      ml[hr] = (mn == -INFINITY ? 0.0f : mn * kLog2e) - PTerms<T>::shift;
      m[hr] = mn;
    }
    float ls[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nt = 0; nt < NTILE; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = exp2f(fmaf(S[nt][e], kLog2e, -ml[e >> 1]));
        S[nt][e] = p;
        ls[e >> 1] += p;
      }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) l[hr] = l[hr] * alpha[hr] + ls[hr];
#pragma unroll
    for (int i = 0; i < DT; ++i) {
      O[i][0] *= alpha[0];
      O[i][1] *= alpha[0];
      O[i][2] *= alpha[1];
      O[i][3] *= alpha[1];
    }

    // O += P V over KC k-chunks (16 keys each) at a time: P of those keys as NT 16-bit terms in A-fragment
    // layout (k-chunk kk = S tiles 2kk, 2kk+1). f16: per pair of 8-column output tiles the chunks' products
    // are summed in fresh registers and added to O in float32, so the tensor cores' truncating accumulation
    // errs relative to 32 keys' sum, not to the running output.
#pragma unroll
    for (int kc0 = 0; kc0 < KCH; kc0 += KC) {
      uint32_t P[KC][4][NT];
#pragma unroll
      for (int k = 0; k < KC; ++k) {
        const int kk = kc0 + k;
        split_pair<T, NT>(S[2 * kk][0], S[2 * kk][1], P[k][0]);
        split_pair<T, NT>(S[2 * kk][2], S[2 * kk][3], P[k][1]);
        split_pair<T, NT>(S[2 * kk + 1][0], S[2 * kk + 1][1], P[k][2]);
        split_pair<T, NT>(S[2 * kk + 1][2], S[2 * kk + 1][3], P[k][3]);
      }
#pragma unroll
      for (int dp = 0; dp < DO / 16; ++dp) {
        float t0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, t1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        float(&a0)[4] = kFresh ? t0 : O[2 * dp];
        float(&a1)[4] = kFresh ? t1 : O[2 * dp + 1];
#pragma unroll
        for (int k = 0; k < KC; ++k) {
          uint32_t bv[4];
          ldmatrix_x4_trans(bv, v_addr + 2 * (voff[dp & 3] + (dp >> 2) * 64 + (kc0 + k) * 16 * DO));
#pragma unroll
          for (int t = 0; t < NT; ++t) {
            const uint32_t a[4] = {P[k][0][t], P[k][1][t], P[k][2][t], P[k][3][t]};
            mma16816<T>(a0, a, bv[0], bv[1]);
            mma16816<T>(a1, a, bv[2], bv[3]);
          }
        }
        if (kFresh) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            O[2 * dp][e] += t0[e];
            O[2 * dp + 1][e] += t1[e];
          }
        }
      }
    }
    __syncthreads();  // buffer `buf` and sOff[n & 1] are refilled by the next iterations
  }
  cp_async_wait<0>();

  const bool any_bad = __syncthreads_or(bad ? 1 : 0) != 0;
  bool any[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 1);
    l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 2);
    any[hr] = !any_bad && (l[hr] > 0.0f || isnan(l[hr]));
  }
  // Stage the warp's 16 output rows (this block's DO columns) in its own, no longer read, Q rows; then
  // 16-byte stores.
#pragma unroll
  for (int dt = 0; dt < DT; ++dt)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int row = warp * 16 + g + 8 * hr;
      const float x0 = any[hr] ? O[dt][2 * hr] / l[hr] : 0.0f, x1 = any[hr] ? O[dt][2 * hr + 1] / l[hr] : 0.0f;
      const uint32_t v = uint32_t(bits16(from_float<T>(x0))) | (uint32_t(bits16(from_float<T>(x1))) << 16);
      *reinterpret_cast<uint32_t*>(sQ + swz<D>(row, dt) + t4 * 2) = v;
    }
  __syncwarp();
  {
    T* ob = static_cast<T*>(c.out) + int64_t(h) * c.o_s1 + col0;
#pragma unroll 1
    for (int idx = lane; idx < 16 * CHV; idx += 32) {
      const int row = warp * 16 + idx / CHV, ch = idx % CHV;
      if (row < rows)
        *reinterpret_cast<uint4*>(ob + int64_t(sq.q0 + p0 + row) * c.o_s0 + ch * 8) =
            *reinterpret_cast<const uint4*>(sQ + swz<D>(row, ch));
    }
  }
  if (c.lse && blockIdx.z == 0 && t4 == 0) {
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int row = warp * 16 + g + 8 * hr;
      if (row < rows) {
        const float lu = l[hr] * PTerms<T>::unscale;  // l carries the 2^shift of P (exact power of two)
        c.lse[int64_t(sq.q0 + p0 + row) * c.l_s0 + int64_t(h) * c.l_s1] = any[hr] ? m[hr] + logf(lu) : -INFINITY;
      }
    }
  }
  if (any_bad && tid == 0 && blockIdx.z == 0) report_bad_index(c.error_word, OPDEV_OP_PAGED_ATTENTION);
}

// ---- host ---------------------------------------------------------------------------------------------

template <class T, int D, int BN, int NT>
void launch_tc_nt(ExecContext& ex, const Common& c, unsigned grid_x) {
  constexpr size_t smem = tc_smem_bytes<T, D, BN>();
  auto kernel = attn_tc_kernel<T, D, BN, NT>;
  // Raise the kernel's dynamic shared-memory limit once per device (a bit per device id < 64).
  static std::atomic<unsigned long long> done{0};
  const int device = state(ex).device;
  const unsigned long long bit = device >= 0 && device < 64 ? (1ull << device) : 0;
  if (!bit || !(done.load(std::memory_order_relaxed) & bit)) {
    OPDEV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    OPDEV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    done.fetch_or(bit, std::memory_order_relaxed);
  }
  kernel<<<dim3(grid_x, unsigned(c.Hq), unsigned(D / tc_out_cols<D>())), kThreads, smem, stream(ex)>>>(c);
  OPDEV_CUDA_CHECK_LAUNCH();
}

// The context's P V precision (CudaState::attn_p, OPDEV_CUDA_ATTN_P).
template <class T, int D, int BN>
void launch_tc(ExecContext& ex, const Common& c, unsigned grid_x) {
  if (state(ex).attn_p == AttnP::Split) return launch_tc_nt<T, D, BN, PTerms<T>::split>(ex, c, grid_x);
  launch_tc_nt<T, D, BN, 1>(ex, c, grid_x);
}

template <class T>
void launch_tc_d(ExecContext& ex, const Common& c, unsigned grid_x) {
  if constexpr (std::is_same_v<T, float>) {
    fail(OPDEV_STATUS_INTERNAL, "cuda: paged_attention: no tensor-core path for float32");
  } else {
    switch (c.D) {
      case 64: launch_tc<T, 64, 64>(ex, c, grid_x); break;
      case 128: launch_tc<T, 128, 64>(ex, c, grid_x); break;
      case 256: launch_tc<T, 256, 32>(ex, c, grid_x); break;
      default: fail(OPDEV_STATUS_INTERNAL, "cuda: paged_attention: no tensor-core kernel for head_dim ", c.D);
    }
  }
}

// The CUDA-core configuration of a head_dim: VW elements per access, NC accesses per lane, LK lanes per key.
struct SimtShape {
  bool vec;
  int vw, nc, lk, max_rows;
};

template <class T, int VW, int NC, int RW>
void launch_simt_rw(ExecContext& ex, const Common& c, const SimtArgs& s, dim3 grid, bool combine) {
  attn_simt_kernel<T, VW, NC, RW><<<grid, kThreads, 0, stream(ex)>>>(c, s);
  OPDEV_CUDA_CHECK_LAUNCH();
  if (combine) {
    attn_combine_kernel<T, RW><<<dim3(grid.x, grid.y), kThreads, 0, stream(ex)>>>(c, s);
    OPDEV_CUDA_CHECK_LAUNCH();
  }
}

// rw: rows per item as resolved by simt_rows (1, 2, 4 on the vector path; else the maximum).
template <class T, int VW, int NC>
void launch_simt_nc(ExecContext& ex, const Common& c, const SimtArgs& s, dim3 grid, bool combine, int rw) {
  constexpr int kMax = simt_max_rows(NC * VW);
  if constexpr (VW > 1) {  // vector path: row counts matched to the GQA group (decode)
    if (rw == 1) return launch_simt_rw<T, VW, NC, 1>(ex, c, s, grid, combine);
    if (rw == 2) return launch_simt_rw<T, VW, NC, 2>(ex, c, s, grid, combine);
    if (rw == 4 && kMax > 4) return launch_simt_rw<T, VW, NC, 4>(ex, c, s, grid, combine);
  }
  if (rw != kMax) fail(OPDEV_STATUS_INTERNAL, "cuda: paged_attention: no kernel for ", rw, " rows per item");
  launch_simt_rw<T, VW, NC, kMax>(ex, c, s, grid, combine);
}

template <class T>
void launch_simt(ExecContext& ex, const SimtShape& sh, const Common& c, const SimtArgs& s, dim3 grid, bool combine,
                 int rw) {
  constexpr int V = kVec<T>;
  if (sh.vec) {
    if (sh.nc == 1) return launch_simt_nc<T, V, 1>(ex, c, s, grid, combine, rw);
    return launch_simt_nc<T, V, 2>(ex, c, s, grid, combine, rw);
  }
  switch (sh.nc) {
    case 1: return launch_simt_nc<T, 1, 1>(ex, c, s, grid, combine, rw);
    case 2: return launch_simt_nc<T, 1, 2>(ex, c, s, grid, combine, rw);
    case 4: return launch_simt_nc<T, 1, 4>(ex, c, s, grid, combine, rw);
    default: return launch_simt_nc<T, 1, 8>(ex, c, s, grid, combine, rw);
  }
}

int pow2_ceil(int64_t x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

// Rows per item of the CUDA-core kernel instantiation that serves items of `rows` rows: the next power of
// two on the vector path (decode with small GQA groups keeps fewer registers), else the maximum.
int simt_rows(const SimtShape& sh, int rows) {
  return sh.vec ? std::min(pow2_ceil(rows), sh.max_rows) : sh.max_rows;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class T>
void run(ExecContext& ex, const paged_attention_args& a) {
  const int64_t Tq = a.q.size(0), Hq = a.q.size(1), D = a.q.size(2);
  const int64_t NB = a.key_cache.size(0), BS = a.key_cache.size(1), Hk = a.key_cache.size(2);
  const int64_t B = a.seq_lens_kv.size(0), max_blocks = a.block_table.size(1);
  const int64_t G = Hq / Hk;
  if (Tq > INT_MAX || B >= INT_MAX || BS > INT_MAX || Hq > INT_MAX || D > INT_MAX)
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: paged_attention: Tq, B, block_size, num_heads must be below 2^31");
  if (Hk > 65535)
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: paged_attention: at most 65535 kv heads are supported, got ", Hk);
  // kv_len is int32; key indices stay below INT32_MAX - kKeyMargin so that the kernels' int key arithmetic
  // (a step or a tile past the last key) cannot overflow. Longer contexts are reported out of range.
  const int64_t kv_cap = int64_t(INT_MAX) - kKeyMargin;
  const int64_t max_kv = (BS == 0 || max_blocks == 0) ? 0 : (max_blocks > kv_cap / BS ? kv_cap : max_blocks * BS);

  // Views: 16-byte accesses where every row start allows them.
  const TensorView* views[] = {&a.q, &a.out, &a.key_cache, &a.value_cache};
  auto strides_multiple = [&](int64_t w) {
    for (const TensorView* v : views) {
      if (!aligned16(v->data)) return false;
      for (int d = 0; d + 1 < v->ndim; ++d)
        if (v->strides[d] % w != 0) return false;
    }
    return true;
  };
  constexpr int V = kVec<T>;
  const bool vec16 = D % V == 0 && strides_multiple(V);

  SimtShape sh{};
  {
    sh.vec = vec16;
    sh.vw = vec16 ? V : 1;
    const int64_t nchunk = (D + sh.vw - 1) / sh.vw;
    sh.lk = std::min(32, pow2_ceil(nchunk));
    const int64_t nc = std::max<int64_t>(1, (nchunk + sh.lk - 1) / sh.lk);  // head_dim 0: one empty chunk
    const int64_t max_nc = vec16 ? 2 : 8;
    if (nc > max_nc)
      fail(OPDEV_STATUS_UNSUPPORTED, "cuda: paged_attention: head_dim ", D, " is not supported for ", dtype_name(a.q.dtype),
           " with these views (supported: head_dim <= ", 32 * 2 * V, " with 16-byte aligned rows and head_dim a multiple of ", V,
           ", otherwise head_dim <= 256)");
    sh.nc = nc <= 2 ? int(nc) : (nc <= 4 ? 4 : 8);  // instantiated: 1, 2 (vector), 1, 2, 4, 8 (scalar)
    sh.max_rows = simt_max_rows(sh.nc * sh.vw);
  }
  const bool tc = !std::is_same_v<T, float> && (D == 64 || D == 128 || D == 256) && strides_multiple(8) && Hq <= 65535;

  // Item shapes. Short sequences: one position x up to max_rows heads of a group per item. Long sequences
  // (CUDA cores): positions x heads filling max_rows rows.
  const int hpi = int(std::min<int64_t>(G, sh.max_rows));
  const int hc = int((G + hpi - 1) / hpi);
  const int np_long = sh.max_rows / hpi;
  const int rw_short = simt_rows(sh, hpi);
  const int rw_long = sh.max_rows;

  // Upper bounds of the item counts (valid index data: the sequences partition [0, Tq)).
  const int64_t n_long_max = std::min<int64_t>(B, Tq / (kShortQ + 1));
  const int64_t items_s = std::min<int64_t>(Tq, kShortQ * B) * hc;
  const int64_t items_l = tc ? ceil_div(Tq, kTcRows) + n_long_max : (ceil_div(Tq, np_long) + n_long_max) * hc;
  if (items_s > INT_MAX || items_l > INT_MAX)
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: paged_attention: too many query rows (", Tq, ") for one call");

  // Splits of the short sequences' keys.
  int64_t kpb = std::max<int64_t>(max_kv, 1), nsplit = 1;
  if (items_s > 0 && max_kv > 0) {
    if (ex.deterministic) {
      kpb = kDetKeysPerSplit;
      if (ceil_div(max_kv, kpb) > 65535) kpb = ceil_div(ceil_div(max_kv, 65535), 64) * 64;
    } else {
      const int64_t sms = std::max(1, state(ex).prop.multiProcessorCount);
      const int64_t want = ceil_div(4 * sms, items_s * Hk);
      const int64_t most = std::max<int64_t>(1, max_kv / kMinKeysPerSplit);
      const int64_t ns = std::min(want, std::min<int64_t>(most, 65535));
      kpb = ns > 1 ? ceil_div(ceil_div(max_kv, ns), 64) * 64 : max_kv;
    }
    nsplit = ceil_div(max_kv, kpb);
  }

  Common c{};
  c.q = a.q.data;
  c.out = a.out.data;
  c.lse = a.softmax_lse.present ? a.softmax_lse.ptr<float>() : nullptr;
  c.kc = a.key_cache.data;
  c.vc = a.value_cache.data;
  c.bt = a.block_table.ptr<const int32_t>();
  c.q_s0 = a.q.strides[0];
  c.q_s1 = a.q.strides[1];
  c.o_s0 = a.out.strides[0];
  c.o_s1 = a.out.strides[1];
  c.l_s0 = a.softmax_lse.present ? a.softmax_lse.strides[0] : 0;
  c.l_s1 = a.softmax_lse.present ? a.softmax_lse.strides[1] : 0;
  c.k_s0 = a.key_cache.strides[0];
  c.k_s1 = a.key_cache.strides[1];
  c.k_s2 = a.key_cache.strides[2];
  c.v_s0 = a.value_cache.strides[0];
  c.v_s1 = a.value_cache.strides[1];
  c.v_s2 = a.value_cache.strides[2];
  c.bt_s0 = a.block_table.strides[0];
  c.bt_s1 = a.block_table.strides[1];
  c.num_blocks = NB;
  c.block_size = int(std::max<int64_t>(BS, 1));
  c.B = int(B);
  c.Hq = int(Hq);
  c.Hk = int(Hk);
  c.G = int(G);
  c.D = int(D);
  c.scale = float(a.scale);
  c.causal = a.causal ? 1 : 0;
  c.error_word = state(ex).error_word;

  auto* seqs = static_cast<SeqInfo*>(ex.scratch(sizeof(SeqInfo) * size_t(std::max<int64_t>(B, 1)), 256));
  auto* start_s = static_cast<long long*>(ex.scratch(sizeof(long long) * size_t(B + 1), 256));
  auto* start_l = static_cast<long long*>(ex.scratch(sizeof(long long) * size_t(B + 1), 256));
  c.seqs = seqs;

  PrologueArgs p{};
  p.cu = a.cu_seqlens_q.ptr<const int32_t>();
  p.cu_s = a.cu_seqlens_q.strides[0];
  p.kvl = a.seq_lens_kv.ptr<const int32_t>();
  p.kv_s = a.seq_lens_kv.strides[0];
  p.B = int(B);
  p.Tq = int(Tq);
  p.max_kv = max_kv;
  p.short_items = hc;
  p.long_tc = tc ? 1 : 0;
  p.long_rows = tc ? kTcRows : np_long;
  p.long_hc = tc ? 1 : hc;
  p.seqs = seqs;
  p.start_s = start_s;
  p.start_l = start_l;
  p.error_word = state(ex).error_word;
  attn_prologue_kernel<<<1, kPrologueThreads, 0, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
  if (B == 0) return;

  // Long sequences (none possible when Tq < kShortQ + 1).
  if (n_long_max > 0 && items_l > 0) {
    Common cl = c;
    cl.start = start_l;
    if (tc) {
      launch_tc_d<T>(ex, cl, unsigned(items_l));
    } else {
      SimtArgs s{};
      s.lk = sh.lk;
      s.hpi = hpi;
      s.hc = hc;
      s.np = np_long;
      s.nsplit = 1;
      s.kpb = std::max<int64_t>(max_kv, 1);
      launch_simt<T>(ex, sh, cl, s, dim3(unsigned(items_l), unsigned(Hk), 1), false, rw_long);
    }
  }
  // Short sequences.
  if (items_s > 0) {
    Common cs = c;
    cs.start = start_s;
    SimtArgs s{};
    s.lk = sh.lk;
    s.hpi = hpi;
    s.hc = hc;
    s.np = 1;
    s.nsplit = int(nsplit);
    s.kpb = kpb;
    if (nsplit > 1) {
      const size_t prows = size_t(items_s) * size_t(Hk) * size_t(nsplit) * size_t(rw_short);
      s.pacc = static_cast<float*>(ex.scratch(prows * size_t(D) * sizeof(float), 256));
      s.pml = static_cast<float2*>(ex.scratch(prows * sizeof(float2), 256));
    }
    launch_simt<T>(ex, sh, cs, s, dim3(unsigned(items_s), unsigned(Hk), unsigned(nsplit)), nsplit > 1, rw_short);
  }
}

}  // namespace

opdev_status paged_attention(ExecContext& ex, const paged_attention_args& a) {
  OPDEV_CUDA_FLOAT_SWITCH(a.q.dtype, T, { run<T>(ex, a); });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
