#include "core/tensor.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/overflow.h"

namespace opdev {

bool TensorView::contiguous() const {
  int64_t expected = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

bool TensorView::inner_contiguous() const { return ndim == 0 || shape[ndim - 1] <= 1 || strides[ndim - 1] == 1; }

std::string TensorView::shape_str() const {
  std::string s = "[";
  for (int d = 0; d < ndim; ++d) s += cat(d ? ", " : "", shape[d]);
  return s + "]";
}

std::string device_str(DLDevice d) {
  const char* n = "device";
  switch (d.device_type) {
    case kDLCPU: n = "cpu"; break;
    case kDLCUDA: n = "cuda"; break;
    case kDLCUDAHost: n = "cuda_host"; break;
    case kDLCUDAManaged: n = "cuda_managed"; break;
    case kDLROCM: n = "rocm"; break;
    case kDLExtDev: n = "ext_dev"; break;
    default: return cat("device_type(", int(d.device_type), "):", d.device_id);
  }
  return cat(n, ":", d.device_id);
}

TensorView make_view(const char* name, const DLTensor* t, DLDevice device, bool optional) {
  TensorView v;
  v.name = name;
  if (!t) {
    if (optional) return v;
    fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": expected a tensor, got NULL");
  }
  if (t->ndim < 0 || t->ndim > OPDEV_MAX_DIMS)
    fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": rank ", t->ndim, " is outside [0, ", OPDEV_MAX_DIMS, "]");
  if (t->ndim > 0 && !t->shape) fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": shape is NULL");
  v.dtype = dtype_from_dl(t->dtype);
  if (v.dtype == DType::Unknown)
    fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, name, ": dtype ", dl_dtype_name(t->dtype), " is not supported by opdev");
  if (t->device.device_type != device.device_type || t->device.device_id != device.device_id)
    fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": expected a tensor on ", device_str(device), " (the context's device), got ",
         device_str(t->device));
  v.ndim = t->ndim;
  int64_t numel = 1;
  for (int d = 0; d < v.ndim; ++d) {
    if (t->shape[d] < 0) fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": dimension ", d, " has negative size ", t->shape[d]);
    v.shape[d] = t->shape[d];
    if (!checked_mul(numel, t->shape[d], &numel))
      fail(OPDEV_STATUS_SIZE_OVERFLOW, name, ": the element count of shape ", v.shape_str(), "... overflows int64");
  }
  v.numel = numel;
  if (t->strides) {
    for (int d = 0; d < v.ndim; ++d) {
      if (t->strides[d] < 0)
        fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": stride ", d, " is negative (", t->strides[d], "); negative strides are not supported");
      v.strides[d] = t->strides[d];
    }
  } else {
    int64_t s = 1;
    for (int d = v.ndim - 1; d >= 0; --d) {
      v.strides[d] = s;
      if (v.shape[d] > 0 && !checked_mul(s, v.shape[d], &s)) s = INT64_MAX;  // numel fits, so this cannot happen
    }
  }
  const int64_t item = int64_t(dtype_size(v.dtype));
  uintptr_t base = reinterpret_cast<uintptr_t>(t->data);
  if (numel > 0) {
    if (!t->data) fail(OPDEV_STATUS_INVALID_ARGUMENT, name, ": data is NULL but the tensor has ", numel, " elements");
    // Largest element offset, then bytes: sum (shape-1)*stride, all checked.
    int64_t max_off = 0;
    for (int d = 0; d < v.ndim; ++d) {
      int64_t term;
      if (!checked_mul(v.shape[d] - 1, v.strides[d], &term) || !checked_add(max_off, term, &max_off))
        fail(OPDEV_STATUS_SIZE_OVERFLOW, name, ": the byte extent of shape ", v.shape_str(), " with its strides overflows");
    }
    int64_t extent_bytes;
    if (!checked_mul(max_off + 1, item, &extent_bytes))
      fail(OPDEV_STATUS_SIZE_OVERFLOW, name, ": the byte extent of shape ", v.shape_str(), " overflows");
    uint64_t off = t->byte_offset;
    uintptr_t lo = base + off;
    if (lo < base || uintptr_t(extent_bytes) > UINTPTR_MAX - lo)
      fail(OPDEV_STATUS_SIZE_OVERFLOW, name, ": data + byte_offset + extent overflows the address space");
    v.byte_lo = lo;
    v.byte_hi = lo + uintptr_t(extent_bytes);
    v.data = reinterpret_cast<void*>(lo);
  } else {
    v.data = t->data ? reinterpret_cast<void*>(base + t->byte_offset) : nullptr;
  }
  v.present = true;
  return v;
}

TensorView make_contiguous_view(const char* name, void* data, DType dtype, std::initializer_list<int64_t> shape) {
  TensorView v;
  v.name = name;
  v.present = true;
  v.data = data;
  v.dtype = dtype;
  v.ndim = int(shape.size());
  OPDEV_ASSERT(v.ndim <= OPDEV_MAX_DIMS);
  int d = 0;
  for (int64_t s : shape) v.shape[d++] = s;
  int64_t s = 1;
  for (d = v.ndim - 1; d >= 0; --d) {
    v.strides[d] = s;
    s *= v.shape[d];
  }
  v.numel = s;
  v.byte_lo = reinterpret_cast<uintptr_t>(data);
  v.byte_hi = v.byte_lo + uintptr_t(s) * dtype_size(dtype);
  return v;
}

bool same_view(const TensorView& a, const TensorView& b) {
  if (a.data != b.data || a.dtype != b.dtype || a.ndim != b.ndim) return false;
  for (int d = 0; d < a.ndim; ++d) {
    if (a.shape[d] != b.shape[d]) return false;
    if (a.shape[d] > 1 && a.strides[d] != b.strides[d]) return false;
  }
  return true;
}

namespace {

// A view as `count` rows of `block` contiguous bytes, `row_stride` bytes apart, starting at `base`.
struct Rows {
  uintptr_t base;
  int64_t count, row_stride, block;
};

// Describes v as Rows if its inner dimensions are one contiguous block and its outer dimensions merge
// into a single stride; returns false otherwise.
bool as_rows(const TensorView& v, Rows* r) {
  const int64_t item = int64_t(v.itemsize());
  // Drop size-1 dimensions.
  int64_t shape[OPDEV_MAX_DIMS], stride[OPDEV_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < v.ndim; ++d)
    if (v.shape[d] != 1) {
      shape[n] = v.shape[d];
      stride[n] = v.strides[d];
      ++n;
    }
  // Inner contiguous block.
  int64_t block = 1;
  int d = n - 1;
  while (d >= 0 && stride[d] == block) {
    block *= shape[d];
    --d;
  }
  // Remaining outer dimensions must merge into one.
  int64_t count = 1, row_stride = 0;
  if (d >= 0) {
    count = shape[d];
    row_stride = stride[d];
    for (int e = d - 1; e >= 0; --e) {
      if (stride[e] != stride[e + 1] * shape[e + 1]) return false;
      count *= shape[e];
    }
  }
  r->base = v.byte_lo;
  r->count = count;
  r->row_stride = row_stride * item;
  r->block = block * item;
  return true;
}

}  // namespace

bool may_overlap(const TensorView& a, const TensorView& b) {
  if (!a.present || !b.present || a.numel == 0 || b.numel == 0) return false;
  if (a.byte_hi <= b.byte_lo || b.byte_hi <= a.byte_lo) return false;
  Rows ra, rb;
  if (!as_rows(a, &ra) || !as_rows(b, &rb)) return true;
  if (ra.count == 1 || rb.count == 1) {
    // One block against rows of the other: compare against each of the (few) candidate rows.
    const Rows& one = ra.count == 1 ? ra : rb;
    const Rows& many = ra.count == 1 ? rb : ra;
    if (many.count == 1) return true;  // two single blocks whose byte ranges intersect
    if (many.row_stride < many.block) return true;
    // Rows j with [base + j*S, +block) intersecting [one.base, one.base + one.block).
    int64_t S = many.row_stride;
    int64_t lo_rel = int64_t(one.base) - int64_t(many.base);
    int64_t j_lo = (lo_rel - many.block) / S;  // rows before this cannot reach
    if (j_lo < 0) j_lo = 0;
    for (int64_t j = j_lo; j < many.count; ++j) {
      int64_t start = j * S, end = start + many.block;
      if (start >= lo_rel + one.block) break;
      if (end > lo_rel) return true;
    }
    return false;
  }
  if (ra.row_stride != rb.row_stride || ra.block > ra.row_stride || rb.block > rb.row_stride) return true;
  // Same row stride S: rows i of a and j of b overlap iff (i - j - q) S lies in (r - La, r + Lb), where
  // base_b - base_a = q S + r, 0 <= r < S. With blocks no longer than S only i - j = q (when r < La) or
  // i - j = q + 1 (when r + Lb > S) can overlap.
  const int64_t S = ra.row_stride;
  int64_t diff = int64_t(rb.base) - int64_t(ra.base);
  int64_t q = diff >= 0 ? diff / S : -((-diff + S - 1) / S);
  int64_t r = diff - q * S;
  auto reachable = [&](int64_t m) { return m >= -(rb.count - 1) && m <= ra.count - 1; };
  if (r < ra.block && reachable(q)) return true;
  if (r + rb.block > S && reachable(q + 1)) return true;
  return false;
}

bool self_overlapping(const TensorView& v) {
  if (v.numel <= 1) return false;
  int idx[OPDEV_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < v.ndim; ++d)
    if (v.shape[d] > 1) idx[n++] = d;
  for (int i = 1; i < n; ++i)  // insertion sort by stride (n <= 8)
    for (int j = i; j > 0 && v.strides[idx[j]] < v.strides[idx[j - 1]]; --j) std::swap(idx[j], idx[j - 1]);
  int64_t extent = 1;  // elements spanned by the inner dimensions so far
  for (int i = 0; i < n; ++i) {
    int d = idx[i];
    if (v.strides[d] < extent) return true;
    extent = v.strides[d] * (v.shape[d] - 1) + extent;
  }
  return false;
}

}  // namespace opdev
