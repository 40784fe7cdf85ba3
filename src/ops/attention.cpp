// Front-ends of paged_attention (not implemented yet).
#include "ops/dispatch.h"

using namespace opdev;

extern "C" {

OPDEV_API opdev_status opdev_paged_attention(opdev_context* ctx, const DLTensor* out, const DLTensor* softmax_lse, const DLTensor* q, const DLTensor* key_cache, const DLTensor* value_cache, const DLTensor* block_table, const DLTensor* cu_seqlens_q, const DLTensor* seq_lens_kv, double scale, int causal) {
  return api_call("opdev_paged_attention", [&]() -> opdev_status { fail(OPDEV_STATUS_UNSUPPORTED, "not implemented yet"); });
}

}  // extern "C"
