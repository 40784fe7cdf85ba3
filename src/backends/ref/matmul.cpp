// ref: linear, grouped_matmul (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status linear(ExecContext&, const linear_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: linear is not implemented yet"); }
opdev_status grouped_matmul(ExecContext&, const grouped_matmul_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: grouped_matmul is not implemented yet"); }

}  // namespace opdev::ref
