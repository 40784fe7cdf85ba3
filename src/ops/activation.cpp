// Front-end of silu_and_mul: validate, then dispatch.
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_silu_and_mul(opdev_context* ctx, const DLTensor* out, const DLTensor* x) {
  return api_call("opdev_silu_and_mul", [&] {
    OpCheck c(ctx);
    silu_and_mul_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    c.rank_between(a.x, 1, OPDEV_MAX_DIMS);
    c.activation_dtype(a.x);
    c.same_dtype(a.out, a.x);
    const int64_t two_d = a.x.size(-1);
    c.expect(two_d % 2 == 0, OPDEV_STATUS_INVALID_ARGUMENT, "x: expected an even last dimension ([gate; up] of 2d values), got ", two_d,
             " (shape ", a.x.shape_str(), ")");
    c.rank(a.out, a.x.ndim);
    for (int d = 0; d < a.x.ndim - 1; ++d) c.dim(a.out, d, a.x.size(d), "the same as x");
    c.dim(a.out, -1, two_d / 2, "d, half the last dimension of x");
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.out);
    c.writable(a.out);
    c.disjoint(a.out, a.x);
    // Per output element: exp, add, divide, multiply (exp counted as one operation).
    auto cost = [&] { return OpCost{nbytes(a.x) + nbytes(a.out), 4.0 * double(a.out.numel)}; };
    return dispatch(c, a, a.x.dtype, a.out.empty(), cost, {{"out", out}, {"x", x}});
  });
}

}  // extern "C"
