// cuda: rms_norm, add_rms_norm.
//
// Kernel design: one row of H elements per warp (small H) or per block (large H), the row kept in
// registers so that x (and residual) are read once and out (and residual_out) written once:
// - A row is split into "accesses" of W elements: W = 16 bytes of the dtype (one LDG.128 / STG.128) when
//   every row start, the weight and H allow it, else W = 1 (scalar path for odd H or unaligned views).
// - Thread x of a row owns accesses x, x + tpr, x + 2 tpr, ... (coalesced across the warp), at most N of
//   them, held as packed dtype values in registers between the reduction and the output pass. tpr and N
//   are picked from the row length alone (never from the number of rows), so a row's summation order,
//   and hence its bits, do not depend on the batch (batch invariance for the deterministic mode).
// - The sum of squares is reduced in a fixed order: per-thread sequential sum, warp butterfly
//   (every lane ends with the same bits), then the warps' partials in warp order from shared memory.
// - Rows longer than 1024 threads x 4 accesses (> 32K bf16 / 16K f32 elements with 16-byte accesses) take
//   a two-pass kernel that reads the row a second time (from L2) instead of holding it in registers.
// Rounding follows the cpu backend: add_rms_norm rounds x + residual to the storage dtype (that is what
// residual_out holds and what is normalised); the normalised value x * r is rounded to the dtype, then
// multiplied by the weight in float32 and rounded again. r = 1 / sqrt(sum / H + eps) in float32.
// Leading dimensions of rms_norm's x / out may be strided with any rank: size-1 dimensions are dropped
// and dimensions merged where every view is compact across them, and a flat row index is decoded into
// per-view element offsets once per row. out may be x and residual_out may be residual (same views):
// every element is read by the thread that later writes it, before it writes it.
#include <algorithm>
#include <initializer_list>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

constexpr int kMaxLead = OPDEV_MAX_DIMS - 1;
constexpr int kViews = 4;  // out, residual_out, x, residual (rms_norm repeats out and x)

// Flat row index -> element offsets of the views' rows (the collapsed leading dimensions).
struct RowMap {
  int nd = 0;
  int64_t shape[kMaxLead] = {};
  int64_t stride[kViews][kMaxLead] = {};

  __device__ __forceinline__ void offsets(int64_t row, int64_t (&off)[kViews]) const {
#pragma unroll
    for (int k = 0; k < kViews; ++k) off[k] = 0;
    // Unrolled with compile-time indices so that the parameter arrays stay in the constant bank.
#pragma unroll
    for (int d = kMaxLead - 1; d >= 0; --d) {
      if (d < nd) {
        // The outermost dimension needs no division: row < shape[0] there.
        const int64_t n = shape[d];
        const int64_t q = d == 0 ? 0 : row / n, i = d == 0 ? row : row - q * n;
        row = q;
#pragma unroll
        for (int k = 0; k < kViews; ++k) off[k] += i * stride[k][d];
      }
    }
  }
};

// Collapses the leading dimensions (all but the last) of views of the same shape.
RowMap make_row_map(const TensorView* const (&views)[kViews], int64_t& rows) {
  RowMap m;
  const TensorView& v0 = *views[0];
  rows = 1;
  int nd = 0;
  for (int d = 0; d < v0.ndim - 1; ++d) {
    rows *= v0.shape[d];
    if (v0.shape[d] == 1) continue;
    if (nd > 0) {
      bool merge = true;
      for (int k = 0; k < kViews; ++k) merge = merge && m.stride[k][nd - 1] == views[k]->strides[d] * v0.shape[d];
      if (merge) {
        m.shape[nd - 1] *= v0.shape[d];
        for (int k = 0; k < kViews; ++k) m.stride[k][nd - 1] = views[k]->strides[d];
        continue;
      }
    }
    m.shape[nd] = v0.shape[d];
    for (int k = 0; k < kViews; ++k) m.stride[k][nd] = views[k]->strides[d];
    ++nd;
  }
  m.nd = nd;
  return m;
}

template <class T, int W>
struct alignas(sizeof(T) * W) Pack {
  T v[W];
};

template <class T>
struct NormParams {
  T* out;
  T* ro;         // residual_out (add_rms_norm)
  const T* x;
  const T* res;  // residual (add_rms_norm)
  const T* w;
  int64_t rows;
  int64_t A;     // accesses of W elements per row
  float hf;      // float(H)
  float eps;
  RowMap map;    // views: 0 out, 1 residual_out, 2 x, 3 residual
};

// Sum of v over the tpr threads of a row (threadIdx.x), identical bits in every thread. tpr is a multiple
// of 32; when it exceeds 32 the block holds one row. Every thread of the block must call it.
__device__ __forceinline__ float row_sum(float v, float* red, int tpr) {
  v = warp_sum(v);
  if (tpr <= 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float s = 0.f;
  for (int i = 0; i < tpr / 32; ++i) s += red[i];
  __syncthreads();  // red is reused by the next row
  return s;
}

// Loads access e (element offset) of x, or for add_rms_norm x + residual rounded to T (also stored to
// residual_out).
template <class T, int W, bool kAdd>
__device__ __forceinline__ Pack<T, W> load_input(const NormParams<T>& p, const int64_t (&off)[kViews], int64_t e) {
  using P = Pack<T, W>;
  P v = *reinterpret_cast<const P*>(p.x + off[2] + e);
  if constexpr (kAdd) {
    const P r = *reinterpret_cast<const P*>(p.res + off[3] + e);
#pragma unroll
    for (int i = 0; i < W; ++i) v.v[i] = from_float<T>(to_float(v.v[i]) + to_float(r.v[i]));
    *reinterpret_cast<P*>(p.ro + off[1] + e) = v;
  }
  return v;
}

template <class T, int W>
__device__ __forceinline__ float sum_squares(const Pack<T, W>& v, float ss) {
#pragma unroll
  for (int i = 0; i < W; ++i) {
    const float f = to_float(v.v[i]);
    ss += f * f;
  }
  return ss;
}

// out = round_T(w * round_T(x * r))
template <class T, int W>
__device__ __forceinline__ void store_output(const NormParams<T>& p, const int64_t (&off)[kViews], int64_t e,
                                             const Pack<T, W>& v, float r) {
  using P = Pack<T, W>;
  const P w = *reinterpret_cast<const P*>(p.w + e);
  P o;
#pragma unroll
  for (int i = 0; i < W; ++i) o.v[i] = from_float<T>(to_float(w.v[i]) * round_to<T>(to_float(v.v[i]) * r));
  *reinterpret_cast<P*>(p.out + off[0] + e) = o;
}

// Rows held in registers: blockDim = (tpr, rows per block); thread x owns accesses x + j * tpr, j < N.
template <class T, int W, int N, bool kAdd>
__global__ void __launch_bounds__(1024) norm_rows_kernel(NormParams<T> p) {
  __shared__ float red[32];
  const int tpr = blockDim.x;
  for (int64_t r0 = int64_t(blockIdx.x) * blockDim.y; r0 < p.rows; r0 += int64_t(gridDim.x) * blockDim.y) {
    const int64_t row = r0 + threadIdx.y;
    const bool active = row < p.rows;
    int64_t off[kViews];
    p.map.offsets(active ? row : 0, off);
    Pack<T, W> v[N];
    float ss = 0.f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const int64_t a = threadIdx.x + int64_t(j) * tpr;
      if (active && a < p.A) {
        v[j] = load_input<T, W, kAdd>(p, off, a * W);
        ss = sum_squares(v[j], ss);
      }
    }
    ss = row_sum(ss, red, tpr);
    const float r = 1.0f / sqrtf(ss / p.hf + p.eps);
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const int64_t a = threadIdx.x + int64_t(j) * tpr;
      if (active && a < p.A) store_output(p, off, a * W, v[j], r);
    }
  }
}

// Rows too long for registers: one row per block, the input read twice (the second time from L2). For
// add_rms_norm the second pass reads residual_out, which this thread wrote in the first pass.
template <class T, int W, bool kAdd>
__global__ void __launch_bounds__(1024) norm_rows_large_kernel(NormParams<T> p) {
  using P = Pack<T, W>;
  __shared__ float red[32];
  const int tpr = blockDim.x;
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    int64_t off[kViews];
    p.map.offsets(row, off);
    float ss = 0.f;
    for (int64_t a = threadIdx.x; a < p.A; a += tpr) ss = sum_squares(load_input<T, W, kAdd>(p, off, a * W), ss);
    ss = row_sum(ss, red, tpr);
    const float r = 1.0f / sqrtf(ss / p.hf + p.eps);
    const T* src = kAdd ? static_cast<const T*>(p.ro) + off[1] : p.x + off[2];
    for (int64_t a = threadIdx.x; a < p.A; a += tpr) {
      const P v = *reinterpret_cast<const P*>(src + a * W);
      store_output(p, off, a * W, v, r);
    }
  }
}

int round_up32(int64_t n) { return int((n + 31) / 32 * 32); }

template <class T, int W, bool kAdd>
void launch_norm(ExecContext& ex, const NormParams<T>& p) {
  cudaStream_t s = stream(ex);
  auto run = [&](auto kernel, int tpr, int rows_per_block) {
    const dim3 block{unsigned(tpr), unsigned(rows_per_block), 1};
    const unsigned grid = unsigned(std::min<int64_t>(ceil_div(p.rows, rows_per_block), int64_t(1) << 20));
    kernel<<<grid, block, 0, s>>>(p);
    OPDEV_CUDA_CHECK_LAUNCH();
  };
  // Configuration from the row length only (batch invariance). Up to 128 accesses: a warp per row, four
  // rows per block; then up to 4 accesses per thread with the fewest warps that cover the row.
  const int64_t A = p.A;
  if (A <= 32) run(norm_rows_kernel<T, W, 1, kAdd>, 32, 4);
  else if (A <= 64) run(norm_rows_kernel<T, W, 2, kAdd>, 32, 4);
  else if (A <= 128) run(norm_rows_kernel<T, W, 4, kAdd>, 32, 4);
  else if (A <= 4096) run(norm_rows_kernel<T, W, 4, kAdd>, round_up32(ceil_div(A, 4)), 1);
  else run(norm_rows_large_kernel<T, W, kAdd>, 1024, 1);
}

// views: out, residual_out, x, residual (repeated for rms_norm); weight [H] contiguous.
template <class T, bool kAdd>
void run_norm(ExecContext& ex, const TensorView* const (&views)[kViews], const TensorView& weight, int64_t H, double eps) {
  NormParams<T> p;
  p.out = views[0]->ptr<T>();
  p.ro = views[1]->ptr<T>();
  p.x = views[2]->ptr<const T>();
  p.res = views[3]->ptr<const T>();
  p.w = weight.ptr<const T>();
  p.map = make_row_map(views, p.rows);
  p.hf = float(H);
  p.eps = float(eps);
  if (p.rows == 0 || H == 0) return;
  // 16-byte accesses when H, every row start and the weight are multiples of 16 bytes.
  constexpr int V = kVec<T>;
  bool vec = H % V == 0 && reinterpret_cast<uintptr_t>(weight.data) % 16 == 0;
  for (int k = 0; k < kViews; ++k) {
    vec = vec && reinterpret_cast<uintptr_t>(views[k]->data) % 16 == 0;
    for (int d = 0; d < p.map.nd; ++d) vec = vec && p.map.stride[k][d] % V == 0;
  }
  if (vec) {
    p.A = H / V;
    launch_norm<T, V, kAdd>(ex, p);
  } else {
    p.A = H;
    launch_norm<T, 1, kAdd>(ex, p);
  }
}

}  // namespace

opdev_status rms_norm(ExecContext& ex, const rms_norm_args& a) {
  const TensorView* const views[kViews] = {&a.out, &a.out, &a.x, &a.x};
  const int64_t H = a.x.size(-1);
  OPDEV_CUDA_FLOAT_SWITCH(a.x.dtype, T, { run_norm<T, false>(ex, views, a.weight, H, a.eps); });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status add_rms_norm(ExecContext& ex, const add_rms_norm_args& a) {
  const TensorView* const views[kViews] = {&a.out, &a.residual_out, &a.x, &a.residual};
  const int64_t H = a.x.size(1);
  OPDEV_CUDA_FLOAT_SWITCH(a.x.dtype, T, { run_norm<T, true>(ex, views, a.weight, H, a.eps); });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
