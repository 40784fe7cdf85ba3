// ref: embedding (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status embedding(ExecContext&, const embedding_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: embedding is not implemented yet"); }

}  // namespace opdev::ref
