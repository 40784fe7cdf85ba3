// The front-end's last step: after validation, ask the backend whether it takes the dtype, then call its
// op slot with the profiler hook around it. One template serves every op; the slot comes from the op
// list (include/opdev/ops.def) through OpTraits.
#pragma once

#include <initializer_list>
#include <utility>

#include "core/check.h"
#include "core/context.h"
#include "core/error.h"
#include "ops/op_args.h"

namespace opdev {

template <class Args>
struct OpTraits;
#define OPDEV_OP(ID, NAME)                                                        \
  template <>                                                                     \
  struct OpTraits<NAME##_args> {                                                  \
    static constexpr opdev_op id = OPDEV_OP_##ID;                                 \
    static auto slot(const BackendOps& ops) { return ops.NAME; }                  \
  };
#include "opdev/ops.def"
#undef OPDEV_OP

// Minimum bytes moved and floating-point operations of one call (the op's cost formula).
struct OpCost {
  double bytes = 0, flops = 0;
};

// A named argument for the profiler hook (signature order; t may be NULL).
struct NamedTensor {
  const char* name;
  const DLTensor* t;
};

std::string supported_dtypes(const Backend& be, opdev_op op);

// How many leading tensors of the op's signature it writes (in-place arguments included).
constexpr int op_num_outputs(opdev_op op) {
  switch (op) {
    case OPDEV_OP_ADD_RMS_NORM:
    case OPDEV_OP_ROPE:
    case OPDEV_OP_MOE_GATING_TOPK:
    case OPDEV_OP_RESHAPE_AND_CACHE:
    case OPDEV_OP_PAGED_ATTENTION:
    case OPDEV_OP_QUANTIZE_INT8: return 2;
    case OPDEV_OP_MOE_PERMUTE: return 3;
    default: return 1;
  }
}

// Dispatches a validated call. `empty` short-circuits work-free calls (after the dtype check). cost_fn is
// only evaluated when a profiler is installed.
template <class Args, class CostFn>
opdev_status dispatch(const OpCheck& c, const Args& a, DType act_dtype, bool empty, CostFn&& cost_fn,
                      std::initializer_list<NamedTensor> tensors, std::initializer_list<opdev_op_scalar> scalars = {}) {
  opdev_context* ctx = const_cast<opdev_context*>(c.ctx());
  const Backend& be = *ctx->backend;
  constexpr opdev_op op = OpTraits<Args>::id;
  if (!be.supports(op, act_dtype))
    fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "backend '", be.name, "' does not implement ", opdev_op_name(op), " for dtype ",
         dtype_name(act_dtype), " (it does: ", supported_dtypes(be, op), ")");
  auto fn = OpTraits<Args>::slot(be.ops);
  if (!fn) fail(OPDEV_STATUS_UNSUPPORTED, "backend '", be.name, "' does not implement ", opdev_op_name(op));
  if (empty) return OPDEV_STATUS_SUCCESS;

  ExecContext ex{ctx, ctx->state, ctx->num_threads, ctx->deterministic};
  const uint64_t call_index = ctx->call_index++;
  opdev_op_info info{};
  const DLTensor* ts[16];
  const char* names[16];
  if (ctx->has_profiler) {
    int n = 0;
    for (const NamedTensor& nt : tensors) {
      OPDEV_ASSERT(n < 16);
      ts[n] = nt.t;
      names[n] = nt.name;
      ++n;
    }
    OpCost cost = cost_fn();
    info.struct_size = sizeof(info);
    info.op = op;
    info.backend = be.name;
    info.num_tensors = n;
    info.tensors = ts;
    info.tensor_names = names;
    info.bytes = cost.bytes;
    info.flops = cost.flops;
    info.num_outputs = op_num_outputs(op);
    info.num_scalars = int(scalars.size());
    info.scalars = scalars.size() ? scalars.begin() : nullptr;
    info.label = ctx->label.c_str();
    info.call_index = call_index;
    info.dtype = dtype_to_dl(act_dtype);
    if (ctx->profiler.op_begin) ctx->profiler.op_begin(ctx->profiler.user, &info);
  }
  opdev_status s;
  try {
    s = fn(ex, a);
  } catch (...) {
    ctx->scratch.reset();
    if (ctx->has_profiler && ctx->profiler.op_end) ctx->profiler.op_end(ctx->profiler.user, &info, OPDEV_STATUS_INTERNAL);
    throw;
  }
  ctx->scratch.reset();
  if (ctx->has_profiler && ctx->profiler.op_end) ctx->profiler.op_end(ctx->profiler.user, &info, s);
  return s;
}

// Bytes of a view's elements (for cost formulas).
inline double nbytes(const TensorView& v) { return v.present ? double(v.numel) * double(v.itemsize()) : 0.0; }

}  // namespace opdev
