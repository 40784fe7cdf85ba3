// Times each benchmark case and prints the roofline table.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "bench.h"
#ifdef OPDEV_WITH_CUDA
#include "cuda_roofline.h"
#endif

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

bool on_host(opdev_context* ctx) { return opdev_context_device(ctx).device_type == kDLCPU; }

uint64_t fnv(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A case's tensors on the context's device for timing, made fast. The conformance harness's Instance
// generates every value in float64 on one host thread and keeps float64 copies (about 10-20 M elements/s):
// minutes for the device cases' gigabytes. Here index data (integer tensors) and small tensors get their
// generator's exact values, but a large float or int8 tensor gets the first 2^20 values of its generator
// (same distribution) uploaded once and repeated through the buffer by device-to-device copies (doubling).
// Repetition does not change what the kernels do; the values of a timing run only have to be realistic.
// Outputs are left as allocated (every op writes its outputs). Layouts (strided rows, aliases) are the
// case's, as in the conformance harness.
class FastInstance {
 public:
  FastInstance(const conformance::Case& c, opdev_context* ctx, DLDataType act) : case_(&c), ctx_(ctx) {
    try {
      build(c, act);
    } catch (...) {
      release();
      throw;
    }
  }
  ~FastInstance() { release(); }
  FastInstance(const FastInstance&) = delete;
  FastInstance& operator=(const FastInstance&) = delete;
  opdev_status run() { return case_->call(call_); }

 private:
  static constexpr int64_t kTile = int64_t(1) << 20;

  void release() {
    opdev_synchronize(ctx_);
    for (void* p : bufs_) opdev_free(ctx_, p);
    bufs_.clear();
  }

  void build(const conformance::Case& c, DLDataType act) {
    opdev_context* ctx = ctx_;
    call_.ctx = ctx;
    call_.dtype = act;
    const uint64_t seed = c.seed ? c.seed : fnv(c.op + "/" + c.name);
    for (const conformance::TensorSpec& t : c.tensors) {
      if (t.absent) {
        call_.tensors[t.name] = nullptr;
        continue;
      }
      if (!t.alias_of.empty()) continue;
      const DLDataType dt = t.activation ? act : t.fixed;
      const size_t item = dtype_bytes(dt);
      std::vector<int64_t> strides(t.shape.size());
      int64_t stride = 1, n = 1;
      for (size_t d = t.shape.size(); d-- > 0;) {
        strides[d] = stride;
        stride *= t.shape[d];
        n *= t.shape[d];
      }
      if (t.row_pad > 0 && t.shape.size() >= 2) strides[0] += t.row_pad;
      int64_t extent = 0;
      if (n > 0) {
        for (size_t d = 0; d < t.shape.size(); ++d) extent += (t.shape[d] - 1) * strides[d];
        extent += 1;
      }
      const size_t bytes = size_t(extent) * item;
      void* p = nullptr;
      check(opdev_malloc(ctx, bytes ? bytes : item, &p));
      bufs_.push_back(p);
      if (t.role != conformance::Role::Output && t.gen && n > 0) fill(t, dt, p, n, extent, strides, fnv(t.name, seed));
      refs_.push_back(std::make_unique<TensorRef>(p, dt, t.shape, strides, opdev_context_device(ctx)));
      call_.tensors[t.name] = refs_.back()->get();
    }
    for (const conformance::TensorSpec& t : c.tensors)
      if (!t.alias_of.empty()) {
        auto it = call_.tensors.find(t.alias_of);
        if (it == call_.tensors.end()) throw std::runtime_error("case bug: '" + t.name + "' aliases unknown tensor '" + t.alias_of + "'");
        call_.tensors[t.name] = it->second;
      }
  }

  void fill(const conformance::TensorSpec& t, DLDataType dt, void* p, int64_t n, int64_t extent, const std::vector<int64_t>& strides,
            uint64_t seed) {
    const size_t item = dtype_bytes(dt);
    const bool repeatable = dt.code == kDLFloat || dt.code == kDLBfloat || (dt.code == kDLInt && dt.bits == 8);
    if (repeatable && n > kTile) {
      std::vector<double> v(size_t(kTile), 0.0);
      t.gen(v, seed);
      if (v.size() == size_t(kTile)) {
        // The first kTile elements of the buffer (padding included), then doubling copies on the device.
        const int64_t first = std::min(extent, kTile);
        std::vector<uint8_t> host(size_t(first) * item);
        for (int64_t i = 0; i < first; ++i) conformance::encode(v[size_t(i)], dt, host.data() + size_t(i) * item);
        check(opdev_memcpy(ctx_, p, host.data(), host.size(), OPDEV_MEMCPY_HOST_TO_DEVICE));
        const size_t total = size_t(extent) * item;
        char* base = static_cast<char*>(p);
        for (size_t filled = host.size(); filled < total;) {
          const size_t cnt = std::min(filled, total - filled);
          check(opdev_memcpy(ctx_, base + filled, base, cnt, OPDEV_MEMCPY_DEVICE_TO_DEVICE));
          filled += cnt;
        }
        return;
      }
    }
    // Every value from the generator, at its element's offset in the (possibly strided) buffer.
    std::vector<double> v(size_t(n), 0.0);
    t.gen(v, seed);
    if (v.size() != size_t(n))
      throw std::runtime_error("case bug: generator of '" + t.name + "' produced " + std::to_string(v.size()) + " values");
    std::vector<uint8_t> host(size_t(extent) * item, 0);
    std::vector<int64_t> idx(t.shape.size(), 0);
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < t.shape.size(); ++d) off += idx[d] * strides[d];
      conformance::encode(v[size_t(i)], dt, host.data() + size_t(off) * item);
      for (size_t d = t.shape.size(); d-- > 0;) {
        if (++idx[d] < t.shape[d]) break;
        idx[d] = 0;
      }
    }
    check(opdev_memcpy(ctx_, p, host.data(), host.size(), OPDEV_MEMCPY_HOST_TO_DEVICE));
  }

  const conformance::Case* case_;
  opdev_context* ctx_;
  std::vector<void*> bufs_;
  std::vector<std::unique_ptr<TensorRef>> refs_;
  conformance::Call call_;
};

}  // namespace

double measure_host_read_gbps(opdev_context* ctx) { return profile::measure_read_gbps(opdev_context_num_threads(ctx)); }

Roofline measure_roofline(opdev_context* ctx, bool quick) {
  Roofline r;
  if (on_host(ctx)) {
    const Machine m = profile::measure_machine(opdev_context_num_threads(ctx), quick ? profile::Effort::Quick : profile::Effort::Full);
    r.bw_gbps = m.read_gbps;
    r.f32_gflops = m.f32_gflops;
    r.bf16_gflops = m.bf16_gflops;
    r.f16_gflops = 0;  // float16 is computed in float32 on the host
    r.i8_gops = m.i8_gops;
    auto opt = [](double x) { return x > 0 ? fmt(x, 4) : std::string("n/a"); };
    r.summary = "read " + fmt(m.read_gbps, 4) + " GB/s, float32 FMA " + fmt(m.f32_gflops, 4) + " GFLOP/s, bfloat16 dot " +
                opt(m.bf16_gflops) + " GFLOP/s, int8 dot " + opt(m.i8_gops) + " GOP/s (" + std::to_string(m.threads) + " threads, " +
                m.simd + ")";
    return r;
  }
  const std::string backend = opdev_context_backend(ctx);
#ifdef OPDEV_WITH_CUDA
  if (backend == "cuda") {
    const cuda::GpuRoofline g = cuda::measure(opdev_context_device(ctx).device_id, quick);
    r.device = true;
    r.bw_name = "copy";
    r.bw_gbps = g.copy_gbps;
    r.f32_gflops = g.f32_gflops;
    r.bf16_gflops = g.bf16_gflops;
    r.f16_gflops = g.f16_gflops;
    r.i8_gops = g.i8_gops;
    auto opt = [](double x) { return x > 0 ? fmt(x, 4) : std::string("n/a"); };
    r.summary = "copy " + fmt(g.copy_gbps, 4) + " GB/s (cudaMemcpyAsync device to device of " + std::to_string(g.copy_bytes >> 20) +
                " MiB, read + write bytes, best of several), cuBLAS GEMM (cublasGemmEx, float32 accumulation, best of several): "
                "bfloat16 " + std::to_string(g.gemm_n) + "^3 " + opt(g.bf16_gflops) + " GFLOP/s, float16 " + opt(g.f16_gflops) +
                " GFLOP/s, float32 4096^3 " + opt(g.f32_gflops) + " GFLOP/s, int8 " + opt(g.i8_gops) + " GOP/s; " + g.name +
                (g.notes.empty() ? "" : "; " + g.notes);
    return r;
  }
#endif
  throw std::runtime_error("opdev bench: no roofline measurement for backend '" + backend + "' (device " +
                           std::to_string(int(opdev_context_device(ctx).device_type)) + ")");
}

Roofline best_of(const Roofline& a, const Roofline& b) {
  Roofline r = a;
  r.bw_gbps = std::max(a.bw_gbps, b.bw_gbps);
  r.f32_gflops = std::max(a.f32_gflops, b.f32_gflops);
  r.bf16_gflops = std::max(a.bf16_gflops, b.bf16_gflops);
  r.f16_gflops = std::max(a.f16_gflops, b.f16_gflops);
  r.i8_gops = std::max(a.i8_gops, b.i8_gops);
  return r;
}

namespace {

std::string dims(const std::vector<int64_t>& shape) {
  std::string r;
  for (size_t i = 0; i < shape.size(); ++i) r += (i ? "x" : "") + std::to_string(shape[i]);
  return r;
}

const char* role_name(const conformance::TensorSpec& t) {
  if (t.absent) return "absent";
  switch (t.role) {
    case conformance::Role::Input: return "in";
    case conformance::Role::Output: return "out";
    case conformance::Role::InOut: return "inout";
  }
  return "?";
}

// A CSV field, quoted (RFC 4180).
std::string quoted(const std::string& s) {
  std::string r = "\"";
  for (char c : s) r += c == '"' ? std::string("\"\"") : std::string(1, c);
  return r + "\"";
}

bool selected(const Options& o, const BenchCase& b, bool host) {
  if (!contains(o.ops, b.c.op) || !contains(o.models, b.model) || !contains(o.tokens, b.tokens)) return false;
  return !b.device_only || !host || o.device_cases;
}

}  // namespace

void list(const Options& o, FILE* out) {
  // Which backend would run the cases decides whether the device-only cases are listed (ref and cpu are
  // the host backends; listing needs no context, so it works on a machine without the device).
  const bool host = o.backend == "cpu" || o.backend == "ref";
  if (o.csv) std::fprintf(o.csv, "op,model,tokens,shape,dtype,device_only,tensors,params\n");
  std::fprintf(out, "%-20s %-14s %7s %-44s %-28s %s\n", "op", "model", "tokens", "shape", "dtypes", "");
  size_t n = 0;
  for (const BenchCase& b : registry()) {
    if (!selected(o, b, host)) continue;
    std::string dts;
    for (DLDataType dt : b.c.dtypes) {
      if (std::none_of(o.dtypes.begin(), o.dtypes.end(), [&](DLDataType x) { return same_dtype(x, dt); })) continue;
      dts += (dts.empty() ? "" : ",") + std::string(dtype_str(dt));
      if (!o.csv) continue;
      std::string tensors;
      for (const conformance::TensorSpec& t : b.c.tensors) {
        tensors += (tensors.empty() ? "" : ";") + t.name + ":" + role_name(t) + ":" + (t.activation ? "act" : dtype_str(t.fixed)) + ":" +
                   dims(t.shape) + ":" + std::to_string(t.row_pad) + ":" + t.alias_of;
      }
      std::fprintf(o.csv, "%s,%s,%lld,%s,%s,%d,%s,%s\n", b.c.op.c_str(), b.model.c_str(), (long long)b.tokens, quoted(b.shape).c_str(),
                   dtype_str(dt), b.device_only ? 1 : 0, quoted(tensors).c_str(), quoted(b.params).c_str());
    }
    if (dts.empty()) continue;
    ++n;
    std::fprintf(out, "%-20s %-14s %7lld %-44s %-28s %s\n", b.c.op.c_str(), b.model.c_str(), (long long)b.tokens, b.shape.c_str(),
                 dts.c_str(), b.device_only ? "(device only)" : "");
  }
  std::fprintf(out, "%zu cases\n", n);
}

int run(const Options& o, FILE* out) {
  Context ctx(o.backend.c_str(), o.threads);
  const int threads = opdev_context_num_threads(ctx);
  const bool host = on_host(ctx);
  if (host) std::fprintf(stderr, "measuring the machine (read bandwidth, FMA peak) with %d threads...\n", threads);
  else std::fprintf(stderr, "measuring the device (copy bandwidth, cuBLAS GEMM rates)...\n");
  const Roofline before = measure_roofline(ctx);
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
    if (selected(o, b, host)) total += b.c.dtypes.size();
  size_t done = 0, over_budget = 0;
  const double t_start = now();
  for (const BenchCase& b : registry()) {
    if (!selected(o, b, host)) continue;
    const opdev_op op = opdev_op_from_name(b.c.op.c_str());
    for (DLDataType dt : b.c.dtypes) {
      ++done;
      if (std::none_of(o.dtypes.begin(), o.dtypes.end(), [&](DLDataType x) { return same_dtype(x, dt); })) continue;
      if (!opdev_supports(ctx, op, dt)) continue;
      if (o.budget_seconds > 0 && now() - t_start > o.budget_seconds) {
        ++over_budget;
        continue;
      }
      Row row{&b, dt, 0, 0, 0, ""};
      try {
        // The conformance harness's tensors on host backends (the figures of docs/PERFORMANCE.md); fast
        // filling on devices (or with --fast-fill).
        std::unique_ptr<conformance::Instance> exact;
        std::unique_ptr<FastInstance> fast;
        if (o.fast_fill || !host) fast = std::make_unique<FastInstance>(b.c, ctx, dt);
        else exact = std::make_unique<conformance::Instance>(b.c, ctx, dt);
        auto call = [&] { return fast ? fast->run() : exact->run(); };
        // One call with the profiler to capture the cost formula, then warm-up.
        check(opdev_context_set_profiler(ctx, &prof));
        check(call());
        check(opdev_context_set_profiler(ctx, nullptr));
        check(call());
        check(opdev_synchronize(ctx));
        // Repeat until min_seconds; report the median of batches. Batches double until they take 1 ms. On a
        // device the calls of a batch are queued back to back and one synchronisation ends it, so a batch
        // measures the device's throughput; the batches of the ramp (shorter than 1 ms, where the
        // synchronisation's latency would count) are not kept there.
        std::vector<double> times;
        double start = now();
        int batch = 1;
        while (true) {
          double t0 = now();
          for (int i = 0; i < batch; ++i) check(call());
          check(opdev_synchronize(ctx));
          double dt_s = (now() - t0) / batch;
          const bool ramp = dt_s * batch < 1e-3 && batch < (1 << 20);
          if (host || !ramp) times.push_back(dt_s);
          if (now() - start > o.min_seconds && times.size() >= 5) break;
          if (ramp) batch *= 2;
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
  std::fprintf(stderr, host ? "\nmeasuring the machine again...\n" : "\nmeasuring the device again...\n");
  if (over_budget) std::fprintf(stderr, "%zu cases not run: the --budget of %.3g s was spent\n", over_budget, o.budget_seconds);
  // Measured before and after the cases: a shared machine can lose a core for a while, and a roofline
  // against a depressed measurement would flatter every op. The better of each is the reference.
  const Roofline after = measure_roofline(ctx);
  const Roofline m = best_of(before, after);
  auto opt = [](double x) { return x > 0 ? fmt(x, 4) : std::string("n/a"); };
  if (host) {
    std::fprintf(out, "backend %s (%s), %d threads; measured before / after the cases: read %.1f / %.1f GB/s, float32 FMA %.0f / %.0f "
                      "GFLOP/s, bfloat16 dot %s / %s GFLOP/s, int8 dot %s / %s GOP/s (the larger is the reference)\n",
                 o.backend.c_str(), opdev_context_describe(ctx), threads, before.bw_gbps, after.bw_gbps, before.f32_gflops, after.f32_gflops,
                 opt(before.bf16_gflops).c_str(), opt(after.bf16_gflops).c_str(), opt(before.i8_gops).c_str(), opt(after.i8_gops).c_str());
  } else {
    std::fprintf(out, "backend %s (%s); measured before / after the cases: copy %.0f / %.0f GB/s (device to device, read + write "
                      "bytes), cuBLAS GEMM bfloat16 %s / %s GFLOP/s, float16 %s / %s GFLOP/s, float32 %s / %s GFLOP/s, int8 %s / %s GOP/s "
                      "(the larger is the reference)\n",
                 o.backend.c_str(), opdev_context_describe(ctx), before.bw_gbps, after.bw_gbps, opt(before.bf16_gflops).c_str(),
                 opt(after.bf16_gflops).c_str(), opt(before.f16_gflops).c_str(), opt(after.f16_gflops).c_str(),
                 opt(before.f32_gflops).c_str(), opt(after.f32_gflops).c_str(), opt(before.i8_gops).c_str(), opt(after.i8_gops).c_str());
    std::fprintf(out, "roofline: %s\n", after.summary.c_str());
  }
  std::fprintf(out, "%-16s %-14s %-34s %-9s %10s %8s %9s %6s %6s %6s\n", "op", "model", "shape", "dtype", "time (us)", "GB/s",
               "GFLOP/s", "%bw", "%peak", "roof");
  if (o.csv)
    std::fprintf(o.csv, "op,model,tokens,shape,dtype,time_us,gbps,gflops,frac_bw,frac_peak,roofline_frac,read_gbps,peak_gflops,"
                        "bw_kind,bf16_gflops,device_only,error\n");
  for (const Row& r : rows) {
    const BenchCase& b = *r.b;
    if (!r.error.empty()) {
      std::fprintf(out, "%-16s %-14s %-34s %-9s FAILED: %s\n", b.c.op.c_str(), b.model.c_str(), b.shape.c_str(), dtype_str(r.dt),
                   r.error.c_str());
      if (o.csv)
        std::fprintf(o.csv, "%s,%s,%lld,%s,%s,,,,,,,%.4g,,%s,%.4g,%d,%s\n", b.c.op.c_str(), b.model.c_str(), (long long)b.tokens,
                     quoted(b.shape).c_str(), dtype_str(r.dt), m.bw_gbps, m.bw_name.c_str(), m.bf16_gflops, b.device_only ? 1 : 0,
                     quoted(r.error).c_str());
      continue;
    }
    // The int8 products are int8 multiply-adds whatever their output dtype.
    const bool int8_op = b.c.op == "linear_w8a8" || b.c.op == "grouped_matmul_w8a8";
    const double peak = int8_op ? m.peak_int8_gops() : m.peak_gflops(r.dt);
    const double gbps = r.bytes / r.t / 1e9, gflops = r.flops / r.t / 1e9;
    const double fbw = gbps / m.bw_gbps, fpk = gflops / peak;
    const double roof = std::max(r.bytes / (m.bw_gbps * 1e9), r.flops / (peak * 1e9)) / r.t;
    std::fprintf(out, "%-16s %-14s %-34s %-9s %10.2f %8s %9s %5.0f%% %5.0f%% %5.0f%%\n", b.c.op.c_str(), b.model.c_str(), b.shape.c_str(),
                 dtype_str(r.dt), r.t * 1e6, fmt(gbps).c_str(), fmt(gflops).c_str(), 100 * fbw, 100 * fpk, 100 * roof);
    if (o.csv)
      std::fprintf(o.csv, "%s,%s,%lld,\"%s\",%s,%.3f,%.4g,%.4g,%.4f,%.4f,%.4f,%.4g,%.4g,%s,%.4g,%d,\n", b.c.op.c_str(), b.model.c_str(),
                   (long long)b.tokens, b.shape.c_str(), dtype_str(r.dt), r.t * 1e6, gbps, gflops, fbw, fpk, roof, m.bw_gbps, peak,
                   m.bw_name.c_str(), m.bf16_gflops, b.device_only ? 1 : 0);
  }
  if (over_budget) std::fprintf(out, "(%zu cases not run: the --budget of %.3g s was spent)\n", over_budget, o.budget_seconds);
  if (host)
    std::fprintf(out, "(%%bw: achieved GB/s / measured read bandwidth; %%peak: GFLOP/s / measured peak for the dtype, the int8 dot peak "
                      "for the int8 products; roof: roofline time max(bytes/bw, flops/peak) / measured time; above 100%%: the working set "
                      "stays in cache)\n");
  else
    std::fprintf(out, "(%%bw: achieved GB/s / measured copy bandwidth (bytes read + written, as the ops count them); %%peak: GFLOP/s / "
                      "the cuBLAS GEMM rate of the dtype (int8 for the int8 products); roof: roofline time max(bytes/bw, flops/peak) / "
                      "measured time; above 100%%: the working set stays in the GPU's L2 cache)\n");
  return failures;
}

}  // namespace opdev::bench
