// cpu: embedding (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status embedding(ExecContext&, const embedding_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: embedding is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
