// TensorView: a validated, resolved view of a DLTensor (data pointer with byte_offset applied, strides
// always filled). Front-ends build views with make_view(); backends receive only views, whose sizes and
// byte extents are known not to overflow.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "opdev/opdev.h"

namespace opdev {

struct TensorView {
  const char* name = "";  // argument name, for messages
  bool present = false;   // false for an absent optional argument
  void* data = nullptr;   // element [0, ..., 0]
  DType dtype = DType::Unknown;
  int ndim = 0;
  int64_t shape[OPDEV_MAX_DIMS] = {};
  int64_t strides[OPDEV_MAX_DIMS] = {};  // in elements, >= 0
  int64_t numel = 0;
  // Bytes [byte_lo, byte_hi) that the view can touch; byte_lo == byte_hi when empty.
  uintptr_t byte_lo = 0, byte_hi = 0;

  int64_t size(int d) const { return shape[d < 0 ? d + ndim : d]; }
  int64_t stride(int d) const { return strides[d < 0 ? d + ndim : d]; }
  size_t itemsize() const { return dtype_size(dtype); }
  bool empty() const { return numel == 0; }
  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
  // True when every dimension is row-major compact (size-1 dimensions ignore their stride).
  bool contiguous() const;
  // True when the last dimension has stride 1 (or size <= 1).
  bool inner_contiguous() const;
  std::string shape_str() const;  // "[2, 3, 4]"
};

// Validates t and resolves it into a view. Throws opdev::Error naming `name` on: NULL (unless optional),
// rank > OPDEV_MAX_DIMS, negative sizes or strides, unknown dtype, wrong device, NULL data with elements,
// and size/extent arithmetic that overflows.
TensorView make_view(const char* name, const DLTensor* t, DLDevice device, bool optional);

// A view of plain memory (no DLTensor), e.g. for backends building sub-views.
TensorView make_contiguous_view(const char* name, void* data, DType dtype, std::initializer_list<int64_t> shape);

// Exactly the same elements in the same order (same data pointer, dtype, shape and strides).
bool same_view(const TensorView& a, const TensorView& b);
// True if the two views may share a byte. Exact for views that are disjoint byte ranges or rows of the
// same row stride (e.g. q and k heads in a fused QKV buffer); conservative (true) otherwise.
bool may_overlap(const TensorView& a, const TensorView& b);
// True if two different indices of the view address the same element (stride 0, interleaved strides).
bool self_overlapping(const TensorView& v);

std::string device_str(DLDevice d);

}  // namespace opdev
