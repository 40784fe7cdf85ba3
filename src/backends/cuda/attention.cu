// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status paged_attention(ExecContext&, const paged_attention_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: paged_attention is not implemented yet");
}

}  // namespace opdev::cuda
