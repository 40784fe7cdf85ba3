// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status linear(ExecContext&, const linear_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: linear is not implemented yet");
}

opdev_status grouped_matmul(ExecContext&, const grouped_matmul_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: grouped_matmul is not implemented yet");
}

}  // namespace opdev::cuda
