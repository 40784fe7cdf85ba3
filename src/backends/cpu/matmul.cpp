// cpu: linear, grouped_matmul (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status linear(ExecContext&, const linear_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: linear is not implemented yet"); }
opdev_status grouped_matmul(ExecContext&, const grouped_matmul_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: grouped_matmul is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
