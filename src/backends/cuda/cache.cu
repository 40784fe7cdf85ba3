// STUB: replaced by the family's kernels.
#include "backends/cuda/cuda_common.cuh"

namespace opdev::cuda {

opdev_status reshape_and_cache(ExecContext&, const reshape_and_cache_args&) {
  fail(OPDEV_STATUS_UNSUPPORTED, "cuda: reshape_and_cache is not implemented yet");
}

}  // namespace opdev::cuda
