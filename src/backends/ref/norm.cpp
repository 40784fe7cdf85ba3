// ref: rms_norm, add_rms_norm in float64.
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status rms_norm(ExecContext&, const rms_norm_args& a) {
  const int nd = a.x.ndim;
  const int64_t H = a.x.size(-1);
  std::vector<double> row(size_t(H), 0.0);
  // Iterate over the leading dimensions; the last one is the row.
  for_each_index(a.x.shape, nd - 1, [&](const int64_t* lead) {
    int64_t idx[OPDEV_MAX_DIMS] = {};
    for (int d = 0; d < nd - 1; ++d) idx[d] = lead[d];
    double ss = 0;
    for (int64_t i = 0; i < H; ++i) {
      idx[nd - 1] = i;
      row[size_t(i)] = load(a.x.data, a.x.dtype, offset_of(a.x, idx));
      ss += row[size_t(i)] * row[size_t(i)];
    }
    const double r = 1.0 / std::sqrt(ss / double(H) + a.eps);
    for (int64_t i = 0; i < H; ++i) {
      idx[nd - 1] = i;
      const double w = load(a.weight.data, a.weight.dtype, i * a.weight.strides[0]);
      store(a.out.data, a.out.dtype, offset_of(a.out, idx), w * (row[size_t(i)] * r));
    }
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status add_rms_norm(ExecContext&, const add_rms_norm_args& a) {
  const int64_t T = a.x.size(0), H = a.x.size(1);
  std::vector<double> row(size_t(H), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < H; ++i) {
      row[size_t(i)] = get(a.x, {t, i}) + get(a.residual, {t, i});
      ss += row[size_t(i)] * row[size_t(i)];
    }
    const double r = 1.0 / std::sqrt(ss / double(H) + a.eps);
    for (int64_t i = 0; i < H; ++i) {
      set(a.residual_out, {t, i}, row[size_t(i)]);
      set(a.out, {t, i}, get(a.weight, {i}) * (row[size_t(i)] * r));
    }
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
