// Front-ends of linear and grouped_matmul: validate, then dispatch.
#include "ops/dispatch.h"

using namespace opdev;

namespace {

// Host check of grouped_matmul's expert_offsets [E+1]: every value in [0, R] (OUT_OF_RANGE), then the
// structure 0 = o[0] <= o[1] <= ... <= o[E] = R (INVALID_ARGUMENT: the values are rows of x, but a wrong
// end or a decrease is a malformed partition, not an out-of-range index).
void check_expert_offsets(const TensorView& o, int64_t R) {
  OpCheck::index_range(o, 0, R + 1, "the rows R of x, inclusive");
  const int64_t E = o.numel - 1;
  const int64_t first = read_index(o, 0), last = read_index(o, E);
  OpCheck::expect(first == 0, OPDEV_STATUS_INVALID_ARGUMENT, o.name, "[0] = ", first,
                  ", expected 0 (offsets must start at 0; invalid partition of the rows)");
  for (int64_t e = 1; e <= E; ++e) {
    const int64_t prev = read_index(o, e - 1), cur = read_index(o, e);
    OpCheck::expect(cur >= prev, OPDEV_STATUS_INVALID_ARGUMENT, o.name, "[", e, "] = ", cur, " is less than ", o.name, "[", e - 1,
                    "] = ", prev, " (offsets must be non-decreasing; invalid partition of the rows)");
  }
  OpCheck::expect(last == R, OPDEV_STATUS_INVALID_ARGUMENT, o.name, "[", E, "] = ", last, ", expected R = ", R,
                  " (the rows of x; offsets must end at R; invalid partition of the rows)");
}

}  // namespace

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
      // Only the weights of experts that own rows are read (when the offsets are visible here).
      double wbytes = nbytes(a.weight);
      if (c.host_visible()) {
        int64_t used = 0;
        for (int64_t e = 0; e < E; ++e) used += read_index(a.expert_offsets, e + 1) > read_index(a.expert_offsets, e);
        wbytes = double(used) * double(N) * double(K) * double(a.weight.itemsize());
      }
      return OpCost{nbytes(a.x) + wbytes + nbytes(a.expert_offsets) + nbytes(a.out), 2.0 * double(R) * double(N) * double(K)};
    };
    return dispatch(c, a, a.x.dtype, a.out.empty(), cost,
                    {{"out", out}, {"x", x}, {"weight", weight}, {"expert_offsets", expert_offsets}});
  });
}

}  // extern "C"
