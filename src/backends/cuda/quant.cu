// cuda: quantize_int8, linear_w8a8, grouped_matmul_w8a8 (the int8 W8A8 ops).
//
// Everything here is bit-exact by construction (opdev.h, docs/OPS.md "int8 W8A8 is two ops"): the int8
// products are summed exactly in int32, and every float32 step is one IEEE operation rounded to nearest
// even. The float32 operations are written as inline PTX without .ftz (f32_mul / f32_fma / f32_div) so that
// neither contraction into an fma nor a -ftz / --use_fast_math build can change a bit; float(acc) is
// cvt.rn (__int2float_rn). Results therefore equal the cpu backend's for every kernel, tile and batch.
//
// quantize_int8: a warp per row (K <= 1024) or a 256-thread block per row, 16-byte loads when every row
// start is aligned (scalar otherwise). Pass 1 keeps up to kCache chunks per thread in registers and
// reduces a = max |x| as the integer max of the float bit patterns with the sign cleared: that is the
// float max for numbers, and any NaN (bits > 0x7f800000) wins, which is exactly the "NaN if the row holds
// a NaN" rule (no separate flag, no fmaxf NaN semantics to worry about). Pass 2 quantises from the
// registers (re-reading from L1/L2 only past kCache chunks) and stores 4 / 8 int8 values at a time.
// q = clamp(__float2int_rn(x * inv), -127, 127) (cvt.rni: round half to even, saturating), 0 for NaN.
//
// linear_w8a8, by the number of rows M:
// - M <= 16: a dp4a GEMV. A 128-thread block owns 2 (M <= 2) or 4 weight rows and up to 8 x rows (grid.y
//   covers M in blocks of 8); its threads take the 16-byte chunks of K in turn (LDG.128 when the rows are
//   aligned, byte loads for the tail and for unaligned views), 4 dp4a per chunk and row pair, then a warp
//   butterfly and a sum over the warps in shared memory (integer: order free) and the epilogue. Splitting K
//   over the block keeps many weight loads in flight even for small N: the memory-bound decode case, where
//   the weight is streamed once (twice for 9..16 rows, the second pass mostly from L2).
// - M > 16: a tensor-core GEMM, mma.sync.m16n8k32 s8 x s8 -> s32. Block tiles BM x BN x 64 bytes of k
//   (128x128 with 8 warps of 64x32, 64x128 with 8 warps of 32x32, or 64x64 with 4 warps of 32x32, picked
//   so that the grid fills the GPU), a 3-stage cp.async pipeline (16-byte copies with zero-fill for
//   rows past M / N and k past K; views whose row starts are not 16-byte aligned fill the same shared
//   buffers with byte loads instead), shared rows of 64 bytes with a 16-byte-chunk XOR swizzle
//   (chunk c of row r at c ^ ((r >> 1) & 3): ldmatrix and the copies are bank-conflict free), ldmatrix.x4
//   fragments, and the epilogue fused on the int32 accumulators (no int32 round trip through memory).
// grouped_matmul_w8a8: the same GEMM kernel (64-row tiles) over a tile schedule. The offsets live on the
// device, so a one-block prologue kernel reads them once: it checks 0 = o[0] <= ... <= o[E] = R, cleans
// them into a non-decreasing partition of [0, R] (prefix max, clamped), counts each expert's 64-row tiles,
// scans the counts and writes one {expert, first row, end row} entry per grid.x slot (grid.x is the bound
// ceil(R / 64) + min(E, R) known on the host; slots past the real tile count are empty and exit at once).
// Experts without rows get no tile, so their weights are never read. Bad offsets set the op's bit in the
// error word, and the rows that the cleaned partition leaves to no expert are zeroed.
//
// Epilogue (all paths, the contract's order): t = float(acc) * weight_scale[n];
// y = bias ? fma(x_scale[m], t, bias[n]) : x_scale[m] * t; out = round(y) to the dtype.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

// ---- float32 steps of the contract (IEEE, round to nearest even, subnormals kept) ---------------------

__device__ __forceinline__ float f32_mul(float a, float b) {
  float d;
  asm("mul.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b));
  return d;
}

__device__ __forceinline__ float f32_fma(float a, float b, float c) {
  float d;
  asm("fma.rn.f32 %0, %1, %2, %3;" : "=f"(d) : "f"(a), "f"(b), "f"(c));
  return d;
}

__device__ __forceinline__ float f32_div(float a, float b) {
  float d;
  asm("div.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b));
  return d;
}

// The W8A8 epilogue before the final rounding to the output dtype.
__device__ __forceinline__ float w8a8_epilogue(int acc, float xs, float ws, bool has_bias, float bias) {
  const float t = f32_mul(__int2float_rn(acc), ws);
  return has_bias ? f32_fma(xs, t, bias) : f32_mul(xs, t);
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Rows of an int8 matrix (row stride ld bytes) can be read 16 bytes at a time from every row start.
inline bool rows16(const void* base, int64_t rows, int64_t ld) { return aligned16(base) && (rows <= 1 || ld % 16 == 0); }

// ---- quantize_int8 -------------------------------------------------------------------------------------

// V consecutive elements of T, loaded / kept as one unit (V = kVec<T>: 16 bytes; V = 1: scalar path).
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Running max of |x| as float bits with the sign cleared (NaN bit patterns exceed +inf's).
template <class T, int V>
__device__ __forceinline__ unsigned abs_max_bits(const Pack<T, V>& p, unsigned m) {
#pragma unroll
  for (int e = 0; e < V; ++e) m = max(m, __float_as_uint(to_float<T>(p.v[e])) & 0x7fffffffu);
  return m;
}

// clamp(round_half_even(x * inv), -127, 127), 0 when x * inv is NaN. cvt.rni.s32 saturates, so +-inf and
// huge values land on the clamp.
__device__ __forceinline__ int quantize_one(float x, float inv) {
  const float r = f32_mul(x, inv);
  if (isnan(r)) return 0;
  return min(127, max(-127, __float2int_rn(r)));
}

// Quantises one pack and stores its V int8 values (one 4- or 8-byte store when `vec`).
template <class T, int V>
__device__ __forceinline__ void quantize_pack(const Pack<T, V>& p, float inv, int8_t* dst, bool vec) {
  int q[V];
#pragma unroll
  for (int e = 0; e < V; ++e) q[e] = quantize_one(to_float<T>(p.v[e]), inv);
  if constexpr (V % 4 == 0 && V <= 8) {
    if (vec) {
      uint32_t w[V / 4];
#pragma unroll
      for (int i = 0; i < V / 4; ++i)
        w[i] = (uint32_t(q[4 * i]) & 0xffu) | ((uint32_t(q[4 * i + 1]) & 0xffu) << 8) |
               ((uint32_t(q[4 * i + 2]) & 0xffu) << 16) | ((uint32_t(q[4 * i + 3]) & 0xffu) << 24);
      if constexpr (V == 4) {
        *reinterpret_cast<uint32_t*>(dst) = w[0];
      } else {
        *reinterpret_cast<uint2*>(dst) = make_uint2(w[0], w[1]);
      }
      return;
    }
  }
#pragma unroll
  for (int e = 0; e < V; ++e) dst[e] = int8_t(q[e]);
}

constexpr int kQuantThreads = 256;

// G threads per row (32: a warp, kQuantThreads / 32 rows per block; kQuantThreads: one row per block).
// Thread i of a row owns packs i, i + G, i + 2G, ...; the first kCache of them stay in registers.
template <class T, int V, int G, int kCache>
__global__ void __launch_bounds__(kQuantThreads)
    quantize_int8_kernel(const T* __restrict__ x, int64_t ldx, int8_t* __restrict__ q, int64_t ldq,
                         float* __restrict__ scale, int64_t M, int64_t K, bool q_vec) {
  static_assert(G == 32 || G == kQuantThreads, "a row is a warp or the block");
  constexpr int kRows = kQuantThreads / G;
  const int tid = int(threadIdx.x) % G;
  const int64_t m = int64_t(blockIdx.x) * kRows + int(threadIdx.x) / G;
  // G == 32: whole warps leave (no block barrier below); G == kQuantThreads: grid.x == M, never taken.
  if (m >= M) return;
  using P = Pack<T, V>;
  const T* xr = x + m * ldx;
  int8_t* qr = q + m * ldq;
  const int64_t npacks = K / V;  // V divides K on the vector path

  // Pass 1: a = max |x| (as bits; NaN wins).
  P cache[kCache];
  unsigned amax = 0;
#pragma unroll
  for (int i = 0; i < kCache; ++i) {
    const int64_t c = int64_t(i) * G + tid;
    if (c < npacks) {
      cache[i] = *reinterpret_cast<const P*>(xr + c * V);
      amax = abs_max_bits(cache[i], amax);
    }
  }
  for (int64_t c = int64_t(kCache) * G + tid; c < npacks; c += G)
    amax = abs_max_bits(*reinterpret_cast<const P*>(xr + c * V), amax);
  amax = __reduce_max_sync(0xffffffffu, amax);
  if constexpr (G > 32) {
    __shared__ unsigned warp_max_bits[G / 32];
    if ((threadIdx.x & 31) == 0) warp_max_bits[threadIdx.x >> 5] = amax;
    __syncthreads();
    amax = warp_max_bits[0];
#pragma unroll
    for (int w = 1; w < G / 32; ++w) amax = max(amax, warp_max_bits[w]);
  }
  const float a = amax > 0x7f800000u ? __uint_as_float(0x7fffffffu) : __uint_as_float(amax);
  const float inv = amax == 0u ? 0.0f : f32_div(127.0f, a);  // bits: a subnormal a is not 0
  if (tid == 0) scale[m] = f32_div(a, 127.0f);

  // Pass 2: the int8 values.
#pragma unroll
  for (int i = 0; i < kCache; ++i) {
    const int64_t c = int64_t(i) * G + tid;
    if (c < npacks) quantize_pack<T, V>(cache[i], inv, qr + c * V, q_vec);
  }
  for (int64_t c = int64_t(kCache) * G + tid; c < npacks; c += G)
    quantize_pack<T, V>(*reinterpret_cast<const P*>(xr + c * V), inv, qr + c * V, q_vec);
}

template <class T, int V>
void launch_quantize(ExecContext& ex, const quantize_int8_args& a, int64_t M, int64_t K, bool q_vec) {
  const T* x = a.x.ptr<const T>();
  int8_t* q = a.out.ptr<int8_t>();
  float* s = a.scale.ptr<float>();
  const int64_t ldx = a.x.strides[0], ldq = a.out.strides[0];
  if (K <= 1024) {
    const int64_t blocks = ceil_div(M, kQuantThreads / 32);
    if (blocks > INT_MAX) fail(OPDEV_STATUS_UNSUPPORTED, "cuda: quantize_int8: M = ", M, " rows are too many for one grid");
    quantize_int8_kernel<T, V, 32, 8><<<unsigned(blocks), kQuantThreads, 0, stream(ex)>>>(x, ldx, q, ldq, s, M, K, q_vec);
  } else {
    if (M > INT_MAX) fail(OPDEV_STATUS_UNSUPPORTED, "cuda: quantize_int8: M = ", M, " rows are too many for one grid");
    quantize_int8_kernel<T, V, kQuantThreads, 4><<<unsigned(M), kQuantThreads, 0, stream(ex)>>>(x, ldx, q, ldq, s, M, K, q_vec);
  }
  OPDEV_CUDA_CHECK_LAUNCH();
}

// ---- W8A8 products: shared description -----------------------------------------------------------------

// One grid.x slot of the grouped schedule: rows [r0, r1) of expert e (e < 0: no work).
struct TileInfo {
  long long r0, r1;
  int e, pad;
};

struct W8A8Problem {
  const int8_t* x;         // [M, K] rows, stride ldx
  int64_t ldx;
  const float* xs;         // [M]
  const int8_t* w;         // [N, K] rows (stride ldw); grouped: expert e at w + e * w_estride
  int64_t ldw, w_estride;
  const float* ws;         // [N]; grouped: [E, N]
  const void* bias;        // [N] of out's dtype, or null
  void* out;               // [M, N] of out's dtype, stride ldo
  int64_t ldo;
  int64_t M;               // rows of x and out (R for grouped)
  int N, K;
  bool pair_ok;            // out can take 2-element stores at even columns
  const TileInfo* tiles;   // grouped: the schedule, one entry per blockIdx.x
};

// Two adjacent outputs in one store.
template <class T>
struct alignas(2 * sizeof(T)) Pair {
  T a, b;
};

// ---- GEMV (small M): dp4a ------------------------------------------------------------------------------

constexpr int kGemvWarps = 4;  // warps per block, splitting K
constexpr int kGemvThreads = kGemvWarps * 32;
constexpr int kGemvMaxRows = 16;

// Weight rows per block and 16-byte chunks per thread in flight, by the x rows per block: fewer x rows leave
// registers for more weight bytes in flight (the memory-bound decode case).
template <int MR>
struct GemvShape {
  static constexpr int NR = MR >= 4 ? 4 : 2;
  static constexpr int U = MR >= 4 ? 1 : 2;
};

// 16 bytes of a row at column k (k a multiple of 16): one LDG.128 when vec and the chunk is inside K, else
// byte loads of the part inside K (zeros past K).
__device__ __forceinline__ int4 load16(const int8_t* row, int64_t k, int64_t K, bool vec) {
  if (vec && k + 16 <= K) return __ldg(reinterpret_cast<const int4*>(row + k));
  unsigned w[4] = {0u, 0u, 0u, 0u};
#pragma unroll
  for (int b = 0; b < 16; ++b)
    if (k + b < K) w[b >> 2] |= unsigned(uint8_t(row[k + b])) << ((b & 3) * 8);
  return make_int4(int(w[0]), int(w[1]), int(w[2]), int(w[3]));
}

// Block (blockIdx.x, blockIdx.y): weight rows [NR blockIdx.x, +NR) times x rows [MR blockIdx.y, +MR). The
// block's threads take 16-byte chunks of K in turn (chunk c: thread c % 128), 4 dp4a per chunk and (x row,
// weight row) pair; the per-thread sums meet in a warp butterfly and then in shared memory (integer sums:
// any order gives the same value).
template <class T, int MR>
__global__ void __launch_bounds__(kGemvThreads) w8a8_gemv_kernel(W8A8Problem p, bool vec_x, bool vec_w) {
  constexpr int NR = GemvShape<MR>::NR, U = GemvShape<MR>::U;
  __shared__ int partial[kGemvWarps][MR * NR];
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  const int64_t n0 = int64_t(blockIdx.x) * NR;  // < N: grid.x = ceil(N / NR)
  const int64_t m0 = int64_t(blockIdx.y) * MR;  // < M: grid.y = ceil(M / MR)
  const int mrows = p.M - m0 < MR ? int(p.M - m0) : MR;
  const int nrows = p.N - n0 < NR ? int(p.N - n0) : NR;
  const int64_t K = p.K;
  const int8_t* xr = p.x + m0 * p.ldx;  // K == 0: x and w may be null, never dereferenced
  const int8_t* wr = p.w + n0 * p.ldw;
  const int4 zero = make_int4(0, 0, 0, 0);

  int acc[MR][NR];
#pragma unroll
  for (int i = 0; i < MR; ++i)
#pragma unroll
    for (int j = 0; j < NR; ++j) acc[i][j] = 0;

  for (int64_t k0 = int64_t(threadIdx.x) * 16; k0 < K; k0 += int64_t(kGemvThreads) * 16 * U) {
    int4 wv[U][NR], xv[U][MR];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = k0 + int64_t(u) * kGemvThreads * 16;
#pragma unroll
      for (int j = 0; j < NR; ++j) wv[u][j] = j < nrows ? load16(wr + j * p.ldw, k, K, vec_w) : zero;
#pragma unroll
      for (int i = 0; i < MR; ++i) xv[u][i] = i < mrows ? load16(xr + i * p.ldx, k, K, vec_x) : zero;
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int i = 0; i < MR; ++i)
#pragma unroll
        for (int j = 0; j < NR; ++j) {
          int s = acc[i][j];
          s = __dp4a(xv[u][i].x, wv[u][j].x, s);
          s = __dp4a(xv[u][i].y, wv[u][j].y, s);
          s = __dp4a(xv[u][i].z, wv[u][j].z, s);
          s = __dp4a(xv[u][i].w, wv[u][j].w, s);
          acc[i][j] = s;
        }
  }

#pragma unroll
  for (int i = 0; i < MR; ++i)
#pragma unroll
    for (int j = 0; j < NR; ++j) {
      int s = acc[i][j];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      if (lane == 0) partial[warp][i * NR + j] = s;
    }
  __syncthreads();

  const int idx = int(threadIdx.x);
  if (idx < MR * NR) {
    const int i = idx / NR, j = idx % NR;
    if (i < mrows && j < nrows) {
      int s = 0;
#pragma unroll
      for (int w = 0; w < kGemvWarps; ++w) s += partial[w][idx];
      const T* bias = static_cast<const T*>(p.bias);
      const int64_t m = m0 + i, n = n0 + j;
      const float y = w8a8_epilogue(s, p.xs[m], p.ws[n], bias != nullptr, bias ? to_float<T>(bias[n]) : 0.0f);
      static_cast<T*>(p.out)[m * p.ldo + n] = from_float<T>(y);
    }
  }
}

template <class T, int MR>
void launch_gemv_rows(ExecContext& ex, const W8A8Problem& p) {
  const bool vec_x = rows16(p.x, p.M, p.ldx), vec_w = rows16(p.w, p.N, p.ldw);
  const int64_t gx = ceil_div(p.N, GemvShape<MR>::NR), gy = ceil_div(p.M, MR);
  if (gx > INT_MAX || gy > 65535) fail(OPDEV_STATUS_INTERNAL, "cuda: linear_w8a8: gemv grid out of range");
  w8a8_gemv_kernel<T, MR><<<dim3(unsigned(gx), unsigned(gy)), kGemvThreads, 0, stream(ex)>>>(p, vec_x, vec_w);
  OPDEV_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_gemv(ExecContext& ex, const W8A8Problem& p) {
  if (p.M <= 1) launch_gemv_rows<T, 1>(ex, p);
  else if (p.M <= 2) launch_gemv_rows<T, 2>(ex, p);
  else if (p.M <= 4) launch_gemv_rows<T, 4>(ex, p);
  else launch_gemv_rows<T, 8>(ex, p);  // blocks of 8 rows (M <= kGemvMaxRows: the weight is read twice at most)
}

// ---- GEMM: mma.sync m16n8k32 s8 -------------------------------------------------------------------------

constexpr int kBK = 64;      // k bytes per pipeline stage (two mma k-steps of 32)
constexpr int kStages = 3;

__device__ __forceinline__ unsigned smem_u32(const void* p) { return unsigned(__cvta_generic_to_shared(p)); }

// Byte offset of 16-byte chunk c (0..3) of row r in a tile of 64-byte rows, XOR-swizzled so that the 8
// rows an ldmatrix phase reads (and the 8 chunks a copy phase writes) fall in distinct bank groups.
__device__ __forceinline__ int swz(int r, int c) { return r * kBK + ((c ^ ((r >> 1) & 3)) << 4); }

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(unsigned addr, unsigned (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

// d += a (16x32 s8, row) * b (32x8 s8, col), int32 accumulators.
__device__ __forceinline__ void mma_s8(int (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16 bytes (src_bytes of them from src, zeros after) into shared dst: cp.async (src 16-byte aligned) or
// byte loads and one 16-byte shared store.
template <bool kAsync>
__device__ __forceinline__ void copy16(int8_t* dst, const int8_t* src, int src_bytes) {
  if constexpr (kAsync) {
    cp_async16(smem_u32(dst), src, src_bytes);
  } else {
    unsigned w[4] = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int b = 0; b < 16; ++b)
      if (b < src_bytes) w[b >> 2] |= unsigned(uint8_t(src[b])) << ((b & 3) * 8);
    *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

template <int BM_, int BN_, int WM_, int WN_>
struct TileCfg {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_;
  static constexpr int kThreads = (BM / WM) * (BN / WN) * 32;
  static constexpr int kMinBlocks = 512 / kThreads;  // caps registers at 128 per thread
};
using CfgL = TileCfg<128, 128, 64, 32>;
using CfgM = TileCfg<64, 128, 32, 32>;
using CfgS = TileCfg<64, 64, 32, 32>;

// Block (blockIdx.x, blockIdx.y): rows [BM blockIdx.x, +BM) of x (grouped: the schedule's slot blockIdx.x)
// times weight rows [BN blockIdx.y, +BN), the whole K, then the epilogue straight from the accumulators.
template <class T, class Cfg, bool kAsync, bool kGrouped>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) w8a8_mma_kernel(W8A8Problem p) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, WM = Cfg::WM, WN = Cfg::WN, kThreads = Cfg::kThreads;
  constexpr int kWarpsN = BN / WN;
  constexpr int MT = WM / 16, NT = WN / 8;
  constexpr int kChunksA = BM * kBK / 16, kChunksB = BN * kBK / 16;
  constexpr int kStageBytes = (BM + BN) * kBK;
  static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tiles of m16 and pairs of n8");
  static_assert(kChunksA % kThreads == 0 && kChunksB % kThreads == 0, "whole copies per thread");
  static_assert(kStages * kStageBytes <= 48 * 1024, "static shared memory");
  __shared__ __align__(128) int8_t smem[kStages * kStageBytes];

  int64_t m_begin, m_end;
  const int8_t* w = p.w;
  const float* ws = p.ws;
  if constexpr (kGrouped) {
    const TileInfo ti = p.tiles[blockIdx.x];
    if (ti.e < 0) return;  // uniform over the block, before any barrier
    m_begin = ti.r0;
    m_end = ti.r1;
    w += int64_t(ti.e) * p.w_estride;
    ws += int64_t(ti.e) * p.N;
  } else {
    m_begin = int64_t(blockIdx.x) * BM;
    m_end = p.M;
  }
  const int n_begin = int(blockIdx.y) * BN;
  const int N = p.N, K = p.K;
  const int k_tiles = (K + kBK - 1) / kBK;

  // Global -> shared for k tile kt into stage s: chunk q is row q / 4, 16-byte chunk q % 4 of the tile.
  auto load_tile = [&](int s, int kt) {
    int8_t* sA = smem + s * kStageBytes;
    int8_t* sB = sA + BM * kBK;
    const int k0 = kt * kBK;
#pragma unroll
    for (int i = 0; i < kChunksA / kThreads; ++i) {
      const int q = i * kThreads + int(threadIdx.x);
      const int r = q >> 2, c = q & 3;
      const int64_t m = m_begin + r;
      const int k = k0 + c * 16;
      const int bytes = m < m_end ? max(0, min(16, K - k)) : 0;
      copy16<kAsync>(sA + swz(r, c), bytes > 0 ? p.x + m * p.ldx + k : p.x, bytes);
    }
#pragma unroll
    for (int i = 0; i < kChunksB / kThreads; ++i) {
      const int q = i * kThreads + int(threadIdx.x);
      const int r = q >> 2, c = q & 3;
      const int n = n_begin + r;
      const int k = k0 + c * 16;
      const int bytes = n < N ? max(0, min(16, K - k)) : 0;
      copy16<kAsync>(sB + swz(r, c), bytes > 0 ? w + int64_t(n) * p.ldw + k : w, bytes);
    }
  };

  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const int wm = (warp / kWarpsN) * WM, wn = (warp % kWarpsN) * WN;

  int acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[i][j][v] = 0;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) load_tile(s, s);
    if constexpr (kAsync) cp_async_commit();
  }
  for (int kt = 0; kt < k_tiles; ++kt) {
    // Tile kt has landed (at most kStages - 2 younger groups pending); the barrier publishes it and
    // ensures every warp is done with tile kt - 1, whose stage the prefetch below overwrites.
    if constexpr (kAsync) cp_async_wait<kStages - 2>();
    __syncthreads();
    const int pf = kt + kStages - 1;
    if (pf < k_tiles) load_tile(pf % kStages, pf);
    if constexpr (kAsync) cp_async_commit();

    const int8_t* sA = smem + (kt % kStages) * kStageBytes;
    const int8_t* sB = sA + BM * kBK;
#pragma unroll
    for (int kk = 0; kk < kBK / 32; ++kk) {
      // A (16x32 per m tile): matrices (rows 0-7, k 0-15), (rows 8-15, k 0-15), (rows 0-7, k 16-31),
      // (rows 8-15, k 16-31) = the mma's a0..a3.
      unsigned af[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        const int r = wm + i * 16 + (lane & 15);
        ldmatrix_x4(smem_u32(sA + swz(r, kk * 2 + (lane >> 4))), af[i]);
      }
      // B (weight rows n, 32 k bytes): matrices (n 0-7, k 0-15), (n 0-7, k 16-31), (n 8-15, k 0-15),
      // (n 8-15, k 16-31) = b0, b1 of n8 tile 2jj, then of 2jj + 1.
      unsigned bf[NT][2];
#pragma unroll
      for (int jj = 0; jj < NT / 2; ++jj) {
        const int r = wn + jj * 16 + (lane & 7) + ((lane >> 4) << 3);
        unsigned t[4];
        ldmatrix_x4(smem_u32(sB + swz(r, kk * 2 + ((lane >> 3) & 1))), t);
        bf[2 * jj][0] = t[0];
        bf[2 * jj][1] = t[1];
        bf[2 * jj + 1][0] = t[2];
        bf[2 * jj + 1][1] = t[3];
      }
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j) mma_s8(acc[i][j], af[i], bf[j][0], bf[j][1]);
    }
  }

  // Epilogue: accumulator v of (i, j) is row g + 8 (v / 2), column 2 t + (v % 2) of the 16x8 tile.
  const int g = lane >> 2, t4 = lane & 3;
  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  float wsv[NT][2], bv[NT][2];
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int n = n_begin + wn + j * 8 + 2 * t4 + h;
      wsv[j][h] = n < N ? ws[n] : 0.0f;
      bv[j][h] = (bias != nullptr && n < N) ? to_float<T>(bias[n]) : 0.0f;
    }
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int64_t m = m_begin + wm + i * 16 + g + hr * 8;
      if (m >= m_end) continue;
      const float xs = p.xs[m];
      T* orow = out + m * p.ldo;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int n = n_begin + wn + j * 8 + 2 * t4;
        const float y0 = w8a8_epilogue(acc[i][j][2 * hr], xs, wsv[j][0], bias != nullptr, bv[j][0]);
        const float y1 = w8a8_epilogue(acc[i][j][2 * hr + 1], xs, wsv[j][1], bias != nullptr, bv[j][1]);
        if (p.pair_ok && n + 1 < N) {
          Pair<T> v;
          v.a = from_float<T>(y0);
          v.b = from_float<T>(y1);
          *reinterpret_cast<Pair<T>*>(orow + n) = v;
        } else {
          if (n < N) orow[n] = from_float<T>(y0);
          if (n + 1 < N) orow[n + 1] = from_float<T>(y1);
        }
      }
    }
}

template <class T, class Cfg, bool kGrouped>
void launch_mma(ExecContext& ex, const W8A8Problem& p, bool async, int64_t grid_x, const char* op) {
  const int64_t grid_y = ceil_div(p.N, Cfg::BN);
  if (grid_y > 65535 || grid_x > INT_MAX)
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: ", op, ": N = ", p.N, " with ", p.M,
         " rows needs more thread blocks than one grid holds (N <= ", int64_t(65535) * Cfg::BN, " is supported)");
  const dim3 grid{unsigned(grid_x), unsigned(grid_y), 1u};
  if (async)
    w8a8_mma_kernel<T, Cfg, true, kGrouped><<<grid, Cfg::kThreads, 0, stream(ex)>>>(p);
  else
    w8a8_mma_kernel<T, Cfg, false, kGrouped><<<grid, Cfg::kThreads, 0, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
}

template <class T>
void run_linear(ExecContext& ex, const W8A8Problem& p) {
  if (p.M <= kGemvMaxRows) {
    launch_gemv<T>(ex, p);
    return;
  }
  const bool async = rows16(p.x, p.M, p.ldx) && rows16(p.w, p.N, p.ldw);
  const int64_t sms = state(ex).prop.multiProcessorCount;
  auto blocks = [&](int bm, int bn) { return ceil_div(p.M, bm) * ceil_div(p.N, bn); };
  // The largest tile that still gives every SM a block.
  if (blocks(CfgL::BM, CfgL::BN) >= sms)
    launch_mma<T, CfgL, false>(ex, p, async, ceil_div(p.M, CfgL::BM), "linear_w8a8");
  else if (blocks(CfgM::BM, CfgM::BN) >= sms)
    launch_mma<T, CfgM, false>(ex, p, async, ceil_div(p.M, CfgM::BM), "linear_w8a8");
  else
    launch_mma<T, CfgS, false>(ex, p, async, ceil_div(p.M, CfgS::BM), "linear_w8a8");
}

// ---- grouped schedule (device offsets) -----------------------------------------------------------------

constexpr int kSchedThreads = 256;
constexpr int kGroupedBM = 64;  // CfgM::BM == CfgS::BM

__device__ __forceinline__ int64_t ceil_div_dev(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct MaxOp {
  __device__ int64_t operator()(int64_t a, int64_t b) const { return a > b ? a : b; }
};
struct SumOp {
  __device__ int64_t operator()(int64_t a, int64_t b) const { return a + b; }
};

// Exclusive scan of one value per thread over the block (Hillis-Steele in shared memory); total gets the
// inclusive result of the last thread. Every thread must call it.
template <class Op>
__device__ int64_t block_exclusive_scan(int64_t v, int64_t identity, Op op, int64_t* sh, int64_t& total) {
  const int tid = int(threadIdx.x);
  sh[tid] = v;
  __syncthreads();
  for (int off = 1; off < kSchedThreads; off <<= 1) {
    const int64_t u = tid >= off ? sh[tid - off] : identity;
    __syncthreads();
    sh[tid] = op(u, sh[tid]);
    __syncthreads();
  }
  const int64_t excl = tid > 0 ? sh[tid - 1] : identity;
  total = sh[kSchedThreads - 1];
  __syncthreads();  // sh is free again
  return excl;
}

// One block. off: the E + 1 offsets (element stride os); writes eff [E+1] (the cleaned partition),
// tstart [E+1] (first tile of each expert, tstart[E] = tiles in all) and tiles [G]. On bad offsets: sets
// the op's error bit and zeroes the rows of out that no expert of the cleaned partition owns.
template <class T>
__global__ void __launch_bounds__(kSchedThreads)
    w8a8_schedule_kernel(const int64_t* __restrict__ off, int64_t os, int E, int64_t R, int64_t G,
                         int64_t* eff, int64_t* tstart, TileInfo* tiles, T* out, int64_t ldo, int N, unsigned* error_word) {
  __shared__ int64_t sh[kSchedThreads];
  const int tid = int(threadIdx.x);

  // eff[i] = clamp(max(off[0..i]), 0, R): non-decreasing, in [0, R] whatever the offsets hold.
  const int64_t n = int64_t(E) + 1;
  int64_t seg = ceil_div_dev(n, kSchedThreads);
  int64_t s0 = min(n, tid * seg), s1 = min(n, s0 + seg);
  bool bad = false;
  int64_t local = LLONG_MIN;
  for (int64_t i = s0; i < s1; ++i) {
    const int64_t v = off[i * os];
    bad |= v < 0 || v > R;
    if (i == 0) bad |= v != 0;
    if (i == E) bad |= v != R;
    if (i > 0) bad |= v < off[(i - 1) * os];
    local = max(local, v);
  }
  int64_t total = 0;
  int64_t run = block_exclusive_scan(local, LLONG_MIN, MaxOp{}, sh, total);
  for (int64_t i = s0; i < s1; ++i) {
    run = max(run, off[i * os]);
    eff[i] = min(max(run, int64_t(0)), R);
  }
  bad = __syncthreads_or(bad) != 0;  // also publishes eff to the block

  // Tiles of kGroupedBM rows per expert, and their exclusive prefix sum.
  seg = ceil_div_dev(E, kSchedThreads);
  s0 = min(int64_t(E), tid * seg);
  s1 = min(int64_t(E), s0 + seg);
  local = 0;
  for (int64_t e = s0; e < s1; ++e) local += ceil_div_dev(eff[e + 1] - eff[e], kGroupedBM);
  int64_t ntiles = 0;
  run = block_exclusive_scan(local, int64_t(0), SumOp{}, sh, ntiles);
  for (int64_t e = s0; e < s1; ++e) {
    tstart[e] = run;
    run += ceil_div_dev(eff[e + 1] - eff[e], kGroupedBM);
  }
  if (tid == 0) tstart[E] = ntiles;
  __syncthreads();

  // Slot t: the expert whose tiles cover t (the last e with tstart[e] <= t; it has tstart[e + 1] > t).
  for (int64_t t = tid; t < G; t += kSchedThreads) {
    TileInfo ti{0, 0, -1, 0};
    if (t < ntiles) {
      int lo = 0, hi = E - 1;
      while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (tstart[mid] <= t) lo = mid;
        else hi = mid - 1;
      }
      ti.e = lo;
      ti.r0 = eff[lo] + (t - tstart[lo]) * kGroupedBM;
      ti.r1 = eff[lo + 1];
    }
    tiles[t] = ti;
  }

  if (bad) {
    if (tid == 0) report_bad_index(error_word, OPDEV_OP_GROUPED_MATMUL_W8A8);
    // Rows [0, eff[0]) and [eff[E], R) belong to no expert: a warp per row.
    const int64_t c0 = eff[0], cE = eff[E];
    const int64_t nz = c0 + (R - cE);
    for (int64_t z = tid >> 5; z < nz; z += kSchedThreads / 32) {
      const int64_t r = z < c0 ? z : z - c0 + cE;
      for (int col = tid & 31; col < N; col += 32) out[r * ldo + col] = from_float<T>(0.0f);
    }
  }
}

}  // namespace

// ---- ops -----------------------------------------------------------------------------------------------

opdev_status quantize_int8(ExecContext& ex, const quantize_int8_args& a) {
  const int64_t M = a.x.size(0), K = a.x.size(1);
  if (M == 0) return OPDEV_STATUS_SUCCESS;
  OPDEV_CUDA_FLOAT_SWITCH(a.x.dtype, T, {
    constexpr int V = kVec<T>;
    if (vec16_rows_ok(a.x, K, M > 1 ? a.x.strides[0] : 0)) {
      const bool q_vec = reinterpret_cast<uintptr_t>(a.out.data) % V == 0 && (M <= 1 || a.out.strides[0] % V == 0);
      launch_quantize<T, V>(ex, a, M, K, q_vec);
    } else {
      launch_quantize<T, 1>(ex, a, M, K, false);
    }
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status linear_w8a8(ExecContext& ex, const linear_w8a8_args& a) {
  const int64_t M = a.x.size(0), K = a.x.size(1), N = a.weight.size(0);
  if (M == 0 || N == 0) return OPDEV_STATUS_SUCCESS;
  if (N > INT_MAX) fail(OPDEV_STATUS_UNSUPPORTED, "cuda: linear_w8a8: N = ", N, " is larger than ", INT_MAX);
  W8A8Problem p{};
  p.x = a.x.ptr<const int8_t>();
  p.ldx = a.x.strides[0];
  p.xs = a.x_scale.ptr<const float>();
  p.w = a.weight.ptr<const int8_t>();
  p.ldw = a.weight.strides[0];
  p.w_estride = 0;
  p.ws = a.weight_scale.ptr<const float>();
  p.bias = a.bias.present ? a.bias.data : nullptr;
  p.out = a.out.data;
  p.ldo = a.out.strides[0];
  p.M = M;
  p.N = int(N);
  p.K = int(K);  // <= kW8A8MaxK (front-end)
  p.pair_ok = reinterpret_cast<uintptr_t>(a.out.data) % (2 * a.out.itemsize()) == 0 && (M <= 1 || p.ldo % 2 == 0);
  p.tiles = nullptr;
  OPDEV_CUDA_FLOAT_SWITCH(a.out.dtype, T, { run_linear<T>(ex, p); });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status grouped_matmul_w8a8(ExecContext& ex, const grouped_matmul_w8a8_args& a) {
  const int64_t R = a.x.size(0), K = a.x.size(1), E = a.weight.size(0), N = a.weight.size(1);
  if (R == 0 || N == 0) return OPDEV_STATUS_SUCCESS;
  if (N > INT_MAX || E >= INT_MAX)
    fail(OPDEV_STATUS_UNSUPPORTED, "cuda: grouped_matmul_w8a8: N = ", N, ", E = ", E, " are larger than supported");
  // Grid slots: every expert with rows needs ceil(rows / BM) <= rows / BM + 1 tiles, at most min(E, R) have rows.
  const int64_t G = ceil_div(R, kGroupedBM) + std::min(E, R);
  auto* eff = static_cast<int64_t*>(ex.scratch(sizeof(int64_t) * size_t(E + 1), 256));
  auto* tstart = static_cast<int64_t*>(ex.scratch(sizeof(int64_t) * size_t(E + 1), 256));
  auto* tiles = static_cast<TileInfo*>(ex.scratch(sizeof(TileInfo) * size_t(G), 256));

  W8A8Problem p{};
  p.x = a.x.ptr<const int8_t>();
  p.ldx = a.x.strides[0];
  p.xs = a.x_scale.ptr<const float>();
  p.w = a.weight.ptr<const int8_t>();
  p.ldw = a.weight.strides[1];
  p.w_estride = a.weight.strides[0];
  p.ws = a.weight_scale.ptr<const float>();
  p.bias = nullptr;
  p.out = a.out.data;
  p.ldo = a.out.strides[0];
  p.M = R;
  p.N = int(N);
  p.K = int(K);  // <= kW8A8MaxK (front-end)
  p.pair_ok = reinterpret_cast<uintptr_t>(a.out.data) % (2 * a.out.itemsize()) == 0 && (R <= 1 || p.ldo % 2 == 0);
  p.tiles = tiles;
  const bool async = rows16(p.x, R, p.ldx) && rows16(p.w, N, p.ldw) && (E <= 1 || p.w_estride % 16 == 0);
  const int64_t sms = state(ex).prop.multiProcessorCount;

  OPDEV_CUDA_FLOAT_SWITCH(a.out.dtype, T, {
    w8a8_schedule_kernel<T><<<1, kSchedThreads, 0, stream(ex)>>>(
        a.expert_offsets.ptr<const int64_t>(), a.expert_offsets.strides[0], int(E), R, G, eff, tstart, tiles,
        static_cast<T*>(a.out.data), p.ldo, int(N), state(ex).error_word);
    OPDEV_CUDA_CHECK_LAUNCH();
    // Wide 64x128 tiles when the rows alone (ignoring the per-expert rounding up) fill the GPU.
    static_assert(CfgM::BM == kGroupedBM && CfgS::BM == kGroupedBM, "the schedule's tile rows");
    if (ceil_div(R, CfgM::BM) * ceil_div(N, CfgM::BN) >= sms)
      launch_mma<T, CfgM, true>(ex, p, async, G, "grouped_matmul_w8a8");
    else
      launch_mma<T, CfgS, true>(ex, p, async, G, "grouped_matmul_w8a8");
  });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
