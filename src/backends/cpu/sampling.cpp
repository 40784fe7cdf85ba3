// cpu: sample. Rows are independent: each thread takes a contiguous block of rows with its own scratch
// (scaled logits l[V], probabilities e[V], candidate indices idx[V]).
//  - greedy rows: a vectorised NaN-ignoring max, then the first index holding it;
//  - top-k: the k best in one pass with a heap (whole vectors that cannot beat the heap's worst are
//    skipped), then sorted; nth_element + sort when k is large;
//  - top-p without top-k: the same selection of the best 1024, which usually holds the top_p mass;
//    otherwise the order grows in chunks (nth_element of the rest + sort) until the kept prefix ends;
//  - the exponential race visits candidates in descending logit order and stops as soon as no later one
//    can win: the noise term -log(E_i) is at most -log(-log(1 - 2^-25)) = 17.33, so a token with
//    l_i + 17.5 < best cannot reach the best race value. Without filters every token is a candidate
//    (same bound, index order). Philox runs only for tokens that pass the bound.
// Scaling and probabilities are float32 (vexp); sums, the top-p comparison and the race value are double
// (float32 or better, as the contract allows), which keeps near-ties with the float64 oracle rare.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backends/cpu/cpu_common.h"
#include "backends/cpu/philox.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

// Upper bound (with margin) of the race's noise term -log(-log(u)), u <= 1 - 2^-25.
constexpr double kMaxGumbel = 17.5;

struct RowParams {
  float temperature, top_p;
  int64_t top_k, seed, step;
};

struct RowScratch {
  float* l;       // [V] scaled logits (NaN -> -inf)
  float* e;       // [V] unnormalised probabilities
  uint32_t* idx;  // [V] candidate token indices
};

// Greedy: the largest logit, the lowest index among equals; NaN ranks below every number. One pass keeps
// the first block whose maximum beats every earlier block; the answer is the first index of the maximum
// in that block.
template <class T>
int64_t argmax(const T* x, int64_t V) {
  constexpr int64_t kBlock = 8 * kW;
  float m = -INFINITY;
  int64_t block = -1, i = 0;
  for (; i + kBlock <= V; i += kBlock) {
    vf acc = vset(-INFINITY);
    for (int64_t q = 0; q < kBlock; q += kW) acc = vmax(vload(x + i + q), acc);  // a NaN lane of x keeps acc
    const float bm = hmax(acc);
    if (bm > m) {
      m = bm;
      block = i;
    }
  }
  int64_t best = -1;
  if (block >= 0)
    for (int64_t j = block; j < block + kBlock && best < 0; ++j)
      if (to_f32(x[j]) == m) best = j;
  for (; i < V; ++i) {  // tail: strictly greater only, so the earlier index keeps ties
    const float v = to_f32(x[i]);
    if (v > m) {
      m = v;
      best = i;
    }
  }
  if (best >= 0) return best;
  // Every value is -inf or NaN: the first -inf, else (all NaN) index 0.
  for (i = 0; i < V; ++i)
    if (to_f32(x[i]) == -INFINITY) return i;
  return 0;
}

// l = x / temperature in float32, NaN -> -inf (probability 0); returns max(l).
template <class T>
float scale_row(const T* x, int64_t V, float temperature, float* l) {
  const vf t = vset(temperature), ninf = vset(-INFINITY);
  vf acc = ninf;
  int64_t i = 0;
  for (; i + kW <= V; i += kW) {
    const vf y = vmax(vload(x + i) / t, ninf);  // NaN lanes become -inf
    vstore(l + i, y);
    acc = vmax(acc, y);
  }
  float m = hmax(acc);
  for (; i < V; ++i) {
    float v = to_f32(x[i]) / temperature;
    if (std::isnan(v)) v = -INFINITY;
    l[i] = v;
    if (v > m) m = v;
  }
  return m;
}

// l - m with an infinite max shifting its own tokens to 0 (not inf - inf = NaN).
inline double shifted(float l, float m) { return l == m ? 0.0 : double(l) - double(m); }

// e[j] = exp(lv[j] - m) (in place allowed); an infinite m gives 1 to its own tokens and 0 to the rest.
void unnormalised_probs(const float* lv, float* e, int64_t n, float m) {
  if (std::isinf(m)) {
    for (int64_t j = 0; j < n; ++j) e[j] = lv[j] == m ? 1.0f : 0.0f;
    return;
  }
  const vf vm = vset(m);
  int64_t j = 0;
  for (; j + kW <= n; j += kW) vstore(e + j, vexp(vload(lv + j) - vm));
  if (j < n) vstore_n(e + j, vexp(vload_n(lv + j, int(n - j)) - vm), int(n - j));
}

// Sum in double of float32 blocks (fixed by n, not by the thread count).
double sum(const float* e, int64_t n) {
  constexpr int64_t kBlock = 16 * kW;
  double total = 0;
  int64_t j = 0;
  for (; j + kBlock <= n; j += kBlock) {
    vf acc = vzero();
    for (int64_t q = 0; q < kBlock; q += kW) acc = acc + vload(e + j + q);
    total += double(hsum(acc));
  }
  for (; j < n; ++j) total += double(e[j]);
  return total;
}

// The race's noise term -log(E_i) = -log(-log(u_i)) of token i, u_i from the first Philox word.
inline double gumbel(int64_t i, const RowParams& p) {
  const uint64_t ui = uint64_t(i), s = uint64_t(p.seed), t = uint64_t(p.step);
  const Philox4x32 w = philox4x32_10(uint32_t(ui), uint32_t(ui >> 32), uint32_t(t), uint32_t(t >> 32), uint32_t(s), uint32_t(s >> 32));
  const double u = (double(w.w[0] >> 8) + 0.5) * (1.0 / 16777216.0);
  return -std::log(-std::log(u));
}

// Race state: best value so far, ties toward the lower index.
struct Race {
  int64_t best = -1;
  double value = -INFINITY;
  void offer(int64_t i, double v) {
    if (best < 0 || v > value || (v == value && i < best)) {
      best = i;
      value = v;
    }
  }
};

// Race over candidates idx[0..n) sorted by descending l: stops once no later candidate can win.
int64_t race_sorted(const uint32_t* idx, int64_t n, const float* l, float m, const RowParams& p) {
  Race r;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = idx[j];
    const double sh = shifted(l[i], m);
    if (r.best >= 0 && sh + kMaxGumbel < r.value) break;
    r.offer(i, sh + gumbel(i, p));
  }
  return r.best;
}

// Race over every token, in index order, skipping those the bound rules out (seeded with an argmax
// token, whose value bounds the winner's from below).
int64_t race_all(const float* l, int64_t V, float m, const RowParams& p) {
  Race r;
  int64_t top = 0;
  while (l[top] != m) ++top;
  r.offer(top, shifted(l[top], m) + gumbel(top, p));
  for (int64_t i = 0; i < V; ++i) {
    const double sh = shifted(l[i], m);
    if (i == top || sh + kMaxGumbel < r.value) continue;
    r.offer(i, sh + gumbel(i, p));
  }
  return r.best;
}

// Descending probability = descending scaled logit; ties toward the lower index.
struct Ahead {
  const float* l;
  bool operator()(uint32_t i, uint32_t j) const { return l[i] > l[j] || (l[i] == l[j] && i < j); }
};

// The n best tokens (0 < n <= V) into idx[0..n), sorted. Small n: one pass with a heap of the n best so
// far, skipping whole vectors that cannot beat its worst (the scan goes up in index order, so a token
// equal to the worst ranks behind it). Large n: nth_element + sort.
void select_top(const float* l, int64_t V, int64_t n, uint32_t* idx) {
  const Ahead ahead{l};
  if (n > 4096 || 4 * n > V) {
    std::iota(idx, idx + V, 0u);
    if (n < V) std::nth_element(idx, idx + n, idx + V, ahead);
    std::sort(idx, idx + n, ahead);
    return;
  }
  std::iota(idx, idx + n, 0u);
  std::make_heap(idx, idx + n, ahead);  // front: the worst of the n kept
  float worst = l[idx[0]];
  auto offer = [&](uint32_t j) {
    if (!(l[j] > worst)) return;
    std::pop_heap(idx, idx + n, ahead);
    idx[n - 1] = j;
    std::push_heap(idx, idx + n, ahead);
    worst = l[idx[0]];
  };
  int64_t i = n;
  for (; i + kW <= V; i += kW)
    if (hmax(vload(l + i)) > worst)
      for (int q = 0; q < kW; ++q) offer(uint32_t(i + q));
  for (; i < V; ++i) offer(uint32_t(i));
  std::sort_heap(idx, idx + n, ahead);
}

// Top-p over sorted candidates idx[from..to): keeps each while the mass before it is below `limit`.
// Returns where the kept prefix ends, or -1 if it may go on past `to` (the mass is still below).
template <class Mass>
int64_t top_p_scan(int64_t from, int64_t to, double limit, double& before, Mass mass) {
  for (int64_t j = from; j < to; ++j) {
    if (!(before < limit)) return j;
    before += mass(j);
  }
  return before < limit ? -1 : to;
}

// Mass of the tokens with l >= t (float32 blocks summed in double).
double mass_at_least(const float* l, const float* e, int64_t V, float t) {
  constexpr int64_t kBlock = 16 * kW;
  const vf vt = vset(t), zero = vzero();
  double total = 0;
  int64_t i = 0;
  for (; i + kBlock <= V; i += kBlock) {
    vf acc = zero;
    for (int64_t q = 0; q < kBlock; q += kW) acc = acc + vselect_lt(vload(l + i + q), vt, zero, vload(e + i + q));
    total += double(hsum(acc));
  }
  for (; i < V; ++i)
    if (l[i] >= t) total += double(e[i]);
  return total;
}

// A threshold t whose tokens (l >= t) hold at least `limit` of the mass: m - 1, m - 2, ... m - 64 (exp(-64)
// is far below float32 resolution of the mass), else -inf (every token).
float mass_threshold(const float* l, const float* e, int64_t V, float m, double limit) {
  if (std::isinf(m)) return m;  // all the mass sits on the tokens equal to m (or all are -inf)
  for (float c = 1; c <= 64; c *= 2)
    if (mass_at_least(l, e, V, m - c) >= limit) return m - c;
  return -INFINITY;
}

// Indices of the tokens with l >= t, in index order, into idx; returns their count.
int64_t collect_at_least(const float* l, int64_t V, float t, uint32_t* idx) {
  int64_t n = 0, i = 0;
  for (; i + kW <= V; i += kW)
    if (hmax(vload(l + i)) >= t)
      for (int q = 0; q < kW; ++q)
        if (l[i + q] >= t) idx[n++] = uint32_t(i + q);
  for (; i < V; ++i)
    if (l[i] >= t) idx[n++] = uint32_t(i);
  return n;
}

// Top-p over candidates idx[from..to) (which follow every earlier candidate in the order), sorted
// progressively: the next 1024, 4096, ... candidates by nth_element, then sort, until the prefix ends.
// Returns where the kept prefix ends, or -1 if it may go on past `to`.
template <class Mass>
int64_t sorted_scan(uint32_t* idx, int64_t from, int64_t to, double limit, double& before, Mass mass, const Ahead& ahead) {
  int64_t sorted = from, chunk = 1024;
  while (sorted < to) {
    const int64_t next = std::min(to, sorted + chunk);
    if (next < to) std::nth_element(idx + sorted, idx + next, idx + to, ahead);
    std::sort(idx + sorted, idx + next, ahead);
    const int64_t kept = top_p_scan(sorted, next, limit, before, mass);
    if (kept >= 0) return kept;
    sorted = next;
    chunk *= 4;
  }
  return -1;
}

template <class T>
int64_t sample_row(const T* x, int64_t V, const RowParams& p, const RowScratch& s) {
  if (p.temperature == 0) return argmax(x, V);
  const float* l = s.l;
  const float m = scale_row(x, V, p.temperature, s.l);
  const int64_t k = p.top_k > 0 && p.top_k < V ? p.top_k : V;
  const bool use_p = p.top_p < 1.0f;
  if (k == V && !use_p) return race_all(l, V, m, p);
  uint32_t* idx = s.idx;
  int64_t kept = k;
  if (k < V) {
    select_top(l, V, k, idx);
    if (use_p) {
      // Probabilities over the k survivors, in sorted order.
      for (int64_t j = 0; j < k; ++j) s.e[j] = l[idx[j]];
      unnormalised_probs(s.e, s.e, k, m);
      double before = 0;
      kept = top_p_scan(0, k, double(p.top_p) * sum(s.e, k), before, [&](int64_t j) { return double(s.e[j]); });
      if (kept < 0) kept = k;
    }
  } else {
    // Top-p over all V: only tokens with l >= t for a threshold t whose tokens hold the top_p mass are
    // collected and sorted (progressively); in the rare case that float rounding left them short, the
    // rest follows.
    unnormalised_probs(l, s.e, V, m);
    const double limit = double(p.top_p) * sum(s.e, V);
    const float t = mass_threshold(l, s.e, V, m, limit);
    const Ahead ahead{l};
    auto mass = [&](int64_t j) { return double(s.e[idx[j]]); };
    const int64_t n = collect_at_least(l, V, t, idx);
    double before = 0;
    kept = sorted_scan(idx, 0, n, limit, before, mass, ahead);
    if (kept < 0 && n < V) {
      std::iota(idx, idx + V, 0u);
      std::partition(idx, idx + V, [&](uint32_t i) { return l[i] >= t; });
      std::sort(idx, idx + n, ahead);
      kept = sorted_scan(idx, n, V, limit, before, mass, ahead);
    }
    if (kept < 0) kept = V;
  }
  return race_sorted(idx, kept, l, m, p);
}

}  // namespace

opdev_status sample(ExecContext& ex, const sample_args& a) {
  const int64_t B = a.logits.size(0), V = a.logits.size(1);
  // One scratch slot per thread; each thread takes a contiguous block of rows.
  const int64_t slots = std::min<int64_t>(B, std::max(1, ex.num_threads));
  const size_t slot_bytes = (size_t(V) * (2 * sizeof(float) + sizeof(uint32_t)) + 63) / 64 * 64;
  char* scratch = static_cast<char*>(ex.scratch(slot_bytes * size_t(slots)));
  const int64_t row_stride = a.logits.strides[0];
  int32_t* ids = a.ids_out.ptr<int32_t>();
  dispatch_float(a.logits.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* logits = a.logits.ptr<const T>();
    parallel_for(ex, slots, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t slot = s0; slot < s1; ++slot) {
        char* base = scratch + size_t(slot) * slot_bytes;
        const RowScratch s{reinterpret_cast<float*>(base), reinterpret_cast<float*>(base) + V,
                           reinterpret_cast<uint32_t*>(reinterpret_cast<float*>(base) + 2 * V)};
        for (int64_t b = B * slot / slots; b < B * (slot + 1) / slots; ++b) {
          const RowParams p{a.temperature.ptr<const float>()[b], a.top_p.ptr<const float>()[b],
                            int64_t(a.top_k.ptr<const int32_t>()[b]), a.seeds.ptr<const int64_t>()[b],
                            a.steps.ptr<const int64_t>()[b]};
          ids[b] = int32_t(sample_row(logits + b * row_stride, V, p, s));
        }
      }
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
