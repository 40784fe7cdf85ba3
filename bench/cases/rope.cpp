// Benchmarks of rope (q and k of the fused qkv rows, NeoX; on devices also at 16k tokens) and rope_cache
// (the model's full table).
#include <cmath>

#include "bench.h"

namespace opdev::bench {

namespace {

constexpr int64_t kTablePositions = 4096;  // rope: positions drawn from [0, 4096)
constexpr int64_t kMaxPositions = 40960;   // rope_cache: Qwen3 max_position_embeddings
constexpr double kTheta = 1e6;             // Qwen3 rope_theta

conformance::Generator cache_values(int64_t P, int64_t rot) {
  return [P, rot](std::vector<double>& v, uint64_t) {
    const int64_t half = rot / 2;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = double(p) * std::pow(kTheta, -double(2 * i) / double(rot));
        v[size_t(p * rot + i)] = std::cos(angle);
        v[size_t(p * rot + half + i)] = std::sin(angle);
      }
  };
}

}  // namespace

void register_rope() {
  for (const Model* m : models()) {
    const int64_t D = m->head_dim, row = (m->heads + 2 * m->kv_heads) * D;
    std::vector<int64_t> counts = token_counts();
    counts.push_back(kDeviceLargeTokens);
    for (int64_t T : counts) {
      BenchCase b;
      b.model = m->name;
      b.tokens = T;
      b.shape = "q[" + std::to_string(T) + "," + std::to_string(m->heads) + "," + std::to_string(D) + "] k[" +
                std::to_string(m->kv_heads) + "] of qkv";
      b.c.op = "rope";
      b.c.inout("q", {T, m->heads, D}).normal(0, 1).strided(row - m->heads * D);
      b.c.inout("k", {T, m->kv_heads, D}).normal(0, 1).strided(row - m->kv_heads * D);
      b.c.input("positions", {T}).dtype(kInt64).integers(0, kTablePositions);
      b.c.input("cos_sin_cache", {kTablePositions, D}).dtype(kFloat32).values(cache_values(kTablePositions, D));
      b.c.call = [](conformance::Call& k) { return opdev_rope(k.ctx, k["q"], k["k"], k["positions"], k["cos_sin_cache"], 1); };
      b.device_only = T == kDeviceLargeTokens;
      b.params = "neox=1";
      add(std::move(b));
    }
    // The table is built once at load time; one size per model.
    BenchCase b;
    b.model = m->name;
    b.tokens = 0;
    b.shape = "cos_sin_cache[" + std::to_string(kMaxPositions) + "," + std::to_string(D) + "]";
    b.c.op = "rope_cache";
    b.c.dtypes = {kFloat32};
    b.c.output("cos_sin_cache", {kMaxPositions, D}).dtype(kFloat32);
    b.c.call = [](conformance::Call& k) { return opdev_rope_cache(k.ctx, k["cos_sin_cache"], kTheta, nullptr); };
    b.params = "theta=1e6";
    add(std::move(b));
  }
}

}  // namespace opdev::bench
