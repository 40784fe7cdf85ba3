#include "core/check.h"

#include "core/context.h"

namespace opdev {

OpCheck::OpCheck(const opdev_context* ctx) : ctx_(ctx) {
  if (!ctx) fail(OPDEV_STATUS_INVALID_ARGUMENT, "ctx: expected a context, got NULL");
  device_ = ctx->device;
  set_error_context(ctx->label.c_str());
  host_visible_ = device_.device_type == kDLCPU;
}

void OpCheck::rank(const TensorView& v, int r) {
  if (v.ndim != r) fail(OPDEV_STATUS_INVALID_ARGUMENT, v.name, ": expected rank ", r, ", got rank ", v.ndim, " (shape ", v.shape_str(), ")");
}

void OpCheck::rank_between(const TensorView& v, int lo, int hi) {
  if (v.ndim < lo || v.ndim > hi)
    fail(OPDEV_STATUS_INVALID_ARGUMENT, v.name, ": expected rank in [", lo, ", ", hi, "], got rank ", v.ndim, " (shape ", v.shape_str(), ")");
}

void OpCheck::dim(const TensorView& v, int d, int64_t expected, const char* what) {
  int dd = d < 0 ? d + v.ndim : d;
  if (v.shape[dd] != expected)
    fail(OPDEV_STATUS_INVALID_ARGUMENT, v.name, ": expected dimension ", dd, " (", what, ") to be ", expected, ", got ", v.shape[dd],
         " (shape ", v.shape_str(), ")");
}

static std::string shape_list(std::initializer_list<int64_t> s) {
  std::string r = "[";
  bool first = true;
  for (int64_t x : s) {
    r += cat(first ? "" : ", ", x);
    first = false;
  }
  return r + "]";
}

void OpCheck::shape(const TensorView& v, std::initializer_list<int64_t> expected) {
  bool ok = v.ndim == int(expected.size());
  int d = 0;
  for (int64_t x : expected) {
    if (!ok) break;
    ok = v.shape[d++] == x;
  }
  if (!ok) fail(OPDEV_STATUS_INVALID_ARGUMENT, v.name, ": expected shape ", shape_list(expected), ", got ", v.shape_str());
}

void OpCheck::same_shape(const TensorView& v, const TensorView& like) {
  bool ok = v.ndim == like.ndim;
  for (int d = 0; ok && d < v.ndim; ++d) ok = v.shape[d] == like.shape[d];
  if (!ok) fail(OPDEV_STATUS_INVALID_ARGUMENT, v.name, ": expected shape ", like.shape_str(), " (the shape of ", like.name, "), got ", v.shape_str());
}

void OpCheck::dtype(const TensorView& v, DType expected) {
  if (v.dtype != expected) fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, v.name, ": expected dtype ", dtype_name(expected), ", got ", dtype_name(v.dtype));
}

void OpCheck::dtype_in(const TensorView& v, std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (v.dtype == d) return;
  std::string list;
  for (DType d : allowed) list += cat(list.empty() ? "" : " | ", dtype_name(d));
  fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, v.name, ": expected dtype ", list, ", got ", dtype_name(v.dtype));
}

void OpCheck::activation_dtype(const TensorView& v) { dtype_in(v, {DType::F32, DType::BF16, DType::F16, DType::F64}); }
void OpCheck::index_dtype(const TensorView& v) { dtype_in(v, {DType::I32, DType::I64}); }

void OpCheck::same_dtype(const TensorView& v, const TensorView& like) {
  if (v.dtype != like.dtype)
    fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, v.name, ": expected dtype ", dtype_name(like.dtype), " (the dtype of ", like.name, "), got ",
         dtype_name(v.dtype));
}

void OpCheck::inner_contiguous(const TensorView& v) {
  if (!v.inner_contiguous())
    fail(OPDEV_STATUS_INVALID_ARGUMENT, v.name, ": expected the last dimension to be contiguous (stride 1), got stride ", v.strides[v.ndim - 1]);
}

void OpCheck::contiguous(const TensorView& v) {
  if (!v.contiguous()) {
    std::string s = "[";
    for (int d = 0; d < v.ndim; ++d) s += cat(d ? ", " : "", v.strides[d]);
    fail(OPDEV_STATUS_INVALID_ARGUMENT, v.name, ": expected a contiguous tensor, got strides ", s, "] for shape ", v.shape_str());
  }
}

void OpCheck::writable(const TensorView& out) {
  if (self_overlapping(out))
    fail(OPDEV_STATUS_INVALID_ARGUMENT, out.name, ": output view addresses the same element more than once (stride 0 or interleaved strides)");
}

void OpCheck::disjoint(const TensorView& out, const TensorView& in) {
  if (may_overlap(out, in)) fail(OPDEV_STATUS_INVALID_ARGUMENT, out.name, ": must not overlap ", in.name, " (forbidden aliasing)");
}

void OpCheck::alias_or_disjoint(const TensorView& out, const TensorView& in) {
  if (same_view(out, in)) return;
  if (may_overlap(out, in))
    fail(OPDEV_STATUS_INVALID_ARGUMENT, out.name, ": must be exactly ", in.name, " (in place) or not overlap it (forbidden partial aliasing)");
}

void OpCheck::index_range(const TensorView& v, int64_t lo, int64_t hi, const char* what) {
  // Iterate in index order over any rank.
  int64_t idx[OPDEV_MAX_DIMS] = {};
  for (int64_t n = 0; n < v.numel; ++n) {
    int64_t off = 0;
    for (int d = 0; d < v.ndim; ++d) off += idx[d] * v.strides[d];
    int64_t x = v.dtype == DType::I32 ? int64_t(static_cast<const int32_t*>(v.data)[off]) : static_cast<const int64_t*>(v.data)[off];
    if (x < lo || x >= hi) {
      std::string at;
      for (int d = 0; d < v.ndim; ++d) at += cat(d ? ", " : "", idx[d]);
      fail(OPDEV_STATUS_OUT_OF_RANGE, v.name, "[", at, "] = ", x, " is outside [", lo, ", ", hi, ") (", what, ")");
    }
    for (int d = v.ndim - 1; d >= 0; --d) {
      if (++idx[d] < v.shape[d]) break;
      idx[d] = 0;
    }
  }
}

void OpCheck::finite_positive(const char* name, double value) {
  if (!(std::isfinite(value) && value > 0)) fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": expected a finite value > 0, got ", value);
}

}  // namespace opdev
