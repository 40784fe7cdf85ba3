// The host check of the expert_offsets [E+1] argument of grouped_matmul and grouped_matmul_w8a8.
#pragma once

#include "core/check.h"

namespace opdev {

// Every value in [0, R] (OUT_OF_RANGE), then the structure 0 = o[0] <= o[1] <= ... <= o[E] = R
// (INVALID_ARGUMENT: the values are rows of x, but a wrong end or a decrease is a malformed partition, not
// an out-of-range index). Only call when the offsets are host-visible.
inline void check_expert_offsets(const TensorView& o, int64_t R) {
  OpCheck::index_range(o, 0, R + 1, "the rows R of x, inclusive");
  const int64_t E = o.numel - 1;
  const int64_t first = read_index(o, 0), last = read_index(o, E);
  OpCheck::expect(first == 0, OPDEV_STATUS_INVALID_ARGUMENT, o.name, "[0] = ", first,
                  ", expected 0 (offsets must start at 0; invalid partition of the rows)");
  for (int64_t e = 1; e <= E; ++e) {
    const int64_t prev = read_index(o, e - 1), cur = read_index(o, e);
    OpCheck::expect(cur >= prev, OPDEV_STATUS_INVALID_ARGUMENT, o.name, "[", e, "] = ", cur, " is less than ", o.name, "[", e - 1,
                    "] = ", prev, " (offsets must be non-decreasing; invalid partition of the rows)");
  }
  OpCheck::expect(last == R, OPDEV_STATUS_INVALID_ARGUMENT, o.name, "[", E, "] = ", last, ", expected R = ", R,
                  " (the rows of x; offsets must end at R; invalid partition of the rows)");
}

// Bytes of the weights of the experts that own rows (expert e's N x K block of `itemsize` bytes each).
inline double used_expert_weight_bytes(const TensorView& o, int64_t N, int64_t K, size_t itemsize) {
  const int64_t E = o.numel - 1;
  int64_t used = 0;
  for (int64_t e = 0; e < E; ++e) used += read_index(o, e + 1) > read_index(o, e);
  return double(used) * double(N) * double(K) * double(itemsize);
}

}  // namespace opdev
