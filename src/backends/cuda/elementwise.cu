// cuda: add, cast, copy over any rank <= 8 and any strides (stride-0 broadcast inputs included).
//
// Kernel design (shared by the three ops): the views' dimensions are collapsed on the host like the cpu
// backend does (size-1 dimensions dropped, neighbours merged where every view is compact across them),
// so compact tensors become one long row and padded / transposed views keep only the dimensions that
// matter. The collapsed space is rows (all dimensions but the innermost) x the innermost dimension. A
// 2-D grid of 2-D blocks walks it with grid-stride loops: blockDim.y rows per block, each row's element
// offsets decoded once per row per thread (int64 divisions by the outer sizes, passed by value), and
// blockDim.x threads over the row's chunks (blockDim.x sized to the row so that short rows do not leave
// threads idle).
// - Fast path: when every view has stride 1 innermost and every row start and base pointer is 16-byte
//   aligned (and the row length a multiple of the chunk), a chunk is 8 elements for add / cast (16 bytes
//   of a 2-byte dtype, two 16-byte accesses of float32) and 16 bytes for copy: 16-byte loads and stores,
//   one pass over memory. Compact tensors always take it when their pointers are aligned.
// - Otherwise one element per thread with the views' innermost strides (broadcasts, transposes, odd or
//   unaligned rows).
// - copy of two views that collapse to one compact run is a cudaMemcpyAsync (device to device).
// Math: add converts both operands to float32, adds and rounds once to out's dtype (round to nearest
// even); cast converts through float32 (exact for every source dtype) and rounds once, NaN stays NaN;
// copy moves raw bits of the element size (exact for every dtype). out may be a or b exactly (add): each
// element is read and written by the same thread.
#include <algorithm>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

constexpr int kMaxOuter = OPDEV_MAX_DIMS - 1;

// The collapsed iteration space of K views of the same shape (view 0 is the output).
template <int K>
struct Layout {
  int nouter = 0;                                // outer (row) dimensions
  int64_t oshape[kMaxOuter] = {};
  int64_t ostride[K][kMaxOuter] = {};
  int64_t inner = 1;                             // innermost size
  int64_t istride[K] = {};                       // innermost strides

  __device__ __forceinline__ void row_offsets(int64_t row, int64_t (&off)[K]) const {
#pragma unroll
    for (int k = 0; k < K; ++k) off[k] = 0;
    // Compile-time indices keep the parameter arrays in the constant bank.
#pragma unroll
    for (int d = kMaxOuter - 1; d >= 0; --d) {
      if (d < nouter) {
        // The outermost dimension needs no division: row < oshape[0] there.
        const int64_t n = oshape[d];
        const int64_t q = d == 0 ? 0 : row / n, i = d == 0 ? row : row - q * n;
        row = q;
#pragma unroll
        for (int k = 0; k < K; ++k) off[k] += i * ostride[k][d];
      }
    }
  }
};

template <int K>
Layout<K> make_layout(const TensorView* const (&views)[K], int64_t& rows) {
  const TensorView& v0 = *views[0];
  int nd = 0;
  int64_t shape[OPDEV_MAX_DIMS] = {}, stride[K][OPDEV_MAX_DIMS] = {};
  for (int d = 0; d < v0.ndim; ++d) {
    if (v0.shape[d] == 1) continue;
    // Merge into the previous dimension when every view steps across both as one compact block.
    if (nd > 0) {
      bool merge = true;
      for (int k = 0; k < K; ++k) merge = merge && stride[k][nd - 1] == views[k]->strides[d] * v0.shape[d];
      if (merge) {
        shape[nd - 1] *= v0.shape[d];
        for (int k = 0; k < K; ++k) stride[k][nd - 1] = views[k]->strides[d];
        continue;
      }
    }
    shape[nd] = v0.shape[d];
    for (int k = 0; k < K; ++k) stride[k][nd] = views[k]->strides[d];
    ++nd;
  }
  Layout<K> L;
  rows = 1;
  if (nd == 0) {  // a single element
    L.inner = 1;
    for (int k = 0; k < K; ++k) L.istride[k] = 1;
    return L;
  }
  L.nouter = nd - 1;
  for (int d = 0; d < nd - 1; ++d) {
    L.oshape[d] = shape[d];
    rows *= shape[d];
    for (int k = 0; k < K; ++k) L.ostride[k][d] = stride[k][d];
  }
  L.inner = shape[nd - 1];
  for (int k = 0; k < K; ++k) L.istride[k] = stride[k][nd - 1];
  return L;
}

// May the views be walked in chunks of E elements with 16-byte accesses? Every view stride 1 innermost,
// the row length a multiple of E, base pointers and row starts 16-byte aligned.
template <int K>
bool chunks_ok(const Layout<K>& L, const TensorView* const (&views)[K], int64_t E) {
  if (L.inner % E != 0) return false;
  for (int k = 0; k < K; ++k) {
    const int64_t size = int64_t(views[k]->itemsize());
    if (L.istride[k] != 1 || reinterpret_cast<uintptr_t>(views[k]->data) % 16 != 0 || (E * size) % 16 != 0) return false;
    for (int d = 0; d < L.nouter; ++d)
      if ((L.ostride[k][d] * size) % 16 != 0) return false;
  }
  return true;
}

// ---- 16-byte chunk access ----

// E elements of T starting at a 16-byte aligned p, as floats (E a multiple of kVec<T>).
template <class T, int E>
__device__ __forceinline__ void load_chunk(const T* p, float (&out)[E]) {
  constexpr int V = kVec<T>;
  static_assert(E % V == 0, "chunk must be whole 16-byte vectors");
#pragma unroll
  for (int j = 0; j < E / V; ++j) {
    const Vec<T> v = reinterpret_cast<const Vec<T>*>(p)[j];
#pragma unroll
    for (int i = 0; i < V; ++i) out[j * V + i] = to_float(v.v[i]);
  }
}

template <class T, int E>
__device__ __forceinline__ void store_chunk(T* p, const float (&in)[E]) {
  constexpr int V = kVec<T>;
  static_assert(E % V == 0, "chunk must be whole 16-byte vectors");
#pragma unroll
  for (int j = 0; j < E / V; ++j) {
    Vec<T> v;
#pragma unroll
    for (int i = 0; i < V; ++i) v.v[i] = from_float<T>(in[j * V + i]);
    reinterpret_cast<Vec<T>*>(p)[j] = v;
  }
}

// ---- the ops: scalar(off) does one element at the views' offsets, chunk(off) E elements ----

template <class TO, class TA, class TB>
struct AddOp {
  static constexpr int K = 3;
  static constexpr int E = 8;
  TO* o;
  const TA* a;
  const TB* b;
  __device__ __forceinline__ void scalar(const int64_t (&off)[K]) const {
    o[off[0]] = from_float<TO>(to_float(a[off[1]]) + to_float(b[off[2]]));
  }
  __device__ __forceinline__ void chunk(const int64_t (&off)[K]) const {
    float x[E], y[E];
    load_chunk<TA, E>(a + off[1], x);
    load_chunk<TB, E>(b + off[2], y);
#pragma unroll
    for (int i = 0; i < E; ++i) x[i] += y[i];
    store_chunk<TO, E>(o + off[0], x);
  }
};

template <class TO, class TI>
struct CastOp {
  static constexpr int K = 2;
  static constexpr int E = 8;
  TO* o;
  const TI* x;
  __device__ __forceinline__ void scalar(const int64_t (&off)[K]) const { o[off[0]] = from_float<TO>(to_float(x[off[1]])); }
  __device__ __forceinline__ void chunk(const int64_t (&off)[K]) const {
    float v[E];
    load_chunk<TI, E>(x + off[1], v);
    store_chunk<TO, E>(o + off[0], v);
  }
};

template <class U>
struct CopyOp {
  static constexpr int K = 2;
  static constexpr int E = int(16 / sizeof(U));
  U* o;
  const U* x;
  __device__ __forceinline__ void scalar(const int64_t (&off)[K]) const { o[off[0]] = x[off[1]]; }
  __device__ __forceinline__ void chunk(const int64_t (&off)[K]) const {
    *reinterpret_cast<uint4*>(o + off[0]) = *reinterpret_cast<const uint4*>(x + off[1]);
  }
};

// rows x chunks-per-row (cpr); a chunk is Op::E elements (kChunks) or one element.
template <class Op, bool kChunks>
__global__ void __launch_bounds__(256) elementwise_kernel(Op op, Layout<Op::K> L, int64_t rows, int64_t cpr) {
  constexpr int K = Op::K;
  for (int64_t row = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; row < rows; row += int64_t(gridDim.y) * blockDim.y) {
    int64_t base[K];
    L.row_offsets(row, base);
    for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cpr; c += int64_t(gridDim.x) * blockDim.x) {
      int64_t off[K];
      if constexpr (kChunks) {
#pragma unroll
        for (int k = 0; k < K; ++k) off[k] = base[k] + c * Op::E;  // innermost strides are 1
        op.chunk(off);
      } else {
#pragma unroll
        for (int k = 0; k < K; ++k) off[k] = base[k] + c * L.istride[k];
        op.scalar(off);
      }
    }
  }
}

template <class Op>
void run(ExecContext& ex, const Op& op, const TensorView* const (&views)[Op::K]) {
  int64_t rows = 1;
  const Layout<Op::K> L = make_layout(views, rows);
  if (rows == 0 || L.inner == 0) return;
  dim3 grid, block;
  if (chunks_ok(L, views, Op::E)) {
    const int64_t cpr = L.inner / Op::E;
    launch_dims(rows, cpr, grid, block);
    elementwise_kernel<Op, true><<<grid, block, 0, stream(ex)>>>(op, L, rows, cpr);
  } else {
    launch_dims(rows, L.inner, grid, block);
    elementwise_kernel<Op, false><<<grid, block, 0, stream(ex)>>>(op, L, rows, L.inner);
  }
  OPDEV_CUDA_CHECK_LAUNCH();
}

template <class T>
struct Tag {
  using type = T;
};

template <class F>
void float_dispatch(const TensorView& v, F&& f) {
  switch (v.dtype) {
    case DType::F32: f(Tag<float>{}); return;
    case DType::BF16: f(Tag<bf16>{}); return;
    case DType::F16: f(Tag<f16>{}); return;
    default: break;
  }
  fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cuda: ", v.name, ": expected dtype float32 | bfloat16 | float16, got ", dtype_name(v.dtype));
}

template <class U>
void run_copy(ExecContext& ex, const copy_args& a) {
  const TensorView* const views[2] = {&a.out, &a.x};
  int64_t rows = 1;
  const Layout<2> L = make_layout(views, rows);
  if (L.nouter == 0 && L.istride[0] == 1 && L.istride[1] == 1) {
    // One compact run on both sides.
    OPDEV_CUDA_CHECK(cudaMemcpyAsync(a.out.data, a.x.data, size_t(L.inner) * sizeof(U), cudaMemcpyDeviceToDevice, stream(ex)));
    return;
  }
  run(ex, CopyOp<U>{a.out.ptr<U>(), a.x.ptr<const U>()}, views);
}

}  // namespace

opdev_status add(ExecContext& ex, const add_args& a) {
  const TensorView* const views[3] = {&a.out, &a.a, &a.b};
  float_dispatch(a.out, [&](auto to) {
    float_dispatch(a.a, [&](auto ta) {
      float_dispatch(a.b, [&](auto tb) {
        using TO = typename decltype(to)::type;
        using TA = typename decltype(ta)::type;
        using TB = typename decltype(tb)::type;
        run(ex, AddOp<TO, TA, TB>{a.out.ptr<TO>(), a.a.ptr<const TA>(), a.b.ptr<const TB>()}, views);
      });
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status cast(ExecContext& ex, const cast_args& a) {
  const TensorView* const views[2] = {&a.out, &a.x};
  float_dispatch(a.out, [&](auto to) {
    float_dispatch(a.x, [&](auto ti) {
      using TO = typename decltype(to)::type;
      using TI = typename decltype(ti)::type;
      run(ex, CastOp<TO, TI>{a.out.ptr<TO>(), a.x.ptr<const TI>()}, views);
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status copy(ExecContext& ex, const copy_args& a) {
  // Exact for every dtype: elements move as raw bits of their size.
  switch (a.x.itemsize()) {
    case 1: run_copy<uint8_t>(ex, a); break;
    case 2: run_copy<uint16_t>(ex, a); break;
    case 4: run_copy<uint32_t>(ex, a); break;
    case 8: run_copy<uint64_t>(ex, a); break;
    default: fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cuda: copy of dtype ", dtype_name(a.x.dtype), " is not implemented");
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
