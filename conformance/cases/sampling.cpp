// Conformance cases of sample. ids_out is an integer output, so every draw must equal the float64 ref's:
// greedy rows (ties, NaN), temperature rows through top-k, top-p, both and neither, across dtypes, strided
// rows, the full Qwen3 vocabulary, and rows whose settings differ within one batch. The Philox stream
// itself is checked against the Random123 known-answer vectors separately (unit test).
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

// One row's sampling parameters.
struct Row {
  double temperature;
  int64_t top_k;
  double top_p;
  int64_t seed, step;
};

// Fills per-row parameter tensors of `rows`.
template <class F>
std::vector<double> column(const std::vector<Row>& rows, F f) {
  std::vector<double> v;
  for (const Row& r : rows) v.push_back(double(f(r)));
  return v;
}

Case& sample_case(const std::string& name, int64_t V, const std::vector<Row>& rows, Generator logits, int64_t pad = 0,
                  bool large = false) {
  const int64_t B = int64_t(rows.size());
  Case c;
  c.op = "sample";
  c.name = name + " B=" + std::to_string(B) + " V=" + std::to_string(V) + (pad ? " strided" : "");
  c.large = large;
  c.output("ids_out", {B}).dtype(kInt32);
  c.input("logits", {B, V}).values(std::move(logits)).strided(pad);
  c.input("temperature", {B}).dtype(kFloat32).values(column(rows, [](const Row& r) { return r.temperature; }));
  c.input("top_k", {B}).dtype(kInt32).values(column(rows, [](const Row& r) { return r.top_k; }));
  c.input("top_p", {B}).dtype(kFloat32).values(column(rows, [](const Row& r) { return r.top_p; }));
  c.input("seeds", {B}).dtype(kInt64).values(column(rows, [](const Row& r) { return r.seed; }));
  c.input("steps", {B}).dtype(kInt64).values(column(rows, [](const Row& r) { return r.step; }));
  c.call = [](Call& k) {
    return opdev_sample(k.ctx, k["ids_out"], k["logits"], k["temperature"], k["top_k"], k["top_p"], k["seeds"], k["steps"]);
  };
  add(std::move(c));
  return registry().cases.back();
}

Generator normal_logits(double stddev) {
  return [stddev](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = stddev * r.normal();
  };
}

// Small integers: many exact ties in every dtype.
Generator tied_logits(int levels) {
  return [levels](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = double(r.next() % uint64_t(levels));
  };
}

// `n` rows of the same settings with distinct seeds and steps.
std::vector<Row> rows_of(int n, double temperature, int64_t top_k, double top_p) {
  std::vector<Row> rows;
  for (int i = 0; i < n; ++i) rows.push_back({temperature, top_k, top_p, 1000 + 7919 * int64_t(i), int64_t(i) * 13});
  return rows;
}

// A batch mixing every kind of row.
std::vector<Row> mixed_rows(int64_t V) {
  return {{0, 0, 1, 1, 0},        {1, 0, 1, 2, 1},        {0.7, 50, 1, 3, 2},           {0.7, 0, 0.9, 4, 3},
          {0.7, 50, 0.9, 5, 4},   {1.3, 1, 1, 6, 5},      {1, V, 0.5, 7, 6},            {1, V + 10, 1, 8, 7},
          {1, -1, 0.99, 9, 8},    {0.25, 5, 0.3, 10, 9},  {2, 0, 0.05, 11, 10},         {0, 5, 0.5, 12, 11},
          {1, 0, 1, -1, int64_t(1) << 40},                {1, 20, 0.8, int64_t(1) << 53, -3},
          {1, 3, 1, 123456789012345, 4294967296},         {0.5, 0, 1, 0, 0}};
}

}  // namespace

void register_sampling() {
  // Greedy.
  for (int64_t V : {1, 7, 33, 769, 5125}) sample_case("greedy", V, rows_of(4, 0, 0, 1), normal_logits(3));
  sample_case("greedy ties", 769, rows_of(4, 0, 0, 1), tied_logits(3));
  sample_case("greedy NaN", 33, rows_of(4, 0, 0, 1), [](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = r.normal();
    v[0] = NAN;                                 // row 0: a NaN among numbers never wins
    v[5] = NAN;
    for (int i = 33; i < 66; ++i) v[i] = NAN;   // row 1: all NaN -> 0
    for (int i = 66; i < 99; ++i) v[i] = i % 3 ? NAN : -INFINITY;  // row 2: -inf ranks above NaN
    v[99 + 7] = INFINITY;                       // row 3: +inf wins
  });
  // Temperature only, top-k only, top-p only, both.
  for (int64_t V : {7, 33, 769, 5125}) {
    sample_case("temperature", V, rows_of(8, 0.8, 0, 1), normal_logits(2));
    sample_case("top-k", V, rows_of(8, 1.0, 5, 1), normal_logits(2));
    sample_case("top-p", V, rows_of(8, 0.9, 0, 0.9), normal_logits(2));
    sample_case("top-k top-p", V, rows_of(8, 0.7, 50, 0.8), normal_logits(2));
  }
  for (int64_t k : {1, 2, 768, 769, 770, 0, -5}) sample_case("top-k=" + std::to_string(k), 769, rows_of(4, 1.0, k, 1), normal_logits(2));
  for (double p : {0.01, 0.3, 0.5, 0.99, 1.0})
    sample_case("top-p=" + std::to_string(p).substr(0, 4), 769, rows_of(4, 1.0, 0, p), normal_logits(2));
  // Peaked logits (top-p keeps a few tokens) and flat ones (the kept prefix passes several sort chunks).
  sample_case("peaked top-p", 5125, rows_of(6, 1.0, 0, 0.95), normal_logits(8));
  sample_case("flat top-p", 5125, rows_of(6, 1.0, 0, 0.95), normal_logits(0.05));
  sample_case("flat top-k top-p", 5125, rows_of(6, 1.0, 3000, 0.95), normal_logits(0.05));
  // Ties with temperature: the race and top-k must break them the same way.
  sample_case("ties", 769, rows_of(8, 1.0, 0, 1), tied_logits(4));
  sample_case("ties top-k", 769, rows_of(8, 1.0, 100, 1), tied_logits(4));
  sample_case("ties top-p", 769, rows_of(8, 1.0, 0, 0.5), tied_logits(4));
  // Equal logits: the exact top-p boundary (mass before the token must be below top_p).
  sample_case("uniform top-p=0.5", 4, rows_of(8, 1.0, 0, 0.5), [](std::vector<double>& v, uint64_t) {
    for (double& x : v) x = 1.0;
  });
  // NaN logits in sampled rows have probability 0; a row of -inf but one token.
  sample_case("NaN in sampled rows", 33, rows_of(4, 1.0, 0, 0.9), [](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = r.normal();
    for (int i = 0; i < 33; i += 2) v[i] = NAN;
    for (int i = 33; i < 66; ++i) v[i] = -INFINITY;
    v[33 + 20] = 0.5;
  });
  sample_case("V=1", 1, mixed_rows(1), normal_logits(1));
  sample_case("mixed", 769, mixed_rows(769), normal_logits(2));
  sample_case("mixed", 5125, mixed_rows(5125), normal_logits(3), 3);
  sample_case("zero rows", 769, {}, normal_logits(1));
  // Qwen3 vocabulary (both models): 151936 tokens.
  for (int B : {1, 4}) sample_case("qwen3 greedy", 151936, rows_of(B, 0, 0, 1), normal_logits(3));
  sample_case("qwen3 top-k=50 top-p=0.9", 151936, rows_of(4, 0.7, 50, 0.9), normal_logits(3));
  sample_case("qwen3 top-k=4000", 151936, rows_of(2, 1.0, 4000, 1), normal_logits(0.05));
  sample_case("qwen3 flat top-p=0.9", 151936, rows_of(1, 1.0, 0, 0.9), normal_logits(0.05));
  sample_case("qwen3 top-p=0.9", 151936, rows_of(2, 1.0, 0, 0.9), normal_logits(3), 0, true);
  sample_case("qwen3 temperature", 151936, rows_of(2, 1.0, 0, 1), normal_logits(3), 0, true);
  sample_case("qwen3 mixed", 151936, mixed_rows(151936), normal_logits(4), 16, true);

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE;
  // A valid call for B = 2, V = 8 with one argument replaced.
  struct Args {
    const DLTensor *ids, *logits, *temperature, *top_k, *top_p, *seeds, *steps;
  };
  auto valid = [](E& e) {
    return Args{e.tensor({2}, kInt32),          e.tensor({2, 8}, e.act),       e.tensor({2}, kFloat32, {0.7}), e.tensor({2}, kInt32, {5}),
                e.tensor({2}, kFloat32, {0.9}), e.tensor({2}, kInt64, {1, 2}), e.tensor({2}, kInt64, {0, 1})};
  };
  auto call = [](E& e, const Args& a) {
    return opdev_sample(e.ctx(), a.ids, a.logits, a.temperature, a.top_k, a.top_p, a.seeds, a.steps);
  };
  auto err = [&](const char* name, opdev_status st, const char* msg, std::function<void(E&, Args&)> edit, bool host = false) {
    add_error("sample", name, st, msg, [valid, call, edit](E& e) {
      Args a = valid(e);
      edit(e, a);
      return call(e, a);
    }, host);
  };
  add_error("sample", "NULL context", INV, "ctx: expected a context, got NULL", [valid](E& e) {
    Args a = valid(e);
    return opdev_sample(nullptr, a.ids, a.logits, a.temperature, a.top_k, a.top_p, a.seeds, a.steps);
  });
  err("NULL logits", INV, "logits: expected a tensor, got NULL", [](E&, Args& a) { a.logits = nullptr; });
  err("NULL ids_out", INV, "ids_out: expected a tensor, got NULL", [](E&, Args& a) { a.ids = nullptr; });
  err("NULL seeds", INV, "seeds: expected a tensor, got NULL", [](E&, Args& a) { a.seeds = nullptr; });
  err("wrong rank of logits", INV, "logits: expected rank 2, got rank 1", [](E& e, Args& a) { a.logits = e.tensor({8}, e.act); });
  err("empty vocabulary", INV, "logits: expected a vocabulary of at least one token (V >= 1), got shape [2, 0]",
      [](E& e, Args& a) { a.logits = e.tensor({2, 0}, e.act); });
  err("integer logits", DT, "logits: expected dtype float32 | bfloat16 | float16 | float64, got int32",
      [](E& e, Args& a) { a.logits = e.tensor({2, 8}, kInt32); });
  err("ids_out size differs", INV, "ids_out: expected shape [2], got [3]", [](E& e, Args& a) { a.ids = e.tensor({3}, kInt32); });
  err("temperature size differs", INV, "temperature: expected shape [2], got [1]",
      [](E& e, Args& a) { a.temperature = e.tensor({1}, kFloat32, {1}); });
  err("top_k size differs", INV, "top_k: expected shape [2], got [2, 1]", [](E& e, Args& a) { a.top_k = e.tensor({2, 1}, kInt32); });
  err("top_p size differs", INV, "top_p: expected shape [2], got [4]", [](E& e, Args& a) { a.top_p = e.tensor({4}, kFloat32, {0.5}); });
  err("steps size differs", INV, "steps: expected shape [2], got [0]", [](E& e, Args& a) { a.steps = e.tensor({0}, kInt64); });
  err("int64 ids_out", DT, "ids_out: expected dtype int32, got int64", [](E& e, Args& a) { a.ids = e.tensor({2}, kInt64); });
  err("float16 temperature", DT, "temperature: expected dtype float32, got float16",
      [](E& e, Args& a) { a.temperature = e.tensor({2}, kFloat16, {1}); });
  err("int64 top_k", DT, "top_k: expected dtype int32, got int64", [](E& e, Args& a) { a.top_k = e.tensor({2}, kInt64); });
  err("float64 top_p", DT, "top_p: expected dtype float32, got float64", [](E& e, Args& a) { a.top_p = e.tensor({2}, kFloat64, {1}); });
  err("int32 seeds", DT, "seeds: expected dtype int64, got int32", [](E& e, Args& a) { a.seeds = e.tensor({2}, kInt32); });
  err("float steps", DT, "steps: expected dtype int64, got float32", [](E& e, Args& a) { a.steps = e.tensor({2}, kFloat32); });
  err("non-contiguous last dimension of logits", INV, "logits: expected the last dimension to be contiguous (stride 1), got stride 2",
      [](E& e, Args& a) { a.logits = e.strided({2, 8}, {16, 2}, e.act); });
  err("strided temperature", INV, "temperature: expected a contiguous tensor, got strides [2]",
      [](E& e, Args& a) { a.temperature = e.strided({2}, {2}, kFloat32); });
  err("ids_out with stride 0", INV, "ids_out: expected a contiguous tensor, got strides [0]",
      [](E& e, Args& a) { a.ids = e.strided({2}, {0}, kInt32); });
  add_error("sample", "ids_out overlaps top_k", INV, "ids_out: must not overlap top_k (forbidden aliasing)", [valid, call](E& e) {
    Args a = valid(e);
    a.ids = a.top_k;
    return call(e, a);
  });
  add_error("sample", "ids_out inside logits", INV, "ids_out: must not overlap logits (forbidden aliasing)", [valid, call](E& e) {
    Args a = valid(e);
    TensorRef ids(a.logits->data, kInt32, {2}, {}, a.logits->device, a.logits->byte_offset);
    a.ids = ids;
    return call(e, a);
  });
  err("NULL data", INV, "logits: data is NULL but the tensor has 16 elements", [](E& e, Args& a) { a.logits = e.null_data({2, 8}, e.act); });
  err("size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "logits: the element count of shape", [](E& e, Args& a) {
    const int64_t big = int64_t(1) << 40;
    a.logits = e.huge({big, big}, e.act);
  });
  err("vocabulary beyond int32 ids", INV, "logits: V = 4294967296 token ids do not fit the int32 ids_out",
      [](E& e, Args& a) { a.logits = e.huge({2, int64_t(1) << 32}, e.act); });
  // Per-row values (checked on host-visible data).
  err("negative temperature", INV, "temperature[1] = -0.5 is outside [0, inf)",
      [](E& e, Args& a) { a.temperature = e.tensor({2}, kFloat32, {1, -0.5}); }, true);
  err("NaN temperature", INV, "temperature[0] = nan is outside [0, inf)", [](E& e, Args& a) { a.temperature = e.tensor({2}, kFloat32, {NAN, 1}); },
      true);
  err("infinite temperature", INV, "temperature[1] = inf is outside [0, inf)",
      [](E& e, Args& a) { a.temperature = e.tensor({2}, kFloat32, {1, INFINITY}); }, true);
  err("top_p zero", INV, "top_p[0] = 0 is outside (0, 1]", [](E& e, Args& a) { a.top_p = e.tensor({2}, kFloat32, {0, 1}); }, true);
  err("top_p above 1", INV, "top_p[1] = 1.5 is outside (0, 1]", [](E& e, Args& a) { a.top_p = e.tensor({2}, kFloat32, {1, 1.5}); }, true);
  err("top_p NaN", INV, "top_p[1] = nan is outside (0, 1]", [](E& e, Args& a) { a.top_p = e.tensor({2}, kFloat32, {0.5, NAN}); }, true);
}

}  // namespace opdev::conformance
