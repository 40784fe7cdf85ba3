// cpu: silu_and_mul (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status silu_and_mul(ExecContext&, const silu_and_mul_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: silu_and_mul is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
