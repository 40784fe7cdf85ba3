// cpu: silu_and_mul. One pass over each row: gate and up from the two halves of x, silu in float32 (vexp),
// rounded to the storage dtype before the multiply (the contract's HF/vLLM order). Rows split across
// threads.
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

// silu(g) = g / (1 + exp(-g)). Below -88 exp(-g) overflows; the limit there is 0 (and at g = -inf the
// formula would give -inf / inf = NaN). NaN fails the comparison and propagates.
inline vf vsilu(vf g) {
  const vf s = g / (vset(1.0f) + vexp(vzero() - g));
  return vselect_lt(g, vset(-88.0f), vzero(), s);
}

// out[i] = round_T(round_T(silu(gate[i])) * up[i])
template <class T>
void silu_mul_row(T* out, const T* gate, const T* up, int64_t d) {
  int64_t i = 0;
  for (; i + kW <= d; i += kW) vstore(out + i, vround_to<T>(vsilu(vload(gate + i))) * vload(up + i));
  if (i < d) {
    const int n = int(d - i);
    vstore_n(out + i, vround_to<T>(vsilu(vload_n(gate + i, n))) * vload_n(up + i, n), n);
  }
}

}  // namespace

opdev_status silu_and_mul(ExecContext& ex, const silu_and_mul_args& a) {
  const int64_t d = a.out.size(-1);
  const RowIndexer xr(a.x, 1), outr(a.out, 1);
  dispatch_float(a.x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.x.ptr<const T>();
    T* out = a.out.ptr<T>();
    parallel_for(ex, xr.rows, 1 + 16384 / d, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xrow = x + xr.offset(r);
        silu_mul_row(out + outr.offset(r), xrow, xrow + d, d);
      }
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
