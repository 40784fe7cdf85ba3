// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status sample(ExecContext&, const sample_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: sample is not implemented yet");
}

}  // namespace opdev::cuda
