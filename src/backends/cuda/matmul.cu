// cuda: linear (cuBLASLt) and grouped_matmul (own kernels).
//
// linear: out[M, N] = x[M, K] . weight[N, K]^T (+ bias[N]), one cublasLtMatmul, no copies or transposes.
// Row-major out = x . W^T is column-major out^T[N, M] = op_T(A) . B with A = weight seen as the
// column-major K x N matrix (ld = weight's row stride) and B = x seen as the column-major K x M matrix
// (ld = x's row stride); C = D = out^T (ld = out's row stride). Compute type CUBLAS_COMPUTE_32F with
// scale type float32 and A/B/C/D of the op's dtype: float32 inputs run true FP32 (never TF32), bfloat16 /
// float16 accumulate in float32; the bias (output dtype) is added in float32 by CUBLASLT_EPILOGUE_BIAS
// before the single rounding to the output dtype. The heuristic is told the real alignment of every
// pointer (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*; a bias that is not 16-byte aligned is first copied to
// 256-byte aligned scratch) and the workspace of the context. Its answer (the algorithm) is cached per
// (device, M, N, K, dtype, leading dimensions, alignments, bias, deterministic) in a mutex-guarded map
// here, so decode steps do not re-run it; the descriptors themselves are rebuilt on the stack per call
// (cublasLt*Init, no allocation), which keeps the cache free of per-call state (the bias pointer) and
// safe for several threads. Layouts cuBLASLt cannot express (rows that overlap: a row stride smaller than
// the row, possible for inputs) and problems without an algorithm go to the SIMT kernel below, which adds
// the bias in float32 before its one rounding as well. M, N and K must fit int32 (at most
// 2^31 - 1025, UNSUPPORTED otherwise).
//
// Split-K: bf16 / f16 problems only see split-K algorithms that keep the partial sums in float32
// (CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE); INPLACE and OUTPUT_TYPE would round each partial sum to the
// output dtype (and may overflow f16 where the whole sum does not).
//
// Deterministic mode (ex.deterministic) for linear: the heuristic only sees algorithms without split-K
// (CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = CUBLASLT_REDUCTION_SCHEME_NONE, and results that still
// report CUBLASLT_ALGO_CONFIG_SPLITK_NUM > 1 are skipped), and the algorithm is pinned per (N, K, dtype,
// layout): it is chosen once for a reference M (kPinRows) and reused for every M after
// cublasLtMatmulAlgoCheck accepts it, so that a row's result does not depend on how many rows the batch
// has. Guaranteed: the same bits run to run for the same shapes on the same GPU model and cuBLAS version
// (cuBLAS's own reproducibility guarantee plus a fixed algorithm). Not guaranteed: bits across GPU models
// or cuBLAS versions; batch invariance relies on a non-split-K cuBLASLt kernel computing each output
// element independently of M (how data-parallel GEMM kernels work, not a documented cuBLAS promise), and
// is lost for an M whose pinned algorithm is rejected by cublasLtMatmulAlgoCheck (the heuristic then
// chooses for that M, still without split-K).
//
// grouped_matmul: out[r] = x[r] . weight[e]^T for the rows r of expert e, expert_offsets int64 [E+1] ON
// THE DEVICE. The host knows R and E but not the per-expert counts, and never synchronises to read them.
// Every kernel launches an upper-bound grid: tiles of BM rows that never straddle two experts number at
// most ceil(R / BM) + min(E, R), times the tiles along N (a 1-D grid, N tiles fastest so that the blocks
// sharing an x tile and an expert's weight run together). Each block first schedules itself (find_tile):
// its threads read the offsets (E per pass, one per thread), validate them, count each expert's tiles
// ceil(rows / BM), prefix-sum the counts with a block scan and keep the one tile whose global index is the
// block's; blocks past the last tile exit. Experts without rows own no tile, so their weights are never
// read. Offsets that are not a partition (o[0] != 0, a decrease, o[E] != R, anything outside [0, R]) make
// every block zero its rows of out (the fixed tiling t * BM, which covers [0, R)), compute nothing, and
// one block report_bad_index(OPDEV_OP_GROUPED_MATMUL): no address is ever derived from bad offsets.
// Kernels (all accumulate in float32 and round once; no atomics, no split-K, fixed reduction orders):
//  - mma (bfloat16 / float16, sm_80+, 16-byte aligned rows, K % 8 == 0): tensor cores, mma.sync
//    m16n8k16 with ldmatrix.x4 fragments from XOR-swizzled shared tiles (64-byte rows of BK = 32; the
//    16-byte chunk index is XORed with (row >> 1) & 3, conflict-free for ldmatrix), fed by a 4-stage
//    cp.async pipeline (zero-fill for rows past the tile, columns past N and k past K). Three tilings, by
//    the host's estimate of rows per expert (R / min(E, R)):
//      small   BM 16,  BN 128, 4 warps (1 x 4, warp tile 16 x 32),  smem 4 x (16 + 128) x 64 B = 36 KiB
//      medium  BM 64,  BN 128, 8 warps (2 x 4, warp tile 32 x 32),  smem 4 x (64 + 128) x 64 B = 48 KiB
//      large   BM 128, BN 128, 8 warps (2 x 4, warp tile 64 x 32),  smem 4 x (128 + 128) x 64 B = 64 KiB
//    (dynamic shared memory, opted in past 48 KiB; plus ~300 B static for the scheduler). Every tiling
//    runs the same sequence of k16 mma steps per output element, so all three give the same bits.
//  - gemv (decode: R <= 2 E, i.e. a couple of rows per expert; float32 too; not in deterministic mode):
//    tiles of 4 rows, blocks of 8 warps x 4 output columns (BN 32): each lane streams 16-byte vectors of
//    the 4 weight rows along K (2 vectors per row in flight), reuses each for the tile's rows, and each
//    sum ends in a fixed butterfly warp reduction. Each selected expert's weight slice is read once.
//    Shared memory: the scheduler's ~300 B only.
//  - simt (float32, and any dtype whose rows are not 16-byte aligned or K % 8 != 0; also linear's
//    fallback): 64 x 64 tiles, BK 16, 256 threads each computing 4 x 4 outputs from float32 shared tiles
//    (2 x 16 x 65 floats = 8.3 KiB); each output is one sequential fmaf chain over k.
// Deterministic mode for grouped_matmul: the gemv kernel (whose sums differ from the mma sums) is not
// used, so a row's bits depend neither on the batch nor on the row counts; the path still depends on the
// dtype and the alignment of the tensors.
#include <cublasLt.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "backends/cuda/cuda_common.cuh"
#include "core/logging.h"

namespace opdev::cuda {

namespace {

// ---- problem description shared by the kernels ----------------------------------------------------------

struct GemmParams {
  const void* x;              // [R, K], rows ldx apart
  int64_t ldx;
  const void* w;              // [E, N, K]: expert e, row n at w + e * w_es + n * w_ns
  int64_t w_es, w_ns;
  void* out;                  // [R, N], rows ldo apart
  int64_t ldo;
  const void* bias;           // [N] or nullptr (linear's fallback only)
  const int64_t* offsets;     // device int64 [E+1] (stride ostride), or nullptr: one group of all R rows
  int64_t ostride;
  int64_t R;
  int N, K, E;
  int n_tiles;                // tiles along N; blockIdx.x = row_tile * n_tiles + n_tile
  bool out_pairs;             // out rows allow 2-element stores (16-bit types: 4-byte aligned pairs)
  unsigned* error_word;
};

// ---- tile scheduler -----------------------------------------------------------------------------------

enum : int { kTileNone = 0, kTileWork = 1, kTileZero = 2 };

struct TileInfo {
  int64_t row0;  // first row of out / x
  int rows;      // rows in this tile (<= BM)
  int expert;
  int state;     // kTileNone: nothing to do; kTileWork: compute; kTileZero: bad offsets, zero the rows
};

// Called by every thread of the block (it synchronises): the tile with global index t in the order
// (expert, row tile), tiles of bm rows. See the header comment.
template <int NT>
__device__ __forceinline__ TileInfo find_tile(const GemmParams& p, int bm, int64_t t) {
  TileInfo none{0, 0, 0, kTileNone};
  if (p.offsets == nullptr) {  // one group (linear): tile t is rows [t * bm, t * bm + bm)
    const int64_t r0 = t * bm;
    if (r0 >= p.R) return none;
    return TileInfo{r0, int(min(int64_t(bm), p.R - r0)), 0, kTileWork};
  }
  constexpr int kWarps = NT / 32;
  static_assert(NT % 32 == 0 && kWarps <= 32, "block size");
  __shared__ long long s_warp[kWarps];
  __shared__ TileInfo s_tile;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  if (tid == 0) s_tile = none;
  __syncthreads();
  bool bad = p.E <= 0;  // R > 0 here, so no experts cannot partition the rows
  long long before = 0;  // tiles of the experts of earlier passes
  for (int e0 = 0; e0 < p.E; e0 += NT) {
    const int e = e0 + tid;
    long long cnt = 0;
    int64_t lo = 0, hi = 0;
    if (e < p.E) {
      lo = p.offsets[int64_t(e) * p.ostride];
      hi = p.offsets[int64_t(e + 1) * p.ostride];
      const bool ok = lo >= 0 && lo <= hi && hi <= p.R && (e != 0 || lo == 0) && (e != p.E - 1 || hi == p.R);
      if (ok) cnt = (hi - lo + bm - 1) / bm;  // no overflow: 0 <= lo <= hi <= R < 2^31
      else bad = true;
    }
    // Block-wide inclusive scan of cnt (64-bit: bad passes may claim many tiles before being rejected).
    long long incl = cnt;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const long long y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    if (lane == 31) s_warp[warp] = incl;
    __syncthreads();
    if (warp == 0) {
      long long v = lane < kWarps ? s_warp[lane] : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const long long y = __shfl_up_sync(0xffffffffu, v, o);
        if (lane >= o) v += y;
      }
      if (lane < kWarps) s_warp[lane] = v;
    }
    __syncthreads();
    if (warp > 0) incl += s_warp[warp - 1];
    const long long first = before + incl - cnt;  // global index of expert e's first tile
    // The intervals [first, first + cnt) are disjoint, so at most one thread writes s_tile.
    if (cnt > 0 && t >= first && t < first + cnt) {
      const int64_t r0 = lo + (t - first) * bm;
      s_tile = TileInfo{r0, int(min(int64_t(bm), hi - r0)), e, kTileWork};
    }
    before += s_warp[kWarps - 1];
    __syncthreads();  // s_warp is rewritten by the next pass
  }
  if (__syncthreads_or(bad)) {
    if (blockIdx.x == 0 && tid == 0) report_bad_index(p.error_word, OPDEV_OP_GROUPED_MATMUL);
    const int64_t r0 = t * bm;
    if (r0 >= p.R) return none;
    return TileInfo{r0, int(min(int64_t(bm), p.R - r0)), 0, kTileZero};
  }
  return s_tile;
}

// Writes zeros to rows [ti.row0, ti.row0 + ti.rows) x columns [n0, n0 + bn) of out (clipped to N).
template <class T>
__device__ void zero_tile(const GemmParams& p, const TileInfo& ti, int n0, int bn) {
  const int cols = min(bn, p.N - n0);
  if (cols <= 0) return;
  T* out = static_cast<T*>(p.out);
  for (int i = threadIdx.x; i < ti.rows * cols; i += blockDim.x) {
    const int r = i / cols, c = i - r * cols;
    out[(ti.row0 + r) * p.ldo + n0 + c] = from_float<T>(0.0f);
  }
}

// ---- simt kernel (float32; unaligned layouts; linear's fallback) -----------------------------------------

constexpr int kSimtBM = 64, kSimtBN = 64, kSimtBK = 16, kSimtThreads = 256;

template <class T>
__global__ void __launch_bounds__(kSimtThreads) simt_gemm_kernel(const GemmParams p) {
  const int64_t t = blockIdx.x / unsigned(p.n_tiles);
  const int n0 = int(blockIdx.x % unsigned(p.n_tiles)) * kSimtBN;
  const TileInfo ti = find_tile<kSimtThreads>(p, kSimtBM, t);
  if (ti.state == kTileNone) return;
  if (ti.state == kTileZero) {
    zero_tile<T>(p, ti, n0, kSimtBN);
    return;
  }
  __shared__ float As[kSimtBK][kSimtBM + 1];  // transposed: As[k][row]
  __shared__ float Bs[kSimtBK][kSimtBN + 1];  // Bs[k][col]
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const int64_t wbase = int64_t(ti.expert) * p.w_es;
  const int ncols = min(kSimtBN, p.N - n0);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;  // outputs (ty + 16 i, tx + 16 j)
  float acc[4][4] = {};
  for (int k0 = 0; k0 < p.K; k0 += kSimtBK) {
    for (int i = threadIdx.x; i < kSimtBM * kSimtBK; i += kSimtThreads) {
      const int r = i / kSimtBK, k = i % kSimtBK;
      float v = 0.0f;
      if (r < ti.rows && k0 + k < p.K) v = to_float<T>(x[(ti.row0 + r) * p.ldx + k0 + k]);
      As[k][r] = v;
    }
    for (int i = threadIdx.x; i < kSimtBN * kSimtBK; i += kSimtThreads) {
      const int n = i / kSimtBK, k = i % kSimtBK;
      float v = 0.0f;
      if (n < ncols && k0 + k < p.K) v = to_float<T>(w[wbase + int64_t(n0 + n) * p.w_ns + k0 + k]);
      Bs[k][n] = v;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kSimtBK; ++k) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
  T* out = static_cast<T*>(p.out);
  const T* bias = static_cast<const T*>(p.bias);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = ty + 16 * i;
    if (r >= ti.rows) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = tx + 16 * j;
      if (c >= ncols) continue;
      float v = acc[i][j];
      if (bias) v += to_float<T>(bias[n0 + c]);
      out[(ti.row0 + r) * p.ldo + n0 + c] = from_float<T>(v);
    }
  }
}

// ---- gemv kernel (decode: a few rows per expert) ----------------------------------------------------------

constexpr int kGemvRows = 4, kGemvCols = 4, kGemvWarps = 8, kGemvUnroll = 2;
constexpr int kGemvThreads = kGemvWarps * 32, kGemvBN = kGemvWarps * kGemvCols;

// The kVec<T> elements of a 16-byte vector as floats.
template <class T>
__device__ __forceinline__ void unpack16(const uint4& v, float (&f)[kVec<T>]) {
  if constexpr (std::is_same_v<T, float>) {
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
  } else {
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 two;
      if constexpr (std::is_same_v<T, bf16>) {
        __nv_bfloat162 h;
        static_assert(sizeof(h) == 4, "bf16x2");
        memcpy(&h, &u[i], 4);
        two = __bfloat1622float2(h);
      } else {
        __half2 h;
        static_assert(sizeof(h) == 4, "f16x2");
        memcpy(&h, &u[i], 4);
        two = __half22float2(h);
      }
      f[2 * i] = two.x;
      f[2 * i + 1] = two.y;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kGemvThreads) gemv_gemm_kernel(const GemmParams p) {
  constexpr int V = kVec<T>;
  constexpr int kStep = 32 * V;  // k covered by one vector per lane
  const int64_t t = blockIdx.x / unsigned(p.n_tiles);
  const int n0 = int(blockIdx.x % unsigned(p.n_tiles)) * kGemvBN;
  const TileInfo ti = find_tile<kGemvThreads>(p, kGemvRows, t);
  if (ti.state == kTileNone) return;
  if (ti.state == kTileZero) {
    zero_tile<T>(p, ti, n0, kGemvBN);
    return;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nw = n0 + warp * kGemvCols;  // this warp's first output column
  if (nw >= p.N) return;                 // no block-wide synchronisation follows
  const T* w = static_cast<const T*>(p.w) + int64_t(ti.expert) * p.w_es;
  const T* x = static_cast<const T*>(p.x);
  const T* wr[kGemvCols];
  const T* xr[kGemvRows];
#pragma unroll
  for (int j = 0; j < kGemvCols; ++j) wr[j] = w + int64_t(min(nw + j, p.N - 1)) * p.w_ns;  // clamped: valid rows
#pragma unroll
  for (int r = 0; r < kGemvRows; ++r) xr[r] = x + (ti.row0 + min(r, ti.rows - 1)) * p.ldx;
  float acc[kGemvCols][kGemvRows] = {};
  for (int64_t k = int64_t(lane) * V; k < p.K; k += int64_t(kStep) * kGemvUnroll) {
    uint4 wv[kGemvUnroll][kGemvCols];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const int64_t kk = k + int64_t(u) * kStep;
#pragma unroll
      for (int j = 0; j < kGemvCols; ++j)
        wv[u][j] = kk < p.K ? __ldg(reinterpret_cast<const uint4*>(wr[j] + kk)) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const int64_t kk = k + int64_t(u) * kStep;
      if (kk >= p.K) continue;
      float wf[kGemvCols][V];
#pragma unroll
      for (int j = 0; j < kGemvCols; ++j) unpack16<T>(wv[u][j], wf[j]);
#pragma unroll
      for (int r = 0; r < kGemvRows; ++r) {
        if (r >= ti.rows) continue;  // uniform across the block
        float xf[V];
        unpack16<T>(__ldg(reinterpret_cast<const uint4*>(xr[r] + kk)), xf);
#pragma unroll
        for (int j = 0; j < kGemvCols; ++j)
#pragma unroll
          for (int i = 0; i < V; ++i) acc[j][r] = fmaf(wf[j][i], xf[i], acc[j][r]);
      }
    }
  }
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int j = 0; j < kGemvCols; ++j)
#pragma unroll
    for (int r = 0; r < kGemvRows; ++r) {
      const float s = warp_sum(acc[j][r]);
      if (lane == j * kGemvRows + r && r < ti.rows && nw + j < p.N)
        out[(ti.row0 + r) * p.ldo + nw + j] = from_float<T>(s);
    }
}

// ---- mma kernel (tensor cores, bfloat16 / float16) ------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; src_bytes = 0 zero-fills without reading.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)),
               "l"(__cvta_generic_to_global(src)), "r"(src_bytes)
               : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
#else
  __trap();
#endif
}

// d += a . b for one m16n8k16 tile (a row-major 16 x 16, b "col" 16 x 8, float32 accumulators).
template <class T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, bf16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#else
  __trap();
#endif
}

// Two adjacent outputs, each rounded to nearest even (as from_float), as one 4-byte store.
template <class T>
__device__ __forceinline__ void store2(T* p, float a, float b) {
  if constexpr (std::is_same_v<T, bf16>) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
  } else {
    *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
  }
}

template <int BM_, int BN_, int WM_, int WN_, int STAGES_>
struct MmaCfg {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, STAGES = STAGES_;
  static constexpr int BK = 32;  // 64-byte shared rows: 4 chunks of 16 bytes, swizzled
  static constexpr int THREADS = WM * WN * 32;
  static constexpr int WTM = BM / WM, WTN = BN / WN;  // warp tile
  static constexpr int MI = WTM / 16, NI = WTN / 8;   // mma tiles per warp
  static constexpr size_t kSmem = size_t(STAGES) * (BM + BN) * BK * 2;
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile");
  static_assert(STAGES >= 2, "pipeline");
};
using MmaSmall = MmaCfg<16, 128, 1, 4, 4>;    // 128 threads, 36 KiB
using MmaMedium = MmaCfg<64, 128, 2, 4, 4>;   // 256 threads, 48 KiB
using MmaLarge = MmaCfg<128, 128, 2, 4, 4>;   // 256 threads, 64 KiB

// Offset (in elements) of 16-byte chunk kc of row r in a swizzled [rows][32] tile.
__device__ __forceinline__ int swz(int r, int kc) { return r * 32 + ((kc ^ ((r >> 1) & 3)) << 3); }

template <class T, class C>
__global__ void __launch_bounds__(C::THREADS) mma_gemm_kernel(const GemmParams p) {
  extern __shared__ __align__(128) unsigned char mma_smem[];
  T* sA = reinterpret_cast<T*>(mma_smem);  // [STAGES][BM][BK]
  T* sB = sA + C::STAGES * C::BM * C::BK;  // [STAGES][BN][BK]
  const int64_t t = blockIdx.x / unsigned(p.n_tiles);
  const int n0 = int(blockIdx.x % unsigned(p.n_tiles)) * C::BN;
  const TileInfo ti = find_tile<C::THREADS>(p, C::BM, t);
  if (ti.state == kTileNone) return;
  if (ti.state == kTileZero) {
    zero_tile<T>(p, ti, n0, C::BN);
    return;
  }
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / C::WN, wn = warp % C::WN;
  const T* xg = static_cast<const T*>(p.x);
  const T* wg = static_cast<const T*>(p.w);
  const int64_t wbase = int64_t(ti.expert) * p.w_es + int64_t(n0) * p.w_ns;
  const int ncols = min(C::BN, p.N - n0);
  const int ktiles = (p.K + C::BK - 1) / C::BK;

  // One stage: BM x 32 of x and BN x 32 of the weight, in 16-byte chunks (K % 8 == 0: a chunk is wholly
  // inside or outside [0, K)); chunks outside the tile are zero-filled without a read.
  auto load_stage = [&](int slot, int kt) {
    const int k0 = kt * C::BK;
    T* a = sA + slot * C::BM * C::BK;
    T* b = sB + slot * C::BN * C::BK;
    constexpr int kA = C::BM * 4, kB = C::BN * 4;
#pragma unroll
    for (int i = 0; i < (kA + C::THREADS - 1) / C::THREADS; ++i) {
      const int c = tid + i * C::THREADS;
      if (kA % C::THREADS == 0 || c < kA) {
        const int r = c >> 2, kc = c & 3, k = k0 + kc * 8;
        const bool ok = r < ti.rows && k < p.K;
        const T* src = ok ? xg + (ti.row0 + r) * p.ldx + k : xg;
        cp_async16(a + swz(r, kc), src, ok ? 16 : 0);
      }
    }
#pragma unroll
    for (int i = 0; i < (kB + C::THREADS - 1) / C::THREADS; ++i) {
      const int c = tid + i * C::THREADS;
      if (kB % C::THREADS == 0 || c < kB) {
        const int r = c >> 2, kc = c & 3, k = k0 + kc * 8;
        const bool ok = r < ncols && k < p.K;
        const T* src = ok ? wg + wbase + int64_t(r) * p.w_ns + k : wg;
        cp_async16(b + swz(r, kc), src, ok ? 16 : 0);
      }
    }
  };

  float acc[C::MI][C::NI][4];
#pragma unroll
  for (int mi = 0; mi < C::MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < C::NI; ++ni)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.0f;

#pragma unroll
  for (int s = 0; s < C::STAGES - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<C::STAGES - 2>();  // stage kt has landed (for this thread) ...
    __syncthreads();                 // ... for every thread, and slot (kt - 1) % STAGES is free
    {
      const int nk = kt + C::STAGES - 1;
      if (nk < ktiles) load_stage(nk % C::STAGES, nk);
      cp_async_commit();  // possibly empty: keeps the group count in step
    }
    const T* a = sA + (kt % C::STAGES) * C::BM * C::BK;
    const T* b = sB + (kt % C::STAGES) * C::BN * C::BK;
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {  // two k16 steps per stage, in order
      uint32_t af[C::MI][4], bfr[C::NI][2];
#pragma unroll
      for (int mi = 0; mi < C::MI; ++mi) {
        // matrices (rows 0-7, k 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15) -> a0..a3 of the fragment
        const int r = wm * C::WTM + mi * 16 + (lane & 15);
        ldmatrix_x4(af[mi], a + swz(r, ks * 2 + (lane >> 4)));
      }
#pragma unroll
      for (int nj = 0; nj < C::NI / 2; ++nj) {
        // matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) -> b of two n8 tiles
        const int r = wn * C::WTN + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        uint32_t q[4];
        ldmatrix_x4(q, b + swz(r, ks * 2 + ((lane >> 3) & 1)));
        bfr[2 * nj][0] = q[0];
        bfr[2 * nj][1] = q[1];
        bfr[2 * nj + 1][0] = q[2];
        bfr[2 * nj + 1][1] = q[3];
      }
#pragma unroll
      for (int mi = 0; mi < C::MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < C::NI; ++ni) mma16816<T>(acc[mi][ni], af[mi], bfr[ni]);
    }
  }
  cp_async_wait<0>();

  // Accumulator (mi, ni): [0], [1] at (row lane / 4, cols 2 (lane % 4) + 0, 1); [2], [3] at row + 8.
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int mi = 0; mi < C::MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < C::NI; ++ni) {
      const int c = wn * C::WTN + ni * 8 + (lane & 3) * 2;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wm * C::WTM + mi * 16 + (lane >> 2) + h * 8;
        if (r >= ti.rows || c >= ncols) continue;
        T* o = out + (ti.row0 + r) * p.ldo + n0 + c;
        const float v0 = acc[mi][ni][2 * h], v1 = acc[mi][ni][2 * h + 1];
        if (c + 1 < ncols && p.out_pairs) {
          store2<T>(o, v0, v1);
        } else {
          o[0] = from_float<T>(v0);
          if (c + 1 < ncols) o[1] = from_float<T>(v1);
        }
      }
    }
}

// ---- host side: launches ------------------------------------------------------------------------------

// Upper bound of the row tiles of bm rows (tiles never straddle two experts).
int64_t row_tiles_upper(const GemmParams& p, int bm) {
  const int64_t t = ceil_div(p.R, bm);
  return p.offsets ? t + std::min<int64_t>(p.E, p.R) : t;
}

template <class Kernel>
void launch_tiles(ExecContext& ex, Kernel kernel, GemmParams p, int bm, int bn, int threads, size_t smem,
                  const char* what) {
  p.n_tiles = int(ceil_div(p.N, bn));
  const int64_t blocks = int64_t(p.n_tiles) * row_tiles_upper(p, bm);
  if (blocks > int64_t(INT_MAX))
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: ", what, ": the grid of ", blocks, " blocks exceeds 2^31 - 1 (R = ", p.R,
         ", N = ", p.N, ")");
  if (blocks == 0) return;
  kernel<<<unsigned(blocks), threads, smem, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_simt(ExecContext& ex, const GemmParams& p, const char* what) {
  launch_tiles(ex, simt_gemm_kernel<T>, p, kSimtBM, kSimtBN, kSimtThreads, 0, what);
}

template <class T>
void launch_gemv(ExecContext& ex, const GemmParams& p, const char* what) {
  launch_tiles(ex, gemv_gemm_kernel<T>, p, kGemvRows, kGemvBN, kGemvThreads, 0, what);
}

template <class T, class C>
void launch_mma(ExecContext& ex, const GemmParams& p, const char* what) {
  auto kernel = mma_gemm_kernel<T, C>;
  // Opt in to more than 48 KiB of dynamic shared memory, once per device.
  static std::atomic<uint64_t> configured{0};
  const int dev = state(ex).device;
  const uint64_t bit = dev >= 0 && dev < 64 ? uint64_t(1) << dev : 0;
  if (bit == 0 || !(configured.load(std::memory_order_acquire) & bit)) {
    OPDEV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(C::kSmem)));
    configured.fetch_or(bit, std::memory_order_release);
  }
  launch_tiles(ex, kernel, p, C::BM, C::BN, C::THREADS, C::kSmem, what);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Largest M, N, K, R, E: int32 with room for the kernels' "index + tile" steps (k0 + BK, n0 + BN, ...).
constexpr int64_t kMaxDim = int64_t(INT_MAX) - 1024;

// ---- cuBLASLt plumbing (linear) --------------------------------------------------------------------------

#define OPDEV_CUBLASLT_CHECK(call)                                                                         \
  do {                                                                                                     \
    cublasStatus_t st_ = (call);                                                                           \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                      \
      ::opdev::fail(OPDEV_STATUS_DEVICE_ERROR, "cuda: ", #call, " failed with ", cublasLtGetStatusName(st_), \
                    " at matmul.cu:", __LINE__);                                                           \
  } while (0)

cudaDataType_t cuda_dtype(DType d) {
  switch (d) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cuda: linear: dtype ", dtype_name(d), " is not implemented");
  }
}

// Largest power of two (<= 256) dividing the address: what the heuristic may assume.
uint32_t alignment_of(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 1;
  while (a < 256 && v % (uintptr_t(a) * 2) == 0) a *= 2;
  return a;
}

struct LtKey {
  int device, dtype;
  int64_t M, N, K, lda, ldb, ldc;  // cuBLASLt's view: A = weight (K x N), B = x (K x M), C = D = out (N x M)
  uint32_t align_a, align_b, align_c, align_bias;
  bool bias, det;
  auto tie() const {
    return std::tie(device, dtype, M, N, K, lda, ldb, ldc, align_a, align_b, align_c, align_bias, bias, det);
  }
  bool operator<(const LtKey& o) const { return tie() < o.tie(); }
};

struct LtPlan {
  bool ok = false;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

// The reference row count that deterministic mode pins the algorithm with.
constexpr int64_t kPinRows = 256;
// Bound on the cached plans (one per distinct M, among others): past it the map starts over.
constexpr size_t kMaxPlans = 4096;

// Descriptors of one problem, built on the stack (no allocation, nothing shared between calls).
struct LtProblem {
  cublasLtMatmulDescOpaque_t desc_mem;
  cublasLtMatrixLayoutOpaque_t a_mem, b_mem, c_mem;
  cublasLtMatmulDesc_t desc() { return &desc_mem; }
  cublasLtMatrixLayout_t a() { return &a_mem; }
  cublasLtMatrixLayout_t b() { return &b_mem; }
  cublasLtMatrixLayout_t c() { return &c_mem; }

  LtProblem(const LtKey& k, int64_t M, const void* bias) {
    const cudaDataType_t t = cuda_dtype(DType(k.dtype));
    OPDEV_CUBLASLT_CHECK(cublasLtMatmulDescInit(desc(), CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    OPDEV_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc(), CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    OPDEV_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc(), CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (k.bias) {
      // The bias has D's dtype (the default CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE) and is added in float32.
      const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      OPDEV_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc(), CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      OPDEV_CUBLASLT_CHECK(
          cublasLtMatmulDescSetAttribute(desc(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    OPDEV_CUBLASLT_CHECK(cublasLtMatrixLayoutInit(a(), t, uint64_t(k.K), uint64_t(k.N), k.lda));
    OPDEV_CUBLASLT_CHECK(cublasLtMatrixLayoutInit(b(), t, uint64_t(k.K), uint64_t(M), k.ldb));
    OPDEV_CUBLASLT_CHECK(cublasLtMatrixLayoutInit(c(), t, uint64_t(k.N), uint64_t(M), k.ldc));
  }
};

// Does the algorithm split K (deterministic mode rejects it)?
bool splits_k(const cublasLtMatmulAlgo_t& algo) {
  int32_t splitk = 1;
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof(splitk),
                                           &written) != CUBLAS_STATUS_SUCCESS)
    return false;
  return splitk > 1;
}

// Does the algorithm's split-K keep partial sums in the output type (INPLACE reduces in the output buffer,
// OUTPUT_TYPE in workspace of the output type)? For bf16 / f16 that rounds every partial sum, which the
// contract (float32 accumulation, one rounding at the end) does not allow.
bool reduces_in_output_type(const cublasLtMatmulAlgo_t& algo) {
  uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_NONE;
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme),
                                           &written) != CUBLAS_STATUS_SUCCESS)
    return false;
  return (scheme & (CUBLASLT_REDUCTION_SCHEME_INPLACE | CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE)) != 0 && splits_k(algo);
}

LtPlan run_heuristic(cublasLtHandle_t h, LtProblem& pr, const LtKey& k, size_t ws_bytes) {
  cublasLtMatmulPreferenceOpaque_t pref_mem;
  cublasLtMatmulPreference_t pref = &pref_mem;
  OPDEV_CUBLASLT_CHECK(cublasLtMatmulPreferenceInit(pref));
  const uint64_t ws = ws_bytes;
  OPDEV_CUBLASLT_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t al[4] = {k.align_a, k.align_b, k.align_c, k.align_c};
  const cublasLtMatmulPreferenceAttributes_t which[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    OPDEV_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, which[i], &al[i], sizeof(al[i])));
  // Deterministic: no split-K. bf16 / f16: split-K only with float32 partial sums (COMPUTE_TYPE), as
  // PyTorch does when reduced-precision reductions are not allowed. float32: any scheme (its output type is
  // the compute type).
  const bool half = DType(k.dtype) != DType::F32;
  if (k.det || half) {
    const uint32_t mask = k.det ? uint32_t(CUBLASLT_REDUCTION_SCHEME_NONE)
                                : uint32_t(CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE);
    OPDEV_CUBLASLT_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof(mask)));
  }
  constexpr int kWant = 8;
  cublasLtMatmulHeuristicResult_t res[kWant] = {};
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(h, pr.desc(), pr.a(), pr.b(), pr.c(), pr.c(), pref, kWant, res, &found);
  LtPlan plan;
  if (st != CUBLAS_STATUS_SUCCESS) return plan;  // e.g. NOT_SUPPORTED: no algorithm for this problem
  for (int i = 0; i < found; ++i) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > ws_bytes) continue;
    if (k.det && splits_k(res[i].algo)) continue;
    if (half && reduces_in_output_type(res[i].algo)) continue;
    plan.ok = true;
    plan.algo = res[i].algo;
    plan.workspace = res[i].workspaceSize;
    break;
  }
  return plan;
}

// The plan for key k (problem pr with k.M rows), from the cache or the heuristic.
LtPlan plan_for(CudaState& s, LtProblem& pr, const LtKey& k, const void* bias) {
  static std::mutex mu;
  static std::map<LtKey, LtPlan> plans;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = plans.find(k); it != plans.end()) return it->second;
  if (plans.size() >= kMaxPlans) plans.clear();
  auto h = static_cast<cublasLtHandle_t>(s.blaslt);
  LtPlan plan;
  if (k.det) {
    // Pinned: the algorithm the heuristic gives for kPinRows rows, if it accepts this M too.
    LtKey ref = k;
    ref.M = -1;
    LtPlan pinned;
    if (auto it = plans.find(ref); it != plans.end()) {
      pinned = it->second;
    } else {
      LtProblem ref_pr(k, kPinRows, bias);
      pinned = run_heuristic(h, ref_pr, k, s.lt_workspace_bytes);
      plans[ref] = pinned;
    }
    if (pinned.ok) {
      cublasLtMatmulHeuristicResult_t chk{};
      if (cublasLtMatmulAlgoCheck(h, pr.desc(), pr.a(), pr.b(), pr.c(), pr.c(), &pinned.algo, &chk) ==
              CUBLAS_STATUS_SUCCESS &&
          chk.workspaceSize <= s.lt_workspace_bytes) {
        plan = pinned;
        plan.workspace = chk.workspaceSize;
      }
    }
  }
  if (!plan.ok) plan = run_heuristic(h, pr, k, s.lt_workspace_bytes);
  plans[k] = plan;
  return plan;
}

}  // namespace

// ---- linear ---------------------------------------------------------------------------------------------

opdev_status linear(ExecContext& ex, const linear_args& a) {
  CudaState& s = state(ex);
  const int64_t M = a.x.size(0), K = a.x.size(1), N = a.weight.size(0);
  if (M > kMaxDim || N > kMaxDim || K > kMaxDim)
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: linear: M, N and K must each be at most 2^31 - 1025 (int32 for cuBLASLt "
         "and the kernels' tile arithmetic); got M = ", M, ", N = ", N, ", K = ", K);
  const int64_t ldx = a.x.stride(0), ldw = a.weight.stride(0), ldo = a.out.stride(0);
  // Leading dimensions of cuBLASLt's column-major view. A single row's stride is free (any value is
  // valid for it), so it is replaced by the row length only where cuBLASLt would reject it.
  const int64_t lda = (N == 1 && ldw < K) ? K : ldw;
  const int64_t ldb = (M == 1 && ldx < K) ? K : ldx;
  const int64_t ldc = (M == 1 && ldo < N) ? N : ldo;
  const bool lt_layout = K > 0 && lda >= K && ldb >= K && ldc >= N;  // else rows overlap (inputs may)

  if (lt_layout) {
    const void* bias = a.bias.present ? a.bias.data : nullptr;
    if (bias && !aligned16(bias)) {
      // cuBLASLt's bias epilogue may read it with vectors: give it an aligned copy (N elements).
      void* copy = ex.scratch(size_t(N) * a.bias.itemsize(), 256);
      const size_t bytes = size_t(N) * a.bias.itemsize();
      OPDEV_CUDA_CHECK(cudaMemcpyAsync(copy, bias, bytes, cudaMemcpyDeviceToDevice, stream(ex)));
      bias = copy;
    }
    LtKey key{};
    key.device = s.device;
    key.dtype = int(a.x.dtype);
    key.M = M;
    key.N = N;
    key.K = K;
    key.lda = lda;
    key.ldb = ldb;
    key.ldc = ldc;
    key.align_a = alignment_of(a.weight.data);
    key.align_b = alignment_of(a.x.data);
    key.align_c = alignment_of(a.out.data);
    key.align_bias = bias ? alignment_of(bias) : 0;
    key.bias = bias != nullptr;
    key.det = ex.deterministic;
    LtProblem pr(key, M, bias);
    const LtPlan plan = plan_for(s, pr, key, bias);
    if (plan.ok) {
      const float alpha = 1.0f, beta = 0.0f;
      OPDEV_CUBLASLT_CHECK(cublasLtMatmul(static_cast<cublasLtHandle_t>(s.blaslt), pr.desc(), &alpha, a.weight.data,
                                          pr.a(), a.x.data, pr.b(), &beta, a.out.data, pr.c(), a.out.data, pr.c(),
                                          &plan.algo, s.lt_workspace, plan.workspace, stream(ex)));
      return OPDEV_STATUS_SUCCESS;
    }
    log(LogLevel::Debug, "cuda: linear: no cuBLASLt algorithm for M=", M, " N=", N, " K=", K,
        "; using the SIMT kernel");
  }

  // K == 0 (out = bias or 0), overlapping input rows, or no cuBLASLt algorithm: the SIMT kernel.
  GemmParams p{};
  p.x = a.x.data;
  p.ldx = ldx;
  p.w = a.weight.data;
  p.w_es = 0;
  p.w_ns = ldw;
  p.out = a.out.data;
  p.ldo = ldo;
  p.bias = a.bias.present ? a.bias.data : nullptr;
  p.offsets = nullptr;
  p.ostride = 0;
  p.R = M;
  p.N = int(N);
  p.K = int(K);
  p.E = 1;
  p.out_pairs = false;
  p.error_word = s.error_word;
  OPDEV_CUDA_FLOAT_SWITCH(a.x.dtype, T, { launch_simt<T>(ex, p, "linear"); });
  return OPDEV_STATUS_SUCCESS;
}

// ---- grouped_matmul -------------------------------------------------------------------------------------

// Rows per expert up to which decode takes the gemv kernel (R <= kGemvRowsPerExpert * E).
constexpr int64_t kGemvRowsPerExpert = 2;

namespace {

// Picks the kernel; rows_per_expert is the host's estimate R / min(E, R) (the real counts are on the device).
template <class T>
void run_grouped(ExecContext& ex, const GemmParams& p, bool gemv, bool tensor_cores, int64_t rows_per_expert) {
  if (gemv) {
    launch_gemv<T>(ex, p, "grouped_matmul");
    return;
  }
  if constexpr (!std::is_same_v<T, float>) {
    if (tensor_cores) {
      if (rows_per_expert <= 16) launch_mma<T, MmaSmall>(ex, p, "grouped_matmul");
      else if (rows_per_expert <= 64) launch_mma<T, MmaMedium>(ex, p, "grouped_matmul");
      else launch_mma<T, MmaLarge>(ex, p, "grouped_matmul");
      return;
    }
  }
  launch_simt<T>(ex, p, "grouped_matmul");
}

}  // namespace

opdev_status grouped_matmul(ExecContext& ex, const grouped_matmul_args& a) {
  CudaState& s = state(ex);
  const int64_t R = a.x.size(0), K = a.x.size(1), E = a.weight.size(0), N = a.weight.size(1);
  if (R > kMaxDim || N > kMaxDim || K > kMaxDim || E > kMaxDim)
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: grouped_matmul: R, N, K and E must each be at most 2^31 - 1025 (the "
         "kernels' int32 tile arithmetic); got R = ", R, ", N = ", N, ", K = ", K, ", E = ", E);
  GemmParams p{};
  p.x = a.x.data;
  p.ldx = a.x.stride(0);
  p.w = a.weight.data;
  p.w_es = a.weight.stride(0);
  p.w_ns = a.weight.stride(1);
  p.out = a.out.data;
  p.ldo = a.out.stride(0);
  p.bias = nullptr;
  p.offsets = a.expert_offsets.ptr<const int64_t>();
  p.ostride = a.expert_offsets.stride(0);
  p.R = R;
  p.N = int(N);
  p.K = int(K);
  p.E = int(E);
  p.error_word = s.error_word;
  const int64_t item = int64_t(a.x.itemsize()), vec = 16 / item;
  p.out_pairs = reinterpret_cast<uintptr_t>(a.out.data) % uintptr_t(2 * item) == 0 && (R <= 1 || p.ldo % 2 == 0);
  // 16-byte vectors (cp.async chunks, gemv loads) along K of every row of x and of every expert's rows.
  // Deterministic mode requires the row stride even for one row, so that the kernel (and the bits of a
  // row) does not depend on how many rows the call has.
  const bool vec_ok = K % vec == 0 && aligned16(a.x.data) && aligned16(a.weight.data) &&
                      ((R <= 1 && !ex.deterministic) || p.ldx % vec == 0) &&
                      (N <= 1 || p.w_ns % vec == 0) && (E <= 1 || p.w_es % vec == 0);
  const bool gemv = vec_ok && !ex.deterministic && R <= kGemvRowsPerExpert * E;
  const bool tensor_cores = vec_ok && a.x.dtype != DType::F32 && s.prop.major >= 8;
  const int64_t rows_per_expert = R / std::max<int64_t>(1, std::min(E, R));
  OPDEV_CUDA_FLOAT_SWITCH(a.x.dtype, T, { run_grouped<T>(ex, p, gemv, tensor_cores, rows_per_expert); });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
