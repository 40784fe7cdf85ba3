// ref: add, cast, copy (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status add(ExecContext&, const add_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: add is not implemented yet"); }
opdev_status cast(ExecContext&, const cast_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: cast is not implemented yet"); }
opdev_status copy(ExecContext&, const copy_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: copy is not implemented yet"); }

}  // namespace opdev::ref
