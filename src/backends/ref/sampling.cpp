// ref: sample (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status sample(ExecContext&, const sample_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: sample is not implemented yet"); }

}  // namespace opdev::ref
