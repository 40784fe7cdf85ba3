// cpu: add, cast, copy (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status add(ExecContext&, const add_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: add is not implemented yet"); }
opdev_status cast(ExecContext&, const cast_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: cast is not implemented yet"); }
opdev_status copy(ExecContext&, const copy_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: copy is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
