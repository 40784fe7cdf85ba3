// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status rms_norm(ExecContext&, const rms_norm_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: rms_norm is not implemented yet");
}

opdev_status add_rms_norm(ExecContext&, const add_rms_norm_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: add_rms_norm is not implemented yet");
}

}  // namespace opdev::cuda
