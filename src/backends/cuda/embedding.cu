// cuda: embedding, a row gather out[t] = table[ids[t]].
//
// Kernel design: a pure copy of raw bits (exact in every dtype). A row of H elements is moved in units of
// the widest of 16 / 8 / 4 / 2 bytes that divides the row's bytes, both base pointers and both row
// strides in bytes (16 bytes, one LDG.128 / STG.128 per thread, for the usual compact rows). 2-D blocks:
// blockDim.x threads over a row's units (sized to the row), blockDim.y tokens per block; grid-stride in
// both dimensions. The id (int32 or int64, on the device) is read once per row by each thread of the
// row; an id outside [0, V) is never dereferenced: that output row is written as zeros and the op's
// bit is set in the context's error word (reported as OPDEV_STATUS_OUT_OF_RANGE at the next host
// synchronisation).
#include <algorithm>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

struct EmbeddingParams {
  void* out;
  const void* table;
  const void* ids;
  bool ids64;
  int64_t T, V;
  int64_t units;                       // units of U per row
  int64_t out_stride, table_stride;    // row strides in units of U
  unsigned* error_word;
};

template <class U>
__global__ void __launch_bounds__(256) embedding_kernel(EmbeddingParams p) {
  for (int64_t t = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; t < p.T; t += int64_t(gridDim.y) * blockDim.y) {
    const int64_t id = p.ids64 ? static_cast<const int64_t*>(p.ids)[t] : int64_t(static_cast<const int32_t*>(p.ids)[t]);
    U* dst = static_cast<U*>(p.out) + t * p.out_stride;
    const int64_t c0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
    if (id < 0 || id >= p.V) {
      for (int64_t c = c0; c < p.units; c += step) dst[c] = U{};
      if (c0 == 0) report_bad_index(p.error_word, OPDEV_OP_EMBEDDING);
      continue;
    }
    const U* src = static_cast<const U*>(p.table) + id * p.table_stride;
    for (int64_t c = c0; c < p.units; c += step) dst[c] = src[c];
  }
}

template <class U>
void launch(ExecContext& ex, EmbeddingParams p, int64_t row_bytes, int64_t out_stride_bytes, int64_t table_stride_bytes) {
  p.units = row_bytes / int64_t(sizeof(U));
  p.out_stride = out_stride_bytes / int64_t(sizeof(U));
  p.table_stride = table_stride_bytes / int64_t(sizeof(U));
  dim3 grid, block;
  launch_dims(p.T, p.units, grid, block);
  embedding_kernel<U><<<grid, block, 0, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
}

}  // namespace

opdev_status embedding(ExecContext& ex, const embedding_args& a) {
  if (a.out.dtype != DType::F32 && a.out.dtype != DType::BF16 && a.out.dtype != DType::F16)
    fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cuda: embedding: expected dtype float32 | bfloat16 | float16, got ", dtype_name(a.out.dtype));
  EmbeddingParams p{};
  p.out = a.out.data;
  p.table = a.table.data;
  p.ids = a.ids.data;
  p.ids64 = a.ids.dtype == DType::I64;
  p.T = a.out.size(0);
  p.V = a.table.size(0);
  p.error_word = state(ex).error_word;
  const int64_t H = a.out.size(1), size = int64_t(a.out.itemsize());
  if (p.T == 0 || H == 0) return OPDEV_STATUS_SUCCESS;
  const int64_t row_bytes = H * size;
  // Strides of size-1 dimensions are never stepped.
  const int64_t out_sb = p.T > 1 ? a.out.strides[0] * size : 0;
  const int64_t table_sb = p.V > 1 ? a.table.strides[0] * size : 0;
  // The widest unit that divides every byte offset the kernel forms.
  const int64_t all = row_bytes | out_sb | table_sb | int64_t(reinterpret_cast<uintptr_t>(a.out.data)) |
                      int64_t(reinterpret_cast<uintptr_t>(a.table.data));
  if (all % 16 == 0) launch<uint4>(ex, p, row_bytes, out_sb, table_sb);
  else if (all % 8 == 0) launch<uint2>(ex, p, row_bytes, out_sb, table_sb);
  else if (all % 4 == 0) launch<uint32_t>(ex, p, row_bytes, out_sb, table_sb);
  else launch<uint16_t>(ex, p, row_bytes, out_sb, table_sb);
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
