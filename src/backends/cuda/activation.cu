// cuda: silu_and_mul. out[..., i] = round_T(round_T(silu(gate_i)) * up_i), gate = x[..., :d],
// up = x[..., d:], silu(g) = g / (1 + exp(-g)) in float32 (0 below g = -88, where exp(-g) overflows and
// the limit is 0), rounded to the storage dtype before the multiply, like the cpu backend.
//
// Kernel design: a memory-bound map over rows x chunks. Rows are the leading dimensions of x / out
// (any rank, any strides; collapsed on the host where compact) and are decoded into element offsets once
// per row; a chunk is 16 bytes of the dtype (one LDG.128 of gate, one of up, one STG.128 of out) when
// d, the row starts and the base pointers allow it, else one element. Blocks are 2-D: blockDim.x threads
// over a row's chunks (sized to the row so that few threads idle), blockDim.y rows per block; both grid
// dimensions stride, so any size fits the grid limits. One pass over memory.
#include <algorithm>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

constexpr int kMaxLead = OPDEV_MAX_DIMS - 1;

// Flat row index -> element offsets of out's and x's rows (the collapsed leading dimensions).
struct RowMap {
  int nd = 0;
  int64_t shape[kMaxLead] = {};
  int64_t stride[2][kMaxLead] = {};

  __device__ __forceinline__ void offsets(int64_t row, int64_t& o0, int64_t& o1) const {
    o0 = o1 = 0;
#pragma unroll
    for (int d = kMaxLead - 1; d >= 0; --d) {
      if (d < nd) {
        // The outermost dimension needs no division: row < shape[0] there.
        const int64_t n = shape[d];
        const int64_t q = d == 0 ? 0 : row / n, i = d == 0 ? row : row - q * n;
        row = q;
        o0 += i * stride[0][d];
        o1 += i * stride[1][d];
      }
    }
  }
};

RowMap make_row_map(const TensorView& out, const TensorView& x, int64_t& rows) {
  RowMap m;
  rows = 1;
  int nd = 0;
  for (int d = 0; d < x.ndim - 1; ++d) {
    rows *= x.shape[d];
    if (x.shape[d] == 1) continue;
    if (nd > 0 && m.stride[0][nd - 1] == out.strides[d] * x.shape[d] && m.stride[1][nd - 1] == x.strides[d] * x.shape[d]) {
      m.shape[nd - 1] *= x.shape[d];
      m.stride[0][nd - 1] = out.strides[d];
      m.stride[1][nd - 1] = x.strides[d];
      continue;
    }
    m.shape[nd] = x.shape[d];
    m.stride[0][nd] = out.strides[d];
    m.stride[1][nd] = x.strides[d];
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
struct SiluParams {
  T* out;
  const T* x;
  int64_t rows, d, cpr;  // cpr: chunks of W elements per row
  RowMap map;
};

__device__ __forceinline__ float silu(float g) {
  const float s = g / (1.0f + expf(-g));
  return g < -88.0f ? 0.0f : s;  // NaN fails the comparison and propagates
}

template <class T, int W>
__global__ void __launch_bounds__(256) silu_and_mul_kernel(SiluParams<T> p) {
  using P = Pack<T, W>;
  for (int64_t row = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; row < p.rows; row += int64_t(gridDim.y) * blockDim.y) {
    int64_t oo, ox;
    p.map.offsets(row, oo, ox);
    const T* gate = p.x + ox;
    const T* up = gate + p.d;
    T* out = p.out + oo;
    for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < p.cpr; c += int64_t(gridDim.x) * blockDim.x) {
      const int64_t e = c * W;
      const P g = *reinterpret_cast<const P*>(gate + e);
      const P u = *reinterpret_cast<const P*>(up + e);
      P o;
#pragma unroll
      for (int i = 0; i < W; ++i) o.v[i] = from_float<T>(round_to<T>(silu(to_float(g.v[i]))) * to_float(u.v[i]));
      *reinterpret_cast<P*>(out + e) = o;
    }
  }
}

template <class T>
void run_silu_and_mul(ExecContext& ex, const silu_and_mul_args& a) {
  SiluParams<T> p;
  p.out = a.out.ptr<T>();
  p.x = a.x.ptr<const T>();
  p.d = a.out.size(-1);
  p.map = make_row_map(a.out, a.x, p.rows);
  if (p.rows == 0 || p.d == 0) return;
  constexpr int V = kVec<T>;
  bool vec = p.d % V == 0 && reinterpret_cast<uintptr_t>(a.out.data) % 16 == 0 && reinterpret_cast<uintptr_t>(a.x.data) % 16 == 0;
  for (int d = 0; d < p.map.nd; ++d) vec = vec && p.map.stride[0][d] % V == 0 && p.map.stride[1][d] % V == 0;
  const int W = vec ? V : 1;
  p.cpr = p.d / W;
  dim3 grid, block;
  launch_dims(p.rows, p.cpr, grid, block);
  if (vec) silu_and_mul_kernel<T, V><<<grid, block, 0, stream(ex)>>>(p);
  else silu_and_mul_kernel<T, 1><<<grid, block, 0, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
}

}  // namespace

opdev_status silu_and_mul(ExecContext& ex, const silu_and_mul_args& a) {
  OPDEV_CUDA_FLOAT_SWITCH(a.x.dtype, T, { run_silu_and_mul<T>(ex, a); });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
