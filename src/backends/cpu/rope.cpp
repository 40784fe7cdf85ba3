// cpu: rope, rope_cache (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status rope(ExecContext&, const rope_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: rope is not implemented yet"); }
opdev_status rope_cache(ExecContext&, const rope_cache_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: rope_cache is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
