// Front-ends of moe_gating_topk, moe_permute, moe_unpermute: validate, then dispatch.
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/dispatch.h"

using namespace opdev;

namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// sorted_rows and topk_ids hold flat indices t*k + j and expert ids as int32.
void rows_fit_int32(const TensorView& v, int64_t rows) {
  if (rows > kInt32Max)
    fail(OPDEV_STATUS_SIZE_OVERFLOW, v.name, ": T*k = ", rows, " rows do not fit the int32 row indices (at most ", kInt32Max, ")");
}

// sorted_rows [R] must be a permutation of 0..R-1: every value in range (OUT_OF_RANGE) and none twice.
void check_permutation(OpCheck& c, const TensorView& rows, int64_t R) {
  const std::string what = cat("the row count T*k = ", R);
  c.index_range(rows, 0, R, what.c_str());
  std::vector<bool> seen(static_cast<size_t>(R), false);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t v = read_index(rows, r);
    if (seen[size_t(v)]) {
      int64_t first = 0;
      while (read_index(rows, first) != v) ++first;
      fail(OPDEV_STATUS_INVALID_ARGUMENT, "sorted_rows is not a permutation of 0..", R - 1, ": ", v, " appears twice (sorted_rows[", first,
           "] and sorted_rows[", r, "])");
    }
    seen[size_t(v)] = true;
  }
}

}  // namespace

extern "C" {

OPDEV_API opdev_status opdev_moe_gating_topk(opdev_context* ctx, const DLTensor* topk_weights, const DLTensor* topk_ids,
                                             const DLTensor* logits, const DLTensor* correction_bias, opdev_moe_scoring scoring,
                                             int renormalize, int n_group, int topk_group, double routed_scaling_factor) {
  return api_call("opdev_moe_gating_topk", [&] {
    OpCheck c(ctx);
    moe_gating_topk_args a;
    a.topk_weights = c.tensor("topk_weights", topk_weights);
    a.topk_ids = c.tensor("topk_ids", topk_ids);
    a.logits = c.tensor("logits", logits);
    a.correction_bias = c.optional("correction_bias", correction_bias);
    c.rank(a.logits, 2);
    c.activation_dtype(a.logits);
    const int64_t T = a.logits.size(0), E = a.logits.size(1);
    c.rank(a.topk_ids, 2);
    c.dtype(a.topk_ids, DType::I32);
    c.dim(a.topk_ids, 0, T, "T, the tokens of logits");
    const int64_t k = a.topk_ids.size(1);
    c.shape(a.topk_weights, {T, k});
    c.dtype(a.topk_weights, DType::F32);
    c.expect(E <= kInt32Max, OPDEV_STATUS_SIZE_OVERFLOW, "logits: E = ", E, " experts do not fit the int32 topk_ids");
    c.expect(k >= 1 && k <= E, OPDEV_STATUS_INVALID_ARGUMENT, "topk_ids: expected dimension 1 (k, experts per token) in [1, E = ", E,
             "], got ", k, " (shape ", a.topk_ids.shape_str(), ")");
    if (a.correction_bias.present) {
      c.shape(a.correction_bias, {E});
      c.dtype(a.correction_bias, DType::F32);
      c.contiguous(a.correction_bias);
    }
    c.inner_contiguous(a.logits);
    c.inner_contiguous(a.topk_ids);
    c.inner_contiguous(a.topk_weights);
    c.writable(a.topk_weights);
    c.writable(a.topk_ids);
    c.disjoint(a.topk_weights, a.topk_ids);
    for (const TensorView* out : {&a.topk_weights, &a.topk_ids}) {
      c.disjoint(*out, a.logits);
      c.disjoint(*out, a.correction_bias);
    }
    // A C caller may pass any int; read the bits as an integer (a C++ load of an out-of-range enum is UB).
    std::underlying_type_t<opdev_moe_scoring> raw_scoring;
    std::memcpy(&raw_scoring, &scoring, sizeof raw_scoring);
    c.expect(raw_scoring == OPDEV_MOE_SCORING_SOFTMAX || raw_scoring == OPDEV_MOE_SCORING_SIGMOID, OPDEV_STATUS_INVALID_ARGUMENT,
             "scoring: expected OPDEV_MOE_SCORING_SOFTMAX (0) or OPDEV_MOE_SCORING_SIGMOID (1), got ", int64_t(raw_scoring));
    c.expect(n_group >= 1 && E % n_group == 0, OPDEV_STATUS_INVALID_ARGUMENT, "n_group: expected a value >= 1 that divides E = ", E,
             ", got ", n_group);
    c.expect(topk_group >= 1 && topk_group <= n_group, OPDEV_STATUS_INVALID_ARGUMENT, "topk_group: expected a value in [1, n_group = ",
             n_group, "], got ", topk_group);
    const int64_t eligible = int64_t(topk_group) * (E / n_group);
    c.expect(k <= eligible, OPDEV_STATUS_INVALID_ARGUMENT, "topk_ids: k = ", k, " exceeds the ", eligible,
             " experts of the topk_group best groups (topk_group * E / n_group = ", topk_group, " * ", E, " / ", n_group, ")");
    c.finite_positive("routed_scaling_factor", routed_scaling_factor);
    a.scoring = scoring;
    a.renormalize = renormalize != 0;
    a.n_group = n_group;
    a.topk_group = topk_group;
    a.routed_scaling_factor = routed_scaling_factor;
    auto cost = [&] {
      // exp/sigmoid, normalisation and the selection compares: about 8 flops per score.
      return OpCost{nbytes(a.logits) + nbytes(a.correction_bias) + nbytes(a.topk_weights) + nbytes(a.topk_ids),
                    8.0 * double(a.logits.numel)};
    };
    return dispatch(c, a, a.logits.dtype, T == 0, cost,
                    {{"topk_weights", topk_weights}, {"topk_ids", topk_ids}, {"logits", logits}, {"correction_bias", correction_bias}},
                    {{"scoring", double(scoring)}, {"renormalize", double(renormalize)}, {"n_group", double(n_group)},
                     {"topk_group", double(topk_group)}, {"routed_scaling_factor", routed_scaling_factor}});
  });
}

OPDEV_API opdev_status opdev_moe_permute(opdev_context* ctx, const DLTensor* permuted_x, const DLTensor* expert_offsets,
                                         const DLTensor* sorted_rows, const DLTensor* x, const DLTensor* topk_ids) {
  return api_call("opdev_moe_permute", [&] {
    OpCheck c(ctx);
    moe_permute_args a;
    a.permuted_x = c.tensor("permuted_x", permuted_x);
    a.expert_offsets = c.tensor("expert_offsets", expert_offsets);
    a.sorted_rows = c.tensor("sorted_rows", sorted_rows);
    a.x = c.tensor("x", x);
    a.topk_ids = c.tensor("topk_ids", topk_ids);
    c.rank(a.x, 2);
    c.activation_dtype(a.x);
    const int64_t T = a.x.size(0), H = a.x.size(1);
    c.rank(a.topk_ids, 2);
    c.index_dtype(a.topk_ids);
    c.dim(a.topk_ids, 0, T, "T, the tokens of x");
    const int64_t R = a.topk_ids.numel;  // T*k, known not to overflow
    c.rank(a.expert_offsets, 1);
    c.dtype(a.expert_offsets, DType::I64);
    const int64_t E = a.expert_offsets.size(0) - 1;
    c.expect(E >= 1, OPDEV_STATUS_INVALID_ARGUMENT, "expert_offsets: expected shape [E+1] with E >= 1 experts, got ",
             a.expert_offsets.shape_str());
    c.shape(a.sorted_rows, {R});
    c.dtype(a.sorted_rows, DType::I32);
    rows_fit_int32(a.sorted_rows, R);
    c.shape(a.permuted_x, {R, H});
    c.same_dtype(a.permuted_x, a.x);
    c.inner_contiguous(a.x);
    c.inner_contiguous(a.topk_ids);
    c.inner_contiguous(a.permuted_x);
    c.contiguous(a.expert_offsets);
    c.contiguous(a.sorted_rows);
    for (const TensorView* out : {&a.permuted_x, &a.expert_offsets, &a.sorted_rows}) {
      c.writable(*out);
      c.disjoint(*out, a.x);
      c.disjoint(*out, a.topk_ids);
    }
    c.disjoint(a.permuted_x, a.expert_offsets);
    c.disjoint(a.permuted_x, a.sorted_rows);
    c.disjoint(a.expert_offsets, a.sorted_rows);
    if (c.host_visible()) {
      const std::string what = cat("the number of experts E = expert_offsets.shape[0] - 1 = ", E);
      c.index_range(a.topk_ids, 0, E, what.c_str());
    }
    auto cost = [&] {
      return OpCost{nbytes(a.x) + nbytes(a.topk_ids) + nbytes(a.permuted_x) + nbytes(a.expert_offsets) + nbytes(a.sorted_rows), 0.0};
    };
    // Never empty: expert_offsets (E+1 >= 2 values) is written even when T*k = 0.
    return dispatch(c, a, a.x.dtype, false, cost,
                    {{"permuted_x", permuted_x}, {"expert_offsets", expert_offsets}, {"sorted_rows", sorted_rows}, {"x", x}, {"topk_ids", topk_ids}});
  });
}

OPDEV_API opdev_status opdev_moe_unpermute(opdev_context* ctx, const DLTensor* out, const DLTensor* permuted_y,
                                           const DLTensor* topk_weights, const DLTensor* sorted_rows) {
  return api_call("opdev_moe_unpermute", [&] {
    OpCheck c(ctx);
    moe_unpermute_args a;
    a.out = c.tensor("out", out);
    a.permuted_y = c.tensor("permuted_y", permuted_y);
    a.topk_weights = c.tensor("topk_weights", topk_weights);
    a.sorted_rows = c.tensor("sorted_rows", sorted_rows);
    c.rank(a.out, 2);
    c.activation_dtype(a.out);
    const int64_t T = a.out.size(0), H = a.out.size(1);
    c.rank(a.topk_weights, 2);
    c.dtype(a.topk_weights, DType::F32);
    c.dim(a.topk_weights, 0, T, "T, the tokens of out");
    const int64_t R = a.topk_weights.numel;  // T*k
    c.shape(a.permuted_y, {R, H});
    c.same_dtype(a.permuted_y, a.out);
    c.shape(a.sorted_rows, {R});
    c.dtype(a.sorted_rows, DType::I32);
    rows_fit_int32(a.sorted_rows, R);
    c.inner_contiguous(a.out);
    c.inner_contiguous(a.permuted_y);
    c.inner_contiguous(a.topk_weights);
    c.contiguous(a.sorted_rows);
    c.writable(a.out);
    c.disjoint(a.out, a.permuted_y);
    c.disjoint(a.out, a.topk_weights);
    c.disjoint(a.out, a.sorted_rows);
    if (c.host_visible()) check_permutation(c, a.sorted_rows, R);
    auto cost = [&] {
      return OpCost{nbytes(a.permuted_y) + nbytes(a.topk_weights) + nbytes(a.sorted_rows) + nbytes(a.out), 2.0 * double(R) * double(H)};
    };
    return dispatch(c, a, a.out.dtype, a.out.empty(), cost,
                    {{"out", out}, {"permuted_y", permuted_y}, {"topk_weights", topk_weights}, {"sorted_rows", sorted_rows}});
  });
}

}  // extern "C"
