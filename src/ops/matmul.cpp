// Front-ends of linear, grouped_matmul (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_linear(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* weight, const DLTensor* bias) {
  return api_call("opdev_linear", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

OPDEV_API opdev_status opdev_grouped_matmul(opdev_context* ctx, const DLTensor* out, const DLTensor* x, const DLTensor* weight, const DLTensor* expert_offsets) {
  return api_call("opdev_grouped_matmul", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
