// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status embedding(ExecContext&, const embedding_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: embedding is not implemented yet");
}

}  // namespace opdev::cuda
