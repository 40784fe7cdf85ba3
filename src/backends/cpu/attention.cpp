// cpu: paged_attention (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status paged_attention(ExecContext&, const paged_attention_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: paged_attention is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
