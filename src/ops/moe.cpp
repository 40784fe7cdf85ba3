// Front-ends of moe_gating_topk, moe_permute, moe_unpermute (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_moe_gating_topk(opdev_context* ctx, const DLTensor* topk_weights, const DLTensor* topk_ids, const DLTensor* logits, const DLTensor* correction_bias, opdev_moe_scoring scoring, int renormalize, int n_group, int topk_group, double routed_scaling_factor) {
  return api_call("opdev_moe_gating_topk", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

OPDEV_API opdev_status opdev_moe_permute(opdev_context* ctx, const DLTensor* permuted_x, const DLTensor* expert_offsets, const DLTensor* sorted_rows, const DLTensor* x, const DLTensor* topk_ids) {
  return api_call("opdev_moe_permute", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

OPDEV_API opdev_status opdev_moe_unpermute(opdev_context* ctx, const DLTensor* out, const DLTensor* permuted_y, const DLTensor* topk_weights, const DLTensor* sorted_rows) {
  return api_call("opdev_moe_unpermute", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
