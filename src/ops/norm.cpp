// Front-ends of rms_norm and add_rms_norm: validate, then dispatch.
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_rms_norm(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* weight,
                                      double eps) {
  return api_call("opdev_rms_norm", [&] {
    OpCheck c(ctx);
    rms_norm_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    a.weight = c.tensor("weight", weight);
    c.rank_between(a.x, 1, OPDEV_MAX_DIMS);
    c.activation_dtype(a.x);
    c.same_shape(a.out, a.x);
    c.same_dtype(a.out, a.x);
    c.shape(a.weight, {a.x.size(-1)});
    c.same_dtype(a.weight, a.x);
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.out);
    c.contiguous(a.weight);
    c.writable(a.out);
    c.alias_or_disjoint(a.out, a.x);
    c.disjoint(a.out, a.weight);
    c.finite_positive("eps", eps);
    a.eps = eps;
    auto cost = [&] { return OpCost{nbytes(a.x) + nbytes(a.out) + nbytes(a.weight), 4.0 * double(a.x.numel)}; };
    return dispatch(c, a, a.x.dtype, a.x.empty(), cost, {{"out", out}, {"x", x}, {"weight", weight}}, {{"eps", eps}});
  });
}

OPDEV_API opdev_status opdev_add_rms_norm(opdev_context* ctx, const DLTensor* out, const DLTensor* residual_out, const DLTensor* x,
                                          const DLTensor* residual, const DLTensor* weight, double eps) {
  return api_call("opdev_add_rms_norm", [&] {
    OpCheck c(ctx);
    add_rms_norm_args a;
    a.out = c.tensor("out", out);
    a.residual_out = c.tensor("residual_out", residual_out);
    a.x = c.tensor("x", x);
    a.residual = c.tensor("residual", residual);
    a.weight = c.tensor("weight", weight);
    c.rank(a.x, 2);
    c.activation_dtype(a.x);
    for (const TensorView* v : {&a.out, &a.residual_out, &a.residual}) {
      c.same_shape(*v, a.x);
      c.same_dtype(*v, a.x);
    }
    c.shape(a.weight, {a.x.size(1)});
    c.same_dtype(a.weight, a.x);
    for (const TensorView* v : {&a.out, &a.residual_out, &a.x, &a.residual}) c.inner_contiguous(*v);
    c.contiguous(a.weight);
    c.writable(a.out);
    c.writable(a.residual_out);
    // out may be x; residual_out may be residual; nothing else may overlap.
    c.alias_or_disjoint(a.out, a.x);
    c.disjoint(a.out, a.residual);
    c.disjoint(a.out, a.weight);
    c.disjoint(a.out, a.residual_out);
    c.alias_or_disjoint(a.residual_out, a.residual);
    c.disjoint(a.residual_out, a.x);
    c.disjoint(a.residual_out, a.weight);
    c.finite_positive("eps", eps);
    a.eps = eps;
    auto cost = [&] {
      return OpCost{nbytes(a.x) + nbytes(a.residual) + nbytes(a.out) + nbytes(a.residual_out) + nbytes(a.weight), 5.0 * double(a.x.numel)};
    };
    return dispatch(c, a, a.x.dtype, a.x.empty(), cost,
                    {{"out", out}, {"residual_out", residual_out}, {"x", x}, {"residual", residual}, {"weight", weight}}, {{"eps", eps}});
  });
}

}  // extern "C"
