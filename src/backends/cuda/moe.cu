// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status moe_gating_topk(ExecContext&, const moe_gating_topk_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: moe_gating_topk is not implemented yet");
}

opdev_status moe_permute(ExecContext&, const moe_permute_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: moe_permute is not implemented yet");
}

opdev_status moe_unpermute(ExecContext&, const moe_unpermute_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: moe_unpermute is not implemented yet");
}

}  // namespace opdev::cuda
