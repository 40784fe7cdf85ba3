// Front-ends of embedding (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_embedding(opdev_context* ctx, const DLTensor* out, const DLTensor* table, const DLTensor* ids) {
  return api_call("opdev_embedding", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
