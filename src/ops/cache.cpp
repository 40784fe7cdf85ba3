// Front-end of reshape_and_cache: validate (shapes, dtypes, layout, aliasing, and on host-visible
// devices every slot's range and distinctness), then dispatch.
#include <algorithm>
#include <utility>
#include <vector>

#include "core/overflow.h"
#include "ops/dispatch.h"

using namespace opdev;

namespace {

// Host check of slot_mapping: each slot < num_slots (negative = padding), non-negative slots distinct.
// A repeated slot would make the cache contents depend on the order of the writes.
void check_slots(const TensorView& slots, int64_t num_slots, int64_t NB, int64_t BS) {
  const int64_t T = slots.size(0);
  std::vector<std::pair<int64_t, int64_t>> used;  // (slot, token)
  used.reserve(size_t(T));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t s = read_index(slots, t);
    if (s < 0) continue;
    if (s >= num_slots)
      fail(OPDEV_STATUS_OUT_OF_RANGE, "slot_mapping[", t, "] = ", s, " is outside [0, ", num_slots, ") (num_blocks * block_size = ", NB,
           " * ", BS, "; negative slots are padding)");
    used.emplace_back(s, t);
  }
  std::sort(used.begin(), used.end());
  // Report the repeat with the lowest later token (pairs sort by token within a slot, so the minimum is
  // the second token of its slot and used[i - 1] the first).
  int64_t first = -1, second = -1, slot = 0;
  for (size_t i = 1; i < used.size(); ++i)
    if (used[i].first == used[i - 1].first && (second < 0 || used[i].second < second)) {
      slot = used[i].first;
      first = used[i - 1].second;
      second = used[i].second;
    }
  if (second >= 0)
    fail(OPDEV_STATUS_INVALID_ARGUMENT, "slot_mapping[", second, "] = ", slot, " repeats slot_mapping[", first,
         "] (non-negative slots must be distinct)");
}

}  // namespace

extern "C" {

OPDEV_API opdev_status opdev_reshape_and_cache(opdev_context* ctx, const DLTensor* key_cache, const DLTensor* value_cache,
                                               const DLTensor* key, const DLTensor* value, const DLTensor* slot_mapping) {
  return api_call("opdev_reshape_and_cache", [&] {
    OpCheck c(ctx);
    reshape_and_cache_args a;
    a.key_cache = c.tensor("key_cache", key_cache);
    a.value_cache = c.optional("value_cache", value_cache);
    a.key = c.tensor("key", key);
    a.value = c.optional("value", value);
    a.slot_mapping = c.tensor("slot_mapping", slot_mapping);
    if (a.value_cache.present != a.value.present)
      fail(OPDEV_STATUS_INVALID_ARGUMENT, a.value_cache.present ? "value: expected a tensor because value_cache is given, got NULL"
                                                                : "value: expected NULL because value_cache is NULL (a key-only cache), got a tensor");
    // key_cache [NB, BS, Hk, D]
    c.rank(a.key_cache, 4);
    c.activation_dtype(a.key_cache);
    const int64_t NB = a.key_cache.size(0), BS = a.key_cache.size(1), Hk = a.key_cache.size(2), D = a.key_cache.size(3);
    if (a.value_cache.present) {
      c.same_shape(a.value_cache, a.key_cache);
      c.same_dtype(a.value_cache, a.key_cache);
    }
    // key, value [T, Hk, D]
    c.rank(a.key, 3);
    c.dim(a.key, 1, Hk, "num_kv_heads of key_cache");
    c.dim(a.key, 2, D, "head_dim of key_cache");
    c.same_dtype(a.key, a.key_cache);
    const int64_t T = a.key.size(0);
    if (a.value.present) {
      c.same_shape(a.value, a.key);
      c.same_dtype(a.value, a.key_cache);
    }
    c.rank(a.slot_mapping, 1);
    c.index_dtype(a.slot_mapping);
    c.dim(a.slot_mapping, 0, T, "tokens of key");
    // Layout: head_dim contiguous; the block, slot and head dimensions may be strided.
    for (const TensorView* v : {&a.key_cache, &a.value_cache, &a.key, &a.value})
      if (v->present) c.inner_contiguous(*v);
    c.writable(a.key_cache);
    if (a.value_cache.present) c.writable(a.value_cache);
    // The caches are written; nothing else may share their memory.
    for (const TensorView* out : {&a.key_cache, &a.value_cache}) {
      if (!out->present) continue;
      c.disjoint(*out, a.key);
      c.disjoint(*out, a.value);
      c.disjoint(*out, a.slot_mapping);
    }
    c.disjoint(a.key_cache, a.value_cache);
    int64_t num_slots;
    if (!checked_mul(NB, BS, &num_slots)) num_slots = INT64_MAX;  // only when Hk * D == 0
    if (c.host_visible()) check_slots(a.slot_mapping, num_slots, NB, BS);
    auto cost = [&] {
      // Read key/value and the slots, write the same bytes into the caches.
      return OpCost{2 * (nbytes(a.key) + nbytes(a.value)) + nbytes(a.slot_mapping), 0.0};
    };
    return dispatch(c, a, a.key_cache.dtype, a.key.empty(), cost,
                    {{"key_cache", key_cache}, {"value_cache", value_cache}, {"key", key}, {"value", value}, {"slot_mapping", slot_mapping}});
  });
}

}  // extern "C"
