// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status rope(ExecContext&, const rope_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: rope is not implemented yet");
}

opdev_status rope_cache(ExecContext&, const rope_cache_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: rope_cache is not implemented yet");
}

}  // namespace opdev::cuda
