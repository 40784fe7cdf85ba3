// cpu: rms_norm, add_rms_norm. One pass for the sum of squares, one for the output; rows split across
// threads. Rounding order of the contract: normalised value rounded to the storage dtype, then times the
// weight; add_rms_norm rounds the residual sum to the storage dtype before normalising it.
#include <cmath>

#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

template <class T>
float sum_squares(const T* x, int64_t H) {
  vf a0 = vzero(), a1 = vzero();
  int64_t i = 0;
  for (; i + 2 * kW <= H; i += 2 * kW) {
    vf u = vload(x + i), v = vload(x + i + kW);
    a0 = vfma(u, u, a0);
    a1 = vfma(v, v, a1);
  }
  for (; i + kW <= H; i += kW) {
    vf u = vload(x + i);
    a0 = vfma(u, u, a0);
  }
  if (i < H) {
    vf u = vload_n(x + i, int(H - i));
    a0 = vfma(u, u, a0);
  }
  return hsum(a0 + a1);
}

// out[i] = w[i] * round_T(x[i] * r)
template <class T>
void scale_row(T* out, const T* x, const T* w, int64_t H, float r) {
  const vf vr = vset(r);
  int64_t i = 0;
  for (; i + kW <= H; i += kW) vstore(out + i, vload(w + i) * vround_to<T>(vload(x + i) * vr));
  if (i < H) {
    const int n = int(H - i);
    vstore_n(out + i, vload_n(w + i, n) * vround_to<T>(vload_n(x + i, n) * vr), n);
  }
}

inline float inv_rms(float ss, int64_t H, float eps) { return 1.0f / std::sqrt(ss / float(H) + eps); }

}  // namespace

opdev_status rms_norm(ExecContext& ex, const rms_norm_args& a) {
  const int64_t H = a.x.size(-1);
  const RowIndexer xr(a.x, 1), outr(a.out, 1);
  const float eps = float(a.eps);
  dispatch_float(a.x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.x.ptr<const T>();
    const T* w = a.weight.ptr<const T>();
    T* out = a.out.ptr<T>();
    parallel_for(ex, xr.rows, 1 + 16384 / H, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xrow = x + xr.offset(r);
        scale_row(out + outr.offset(r), xrow, w, H, inv_rms(sum_squares(xrow, H), H, eps));
      }
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status add_rms_norm(ExecContext& ex, const add_rms_norm_args& a) {
  const int64_t T_ = a.x.size(0), H = a.x.size(1);
  const float eps = float(a.eps);
  dispatch_float(a.x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    parallel_for(ex, T_, 1 + 16384 / H, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const T* x = a.x.ptr<const T>() + t * a.x.strides[0];
        const T* res = a.residual.ptr<const T>() + t * a.residual.strides[0];
        T* ro = a.residual_out.ptr<T>() + t * a.residual_out.strides[0];
        T* out = a.out.ptr<T>() + t * a.out.strides[0];
        // residual_out = x + residual in the storage dtype (may be residual itself).
        int64_t i = 0;
        for (; i + kW <= H; i += kW) vstore(ro + i, vload(x + i) + vload(res + i));
        if (i < H) vstore_n(ro + i, vload_n(x + i, int(H - i)) + vload_n(res + i, int(H - i)), int(H - i));
        // out = rms_norm(residual_out) (out may be x, which is no longer needed).
        scale_row(out, ro, a.weight.ptr<const T>(), H, inv_rms(sum_squares(ro, H), H, eps));
      }
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
