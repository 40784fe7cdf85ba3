// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status silu_and_mul(ExecContext&, const silu_and_mul_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: silu_and_mul is not implemented yet");
}

}  // namespace opdev::cuda
