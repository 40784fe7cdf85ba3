// Operator benchmarks: every op at the decode (1, 4, 16 tokens) and prefill (512 tokens) shapes of
// Qwen3-0.6B and Qwen3-30B-A3B, timed on one backend, with bytes and FLOPs taken from the op's own cost
// formula (the profiler hook), and the machine's roofline measured in the same run: on a host backend the
// read bandwidth and FMA peaks (src/profile/machine.h), on cuda the device-to-device copy bandwidth and
// the cuBLAS GEMM rates (bench/cuda_roofline.cu). Tensors live on the backend's device (opdev_malloc /
// opdev_memcpy through conformance::Instance); timing waits for the device (opdev_synchronize).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "conformance.h"
#include "profile/machine.h"

namespace opdev::bench {

// Model dimensions the benchmarks use.
struct Model {
  const char* name;
  int64_t hidden, heads, kv_heads, head_dim, intermediate, vocab;
  int64_t experts, topk, moe_intermediate;  // 0 for dense models
};
const Model& qwen3_0_6b();     // hidden 1024, 16/8 heads x 128, intermediate 3072, vocab 151936
const Model& qwen3_30b_a3b();  // hidden 2048, 32/4 heads x 128, 128 experts, top-8, moe intermediate 768
std::vector<const Model*> models();
// Token counts benchmarked: decode 1, 4, 16 and prefill 512.
std::vector<int64_t> token_counts();

// Token counts of the device-only cases of memory-bound ops: a working set far larger than a GPU's L2
// cache (50-60 MB on H100 / H200), where "fraction of copy bandwidth" means something.
constexpr int64_t kDeviceLargeTokens = 16384;

struct BenchCase {
  conformance::Case c;  // tensors and call (values are generated once)
  std::string model;    // model name
  int64_t tokens = 0;
  std::string shape;    // printed description, e.g. "T=16 H=1024"
  // Run on device backends only (sizes a GPU needs to leave its caches or reach its peak, which would take
  // the cpu backend minutes: prefill attention over 8k tokens, decode over 32k, memory-bound ops at 16k
  // tokens).
  bool device_only = false;
  // What a peer implementation needs beyond the tensor shapes (bench/torch_peers.py reads `opdev bench
  // --list --csv`): "key=value" items separated by ';', e.g. "B=4;q=1;kv=4096;causal=1".
  std::string params;
};

void add(BenchCase b);
std::vector<BenchCase>& registry();

// Every bench file defines register_<family>(); cases/families.def lists them.
#define OPDEV_BENCH_FAMILY(family) void register_##family();
#include "cases/families.def"
#undef OPDEV_BENCH_FAMILY

// The machine measurement is the profiler's (src/profile/machine.h), in full.
using profile::Machine;
inline Machine measure_machine(int threads) { return profile::measure_machine(threads, profile::Effort::Full); }

// The roofline of the machine a context computes on. Host backends: the read bandwidth and the FMA /
// dot-product peaks of this host (Machine). cuda: the device-to-device copy bandwidth (cudaMemcpyAsync,
// bytes read + written, best of several) and the cuBLAS GEMM rates (8192^3 bfloat16 / float16 with float32
// accumulation, 4096^3 float32 without TF32, 8192^3 int8 -> int32; best of several), measured on the
// context's GPU (bench/cuda_roofline.cu).
struct Roofline {
  bool device = false;         // measured on a GPU
  std::string bw_name = "read";  // "read" (host) or "copy" (GPU: read + write bytes of a device copy)
  double bw_gbps = 0;
  double f32_gflops = 0, bf16_gflops = 0, f16_gflops = 0, i8_gops = 0;  // 0: not measured
  std::string summary;         // one line: what was measured, with the figures
  // The peak that bounds an op with this activation dtype (falls back to the float32 rate). bfloat16: the
  // faster of the bf16 and float32 rates (host bf16 products run on either, see backends/cpu/tuning.h).
  double peak_gflops(DLDataType dt) const {
    if (dt.code == kDLBfloat && dt.bits == 16 && bf16_gflops > f32_gflops) return bf16_gflops;
    if (dt.code == kDLFloat && dt.bits == 16 && f16_gflops > 0) return f16_gflops;
    return f32_gflops;
  }
  double peak_int8_gops() const { return i8_gops > 0 ? i8_gops : f32_gflops; }
};
// Measures the roofline of ctx's machine (quick: a shorter measurement, for bench-model).
Roofline measure_roofline(opdev_context* ctx, bool quick = false);
// The host's read bandwidth alone (GB/s, all of ctx's threads), for figures taken right beside it.
double measure_host_read_gbps(opdev_context* ctx);
// The larger of each figure (measured before and after the cases: the better one is the reference).
Roofline best_of(const Roofline& a, const Roofline& b);

struct Options {
  std::string backend = "cpu";
  std::vector<std::string> ops;
  std::vector<DLDataType> dtypes{kFloat32, kBFloat16, kFloat16};
  std::vector<std::string> models;  // empty: all
  std::vector<int64_t> tokens;      // empty: all
  int threads = 0;
  double min_seconds = 0.2;         // per measurement
  FILE* csv = nullptr;              // optional machine-readable copy
  bool device_cases = false;        // also the device-only cases on a host backend (slow)
  bool fast_fill = false;           // fill tensors the fast way on a host backend too (always on devices)
  double budget_seconds = 0;        // > 0: start no case after this many seconds (the table covers those run)
};

// Runs the selected benchmarks and prints the table; returns the number of failed calls.
int run(const Options& options, FILE* out);
// Lists the selected cases without running them (no context): a table on `out`, and with options.csv
// one row per case and dtype: op, model, tokens, shape, dtype, device_only, tensors, params. `tensors`
// is "name:role:dtype:shape:pad:alias" items separated by ';' (role in|out|inout|absent; dtype "act"
// for the dtype under test, else its name; shape "d0xd1x..."; pad the extra elements per leading row of
// a strided view; alias the tensor this output is the same view as).
void list(const Options& options, FILE* out);

}  // namespace opdev::bench
