// Front-ends of sample (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_sample(opdev_context* ctx, const DLTensor* ids_out, const DLTensor* logits, const DLTensor* temperature, const DLTensor* top_k, const DLTensor* top_p, const DLTensor* seeds, const DLTensor* steps) {
  return api_call("opdev_sample", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
