// ref: reshape_and_cache (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status reshape_and_cache(ExecContext&, const reshape_and_cache_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: reshape_and_cache is not implemented yet"); }

}  // namespace opdev::ref
