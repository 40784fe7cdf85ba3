// cpu: reshape_and_cache (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status reshape_and_cache(ExecContext&, const reshape_and_cache_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: reshape_and_cache is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
