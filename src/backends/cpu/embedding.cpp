// cpu: embedding, a row gather: one memcpy of H elements per token, tokens split across threads. Ids were
// range-checked by the front-end; the kernel still skips (zero-fills) any id outside [0, V) so that it
// can never read out of bounds, and reports it.
#include <atomic>
#include <cstring>

#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status embedding(ExecContext& ex, const embedding_args& a) {
  const int64_t T = a.out.size(0), H = a.out.size(1), V = a.table.size(0);
  const size_t row_bytes = size_t(H) * a.out.itemsize();
  const int64_t table_stride = a.table.strides[0] * int64_t(a.table.itemsize());
  const int64_t out_stride = a.out.strides[0] * int64_t(a.out.itemsize());
  const char* table = static_cast<const char*>(a.table.data);
  char* out = static_cast<char*>(a.out.data);
  const bool i32 = a.ids.dtype == DType::I32;
  std::atomic<int64_t> bad{-1};
  parallel_for(ex, T, 1 + int64_t(16384 / (row_bytes + 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t id = i32 ? int64_t(a.ids.ptr<const int32_t>()[t]) : a.ids.ptr<const int64_t>()[t];
      char* dst = out + t * out_stride;
      if (id < 0 || id >= V) {
        std::memset(dst, 0, row_bytes);
        bad.store(t, std::memory_order_relaxed);
        continue;
      }
      std::memcpy(dst, table + id * table_stride, row_bytes);
    }
  });
  const int64_t t = bad.load();
  if (t >= 0) fail(OPDEV_STATUS_OUT_OF_RANGE, "ids[", t, "] is outside [0, ", V, ") (the vocabulary size V)");
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
