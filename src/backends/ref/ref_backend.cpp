// The ref backend's table: host memory, every op in float64 loops, every activation dtype (float64 too).
#include "backends/ref/ref_common.h"

namespace opdev {
namespace {

bool ref_supports(opdev_op op, DType dtype) {
  switch (op) {
    case OPDEV_OP_ROPE_CACHE: return dtype == DType::F32;  // the cos/sin table is float32
    case OPDEV_OP_COPY: return dtype != DType::Unknown;    // copies any dtype
    default: return is_float(dtype);
  }
}

}  // namespace

const Backend& ref_backend() {
  static const Backend backend = {
      /* .name          = */ "ref",
      /* .device_type   = */ kDLCPU,
      /* .available     = */ host_available,
      /* .create_state  = */ nullptr,
      /* .destroy_state = */ nullptr,
      /* .supports      = */ ref_supports,
      /* .raw_alloc     = */ host_raw_alloc,
      /* .raw_free      = */ host_raw_free,
      /* .memcpy        = */ host_memcpy,
      /* .synchronize   = */ nullptr,
      /* .describe      = */ nullptr,
      /* .ops           = */
      BackendOps{
#define OPDEV_OP(ID, name) /* .name = */ &ref::name,
#include "opdev/ops.def"
#undef OPDEV_OP
      },
  };
  return backend;
}

}  // namespace opdev
