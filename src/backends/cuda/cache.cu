// cuda: reshape_and_cache. Token t's key (and value) rows [Hk, D] go to slot_mapping[t] of the paged
// caches [NB, BS, Hk, D] (block slot / BS, offset slot % BS).
//
// Kernel design: a scatter of raw bits (exact in every dtype). Work rows are (token, head) pairs, each a
// copy of D elements for the key and, when a value cache is given, the same for the value. A row moves in
// units of the widest of 16 / 8 / 4 / 2 bytes that divides D's bytes, every base pointer and every stride
// in bytes (16 bytes, LDG.128 / STG.128, for the usual layouts; key / value may be rows of a fused qkv
// buffer, caches may be padded). 2-D blocks: blockDim.x threads over a row's units (sized to the row),
// blockDim.y rows per block, grid-stride in both dimensions. The slot (int32 or int64, strided, on the
// device) is read once per row by each of its threads: a negative slot is padding and is skipped
// silently; a slot >= NB * BS is never dereferenced: it is skipped and the op's bit is set in the
// context's error word (OPDEV_STATUS_OUT_OF_RANGE at the next host synchronisation). Slots must be
// distinct (the front-end checks it when they are host-visible); repeated slots on the device give one
// of the writers' rows.
#include <algorithm>

#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

namespace {

struct CacheParams {
  void* kc;
  void* vc;            // null: key-only cache
  const void* k;
  const void* v;
  const void* slots;
  bool slots64;
  int64_t slot_stride;
  int64_t T, Hk, BS, num_slots;
  int64_t units;       // units of U per head row
  // Strides in units of U: key / value [T, Hk], caches [NB, BS, Hk].
  int64_t k_t, k_h, v_t, v_h;
  int64_t kc_b, kc_s, kc_h, vc_b, vc_s, vc_h;
  unsigned* error_word;
};

template <class U>
__global__ void __launch_bounds__(256) reshape_and_cache_kernel(CacheParams p) {
  const int64_t rows = p.T * p.Hk;
  for (int64_t row = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; row < rows; row += int64_t(gridDim.y) * blockDim.y) {
    const int64_t t = row / p.Hk, h = row - t * p.Hk;
    const int64_t off = t * p.slot_stride;
    const int64_t slot = p.slots64 ? static_cast<const int64_t*>(p.slots)[off] : int64_t(static_cast<const int32_t*>(p.slots)[off]);
    const int64_t c0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
    if (slot < 0) continue;  // padding token
    if (slot >= p.num_slots) {
      if (c0 == 0 && h == 0) report_bad_index(p.error_word, OPDEV_OP_RESHAPE_AND_CACHE);
      continue;
    }
    const int64_t blk = slot / p.BS, pos = slot - blk * p.BS;
    {
      U* dst = static_cast<U*>(p.kc) + blk * p.kc_b + pos * p.kc_s + h * p.kc_h;
      const U* src = static_cast<const U*>(p.k) + t * p.k_t + h * p.k_h;
      for (int64_t c = c0; c < p.units; c += step) dst[c] = src[c];
    }
    if (p.vc) {
      U* dst = static_cast<U*>(p.vc) + blk * p.vc_b + pos * p.vc_s + h * p.vc_h;
      const U* src = static_cast<const U*>(p.v) + t * p.v_t + h * p.v_h;
      for (int64_t c = c0; c < p.units; c += step) dst[c] = src[c];
    }
  }
}

// Byte strides of the dimensions the kernel steps (0 for size-1 dimensions, which it never steps).
struct ByteStrides {
  int64_t k_t = 0, k_h = 0, v_t = 0, v_h = 0, kc_b = 0, kc_s = 0, kc_h = 0, vc_b = 0, vc_s = 0, vc_h = 0;
};

template <class U>
void launch(ExecContext& ex, CacheParams p, int64_t row_bytes, const ByteStrides& s) {
  const int64_t u = int64_t(sizeof(U));
  p.units = row_bytes / u;
  p.k_t = s.k_t / u;
  p.k_h = s.k_h / u;
  p.v_t = s.v_t / u;
  p.v_h = s.v_h / u;
  p.kc_b = s.kc_b / u;
  p.kc_s = s.kc_s / u;
  p.kc_h = s.kc_h / u;
  p.vc_b = s.vc_b / u;
  p.vc_s = s.vc_s / u;
  p.vc_h = s.vc_h / u;
  dim3 grid, block;
  launch_dims(p.T * p.Hk, p.units, grid, block);
  reshape_and_cache_kernel<U><<<grid, block, 0, stream(ex)>>>(p);
  OPDEV_CUDA_CHECK_LAUNCH();
}

}  // namespace

opdev_status reshape_and_cache(ExecContext& ex, const reshape_and_cache_args& a) {
  const DType dt = a.key_cache.dtype;
  if (dt != DType::F32 && dt != DType::BF16 && dt != DType::F16)
    fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cuda: reshape_and_cache: expected dtype float32 | bfloat16 | float16, got ", dtype_name(dt));
  const bool has_v = a.value_cache.present;
  const int64_t NB = a.key_cache.size(0), BS = a.key_cache.size(1), Hk = a.key.size(1), D = a.key.size(2);
  const int64_t size = int64_t(a.key.itemsize());
  CacheParams p{};
  p.kc = a.key_cache.data;
  p.vc = has_v ? a.value_cache.data : nullptr;
  p.k = a.key.data;
  p.v = has_v ? a.value.data : nullptr;
  p.slots = a.slot_mapping.data;
  p.slots64 = a.slot_mapping.dtype == DType::I64;
  p.slot_stride = a.slot_mapping.strides[0];
  p.T = a.key.size(0);
  p.Hk = Hk;
  p.BS = BS;
  if (__builtin_mul_overflow(NB, BS, &p.num_slots)) p.num_slots = INT64_MAX;
  p.error_word = state(ex).error_word;
  if (p.T == 0 || Hk == 0 || D == 0) return OPDEV_STATUS_SUCCESS;

  auto sb = [&](const TensorView& v, int d) { return v.shape[d] > 1 ? v.strides[d] * size : int64_t(0); };
  ByteStrides s;
  s.k_t = sb(a.key, 0);
  s.k_h = sb(a.key, 1);
  s.kc_b = sb(a.key_cache, 0);
  s.kc_s = sb(a.key_cache, 1);
  s.kc_h = sb(a.key_cache, 2);
  int64_t all = D * size | s.k_t | s.k_h | s.kc_b | s.kc_s | s.kc_h | int64_t(reinterpret_cast<uintptr_t>(p.kc)) |
                int64_t(reinterpret_cast<uintptr_t>(p.k));
  if (has_v) {
    s.v_t = sb(a.value, 0);
    s.v_h = sb(a.value, 1);
    s.vc_b = sb(a.value_cache, 0);
    s.vc_s = sb(a.value_cache, 1);
    s.vc_h = sb(a.value_cache, 2);
    all |= s.v_t | s.v_h | s.vc_b | s.vc_s | s.vc_h | int64_t(reinterpret_cast<uintptr_t>(p.vc)) |
           int64_t(reinterpret_cast<uintptr_t>(p.v));
  }
  const int64_t row_bytes = D * size;
  if (all % 16 == 0) launch<uint4>(ex, p, row_bytes, s);
  else if (all % 8 == 0) launch<uint2>(ex, p, row_bytes, s);
  else if (all % 4 == 0) launch<uint32_t>(ex, p, row_bytes, s);
  else launch<uint16_t>(ex, p, row_bytes, s);
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::cuda
