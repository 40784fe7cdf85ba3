// cpu: moe_gating_topk, moe_permute, moe_unpermute.
//
// Gating: tokens split across threads; per token the scores are computed vectorised over E in float32
// (softmax with vexp, or sigmoid), then the groups and experts are chosen with partial sorts under a
// strict total order (descending key, NaN last, lower index first). float32 keys can order two experts
// differently from exact arithmetic when their keys are within rounding error of each other; so every
// decision the result depends on (group cut, the order of the k chosen, the cut after the k-th) is
// checked against a bound on the float32 error, and a row with a decision closer than that is selected
// again from float64 keys. The weights always come from the float32 scores. Softmax without a bias and
// without groups selects on the logits themselves: softmax is monotonic, so that order is exact.
//
// Permute: counting sort of the flat (token, slot) indices on one thread (O(T*k + E)), then the row
// copies threaded. Unpermute: the inverse of sorted_rows in scratch, then (token, column block) items
// threaded, each column vector accumulated over the k slots in order in float32 and rounded once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

// ---- moe_gating_topk ---------------------------------------------------------------------------------

// Strict total order "a ranks before b" over indices with keys: descending key, every NaN after every
// number, equal keys (and NaNs) toward the lower index. No allocation, so safe inside parallel regions.
template <class K>
struct RanksBefore {
  const K* key;
  bool operator()(int32_t a, int32_t b) const {
    const K x = key[a], y = key[b];
    const bool nx = x != x, ny = y != y;
    if (nx || ny) return nx == ny ? a < b : ny;
    return x > y || (x == y && a < b);
  }
};

// Smallest distance between the keys of consecutive entries of a ranked list (NaN if one is NaN).
template <class K>
K min_gap(const K* key, const int32_t* ranked, int64_t n) {
  K gap = std::numeric_limits<K>::infinity();
  for (int64_t i = 0; i + 1 < n; ++i) {
    const K d = key[ranked[i]] - key[ranked[i + 1]];
    gap = d != d ? d : std::min(gap, d);
    if (gap != gap) break;
  }
  return gap;
}

// Keeps the m best experts (in RanksBefore order) of those offered, which must come in ascending index
// order: then an expert whose key is not above the current m-th key (or is NaN) ranks after it and is
// skipped with one compare, so most experts cost a load and a well-predicted branch.
template <class K>
struct TopM {
  const K* key;
  int32_t* out;  // [m], best first
  int64_t m, size = 0;
  K thr = 0;  // key of out[m - 1] once full
  bool thr_nan = false;

  void insert(int32_t e) {
    const RanksBefore<K> before{key};
    int64_t p = size < m ? size++ : m - 1;
    for (; p > 0 && before(e, out[p - 1]); --p) out[p] = out[p - 1];
    out[p] = e;
    if (size == m) {
      thr = key[out[m - 1]];
      thr_nan = thr != thr;
    }
  }
  void offer_range(int32_t lo, int32_t hi) {
    int32_t e = lo;
    for (; e < hi && size < m; ++e) insert(e);
    for (; e < hi; ++e) {
      const K x = key[e];
      if (x > thr || (thr_nan && x == x)) insert(e);
    }
  }
};

struct Decisions {
  double group_gap, expert_gap;  // closest margins of the decisions taken (+inf: none taken)
};

// Chooses the k experts from keys [E]: groups first (n_group > 1), then experts; writes ids [k] in
// descending key order. top [E] and gidx/gscore [n_group] are workspace.
template <class K>
Decisions select_experts(const K* key, int64_t E, int n_group, int topk_group, int64_t k, int32_t* top, int32_t* gidx, K* gscore,
                         int32_t* ids) {
  Decisions d{INFINITY, INFINITY};
  const bool grouped = n_group > 1 && topk_group < n_group;
  const int64_t gsize = E / n_group, n = grouped ? topk_group * gsize : E;  // eligible experts
  // The cut after the k-th expert is a decision only when an eligible expert is left out.
  const int64_t m = std::min(k + 1, n);
  TopM<K> best{key, top, m};
  if (grouped) {
    for (int g = 0; g < n_group; ++g) {
      int32_t two[2];
      TopM<K> t2{key, two, std::min<int64_t>(2, gsize)};
      t2.offer_range(int32_t(g * gsize), int32_t((g + 1) * gsize));
      gscore[g] = t2.m == 1 ? key[two[0]] : key[two[0]] + key[two[1]];
      gidx[g] = g;
    }
    std::partial_sort(gidx, gidx + topk_group + 1, gidx + n_group, RanksBefore<K>{gscore});
    d.group_gap = double(min_gap(gscore, gidx + topk_group - 1, 2));
    std::sort(gidx, gidx + topk_group);  // offer the kept groups' experts in ascending index order
    for (int i = 0; i < topk_group; ++i) best.offer_range(int32_t(gidx[i] * gsize), int32_t((gidx[i] + 1) * gsize));
  } else {
    best.offer_range(0, int32_t(E));
  }
  d.expert_gap = double(min_gap(key, top, m));
  std::memcpy(ids, top, sizeof(int32_t) * size_t(k));
  return d;
}

// Per-thread workspace of the gating kernel (one slot per thread, in scratch memory).
struct GatingSlot {
  double* keyd;     // [E] float64 keys (rows that need exact selection)
  double* gscored;  // [n_group]
  float* s;         // [Ep] scores (softmax: exp(l - max) when selecting on the logits)
  float* key;       // [Ep] the logits (padded with -inf to Ep), then the keys s + bias
  float* gscore;    // [n_group]
  float* chosen;    // [k] scores of the chosen experts
  int32_t* idx;     // [E] ranked candidates
  int32_t* gidx;    // [n_group]
  int32_t* ids;     // [k]
};

template <class T>
void gate_row(const moe_gating_topk_args& a, const T* logits, const float* bias, float bias_max, int64_t E, int64_t k,
              const GatingSlot& w, float* weights, int32_t* ids_out) {
  const int64_t Ep = (E + kW - 1) / kW * kW;
  float* l = w.key;  // the logits, then (unless selecting on them) the keys
  float* s = w.s;
  // Logits to float32 (exact for every storage dtype), padded with -inf so whole vectors can be used.
  int64_t i = 0;
  for (; i + kW <= E; i += kW) vstore(l + i, vload(logits + i));
  if (i < E) vstore_n(l + i, vload_n(logits + i, int(E - i)), int(E - i));
  for (int64_t p = E; p < Ep; ++p) l[p] = -INFINITY;

  const bool softmax = a.scoring == OPDEV_MOE_SCORING_SOFTMAX;
  // Exact selection on the logits: softmax is monotonic, so without bias and groups the order of the
  // logits is the order of s. Then only the k chosen scores are divided by the sum.
  const bool select_on_logits = softmax && !bias && a.n_group == 1;
  float sum = 1;
  if (softmax) {
    vf vm = vset(-INFINITY);
    for (i = 0; i < Ep; i += kW) vm = vmax(vm, vload(l + i));
    const vf m = vset(hmax(vm));
    vf acc = vzero();
    for (i = 0; i < Ep; i += kW) {
      const vf e = vexp(vload(l + i) - m);
      vstore(s + i, e);
      acc = acc + e;
    }
    // A NaN or infinite logit gives a NaN sum (NaN propagates through vexp and the adds): every s NaN.
    sum = hsum(acc);
    if (!select_on_logits) {
      const vf vsum = vset(sum);
      for (i = 0; i < Ep; i += kW) vstore(s + i, vload(s + i) / vsum);
    }
  } else {
    const vf one = vset(1.0f);
    for (i = 0; i < Ep; i += kW) vstore(s + i, one / (one + vexp(vzero() - vload(l + i))));
  }

  if (select_on_logits) {
    if (sum != sum) {
      for (int64_t j = 0; j < k; ++j) w.ids[j] = int32_t(j);  // every s is NaN: all tie, lowest indices win
    } else {
      select_experts(l, E, 1, 1, k, w.idx, w.gidx, w.gscore, w.ids);
    }
  } else {
    const float* key = s;
    if (bias) {
      for (i = 0; i + kW <= E; i += kW) vstore(l + i, vload(s + i) + vload(bias + i));
      if (i < E) vstore_n(l + i, vload_n(s + i, int(E - i)) + vload_n(bias + i, int(E - i)), int(E - i));
      key = l;
    }
    const Decisions d = select_experts(key, E, a.n_group, a.topk_group, k, w.idx, w.gidx, w.gscore, w.ids);
    // Bound on |float32 key - exact key|: s is in [0, 1] with an absolute error of a few ulp (softmax:
    // plus the relative error of the float32 sum, about E/kW + log2(kW) roundings), and the bias add
    // rounds once relative to |s + b| <= 1 + max|b|. Twice that separates two experts; group scores add
    // two keys, so four times.
    const double u = std::ldexp(1.0, -24);
    const double tol = (softmax ? 32.0 + 2.0 * double(E) / kW : 16.0) * u * (1.0 + double(bias_max));
    if (!(d.group_gap > 4 * tol) || !(d.expert_gap > 2 * tol)) {
      // Select again on float64 keys (the formulas of the float64 reference).
      double* kd = w.keyd;
      if (softmax) {
        double mx = -INFINITY;
        for (int64_t e = 0; e < E; ++e) mx = std::max(mx, double(to_f32(logits[e])));
        double dsum = 0;
        for (int64_t e = 0; e < E; ++e) {
          kd[e] = std::exp(double(to_f32(logits[e])) - mx);
          dsum += kd[e];
        }
        for (int64_t e = 0; e < E; ++e) kd[e] /= dsum;
      } else {
        for (int64_t e = 0; e < E; ++e) kd[e] = 1.0 / (1.0 + std::exp(-double(to_f32(logits[e]))));
      }
      if (bias)
        for (int64_t e = 0; e < E; ++e) kd[e] += double(bias[e]);
      select_experts(kd, E, a.n_group, a.topk_group, k, w.idx, w.gidx, w.gscored, w.ids);
    }
  }

  // Weights: the unbiased float32 scores s = e / sum (softmax) of the chosen experts, renormalised in
  // slot order, then scaled.
  float* chosen = w.chosen;
  for (int64_t j = 0; j < k; ++j) chosen[j] = select_on_logits ? s[w.ids[j]] / sum : s[w.ids[j]];
  float wsum = 0;
  for (int64_t j = 0; j < k; ++j) wsum += chosen[j];
  const float scale = float(a.routed_scaling_factor);
  for (int64_t j = 0; j < k; ++j) {
    float v = chosen[j];
    if (a.renormalize) v /= wsum;
    weights[j] = v * scale;
    ids_out[j] = w.ids[j];
  }
}

// Index of the calling thread among those of parallel_for (0 outside a parallel region), clamped to
// the number of workspace slots.
inline int thread_slot(int nslots) { return std::min(omp_get_thread_num(), nslots - 1); }

template <class T>
inline int64_t index_at(const void* p, int64_t i) {
  return int64_t(static_cast<const T*>(p)[i]);
}

}  // namespace

opdev_status moe_gating_topk(ExecContext& ex, const moe_gating_topk_args& a) {
  const int64_t T_ = a.logits.size(0), E = a.logits.size(1), k = a.topk_ids.size(1);
  const int64_t Ep = (E + kW - 1) / kW * kW, G = a.n_group;
  const float* bias = a.correction_bias.present ? a.correction_bias.ptr<const float>() : nullptr;
  float bias_max = 0;  // max |bias|; NaN if a bias is NaN (then every row is selected in float64)
  for (int64_t e = 0; bias && e < E && bias_max == bias_max; ++e)
    if (!(std::fabs(bias[e]) <= bias_max)) bias_max = std::fabs(bias[e]);

  const int nslots = std::max(1, ex.num_threads);
  // Slot layout: doubles first, then floats, then ints; slots 64-byte aligned.
  const size_t slot_bytes =
      (size_t(E + G) * sizeof(double) + size_t(2 * Ep + G + k) * sizeof(float) + size_t(E + G + k) * sizeof(int32_t) + 63) / 64 * 64;
  char* base = static_cast<char*>(ex.scratch(size_t(nslots) * slot_bytes));
  auto slot = [&](int i) {
    char* p = base + size_t(i) * slot_bytes;
    GatingSlot w;
    w.keyd = reinterpret_cast<double*>(p);
    w.gscored = w.keyd + E;
    w.s = reinterpret_cast<float*>(w.gscored + G);
    w.key = w.s + Ep;
    w.gscore = w.key + Ep;
    w.chosen = w.gscore + G;
    w.idx = reinterpret_cast<int32_t*>(w.chosen + k);
    w.gidx = w.idx + E;
    w.ids = w.gidx + G;
    return w;
  };

  dispatch_float(a.logits.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    parallel_for(ex, T_, 1 + 8192 / E, [&](int64_t t0, int64_t t1) {
      const GatingSlot w = slot(thread_slot(nslots));
      for (int64_t t = t0; t < t1; ++t)
        gate_row(a, a.logits.ptr<const T>() + t * a.logits.strides[0], bias, bias_max, E, k, w,
                 a.topk_weights.ptr<float>() + t * a.topk_weights.strides[0], a.topk_ids.ptr<int32_t>() + t * a.topk_ids.strides[0]);
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status moe_permute(ExecContext& ex, const moe_permute_args& a) {
  const int64_t T_ = a.x.size(0), H = a.x.size(1), k = a.topk_ids.size(1), R = T_ * k;
  const int64_t E = a.expert_offsets.size(0) - 1;
  int64_t* offsets = a.expert_offsets.ptr<int64_t>();
  int32_t* rows = a.sorted_rows.ptr<int32_t>();
  const int64_t ids_stride = a.topk_ids.strides[0];
  auto expert = [&](int64_t t, int64_t j) {
    return a.topk_ids.dtype == DType::I32 ? index_at<int32_t>(a.topk_ids.data, t * ids_stride + j)
                                          : index_at<int64_t>(a.topk_ids.data, t * ids_stride + j);
  };

  // Counting sort, stable: count per expert, prefix sums, then place the flat indices in order.
  std::memset(offsets, 0, sizeof(int64_t) * size_t(E + 1));
  for (int64_t t = 0; t < T_; ++t)
    for (int64_t j = 0; j < k; ++j) ++offsets[expert(t, j) + 1];
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  int64_t* cursor = static_cast<int64_t*>(ex.scratch(sizeof(int64_t) * size_t(E)));
  std::memcpy(cursor, offsets, sizeof(int64_t) * size_t(E));
  for (int64_t t = 0; t < T_; ++t)
    for (int64_t j = 0; j < k; ++j) rows[cursor[expert(t, j)]++] = int32_t(t * k + j);

  // Row copies: a pure copy, bit-exact in every dtype.
  if (H == 0) return OPDEV_STATUS_SUCCESS;
  const size_t row_bytes = size_t(H) * a.x.itemsize();
  const char* x = static_cast<const char*>(a.x.data);
  char* px = static_cast<char*>(a.permuted_x.data);
  const size_t xs = size_t(a.x.strides[0]) * a.x.itemsize(), ps = size_t(a.permuted_x.strides[0]) * a.x.itemsize();
  parallel_for(ex, R, 1 + int64_t(65536 / row_bytes), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(px + size_t(r) * ps, x + size_t(rows[r] / k) * xs, row_bytes);
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status moe_unpermute(ExecContext& ex, const moe_unpermute_args& a) {
  const int64_t T_ = a.out.size(0), H = a.out.size(1), k = a.topk_weights.size(1), R = T_ * k;
  // row_of[t*k + j] = the permuted row of slot j of token t (sorted_rows is a permutation).
  const int32_t* rows = a.sorted_rows.ptr<const int32_t>();
  int32_t* row_of = static_cast<int32_t*>(ex.scratch(sizeof(int32_t) * size_t(std::max<int64_t>(R, 1))));
  for (int64_t r = 0; r < R; ++r) row_of[rows[r]] = int32_t(r);

  // Work items: (token, block of kBlock columns), so that decode (T = 1) still spreads over threads.
  constexpr int64_t kBlock = 512;
  const int64_t nblk = (H + kBlock - 1) / kBlock;
  const float* wts = a.topk_weights.ptr<const float>();
  const int64_t ws = a.topk_weights.strides[0], ys = a.permuted_y.strides[0], os = a.out.strides[0];
  dispatch_float(a.out.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* y = a.permuted_y.ptr<const T>();
    T* out = a.out.ptr<T>();
    parallel_for(ex, T_ * nblk, 1 + 8192 / (kBlock * (k + 1)), [&](int64_t i0, int64_t i1) {
      for (int64_t it = i0; it < i1; ++it) {
        const int64_t t = it / nblk, h0 = (it % nblk) * kBlock, h1 = std::min(H, h0 + kBlock);
        const float* w = wts + t * ws;
        const int32_t* rt = row_of + t * k;
        T* o = out + t * os;
        int64_t h = h0;
        for (; h + kW <= h1; h += kW) {
          vf acc = vzero();
          for (int64_t j = 0; j < k; ++j) acc = vfma(vset(w[j]), vload(y + rt[j] * ys + h), acc);
          vstore(o + h, acc);
        }
        if (h < h1) {
          const int n = int(h1 - h);
          vf acc = vzero();
          for (int64_t j = 0; j < k; ++j) acc = vfma(vset(w[j]), vload_n(y + rt[j] * ys + h, n), acc);
          vstore_n(o + h, acc, n);
        }
      }
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
