// Front-ends of add, cast, copy (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_add(opdev_context* ctx, const DLTensor* out, const DLTensor* a, const DLTensor* b) {
  return api_call("opdev_add", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

OPDEV_API opdev_status opdev_cast(opdev_context* ctx, const DLTensor* out, const DLTensor* x) {
  return api_call("opdev_cast", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

OPDEV_API opdev_status opdev_copy(opdev_context* ctx, const DLTensor* out, const DLTensor* x) {
  return api_call("opdev_copy", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
