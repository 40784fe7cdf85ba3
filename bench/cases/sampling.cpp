// Benchmarks of sample over the Qwen3 vocabulary (151936, both models) for B = 1, 4, 16 rows: greedy,
// temperature 0.7 with top-k 50 and top-p 0.9 (the common serving setting), and top-p 0.9 alone (the
// path that sorts the most).
#include "bench.h"

namespace opdev::bench {

namespace {

void sample_bench(const Model& m, int64_t B, const std::string& kind, double temperature, int64_t top_k, double top_p) {
  BenchCase b;
  b.model = m.name;
  b.tokens = B;
  b.shape = "logits[" + std::to_string(B) + "," + std::to_string(m.vocab) + "] " + kind;
  b.c.op = "sample";
  b.c.output("ids_out", {B}).dtype(kInt32);
  b.c.input("logits", {B, m.vocab}).normal(0, 3);
  b.c.input("temperature", {B}).dtype(kFloat32).values(std::vector<double>(size_t(B), temperature));
  b.c.input("top_k", {B}).dtype(kInt32).values(std::vector<double>(size_t(B), double(top_k)));
  b.c.input("top_p", {B}).dtype(kFloat32).values(std::vector<double>(size_t(B), top_p));
  b.c.input("seeds", {B}).dtype(kInt64).integers(0, 1 << 30);
  b.c.input("steps", {B}).dtype(kInt64).integers(0, 4096);
  b.c.call = [](conformance::Call& k) {
    return opdev_sample(k.ctx, k["ids_out"], k["logits"], k["temperature"], k["top_k"], k["top_p"], k["seeds"], k["steps"]);
  };
  b.params = "temperature=" + std::to_string(temperature) + ";top_k=" + std::to_string(top_k) + ";top_p=" + std::to_string(top_p);
  add(std::move(b));
}

}  // namespace

void register_sampling() {
  for (const Model* m : models())
    for (int64_t B : {1, 4, 16}) {
      sample_bench(*m, B, "greedy", 0, 0, 1);
      sample_bench(*m, B, "top-k 50 top-p 0.9", 0.7, 50, 0.9);
      sample_bench(*m, B, "top-p 0.9", 0.7, 0, 0.9);
    }
}

}  // namespace opdev::bench
