// Benchmarks of paged_attention over a block_size-16 cache with shuffled block ids:
//  - decode: B sequences (B = 1, 4, 16; "tokens" = B) of one query each over kv_len 512 and 4096. Memory
//    bound: the GB/s column counts the K and V rows read, to compare with the measured read bandwidth.
//  - prefill: one causal sequence of 512 tokens (compute bound; GFLOP/s counts the visible pairs).
//  - on devices also: prefill of one causal sequence of 8192 tokens (the target against
//    torch's scaled_dot_product_attention) and decode over 32768 keys (B = 1, 4: K and V far larger than
//    a GPU's L2 cache, so GB/s compares with the copy bandwidth).
// q is the q part of the fused qkv rows, as the model produces it.
#include <cmath>

#include "bench.h"

namespace opdev::bench {

namespace {

void attn_bench(const Model& m, int64_t B, int64_t q_len, int64_t kv_len, const std::string& what, bool device_only = false) {
  constexpr int64_t kBlockSize = 16;
  const int64_t Hq = m.heads, Hk = m.kv_heads, D = m.head_dim;
  const int64_t per_seq = (kv_len + kBlockSize - 1) / kBlockSize, NB = B * per_seq, Tq = B * q_len;
  BenchCase b;
  b.model = m.name;
  b.tokens = q_len == 1 ? B : Tq;
  b.shape = what + " B=" + std::to_string(B) + " q=" + std::to_string(q_len) + " kv=" + std::to_string(kv_len);
  b.c.op = "paged_attention";
  b.c.output("out", {Tq, Hq, D});
  b.c.output("softmax_lse", {Tq, Hq}).dtype(kFloat32);
  b.c.input("q", {Tq, Hq, D}).normal(0, 1).strided((Hq + 2 * Hk) * D - Hq * D);
  b.c.input("key_cache", {NB, kBlockSize, Hk, D}).normal(0, 1);
  b.c.input("value_cache", {NB, kBlockSize, Hk, D}).normal(0, 1);
  b.c.input("block_table", {B, per_seq}).dtype(kInt32).values([NB](std::vector<double>& v, uint64_t seed) {
    // A random permutation of all blocks: sequences' blocks are scattered through the cache.
    std::vector<int64_t> perm(static_cast<size_t>(NB));
    for (int64_t i = 0; i < NB; ++i) perm[size_t(i)] = i;
    conformance::Rng r(seed);
    for (int64_t i = NB - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(r.next() % uint64_t(i + 1))]);
    for (int64_t i = 0; i < NB; ++i) v[size_t(i)] = double(perm[size_t(i)]);
  });
  b.c.input("cu_seqlens_q", {B + 1}).dtype(kInt32).values([q_len](std::vector<double>& v, uint64_t) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(int64_t(i) * q_len);
  });
  b.c.input("seq_lens_kv", {B}).dtype(kInt32).values([kv_len](std::vector<double>& v, uint64_t) {
    for (double& x : v) x = double(kv_len);
  });
  const double scale = 1.0 / std::sqrt(double(D));
  b.c.call = [scale](conformance::Call& k) {
    return opdev_paged_attention(k.ctx, k["out"], k["softmax_lse"], k["q"], k["key_cache"], k["value_cache"], k["block_table"],
                                 k["cu_seqlens_q"], k["seq_lens_kv"], scale, 1);
  };
  b.device_only = device_only;
  b.params = "B=" + std::to_string(B) + ";q=" + std::to_string(q_len) + ";kv=" + std::to_string(kv_len) + ";Hq=" + std::to_string(Hq) +
             ";Hk=" + std::to_string(Hk) + ";D=" + std::to_string(D) + ";block=" + std::to_string(kBlockSize) + ";causal=1";
  add(std::move(b));
}

}  // namespace

void register_attention() {
  for (const Model* m : models()) {
    for (int64_t kv : {512, 4096})
      for (int64_t B : {1, 4, 16}) attn_bench(*m, B, 1, kv, "decode");
    attn_bench(*m, 1, 512, 512, "prefill");
    for (int64_t B : {1, 4}) attn_bench(*m, B, 1, 32768, "decode", true);
    attn_bench(*m, 1, 8192, 8192, "prefill", true);
  }
}

}  // namespace opdev::bench
