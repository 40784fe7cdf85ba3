// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status add(ExecContext&, const add_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: add is not implemented yet");
}

opdev_status cast(ExecContext&, const cast_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: cast is not implemented yet");
}

opdev_status copy(ExecContext&, const copy_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: copy is not implemented yet");
}

}  // namespace opdev::cuda
