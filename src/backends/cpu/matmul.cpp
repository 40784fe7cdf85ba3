// cpu: linear, grouped_matmul. Both describe their products as raw-pointer matrices and hand them to
// the shared kernels of gemm_kernels.h (gemv for few rows, packed gemm otherwise; see there).
#include <algorithm>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/gemm_kernels.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status linear(ExecContext& ex, const linear_args& a) {
  dispatch_float(a.x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const gemm::Mat<T> m{a.x.ptr<const T>(),   a.x.strides[0],  a.weight.ptr<const T>(),
                         a.weight.strides[0],  a.bias.present ? a.bias.ptr<const T>() : nullptr,
                         a.out.ptr<T>(),       a.out.strides[0], a.x.size(0),
                         a.weight.size(0),     a.x.size(1)};
    gemm::run(ex, &m, 1);
  });
  return OPDEV_STATUS_SUCCESS;
}

// One product per expert that owns rows; the others are skipped (their weights are never read).
opdev_status grouped_matmul(ExecContext& ex, const grouped_matmul_args& a) {
  const int64_t R = a.x.size(0), K = a.x.size(1), E = a.weight.size(0), N = a.weight.size(1);
  const int64_t* offsets = a.expert_offsets.ptr<const int64_t>();  // int64 [E+1]
  const int64_t ostride = a.expert_offsets.strides[0];
  dispatch_float(a.x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto* probs = static_cast<gemm::Mat<T>*>(ex.scratch(sizeof(gemm::Mat<T>) * size_t(std::max<int64_t>(E, 1))));
    // K == 0 leaves x and weight without elements (their data may be NULL): no offsets from NULL.
    auto at = [](const T* base, int64_t off) { return base ? base + off : base; };
    int64_t count = 0;
    for (int64_t e = 0; e < E; ++e) {
      // Clamped so that offsets the front-end could not check never index out of bounds.
      const int64_t r0 = std::clamp<int64_t>(offsets[e * ostride], 0, R);
      const int64_t r1 = std::clamp<int64_t>(offsets[(e + 1) * ostride], r0, R);
      if (r1 == r0) continue;
      probs[count++] = gemm::Mat<T>{at(a.x.ptr<const T>(), r0 * a.x.strides[0]),
                                    a.x.strides[0],
                                    at(a.weight.ptr<const T>(), e * a.weight.strides[0]),
                                    a.weight.strides[1],
                                    nullptr,
                                    a.out.ptr<T>() + r0 * a.out.strides[0],
                                    a.out.strides[0],
                                    r1 - r0,
                                    N,
                                    K};
    }
    gemm::run(ex, probs, count);
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
