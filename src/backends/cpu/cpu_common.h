// Shared helpers of the cpu kernels: dtype dispatch, threading, row iteration. Included by every
// kernel file; like them it is compiled once per ISA into namespace opdev::cpu::OPDEV_CPU_ISA_NS.
#pragma once

#include <omp.h>

#include <cstdint>
#include <type_traits>

#include "backends/cpu/simd.h"
#include "core/backend.h"
#include "core/error.h"

#ifndef OPDEV_CPU_ISA_NS
#error "cpu kernel files are compiled once per ISA with -DOPDEV_CPU_ISA_NS=<name> (see src/CMakeLists.txt)"
#endif

namespace opdev::cpu {
inline namespace OPDEV_CPU_ISA_NS {  // per ISA, like simd.h

template <class T>
struct type_tag {
  using type = T;
};

// Calls f(type_tag<T>{}) with T the storage type of an activation dtype: vLLM's
// DISPATCH_FLOATING_TYPES. The dtypes listed here are the cpu backend's activation dtypes.
template <class F>
decltype(auto) dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::F32: return f(type_tag<float>{});
    case DType::BF16: return f(type_tag<bf16_t>{});
    case DType::F16: return f(type_tag<f16_t>{});
    default: break;
  }
  fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cpu: dtype ", dtype_name(t), " reached a kernel that takes float32 | bfloat16 | float16");
}

// Runs f(begin, end) over [0, n) split statically into contiguous ranges, one per thread, using at most
// ex.num_threads threads and at least `grain` items per thread. Every item is computed by exactly one
// thread with the same code, so results do not depend on the thread count. f must not throw.
template <class F>
void parallel_for(const ExecContext& ex, int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t nt = ex.num_threads;
  const int64_t chunks = (n + grain - 1) / grain;
  if (nt > chunks) nt = chunks;
  if (nt <= 1) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(int(nt))
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t b = n * t / T, e = n * (t + 1) / T;
    if (b < e) f(b, e);
  }
}

// Maps a flat row index over the leading dimensions of a view (all but the last `inner` dimensions) to
// an element offset; used for [..., H] views whose leading dimensions are strided.
struct RowIndexer {
  int nlead = 0;
  int64_t shape[OPDEV_MAX_DIMS] = {}, stride[OPDEV_MAX_DIMS] = {};
  int64_t rows = 1;
  RowIndexer(const TensorView& v, int inner) {
    nlead = v.ndim - inner;
    for (int d = 0; d < nlead; ++d) {
      shape[d] = v.shape[d];
      stride[d] = v.strides[d];
      rows *= v.shape[d];
    }
  }
  int64_t offset(int64_t row) const {
    int64_t off = 0;
    for (int d = nlead - 1; d >= 0; --d) {
      off += (row % shape[d]) * stride[d];
      row /= shape[d];
    }
    return off;
  }
};

}  // namespace OPDEV_CPU_ISA_NS
}  // namespace opdev::cpu

// Every kernel file defines its ops inside this namespace; cpu/backend.cpp picks one ISA's table.
#define OPDEV_CPU_NAMESPACE_BEGIN \
  namespace opdev::cpu::OPDEV_CPU_ISA_NS {
#define OPDEV_CPU_NAMESPACE_END }
