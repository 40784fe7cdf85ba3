// Front-ends of the int8 W8A8 ops (quantize_int8, linear_w8a8, grouped_matmul_w8a8): validate, then
// dispatch. The activation dtype is x's for quantize_int8 and out's for the matmuls.
#include "ops/cost_bounds.h"
#include "ops/dispatch.h"
#include "ops/expert_offsets.h"

using namespace opdev;

namespace {

// K of an int8 product: at most kW8A8MaxK, so that the exact int32 accumulation cannot overflow.
void check_int8_k(const TensorView& x, int64_t K) {
  OpCheck::expect(K <= kW8A8MaxK, OPDEV_STATUS_SIZE_OVERFLOW, x.name, ": K = ", K, " is larger than ", kW8A8MaxK,
                  ", the largest K whose int32 sum of int8 products cannot overflow (shape ", x.shape_str(), ")");
}

}  // namespace

extern "C" {

OPDEV_API opdev_status opdev_quantize_int8(opdev_context* ctx, const DLTensor* out, const DLTensor* scale, const DLTensor* x) {
  return api_call("opdev_quantize_int8", [&] {
    OpCheck c(ctx);
    quantize_int8_args a;
    a.out = c.tensor("out", out);
    a.scale = c.tensor("scale", scale);
    a.x = c.tensor("x", x);
    c.rank(a.x, 2);
    c.activation_dtype(a.x);
    const int64_t M = a.x.size(0), K = a.x.size(1);
    c.rank(a.out, 2);
    c.dtype(a.out, DType::I8);
    c.shape(a.out, {M, K});
    c.rank(a.scale, 1);
    c.dtype(a.scale, DType::F32);
    c.shape(a.scale, {M});
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.out);
    c.contiguous(a.scale);
    c.writable(a.out);
    c.disjoint(a.out, a.x);
    c.disjoint(a.scale, a.x);
    c.disjoint(a.out, a.scale);
    // Per element: |x| into the row maximum, x * inv, round and clamp.
    auto cost = [&] { return OpCost{nbytes(a.x) + nbytes(a.out) + nbytes(a.scale), 2.0 * double(a.x.numel)}; };
    return dispatch(c, a, a.x.dtype, a.scale.empty(), cost, {{"out", out}, {"scale", scale}, {"x", x}});
  });
}

OPDEV_API opdev_status opdev_linear_w8a8(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* x_scale,
                                         const DLTensor* weight, const DLTensor* weight_scale, const DLTensor* bias) {
  return api_call("opdev_linear_w8a8", [&] {
    OpCheck c(ctx);
    linear_w8a8_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    a.x_scale = c.tensor("x_scale", x_scale);
    a.weight = c.tensor("weight", weight);
    a.weight_scale = c.tensor("weight_scale", weight_scale);
    a.bias = c.optional("bias", bias);
    c.rank(a.out, 2);
    c.activation_dtype(a.out);
    c.rank(a.x, 2);
    c.dtype(a.x, DType::I8);
    c.rank(a.weight, 2);
    c.dtype(a.weight, DType::I8);
    const int64_t M = a.x.size(0), K = a.x.size(1), N = a.weight.size(0);
    c.dim(a.weight, 1, K, "in_features, the last dimension of x");
    check_int8_k(a.x, K);
    c.shape(a.out, {M, N});
    c.rank(a.x_scale, 1);
    c.dtype(a.x_scale, DType::F32);
    c.shape(a.x_scale, {M});
    c.rank(a.weight_scale, 1);
    c.dtype(a.weight_scale, DType::F32);
    c.shape(a.weight_scale, {N});
    if (a.bias.present) {
      c.rank(a.bias, 1);
      c.same_dtype(a.bias, a.out);
      c.shape(a.bias, {N});
      c.contiguous(a.bias);
    }
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.weight);
    c.inner_contiguous(a.out);
    c.contiguous(a.x_scale);
    c.contiguous(a.weight_scale);
    c.writable(a.out);
    for (const TensorView* in : {&a.x, &a.x_scale, &a.weight, &a.weight_scale, &a.bias})
      if (in->present) c.disjoint(a.out, *in);
    auto cost = [&] {
      const double mn = double(M) * double(N);
      return OpCost{nbytes(a.x) + nbytes(a.x_scale) + nbytes(a.weight) + nbytes(a.weight_scale) + nbytes(a.bias) + nbytes(a.out),
                    2.0 * mn * double(K) + 2.0 * mn + (a.bias.present ? mn : 0.0)};
    };
    return dispatch(c, a, a.out.dtype, a.out.empty(), cost,
                    {{"out", out}, {"x", x}, {"x_scale", x_scale}, {"weight", weight}, {"weight_scale", weight_scale}, {"bias", bias}});
  });
}

OPDEV_API opdev_status opdev_grouped_matmul_w8a8(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* x_scale,
                                                 const DLTensor* weight, const DLTensor* weight_scale, const DLTensor* expert_offsets) {
  return api_call("opdev_grouped_matmul_w8a8", [&] {
    OpCheck c(ctx);
    grouped_matmul_w8a8_args a;
    a.out = c.tensor("out", out);
    a.x = c.tensor("x", x);
    a.x_scale = c.tensor("x_scale", x_scale);
    a.weight = c.tensor("weight", weight);
    a.weight_scale = c.tensor("weight_scale", weight_scale);
    a.expert_offsets = c.tensor("expert_offsets", expert_offsets);
    c.rank(a.out, 2);
    c.activation_dtype(a.out);
    c.rank(a.x, 2);
    c.dtype(a.x, DType::I8);
    c.rank(a.weight, 3);
    c.dtype(a.weight, DType::I8);
    const int64_t R = a.x.size(0), K = a.x.size(1), E = a.weight.size(0), N = a.weight.size(1);
    c.dim(a.weight, 2, K, "in_features, the last dimension of x");
    check_int8_k(a.x, K);
    c.shape(a.out, {R, N});
    c.rank(a.x_scale, 1);
    c.dtype(a.x_scale, DType::F32);
    c.shape(a.x_scale, {R});
    c.rank(a.weight_scale, 2);
    c.dtype(a.weight_scale, DType::F32);
    c.shape(a.weight_scale, {E, N});
    c.rank(a.expert_offsets, 1);
    c.dtype(a.expert_offsets, DType::I64);
    c.dim(a.expert_offsets, 0, E + 1, "E + 1, the experts of weight plus one");
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.weight);
    c.inner_contiguous(a.out);
    c.contiguous(a.x_scale);
    c.contiguous(a.weight_scale);
    c.writable(a.out);
    for (const TensorView* in : {&a.x, &a.x_scale, &a.weight, &a.weight_scale, &a.expert_offsets}) c.disjoint(a.out, *in);
    if (c.host_visible()) check_expert_offsets(a.expert_offsets, R);
    auto cost = [&] {
      // Only the weights (and scales) of experts that own rows are read: counted from the offsets where they
      // are visible here, else at most min(E, R) experts (cost_bounds.h).
      const double wbytes = c.host_visible()
                                ? used_expert_weight_bytes(a.expert_offsets, N, K, 1) + used_expert_weight_bytes(a.expert_offsets, N, 1, 4)
                                : (nbytes(a.weight) + nbytes(a.weight_scale)) * expert_weight_share_bound(E, R);
      const double rn = double(R) * double(N);
      return OpCost{nbytes(a.x) + nbytes(a.x_scale) + wbytes + nbytes(a.expert_offsets) + nbytes(a.out), 2.0 * rn * double(K) + 2.0 * rn};
    };
    return dispatch(c, a, a.out.dtype, a.out.empty(), cost,
                    {{"out", out},
                     {"x", x},
                     {"x_scale", x_scale},
                     {"weight", weight},
                     {"weight_scale", weight_scale},
                     {"expert_offsets", expert_offsets}});
  });
}

}  // extern "C"
