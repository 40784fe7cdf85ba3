// ref: sample, the contract of opdev_sample written out step by step in float64: a full sort of the row,
// top-k and top-p on the sorted order, then the exponential race over every kept token.
#include <algorithm>
#include <numeric>

#include "backends/ref/philox.h"
#include "backends/ref/ref_common.h"

namespace opdev::ref {

namespace {

// Greedy: the largest logit, the lowest index among equals; NaN ranks below every number.
int64_t argmax(const std::vector<double>& x) {
  int64_t best = 0;
  for (int64_t i = 1; i < int64_t(x.size()); ++i) {
    const double v = x[size_t(i)], b = x[size_t(best)];
    if (!std::isnan(v) && (std::isnan(b) || v > b)) best = i;
  }
  return best;
}

// The uniform draw of token i: u = ((x >> 8) + 0.5) / 2^24 from the first Philox word (exact in double).
double uniform(int64_t i, int64_t seed, int64_t step) {
  const uint64_t s = uint64_t(seed), t = uint64_t(step), ui = uint64_t(i);
  const auto w = philox4x32_10({uint32_t(ui), uint32_t(ui >> 32), uint32_t(t), uint32_t(t >> 32)}, {uint32_t(s), uint32_t(s >> 32)});
  return (double(w[0] >> 8) + 0.5) / 16777216.0;
}

int64_t sample_row(const std::vector<double>& x, double temperature, int64_t top_k, double top_p, int64_t seed, int64_t step) {
  const int64_t V = int64_t(x.size());
  if (temperature == 0) return argmax(x);
  // Scaled logits; a NaN logit has probability 0 (ranks with -inf).
  std::vector<double> l(x.size());
  for (size_t i = 0; i < x.size(); ++i) l[i] = std::isnan(x[i]) ? -INFINITY : x[i] / temperature;
  // Descending probability = descending scaled logit; ties toward the lower index.
  std::vector<int64_t> order(x.size());
  std::iota(order.begin(), order.end(), int64_t(0));
  std::sort(order.begin(), order.end(), [&](int64_t p, int64_t q) {
    return l[size_t(p)] > l[size_t(q)] || (l[size_t(p)] == l[size_t(q)] && p < q);
  });
  const int64_t k = top_k > 0 && top_k < V ? top_k : V;
  // Shifted logits l - max, with an infinite max shifting its own tokens to 0 (not inf - inf = NaN).
  const double m = l[size_t(order[0])];
  auto shifted = [&](int64_t i) { return l[size_t(i)] == m ? 0.0 : l[size_t(i)] - m; };
  // Unnormalised probabilities of the top-k survivors; top-p keeps the prefix whose mass before each
  // token is below top_p * total.
  int64_t kept = k;
  if (top_p < 1) {
    double total = 0;
    for (int64_t j = 0; j < k; ++j) total += std::exp(shifted(order[size_t(j)]));
    double before = 0;
    kept = 0;
    while (kept < k && before < top_p * total) before += std::exp(shifted(order[size_t(kept++)]));
  }
  // Exponential race: argmax over kept tokens of (l_i - max) - log(E_i), E_i = -log(u_i); ties toward
  // the lower index.
  int64_t best = -1;
  double best_v = 0;
  for (int64_t j = 0; j < kept; ++j) {
    const int64_t i = order[size_t(j)];
    const double v = shifted(i) - std::log(-std::log(uniform(i, seed, step)));
    if (best < 0 || v > best_v || (v == best_v && i < best)) {
      best = i;
      best_v = v;
    }
  }
  return best;
}

}  // namespace

opdev_status sample(ExecContext&, const sample_args& a) {
  const int64_t B = a.logits.size(0), V = a.logits.size(1);
  std::vector<double> x(size_t(V), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < V; ++i) x[size_t(i)] = get(a.logits, {b, i});
    const double temperature = get(a.temperature, {b}), top_p = get(a.top_p, {b});
    const int64_t top_k = get_index(a.top_k, {b}), seed = get_index(a.seeds, {b}), step = get_index(a.steps, {b});
    if (!(temperature >= 0 && std::isfinite(temperature)) || !(top_p > 0 && top_p <= 1))
      fail(OPDEV_STATUS_INVALID_ARGUMENT, "row ", b, ": temperature ", temperature, " or top_p ", top_p, " is out of range");
    set(a.ids_out, {b}, double(sample_row(x, temperature, top_k, top_p, seed, step)));
  }
  return OPDEV_STATUS_SUCCESS;
}

}  // namespace opdev::ref
