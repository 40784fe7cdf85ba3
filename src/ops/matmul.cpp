// Front-ends of linear and grouped_matmul: validate, then dispatch.
#include "ops/cost_bounds.h"
#include "ops/dispatch.h"
#include "ops/expert_offsets.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_linear(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* weight,
                                    const DLTensor* bias) {
  return api_call("opdev_linear", [&] {
    OpCheck c(ctx);
    linear_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    a.weight = c.tensor("weight", weight);
    a.bias = c.optional("bias", bias);
    c.rank(a.x, 2);
    c.activation_dtype(a.x);
    c.rank(a.weight, 2);
    c.same_dtype(a.weight, a.x);
    const int64_t M = a.x.size(0), K = a.x.size(1), N = a.weight.size(0);
    c.dim(a.weight, 1, K, "in_features, the last dimension of x");
    c.rank(a.out, 2);
    c.same_dtype(a.out, a.x);
    c.shape(a.out, {M, N});
    if (a.bias.present) {
      c.rank(a.bias, 1);
      c.same_dtype(a.bias, a.x);
      c.shape(a.bias, {N});
      c.contiguous(a.bias);
    }
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.weight);
    c.inner_contiguous(a.out);
    c.writable(a.out);
    c.disjoint(a.out, a.x);
    c.disjoint(a.out, a.weight);
    if (a.bias.present) c.disjoint(a.out, a.bias);
    auto cost = [&] {
      const double mnk = double(M) * double(N) * double(K);
      return OpCost{nbytes(a.x) + nbytes(a.weight) + nbytes(a.bias) + nbytes(a.out),
                    2.0 * mnk + (a.bias.present ? double(M) * double(N) : 0.0)};
    };
    return dispatch(c, a, a.x.dtype, a.out.empty(), cost, {{"out", out}, {"x", x}, {"weight", weight}, {"bias", bias}});
  });
}

OPDEV_API opdev_status opdev_grouped_matmul(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* weight,
                                            const DLTensor* expert_offsets) {
  return api_call("opdev_grouped_matmul", [&] {
    OpCheck c(ctx);
    grouped_matmul_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    a.weight = c.tensor("weight", weight);
    a.expert_offsets = c.tensor("expert_offsets", expert_offsets);
    c.rank(a.x, 2);
    c.activation_dtype(a.x);
    c.rank(a.weight, 3);
    c.same_dtype(a.weight, a.x);
    const int64_t R = a.x.size(0), K = a.x.size(1), E = a.weight.size(0), N = a.weight.size(1);
    c.dim(a.weight, 2, K, "in_features, the last dimension of x");
    c.rank(a.out, 2);
    c.same_dtype(a.out, a.x);
    c.shape(a.out, {R, N});
    c.rank(a.expert_offsets, 1);
    c.dtype(a.expert_offsets, DType::I64);
    c.dim(a.expert_offsets, 0, E + 1, "E + 1, the experts of weight plus one");
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.weight);
    c.inner_contiguous(a.out);
    c.writable(a.out);
    c.disjoint(a.out, a.x);
    c.disjoint(a.out, a.weight);
    c.disjoint(a.out, a.expert_offsets);
    if (c.host_visible()) check_expert_offsets(a.expert_offsets, R);
    auto cost = [&] {
      // Only the weights of experts that own rows are read: counted from the offsets where they are visible
      // here, else at most min(E, R) experts (offsets on the device; cost_bounds.h).
      const double wbytes = c.host_visible() ? used_expert_weight_bytes(a.expert_offsets, N, K, a.weight.itemsize())
                                             : nbytes(a.weight) * expert_weight_share_bound(E, R);
      return OpCost{nbytes(a.x) + wbytes + nbytes(a.expert_offsets) + nbytes(a.out), 2.0 * double(R) * double(N) * double(K)};
    };
    return dispatch(c, a, a.x.dtype, a.out.empty(), cost,
                    {{"out", out}, {"x", x}, {"weight", weight}, {"expert_offsets", expert_offsets}});
  });
}

}  // extern "C"
