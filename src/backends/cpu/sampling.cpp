// cpu: sample (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status sample(ExecContext&, const sample_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: sample is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
