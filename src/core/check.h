// Argument checks shared by every op front-end. Each check throws opdev::Error with a message that names
// the argument and the expected and actual values; api_call() prefixes the C function's name.
#pragma once

#include <cmath>
#include <initializer_list>
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace opdev {

struct Context;

class OpCheck {
 public:
  // Validates ctx (non-NULL) and remembers its device.
  explicit OpCheck(const opdev_context* ctx);

  const opdev_context* ctx() const { return ctx_; }
  // Index data on the context's device can be read by the front-end (host backends).
  bool host_visible() const { return host_visible_; }

  TensorView tensor(const char* name, const DLTensor* t) const { return make_view(name, t, device_, false); }
  TensorView optional(const char* name, const DLTensor* t) const { return make_view(name, t, device_, true); }

  // Shapes.
  static void rank(const TensorView& v, int r);
  static void rank_between(const TensorView& v, int lo, int hi);
  static void dim(const TensorView& v, int d, int64_t expected, const char* what);
  static void shape(const TensorView& v, std::initializer_list<int64_t> expected);
  static void same_shape(const TensorView& v, const TensorView& like);

  // Dtypes.
  static void dtype(const TensorView& v, DType expected);
  static void dtype_in(const TensorView& v, std::initializer_list<DType> allowed);
  static void activation_dtype(const TensorView& v);  // float32 | bfloat16 | float16 | float64
  static void index_dtype(const TensorView& v);       // int32 | int64
  static void same_dtype(const TensorView& v, const TensorView& like);

  // Layout.
  static void inner_contiguous(const TensorView& v);
  static void contiguous(const TensorView& v);
  static void writable(const TensorView& out);  // no two indices address the same element

  // Aliasing: out must not share memory with `in`; alias_ok additionally allows the exact same view.
  static void disjoint(const TensorView& out, const TensorView& in);
  static void alias_or_disjoint(const TensorView& out, const TensorView& in);

  // Index data (only call when host_visible()): every element in [lo, hi). `what` names the range
  // ("the vocabulary size V").
  static void index_range(const TensorView& v, int64_t lo, int64_t hi, const char* what);

  template <class... Args>
  static void expect(bool cond, opdev_status status, Args&&... args) {
    if (!cond) fail(status, std::forward<Args>(args)...);
  }
  static void finite_positive(const char* name, double value);

 private:
  const opdev_context* ctx_;
  DLDevice device_;
  bool host_visible_;
};

// Reads element i (flat, in index order) of a 1-D int32/int64 view on the host.
inline int64_t read_index(const TensorView& v, int64_t i) {
  const int64_t off = i * v.strides[0];
  return v.dtype == DType::I32 ? int64_t(static_cast<const int32_t*>(v.data)[off]) : static_cast<const int64_t*>(v.data)[off];
}

}  // namespace opdev
