// ref: silu_and_mul (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status silu_and_mul(ExecContext&, const silu_and_mul_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: silu_and_mul is not implemented yet"); }

}  // namespace opdev::ref
