// What every cuda kernel file shares: the backend's per-context state (device, stream, cuBLASLt handle,
// workspace, the device-side index-error word), CUDA error checks that name the call, file:line and
// device, dtype dispatch, float conversion and 16-byte vector access.
//
// Conventions of the cuda backend (docs/ARCHITECTURE.md, "CUDA backend"):
// - Every kernel runs on the context's stream (cuda::stream(ex)); ops never synchronise the host. The
//   only host synchronisations are opdev_memcpy to the host and opdev_synchronize.
// - Workspace comes from ex.scratch() (the context's caching allocator), valid until the op returns; the
//   stream orders its reuse by the next op.
// - Index data (ids, positions, slots, expert ids, block tables, offsets) lives on the device, so the
//   front-end cannot range-check it. Kernels never read or write out of bounds because of it: an
//   out-of-range index is skipped (its output row is written as zeros where the op has one) and the
//   kernel sets the op's bit in the context's error word (report_bad_index). The next host
//   synchronisation (opdev_memcpy to the host, opdev_synchronize) turns the word into
//   OPDEV_STATUS_OUT_OF_RANGE naming the op(s).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/backend.h"
#include "core/error.h"
#include "ops/op_args.h"

namespace opdev::cuda {

// The P V product of the tensor-core attention kernel (bf16 / f16 prefill), chosen per context
// (OPDEV_CUDA_ATTN_P=rounded|split, default rounded; backend.cu):
//  - Rounded: P rounded to the dtype once, one tensor-core product (FlashAttention-2; docs/OPS.md's bound
//    on paged_attention covers that rounding).
//  - Split: P split into exact 16-bit terms (3 for bf16, 2 for f16), as many products: float32 P, at up to
//    twice the tensor-core work of the kernel. For precision comparisons.
enum class AttnP { Rounded, Split };

struct CudaState {
  int device = 0;
  AttnP attn_p = AttnP::Rounded;
  cudaStream_t stream = nullptr;
  cudaDeviceProp prop{};
  void* blaslt = nullptr;          // cublasLtHandle_t (opaque here: only matmul files include cuBLAS)
  void* blas = nullptr;            // cublasHandle_t
  void* lt_workspace = nullptr;    // cuBLASLt workspace on the device
  size_t lt_workspace_bytes = 0;
  unsigned* error_word = nullptr;  // device: bit op set when a kernel of op saw out-of-range index data
  unsigned* error_host = nullptr;  // pinned host copy of error_word
  std::string description;         // "NVIDIA H100 80GB HBM3 (sm_90, device 0)"
  // Pinned staging ring for small host-to-device copies (opdev_memcpy stays synchronous for the caller
  // while the copy itself is queued on the stream).
  static constexpr int kStagingSlots = 8;
  static constexpr size_t kStagingBytes = size_t(1) << 20;
  char* staging[kStagingSlots] = {};
  cudaEvent_t staging_done[kStagingSlots] = {};
  int staging_next = 0;
};

inline CudaState& state(ExecContext& ex) { return *static_cast<CudaState*>(ex.state); }
inline cudaStream_t stream(ExecContext& ex) { return state(ex).stream; }

// Throws opdev::Error(OPDEV_STATUS_DEVICE_ERROR or OUT_OF_MEMORY) naming the CUDA call, the file:line and
// the current device.
[[noreturn]] void cuda_fail(cudaError_t err, const char* call, const char* file, int line);

#define OPDEV_CUDA_CHECK(call)                                                             \
  do {                                                                                     \
    cudaError_t opdev_cuda_err_ = (call);                                                  \
    if (opdev_cuda_err_ != cudaSuccess) ::opdev::cuda::cuda_fail(opdev_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: reports a bad launch configuration (the kernel's own faults surface later).
#define OPDEV_CUDA_CHECK_LAUNCH() OPDEV_CUDA_CHECK(cudaGetLastError())

// Sets op's bit in the context's error word (device side; see the conventions above).
__device__ __forceinline__ void report_bad_index(unsigned* error_word, opdev_op op) {
  atomicOr(error_word, 1u << unsigned(op));
}

// ---- dtypes -------------------------------------------------------------------------------------------

using bf16 = __nv_bfloat16;
using f16 = __half;

template <class T>
__device__ __forceinline__ float to_float(T x);
template <>
__device__ __forceinline__ float to_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_float<bf16>(bf16 x) { return __bfloat162float(x); }
template <>
__device__ __forceinline__ float to_float<f16>(f16 x) { return __half2float(x); }

// Round to nearest even (NaN stays NaN), like the cpu backend.
template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }
template <>
__device__ __forceinline__ f16 from_float<f16>(float x) { return __float2half_rn(x); }

// Rounds a float to T's precision and back (the "rounded to the dtype" steps of docs/OPS.md).
template <class T>
__device__ __forceinline__ float round_to(float x) { return to_float<T>(from_float<T>(x)); }

// Calls body with `using T = float | bf16 | f16` for a float activation dtype:
//   OPDEV_CUDA_FLOAT_SWITCH(a.x.dtype, T, { launch<T>(...); });
#define OPDEV_CUDA_FLOAT_SWITCH(dtype, T, ...)                                                   \
  switch (dtype) {                                                                               \
    case ::opdev::DType::F32: { using T = float; __VA_ARGS__ } break;                            \
    case ::opdev::DType::BF16: { using T = ::opdev::cuda::bf16; __VA_ARGS__ } break;             \
    case ::opdev::DType::F16: { using T = ::opdev::cuda::f16; __VA_ARGS__ } break;               \
    default:                                                                                     \
      ::opdev::fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cuda: dtype ", ::opdev::dtype_name(dtype),  \
                    " is not implemented here");                                                 \
  }

// ---- 16-byte vectors ----------------------------------------------------------------------------------

// kVec<T> elements of T fill 16 bytes (one LDG.128 / STG.128).
template <class T>
constexpr int kVec = int(16 / sizeof(T));

template <class T>
struct alignas(16) Vec {
  T v[kVec<T>];
};

// Loads kVec<T> elements as floats from a 16-byte-aligned address.
template <class T>
__device__ __forceinline__ void load_vec(const T* p, float (&out)[kVec<T>]) {
  Vec<T> v = *reinterpret_cast<const Vec<T>*>(p);
#pragma unroll
  for (int i = 0; i < kVec<T>; ++i) out[i] = to_float<T>(v.v[i]);
}

template <class T>
__device__ __forceinline__ void store_vec(T* p, const float (&in)[kVec<T>]) {
  Vec<T> v;
#pragma unroll
  for (int i = 0; i < kVec<T>; ++i) v.v[i] = from_float<T>(in[i]);
  *reinterpret_cast<Vec<T>*>(p) = v;
}

// Host side: may rows of `v` (last dim contiguous, row stride in elements) be read with 16-byte
// vectors? True when the base pointer and every row start are 16-byte aligned and the row length is a
// multiple of the vector width.
inline bool vec16_rows_ok(const TensorView& v, int64_t row_len, int64_t row_stride) {
  const int64_t w = 16 / int64_t(v.itemsize());
  return (reinterpret_cast<uintptr_t>(v.data) % 16 == 0) && (row_len % w == 0) && (row_stride % w == 0);
}

// ---- launch helpers -----------------------------------------------------------------------------------

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A 1-D grid for n work items of `block` threads each, capped for grid-stride loops.
inline unsigned grid_for(int64_t n, int block, int64_t cap = int64_t(1) << 20) {
  int64_t g = ceil_div(n, block);
  if (g < 1) g = 1;
  if (g > cap) g = cap;
  return unsigned(g);
}

// A 2-D launch over `rows` rows of `cpr` chunks each (the memory-bound row kernels): blockDim.x a power
// of two <= 256 chosen to waste few threads on a row's last block, blockDim.y = 256 / blockDim.x rows per
// block; both grid dimensions are capped, so the kernels loop over rows and chunks.
inline void launch_dims(int64_t rows, int64_t cpr, dim3& grid, dim3& block) {
  unsigned bx = 1;
  while (bx < 32 && int64_t(bx) < cpr) bx <<= 1;
  if (cpr > 32) {
    int64_t best_waste = -1;
    for (unsigned c = 32; c <= 256; c <<= 1) {
      const int64_t waste = ceil_div(cpr, c) * c - cpr;
      if (best_waste < 0 || waste <= best_waste) {
        best_waste = waste;
        bx = c;
      }
    }
  }
  const unsigned by = 256 / bx;
  block = dim3(bx, by, 1);
  grid = dim3(unsigned(std::min<int64_t>(ceil_div(cpr, bx), int64_t(1) << 16)),
              unsigned(std::min<int64_t>(ceil_div(rows, by), 65535)), 1);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace opdev::cuda
