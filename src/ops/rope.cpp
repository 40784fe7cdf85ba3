// Front-ends of rope, rope_cache (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_rope(opdev_context* ctx, const DLTensor* q, const DLTensor* k, const DLTensor* positions, const DLTensor* cos_sin_cache, int is_neox) {
  return api_call("opdev_rope", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

OPDEV_API opdev_status opdev_rope_cache(opdev_context* ctx, const DLTensor* cos_sin_cache, double theta, const opdev_rope_scaling* scaling) {
  return api_call("opdev_rope_cache", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
