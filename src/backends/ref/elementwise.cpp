// ref: add, cast, copy by plain index loops over the views' strides. add and cast go through double
// (the only rounding is the store); copy moves bytes, so it is exact for every dtype (int64 too).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status add(ExecContext&, const add_args& a) {
  // Element by element in index order: when out is a or b, each element is read before it is written.
  for_each_index(a.out.shape, a.out.ndim, [&](const int64_t* idx) {
    const double x = load(a.a.data, a.a.dtype, offset_of(a.a, idx));
    const double y = load(a.b.data, a.b.dtype, offset_of(a.b, idx));
    store(a.out.data, a.out.dtype, offset_of(a.out, idx), x + y);
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status cast(ExecContext&, const cast_args& a) {
  for_each_index(a.out.shape, a.out.ndim, [&](const int64_t* idx) {
    store(a.out.data, a.out.dtype, offset_of(a.out, idx), load(a.x.data, a.x.dtype, offset_of(a.x, idx)));
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status copy(ExecContext&, const copy_args& a) {
  const size_t item = a.x.itemsize();
  const char* src = static_cast<const char*>(a.x.data);
  char* dst = static_cast<char*>(a.out.data);
  for_each_index(a.out.shape, a.out.ndim, [&](const int64_t* idx) {
    std::memcpy(dst + offset_of(a.out, idx) * int64_t(item), src + offset_of(a.x, idx) * int64_t(item), item);
  });
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
