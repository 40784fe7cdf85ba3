// Front-ends of reshape_and_cache (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_reshape_and_cache(opdev_context* ctx, const DLTensor* key_cache, const DLTensor* value_cache, const DLTensor* key, const DLTensor* value, const DLTensor* slot_mapping) {
  return api_call("opdev_reshape_and_cache", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
