// ref: rope, rope_cache (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status rope(ExecContext&, const rope_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: rope is not implemented yet"); }
opdev_status rope_cache(ExecContext&, const rope_cache_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: rope_cache is not implemented yet"); }

}  // namespace opdev::ref
