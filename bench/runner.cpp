// Times each benchmark case and prints the roofline table.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "bench.h"

namespace opdev::bench {

const Model& qwen3_0_6b() {
  static const Model m{"qwen3-0.6b", 1024, 16, 8, 128, 3072, 151936, 0, 0, 0};
  return m;
}
const Model& qwen3_30b_a3b() {
  static const Model m{"qwen3-30b-a3b", 2048, 32, 4, 128, 6144, 151936, 128, 8, 768};
  return m;
}
std::vector<const Model*> models() { return {&qwen3_0_6b(), &qwen3_30b_a3b()}; }
std::vector<int64_t> token_counts() { return {1, 4, 16, 512}; }

std::vector<BenchCase>& registry() {
  static std::vector<BenchCase> r;
  static bool built = false;
  if (!built) {
    built = true;
#define OPDEV_BENCH_FAMILY(family) register_##family();
#include "cases/families.def"
#undef OPDEV_BENCH_FAMILY
  }
  return r;
}

void add(BenchCase b) {
  if (b.c.name.empty()) b.c.name = b.model + " " + b.shape;
  registry().push_back(std::move(b));
}

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct CostCapture {
  double bytes = 0, flops = 0;
  int calls = 0;
};

void on_begin(void* user, const opdev_op_info* info) {
  auto* c = static_cast<CostCapture*>(user);
  c->bytes = info->bytes;
  c->flops = info->flops;
  ++c->calls;
}

template <class T>
bool contains(const std::vector<T>& v, const T& x) {
  return v.empty() || std::find(v.begin(), v.end(), x) != v.end();
}

std::string fmt(double x, int prec = 3) {
  char b[32];
  if (x == 0) return "-";
  std::snprintf(b, sizeof b, "%.*g", prec, x);
  return b;
}

}  // namespace

int run(const Options& o, FILE* out) {
  Context ctx(o.backend.c_str(), o.threads);
  const int threads = opdev_context_num_threads(ctx);
  std::fprintf(stderr, "measuring the machine (read bandwidth, FMA peak) with %d threads...\n", threads);
  const Machine before = measure_machine(threads);
  struct Row {
    const BenchCase* b;
    DLDataType dt;
    double t, bytes, flops;
    std::string error;
  };
  std::vector<Row> rows;
  CostCapture cap;
  opdev_profiler prof{&cap, on_begin, nullptr};
  int failures = 0;
  size_t total = 0;
  for (const BenchCase& b : registry())
    if (contains(o.ops, b.c.op) && contains(o.models, b.model) && contains(o.tokens, b.tokens)) total += b.c.dtypes.size();
  size_t done = 0;
  for (const BenchCase& b : registry()) {
    if (!contains(o.ops, b.c.op) || !contains(o.models, b.model) || !contains(o.tokens, b.tokens)) continue;
    const opdev_op op = opdev_op_from_name(b.c.op.c_str());
    for (DLDataType dt : b.c.dtypes) {
      ++done;
      if (std::none_of(o.dtypes.begin(), o.dtypes.end(), [&](DLDataType x) { return same_dtype(x, dt); })) continue;
      if (!opdev_supports(ctx, op, dt)) continue;
      Row row{&b, dt, 0, 0, 0, ""};
      try {
        conformance::Instance inst(b.c, ctx, dt);
        // One call with the profiler to capture the cost formula, then warm-up.
        check(opdev_context_set_profiler(ctx, &prof));
        check(inst.run());
        check(opdev_context_set_profiler(ctx, nullptr));
        check(inst.run());
        check(opdev_synchronize(ctx));
        // Repeat until min_seconds; report the median of batches.
        std::vector<double> times;
        double start = now();
        int batch = 1;
        while (true) {
          double t0 = now();
          for (int i = 0; i < batch; ++i) check(inst.run());
          check(opdev_synchronize(ctx));
          double dt_s = (now() - t0) / batch;
          times.push_back(dt_s);
          if (now() - start > o.min_seconds && times.size() >= 5) break;
          if (dt_s * batch < 1e-3) batch *= 2;
          if (times.size() > 10000) break;
        }
        std::sort(times.begin(), times.end());
        row.t = times[times.size() / 2];
        row.bytes = cap.bytes;
        row.flops = cap.flops;
      } catch (const std::exception& e) {
        opdev_context_set_profiler(ctx, nullptr);
        row.error = e.what();
        ++failures;
      }
      rows.push_back(row);
      std::fprintf(stderr, "\r[%zu/%zu] %-16s %-14s %-9s %10.2f us   ", done, total, b.c.op.c_str(), b.model.c_str(), dtype_str(dt),
                   row.t * 1e6);
    }
  }
  std::fprintf(stderr, "\nmeasuring the machine again...\n");
  // Measured before and after the cases: a shared machine can lose a core for a while, and a roofline
  // against a depressed measurement would flatter every op. The better of each is the reference.
  const Machine after = measure_machine(threads);
  Machine m = before;
  m.read_gbps = std::max(before.read_gbps, after.read_gbps);
  m.f32_gflops = std::max(before.f32_gflops, after.f32_gflops);
  m.bf16_gflops = std::max(before.bf16_gflops, after.bf16_gflops);
  m.i8_gops = std::max(before.i8_gops, after.i8_gops);
  auto bf16_str = [](const Machine& x) { return x.bf16_gflops > 0 ? fmt(x.bf16_gflops, 4) : std::string("n/a"); };
  auto i8_str = [](const Machine& x) { return x.i8_gops > 0 ? fmt(x.i8_gops, 4) : std::string("n/a"); };
  std::fprintf(out, "backend %s (%s), %d threads; measured before / after the cases: read %.1f / %.1f GB/s, float32 FMA %.0f / %.0f "
                    "GFLOP/s, bfloat16 dot %s / %s GFLOP/s, int8 dot %s / %s GOP/s (the larger is the reference)\n",
               o.backend.c_str(), opdev_context_describe(ctx), threads, before.read_gbps, after.read_gbps, before.f32_gflops, after.f32_gflops,
               bf16_str(before).c_str(), bf16_str(after).c_str(), i8_str(before).c_str(), i8_str(after).c_str());
  std::fprintf(out, "%-16s %-14s %-34s %-9s %10s %8s %9s %6s %6s %6s\n", "op", "model", "shape", "dtype", "time (us)", "GB/s",
               "GFLOP/s", "%bw", "%peak", "roof");
  if (o.csv)
    std::fprintf(o.csv, "op,model,tokens,shape,dtype,time_us,gbps,gflops,frac_bw,frac_peak,roofline_frac,read_gbps,peak_gflops\n");
  for (const Row& r : rows) {
    const BenchCase& b = *r.b;
    if (!r.error.empty()) {
      std::fprintf(out, "%-16s %-14s %-34s %-9s FAILED: %s\n", b.c.op.c_str(), b.model.c_str(), b.shape.c_str(), dtype_str(r.dt),
                   r.error.c_str());
      continue;
    }
    // The int8 products are int8 multiply-adds whatever their output dtype.
    const bool int8_op = b.c.op == "linear_w8a8" || b.c.op == "grouped_matmul_w8a8";
    const double peak = int8_op ? m.peak_int8_gops() : m.peak_gflops(r.dt);
    const double gbps = r.bytes / r.t / 1e9, gflops = r.flops / r.t / 1e9;
    const double fbw = gbps / m.read_gbps, fpk = gflops / peak;
    const double roof = std::max(r.bytes / (m.read_gbps * 1e9), r.flops / (peak * 1e9)) / r.t;
    std::fprintf(out, "%-16s %-14s %-34s %-9s %10.2f %8s %9s %5.0f%% %5.0f%% %5.0f%%\n", b.c.op.c_str(), b.model.c_str(), b.shape.c_str(),
                 dtype_str(r.dt), r.t * 1e6, fmt(gbps).c_str(), fmt(gflops).c_str(), 100 * fbw, 100 * fpk, 100 * roof);
    if (o.csv)
      std::fprintf(o.csv, "%s,%s,%lld,\"%s\",%s,%.3f,%.4g,%.4g,%.4f,%.4f,%.4f,%.4g,%.4g\n", b.c.op.c_str(), b.model.c_str(),
                   (long long)b.tokens, b.shape.c_str(), dtype_str(r.dt), r.t * 1e6, gbps, gflops, fbw, fpk, roof, m.read_gbps, peak);
  }
  std::fprintf(out, "(%%bw: achieved GB/s / measured read bandwidth; %%peak: GFLOP/s / measured peak for the dtype, the int8 dot peak "
                    "for the int8 products; roof: roofline time max(bytes/bw, flops/peak) / measured time; above 100%%: the working set "
                    "stays in cache)\n");
  return failures;
}

}  // namespace opdev::bench
