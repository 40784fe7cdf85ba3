// ref: reshape_and_cache, element by element through the views' strides.
#include "backends/ref/ref_common.h"

namespace opdev::ref {

opdev_status reshape_and_cache(ExecContext&, const reshape_and_cache_args& a) {
  const int64_t T = a.key.size(0), Hk = a.key.size(1), D = a.key.size(2);
  const int64_t BS = a.key_cache.size(1);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t slot = get_index(a.slot_mapping, {t});
    if (slot < 0) continue;  // padding token
    const int64_t blk = slot / BS, pos = slot % BS;
    for (int64_t h = 0; h < Hk; ++h)
      for (int64_t d = 0; d < D; ++d) {
        set(a.key_cache, {blk, pos, h, d}, get(a.key, {t, h, d}));
        if (a.value_cache.present) set(a.value_cache, {blk, pos, h, d}, get(a.value, {t, h, d}));
      }
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
