// Front-ends of add, cast, copy: validate, then dispatch. These take any rank <= 8 and any strides;
// inputs may broadcast with stride 0, outputs must address each element once.
#include "ops/dispatch.h"

using namespace opdev;

namespace {

// Bytes of the distinct elements a view addresses (a stride-0 dimension is read once).
double distinct_bytes(const TensorView& v) {
  double n = v.numel > 0 ? 1.0 : 0.0;
  for (int d = 0; d < v.ndim; ++d)
    if (v.strides[d] != 0) n *= double(v.shape[d]);
  return n * double(v.itemsize());
}

}  // namespace

extern "C" {

OPDEV_API opdev_status opdev_add(opdev_context* ctx, const DLTensor* out, const DLTensor* a_, const DLTensor* b_) {
  return api_call("opdev_add", [&] {
    OpCheck c(ctx);
    add_args a;
    a.out = c.tensor("out", out);
    a.a = c.tensor("a", a_);
    a.b = c.tensor("b", b_);
    c.activation_dtype(a.a);
    c.activation_dtype(a.b);
    c.activation_dtype(a.out);
    c.same_shape(a.b, a.a);
    c.same_shape(a.out, a.a);
    c.writable(a.out);
    // In place: out may be a or b exactly (then with the same dtype); nothing else may overlap.
    c.alias_or_disjoint(a.out, a.a);
    c.alias_or_disjoint(a.out, a.b);
    auto cost = [&] { return OpCost{distinct_bytes(a.a) + distinct_bytes(a.b) + nbytes(a.out), double(a.out.numel)}; };
    return dispatch(c, a, a.a.dtype, a.out.empty(), cost, {{"out", out}, {"a", a_}, {"b", b_}});
  });
}

OPDEV_API opdev_status opdev_cast(opdev_context* ctx, const DLTensor* out, const DLTensor* x) {
  return api_call("opdev_cast", [&] {
    OpCheck c(ctx);
    cast_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    c.activation_dtype(a.x);
    c.activation_dtype(a.out);
    c.same_shape(a.out, a.x);
    c.writable(a.out);
    c.disjoint(a.out, a.x);
    auto cost = [&] { return OpCost{distinct_bytes(a.x) + nbytes(a.out), 0.0}; };
    return dispatch(c, a, a.x.dtype, a.out.empty(), cost, {{"out", out}, {"x", x}});
  });
}

OPDEV_API opdev_status opdev_copy(opdev_context* ctx, const DLTensor* out, const DLTensor* x) {
  return api_call("opdev_copy", [&] {
    OpCheck c(ctx);
    copy_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    c.same_dtype(a.out, a.x);
    c.same_shape(a.out, a.x);
    c.writable(a.out);
    c.disjoint(a.out, a.x);
    auto cost = [&] { return OpCost{distinct_bytes(a.x) + nbytes(a.out), 0.0}; };
    return dispatch(c, a, a.x.dtype, a.out.empty(), cost, {{"out", out}, {"x", x}});
  });
}

}  // extern "C"
