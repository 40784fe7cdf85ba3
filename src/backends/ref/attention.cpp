// ref: paged_attention (not implemented yet).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status paged_attention(ExecContext&, const paged_attention_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "ref: paged_attention is not implemented yet"); }

}  // namespace opdev::ref
