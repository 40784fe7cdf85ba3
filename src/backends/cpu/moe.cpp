// cpu: moe_gating_topk, moe_permute, moe_unpermute (not implemented yet).
#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

opdev_status moe_gating_topk(ExecContext&, const moe_gating_topk_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: moe_gating_topk is not implemented yet"); }
opdev_status moe_permute(ExecContext&, const moe_permute_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: moe_permute is not implemented yet"); }
opdev_status moe_unpermute(ExecContext&, const moe_unpermute_args&) { fail(OPDEV_STATUS_UNSUPPORTED, "cpu: moe_unpermute is not implemented yet"); }

OPDEV_CPU_NAMESPACE_END
