// ref: silu_and_mul in float64.
#include "backends/ref/ref_common.h"

namespace opdev::ref {

namespace {

// g * sigmoid(g) with its limits at +-inf (0 at -inf rather than -inf / inf = NaN).
double silu(double g) {
  if (std::isinf(g)) return g > 0 ? g : -0.0;
  return g / (1.0 + std::exp(-g));
}

}  // namespace

opdev_status silu_and_mul(ExecContext&, const silu_and_mul_args& a) {
  const int nd = a.x.ndim;
  const int64_t d = a.out.size(-1);
  for_each_index(a.out.shape, nd - 1, [&](const int64_t* lead) {
    int64_t xi[OPDEV_MAX_DIMS] = {}, oi[OPDEV_MAX_DIMS] = {};
    for (int k = 0; k < nd - 1; ++k) xi[k] = oi[k] = lead[k];
    for (int64_t i = 0; i < d; ++i) {
      xi[nd - 1] = i;
      const double gate = load(a.x.data, a.x.dtype, offset_of(a.x, xi));
      xi[nd - 1] = d + i;
      const double up = load(a.x.data, a.x.dtype, offset_of(a.x, xi));
      oi[nd - 1] = i;
      store(a.out.data, a.out.dtype, offset_of(a.out, oi), silu(gate) * up);
    }
  });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
