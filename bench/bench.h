// Operator benchmarks: every op at the decode (1, 4, 16 tokens) and prefill (512 tokens) shapes of
// Qwen3-0.6B and Qwen3-30B-A3B, timed on one backend, with bytes and FLOPs taken from the op's own cost
// formula (the profiler hook), and the machine's read bandwidth and peak FLOP/s measured in the same run.
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

struct BenchCase {
  conformance::Case c;  // tensors and call (values are generated once)
  std::string model;    // model name
  int64_t tokens = 0;
  std::string shape;    // printed description, e.g. "T=16 H=1024"
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

struct Options {
  std::string backend = "cpu";
  std::vector<std::string> ops;
  std::vector<DLDataType> dtypes{kFloat32, kBFloat16, kFloat16};
  std::vector<std::string> models;  // empty: all
  std::vector<int64_t> tokens;      // empty: all
  int threads = 0;
  double min_seconds = 0.2;         // per measurement
  FILE* csv = nullptr;              // optional machine-readable copy
};

// Runs the selected benchmarks and prints the table; returns the number of failed calls.
int run(const Options& options, FILE* out);

}  // namespace opdev::bench
