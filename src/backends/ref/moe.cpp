// ref: moe_gating_topk, moe_permute, moe_unpermute in float64.
#include <algorithm>
#include <numeric>

#include "backends/ref/ref_common.h"

namespace opdev::ref {

namespace {

// "a ranks before b" for a descending sort: numbers by value, every NaN below every number. Equal
// values (and NaNs among themselves) are equivalent, so a stable sort keeps them in index order.
bool ranks_before(double a, double b) {
  if (std::isnan(a)) return false;
  return std::isnan(b) || a > b;
}

// Indices 0..n-1 sorted by descending key[i], ties toward the lower index.
std::vector<int64_t> order_desc(const std::vector<double>& key) {
  std::vector<int64_t> idx(key.size());
  std::iota(idx.begin(), idx.end(), int64_t(0));
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return ranks_before(key[size_t(a)], key[size_t(b)]); });
  return idx;
}

}  // namespace

opdev_status moe_gating_topk(ExecContext&, const moe_gating_topk_args& a) {
  const int64_t T = a.logits.size(0), E = a.logits.size(1), k = a.topk_ids.size(1);
  const int64_t G = a.n_group, gsize = E / G;
  std::vector<double> s(static_cast<size_t>(E)), key(static_cast<size_t>(E)), gscore(static_cast<size_t>(G));
  for (int64_t t = 0; t < T; ++t) {
    // Scores s (weights) and selection keys s' = s + bias.
    if (a.scoring == OPDEV_MOE_SCORING_SOFTMAX) {
      double m = -INFINITY;
      for (int64_t e = 0; e < E; ++e) m = std::max(m, get(a.logits, {t, e}));
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) {
        s[size_t(e)] = std::exp(get(a.logits, {t, e}) - m);
        sum += s[size_t(e)];
      }
      for (int64_t e = 0; e < E; ++e) s[size_t(e)] /= sum;  // a NaN logit makes sum, and so every s, NaN
    } else {
      for (int64_t e = 0; e < E; ++e) s[size_t(e)] = 1.0 / (1.0 + std::exp(-get(a.logits, {t, e})));
    }
    for (int64_t e = 0; e < E; ++e) key[size_t(e)] = s[size_t(e)] + (a.correction_bias.present ? get(a.correction_bias, {e}) : 0.0);

    // Eligible experts: those of the topk_group best groups, a group scored by its two largest keys.
    std::vector<bool> eligible(size_t(E), true);
    if (G > 1) {
      for (int64_t g = 0; g < G; ++g) {
        std::vector<double> member(key.begin() + g * gsize, key.begin() + (g + 1) * gsize);
        std::vector<int64_t> o = order_desc(member);
        gscore[size_t(g)] = gsize == 1 ? member[size_t(o[0])] : member[size_t(o[0])] + member[size_t(o[1])];
      }
      std::vector<int64_t> go = order_desc(gscore);
      std::fill(eligible.begin(), eligible.end(), false);
      for (int64_t i = 0; i < a.topk_group; ++i)
        for (int64_t e = go[size_t(i)] * gsize; e < (go[size_t(i)] + 1) * gsize; ++e) eligible[size_t(e)] = true;
    }

    // The k best eligible experts in descending key order; weights from the unbiased s.
    std::vector<int64_t> chosen;
    for (int64_t e : order_desc(key))
      if (eligible[size_t(e)] && int64_t(chosen.size()) < k) chosen.push_back(e);
    double wsum = 0;
    for (int64_t e : chosen) wsum += s[size_t(e)];
    for (int64_t j = 0; j < k; ++j) {
      double w = s[size_t(chosen[size_t(j)])];
      if (a.renormalize) w /= wsum;
      set(a.topk_weights, {t, j}, w * a.routed_scaling_factor);
      set(a.topk_ids, {t, j}, double(chosen[size_t(j)]));
    }
  }
  return OPDEV_STATUS_SUCCESS;
}

opdev_status moe_permute(ExecContext&, const moe_permute_args& a) {
  const int64_t T = a.x.size(0), H = a.x.size(1), k = a.topk_ids.size(1);
  const int64_t E = a.expert_offsets.size(0) - 1;
  // Stable sort by expert: for each expert in turn, its (t, j) pairs in flat order.
  int64_t r = 0;
  set(a.expert_offsets, {0}, 0.0);
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < k; ++j) {
        if (get_index(a.topk_ids, {t, j}) != e) continue;
        set(a.sorted_rows, {r}, double(t * k + j));
        for (int64_t h = 0; h < H; ++h) set(a.permuted_x, {r, h}, get(a.x, {t, h}));
        ++r;
      }
    set(a.expert_offsets, {e + 1}, double(r));
  }
  return OPDEV_STATUS_SUCCESS;
}

opdev_status moe_unpermute(ExecContext&, const moe_unpermute_args& a) {
  const int64_t T = a.out.size(0), H = a.out.size(1), k = a.topk_weights.size(1);
  std::vector<int64_t> row_of(size_t(T * k));  // permuted row of each flat index t*k + j
  for (int64_t r = 0; r < T * k; ++r) row_of[size_t(get_index(a.sorted_rows, {r}))] = r;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      double acc = 0;
      for (int64_t j = 0; j < k; ++j) acc += get(a.topk_weights, {t, j}) * get(a.permuted_y, {row_of[size_t(t * k + j)], h});
      set(a.out, {t, h}, acc);
    }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
