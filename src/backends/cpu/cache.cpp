// cpu: reshape_and_cache. A pure copy (bit-exact in every dtype): each token's Hk rows of D elements go
// to its slot, one memcpy per head row, or one per token when the heads are contiguous on both sides.
// Tokens are split across threads; the front-end guarantees distinct slots, so writes never collide.
#include <cstring>

#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

template <class T>
void copy_rows(const TensorView& cache, const TensorView& src, int64_t t, int64_t blk, int64_t pos) {
  const int64_t Hk = src.size(1), D = src.size(2);
  T* dst = cache.ptr<T>() + blk * cache.strides[0] + pos * cache.strides[1];
  const T* s = src.ptr<const T>() + t * src.strides[0];
  if (Hk == 1 || (cache.strides[2] == D && src.strides[1] == D)) {
    std::memcpy(static_cast<void*>(dst), s, sizeof(T) * size_t(Hk * D));
    return;
  }
  for (int64_t h = 0; h < Hk; ++h) std::memcpy(static_cast<void*>(dst + h * cache.strides[2]), s + h * src.strides[1], sizeof(T) * size_t(D));
}

}  // namespace

opdev_status reshape_and_cache(ExecContext& ex, const reshape_and_cache_args& a) {
  const int64_t T_ = a.key.size(0), row = a.key.size(1) * a.key.size(2);
  const int64_t BS = a.key_cache.size(1);
  dispatch_float(a.key_cache.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    // About 32 KiB of copies per thread at least: small token counts stay on one thread.
    parallel_for(ex, T_, 1 + 8192 / row, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t slot = a.slot_mapping.dtype == DType::I32 ? int64_t(a.slot_mapping.ptr<const int32_t>()[t * a.slot_mapping.strides[0]])
                                                                : a.slot_mapping.ptr<const int64_t>()[t * a.slot_mapping.strides[0]];
        if (slot < 0) continue;  // padding token
        copy_rows<T>(a.key_cache, a.key, t, slot / BS, slot % BS);
        if (a.value_cache.present) copy_rows<T>(a.value_cache, a.value, t, slot / BS, slot % BS);
      }
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
