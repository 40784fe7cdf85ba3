// ref: embedding, a row gather through double (exact for every activation dtype).
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status embedding(ExecContext&, const embedding_args& a) {
  const int64_t T = a.out.size(0), H = a.out.size(1), V = a.table.size(0);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t id = get_index(a.ids, {t});
    if (id < 0 || id >= V) fail(OPDEV_STATUS_OUT_OF_RANGE, "ids[", t, "] = ", id, " is outside [0, ", V, ") (the vocabulary size V)");
    for (int64_t h = 0; h < H; ++h) set(a.out, {t, h}, get(a.table, {id, h}));
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
