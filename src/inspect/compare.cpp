// Metrics of one tensor against a reference, the per-op tolerance rule of `opdev compare`, and the pairing
// of two runs call by call.
#include <algorithm>
#include <cmath>

#include "inspect/inspect.h"

namespace opdev::inspect {

Metrics metrics(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    throw InspectError("metrics: " + std::to_string(a.size()) + " values against " + std::to_string(b.size()) + " reference values");
  Metrics m;
  m.n = int64_t(a.size());
  double se = 0, sr = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], r = b[i];
    m.nan_a += std::isnan(x);
    m.inf_a += std::isinf(x);
    m.nan_b += std::isnan(r);
    m.inf_b += std::isinf(r);
    const bool fx = std::isfinite(x), fr = std::isfinite(r);
    if (!(x == r || (std::isnan(x) && std::isnan(r)))) ++m.mismatches;
    if (fx && fr) {
      se += (x - r) * (x - r);
      sr += r * r;
    } else if (!(std::isnan(x) && std::isnan(r)) && x != r) {
      ++m.nonfinite_mismatch;
    }
  }
  m.nmse = sr > 0 ? se / sr : (se > 0 ? INFINITY : 0.0);
  const double floor = std::max(kRelFloorFraction * std::sqrt(sr / double(std::max<int64_t>(m.n, 1))), 1e-300);
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
    const double d = std::fabs(a[i] - b[i]);
    m.max_abs = std::max(m.max_abs, d);
    m.max_rel = std::max(m.max_rel, d / std::max(std::fabs(b[i]), floor));
  }
  return m;
}

// The NMSE bound at an op's output, by the less precise compute dtype of the pair.
//
// Why a bound on the NMSE at each op's output (the error accumulated from the embedding up to and including
// this op) rather than on each op's own error: the two runs are whole forwards, so an op's inputs on side
// A already carry every upstream difference, and an op's output error is its own error plus what it
// propagates. What compare can check from one pair of forwards is that the accumulated error never leaves
// the band that rounding in the compared dtype produces: the first op that leaves it is where something
// went wrong (a kernel bug, an overflow, a wrong argument), and everything after it inherits the damage.
// An op's error in isolation is what `opdev replay` measures: it re-runs one dumped call on its recorded
// inputs against the float64 reference with the op's conformance tolerance.
//
// The bounds come from measurements (docs/ARCHITECTURE.md, "Precision debugging", has the table): cpu
// against ref:float32 on the synthetic checkpoints of `opdev make-model` (tiny, tiny-moe, and the
// 28-layer qwen3-0.6b shape), a prompt of 10-20 tokens and a few decode steps. Worst per-op NMSE over all
// ops, layers and steps:
//   float32   ~2e-12 (0.6b shape)            bound 1e-8: far above float32 rounding, and 1e4 below the 1e-4
//                                            that a 1% error in one op (--perturb's default) gives
//   float16   ~1.1e-5 (0.6b), 8e-6 (tiny-moe) bound 5e-4: ~45x the worst measured
//   bfloat16  ~7.2e-4 (0.6b), 3.8e-4 (tiny)   bound 3e-2: ~40x the worst measured
// (bfloat16's unit roundoff is 8x float16's, so its NMSE is ~64x: the measured ratio is ~65.)
// The bounds find where a run departs from the reference; they are not an accuracy guarantee. Integer
// outputs (expert ids, rows, offsets) are compared exactly. --tol overrides the bound.
double nmse_tolerance(DLDataType a, DLDataType b) {
  auto rank = [](DLDataType t) { return same_dtype(t, kBFloat16) ? 3 : same_dtype(t, kFloat16) ? 2 : same_dtype(t, kFloat64) ? 0 : 1; };
  const int r = std::max(rank(a), rank(b));
  switch (r) {
    case 3: return 3e-2;
    case 2: return 5e-4;
    default: return 1e-8;
  }
}

std::string layer_of(const std::string& label) {
  if (label.compare(0, 7, "layers.") == 0) {
    size_t i = 7;
    while (i < label.size() && label[i] >= '0' && label[i] <= '9') ++i;
    if (i > 7 && (i == label.size() || label[i] == '.')) return label.substr(0, i);
  }
  return label;
}

std::vector<CallResult> compare_calls(const std::vector<CapturedCall>& a, const std::vector<CapturedCall>& b, double tol,
                                      const std::vector<int>& step_of_call) {
  std::vector<CallResult> out;
  const size_t n = std::min(a.size(), b.size());
  auto where = [](const CapturedCall& c) { return std::string(opdev_op_name(c.op)) + " at '" + c.label + "'"; };
  for (size_t i = 0; i < n; ++i) {
    const CapturedCall &x = a[i], &y = b[i];
    if (x.op != y.op || x.label != y.label)
      throw InspectError("the graphs differ at op call " + std::to_string(i) + ": A ran " + where(x) + ", B ran " + where(y));
    if (x.outputs.size() != y.outputs.size())
      throw InspectError("the graphs differ at op call " + std::to_string(i) + " (" + where(x) + "): A has " +
                         std::to_string(x.outputs.size()) + " outputs, B " + std::to_string(y.outputs.size()));
    CallResult r;
    r.index = x.index;
    r.op = x.op;
    r.label = x.label;
    r.step = i < step_of_call.size() ? step_of_call[i] : 0;
    for (size_t k = 0; k < x.outputs.size(); ++k) {
      const CapturedOutput &p = x.outputs[k], &q = y.outputs[k];
      if (p.name != q.name || p.shape != q.shape)
        throw InspectError("the graphs differ at op call " + std::to_string(i) + " (" + where(x) + "): A's output '" + p.name + "' " +
                           shape_str(p.shape) + ", B's '" + q.name + "' " + shape_str(q.shape));
      OutputResult o;
      o.name = p.name;
      o.dtype_a = p.dtype;
      o.dtype_b = q.dtype;
      o.shape = p.shape;
      o.m = metrics(p.values, q.values);
      o.exact = is_integer(p.dtype) || is_integer(q.dtype);
      o.exceeds = o.exact ? o.m.mismatches > 0 : (o.m.nonfinite_mismatch > 0 || o.m.nmse > tol);
      if (!o.exact) r.worst_nmse = std::max(r.worst_nmse, o.m.nmse);
      r.exceeds = r.exceeds || o.exceeds;
      r.outputs.push_back(std::move(o));
    }
    out.push_back(std::move(r));
  }
  if (a.size() != b.size()) {
    const bool a_longer = a.size() > b.size();
    const CapturedCall& extra = a_longer ? a[n] : b[n];
    throw InspectError("the graphs differ: A ran " + std::to_string(a.size()) + " op calls, B " + std::to_string(b.size()) + "; call " +
                       std::to_string(n) + " (" + where(extra) + ") exists only in " + (a_longer ? "A" : "B"));
  }
  return out;
}

}  // namespace opdev::inspect
