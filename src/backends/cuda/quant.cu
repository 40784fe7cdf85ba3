// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status quantize_int8(ExecContext&, const quantize_int8_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: quantize_int8 is not implemented yet");
}

opdev_status linear_w8a8(ExecContext&, const linear_w8a8_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: linear_w8a8 is not implemented yet");
}

opdev_status grouped_matmul_w8a8(ExecContext&, const grouped_matmul_w8a8_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: grouped_matmul_w8a8 is not implemented yet");
}

}  // namespace opdev::cuda
