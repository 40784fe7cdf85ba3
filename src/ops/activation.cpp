// Front-ends of silu_and_mul (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_silu_and_mul(opdev_context* ctx, const DLTensor* out, const DLTensor* x) {
  return api_call("opdev_silu_and_mul", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
