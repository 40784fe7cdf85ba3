// Conformance cases of reshape_and_cache. The caches are in/out tensors filled with values beforehand:
// slots that no token writes must keep them, and the written slots must hold exact copies (the op is a
// copy in every dtype, so every element is compared to ref with no slack beyond the dtype's own rtol,
// which an exact copy never uses).
#include <numeric>

#include "conformance.h"

namespace opdev::conformance {

namespace {

struct CacheSpec {
  std::string what;
  int64_t T = 1, Hk = 8, D = 128, block_size = 16;
  int64_t num_blocks = 0;     // 0: enough for T tokens plus a few spare blocks
  bool key_only = false;
  DLDataType slot_dtype = kInt64;
  int64_t kv_pad = 0;         // > 0: key/value are strided views (rows of a fused qkv buffer)
  int64_t cache_pad = 0;      // > 0: the caches' block stride is padded
  double padding = 0.1;       // fraction of tokens with slot -1
  bool large = false;
};

void cache_case(const CacheSpec& sp) {
  const int64_t bs = sp.block_size;
  const int64_t NB = sp.num_blocks ? sp.num_blocks : (sp.T + bs - 1) / bs + 3;
  const int64_t T = sp.T, slots = NB * bs;
  const double padding = sp.padding;
  Case c;
  c.op = "reshape_and_cache";
  c.name = sp.what + " T=" + std::to_string(T) + " Hk=" + std::to_string(sp.Hk) + " D=" + std::to_string(sp.D) + " bs=" +
           std::to_string(bs) + " blocks=" + std::to_string(NB) + (sp.key_only ? " key-only" : "") + " slots " +
           dtype_str(sp.slot_dtype) + (sp.kv_pad ? " kv-strided" : "") + (sp.cache_pad ? " cache-strided" : "");
  c.large = sp.large;
  c.inout("key_cache", {NB, bs, sp.Hk, sp.D}).normal(0, 1).strided(sp.cache_pad);
  if (sp.key_only) c.absent("value_cache");
  else c.inout("value_cache", {NB, bs, sp.Hk, sp.D}).normal(0, 1).strided(sp.cache_pad);
  c.input("key", {T, sp.Hk, sp.D}).normal(0, 1).strided(sp.kv_pad);
  if (sp.key_only) c.absent("value");
  else c.input("value", {T, sp.Hk, sp.D}).normal(0, 1).strided(sp.kv_pad);
  // Distinct random slots (any block, any offset), a fraction of them -1 (padding tokens).
  c.input("slot_mapping", {T}).dtype(sp.slot_dtype).values([=](std::vector<double>& v, uint64_t seed) {
    std::vector<int64_t> perm(static_cast<size_t>(slots));
    std::iota(perm.begin(), perm.end(), int64_t(0));
    Rng r(seed);
    for (int64_t i = 0; i < T; ++i) {  // partial Fisher-Yates: the first T entries
      const int64_t j = i + int64_t(r.next() % uint64_t(slots - i));
      std::swap(perm[size_t(i)], perm[size_t(j)]);
      v[size_t(i)] = r.uniform() < padding ? -1.0 : double(perm[size_t(i)]);
    }
  });
  c.call = [](Call& k) {
    return opdev_reshape_and_cache(k.ctx, k["key_cache"], k["value_cache"], k["key"], k["value"], k["slot_mapping"]);
  };
  add(std::move(c));
}

CacheSpec spec(const std::string& what, int64_t T, int64_t Hk, int64_t D, int64_t bs) {
  CacheSpec s;
  s.what = what;
  s.T = T;
  s.Hk = Hk;
  s.D = D;
  s.block_size = bs;
  return s;
}

}  // namespace

void register_cache() {
  // Qwen3-0.6B (8 kv heads) and Qwen3-30B-A3B (4 kv heads), head_dim 128: decode and prefill token
  // counts; key and value are the k and v parts of the fused qkv rows.
  const int64_t pad06 = (16 + 2 * 8) * 128 - 8 * 128, pad30 = (32 + 2 * 4) * 128 - 4 * 128;
  for (int64_t T : {1, 4, 16, 512}) {
    CacheSpec s = spec("qwen3-0.6b", T, 8, 128, 16);
    s.kv_pad = pad06;
    cache_case(s);
    s = spec("qwen3-30b-a3b", T, 4, 128, 16);
    s.kv_pad = pad30;
    s.slot_dtype = kInt32;
    cache_case(s);
  }
  // Odd sizes, block sizes 1 and 128, a tight cache (every slot written), no padding, all padding.
  for (int64_t T : {1, 7, 33}) cache_case(spec("odd", T, 3, 7, 5));
  cache_case(spec("block_size 1", 33, 8, 128, 1));
  cache_case(spec("block_size 128", 300, 4, 128, 128));
  {
    CacheSpec s = spec("full cache", 64, 2, 64, 16);
    s.num_blocks = 4;
    s.padding = 0;
    cache_case(s);
  }
  {
    CacheSpec s = spec("all padding", 9, 8, 128, 16);
    s.padding = 1.0;
    cache_case(s);
  }
  cache_case(spec("head_dim 256", 16, 2, 256, 16));
  cache_case(spec("head_dim 64", 16, 1, 64, 16));
  // Key-only cache (MLA-style latent row, DeepSeek-V3: 512 + 64 = 576 wide, one head).
  for (int64_t T : {1, 16}) {
    CacheSpec s = spec("key-only deepseek-v3 latent", T, 1, 576, 16);
    s.key_only = true;
    s.slot_dtype = kInt32;
    cache_case(s);
  }
  {
    CacheSpec s = spec("key-only", 33, 8, 128, 16);
    s.key_only = true;
    s.kv_pad = 40;
    cache_case(s);
  }
  // Strided caches: K and V of a block interleaved ([num_blocks, 2, block_size, Hk, D] allocation).
  {
    CacheSpec s = spec("strided", 40, 8, 128, 16);
    s.kv_pad = pad06;
    s.cache_pad = 16 * 8 * 128;
    cache_case(s);
  }
  cache_case(spec("zero tokens", 0, 8, 128, 16));

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE, OOR = OPDEV_STATUS_OUT_OF_RANGE;
  // A valid call: 3 tokens, 4 blocks of 2 slots, Hk 2, D 8.
  struct Args {
    const DLTensor *kc, *vc, *k, *v, *slots;
  };
  auto valid = [](E& e) {
    Args x;
    x.kc = e.tensor({4, 2, 2, 8}, e.act);
    x.vc = e.tensor({4, 2, 2, 8}, e.act);
    x.k = e.tensor({3, 2, 8}, e.act);
    x.v = e.tensor({3, 2, 8}, e.act);
    x.slots = e.tensor({3}, kInt64, {5, -1, 0});
    return x;
  };
  using Mod = std::function<void(E&, Args&)>;
  auto err = [&](const std::string& name, opdev_status st, const std::string& msg, Mod mod, bool host = false) {
    add_error("reshape_and_cache", name, st, msg,
              [=](E& e) {
                Args x = valid(e);
                mod(e, x);
                return opdev_reshape_and_cache(e.ctx(), x.kc, x.vc, x.k, x.v, x.slots);
              },
              host);
  };
  err("NULL key_cache", INV, "key_cache: expected a tensor, got NULL", [](E&, Args& x) { x.kc = nullptr; });
  err("NULL key", INV, "key: expected a tensor, got NULL", [](E&, Args& x) { x.k = nullptr; });
  err("NULL slot_mapping", INV, "slot_mapping: expected a tensor, got NULL", [](E&, Args& x) { x.slots = nullptr; });
  err("value without value_cache", INV, "value: expected NULL because value_cache is NULL (a key-only cache), got a tensor",
      [](E&, Args& x) { x.vc = nullptr; });
  err("value_cache without value", INV, "value: expected a tensor because value_cache is given, got NULL", [](E&, Args& x) { x.v = nullptr; });
  err("wrong rank of key_cache", INV, "key_cache: expected rank 4, got rank 3", [](E& e, Args& x) { x.kc = e.tensor({8, 2, 8}, e.act); });
  err("wrong rank of key", INV, "key: expected rank 3, got rank 2", [](E& e, Args& x) { x.k = e.tensor({3, 16}, e.act); });
  err("value_cache shape mismatch", INV, "value_cache: expected shape [4, 2, 2, 8] (the shape of key_cache), got [4, 4, 2, 8]",
      [](E& e, Args& x) { x.vc = e.tensor({4, 4, 2, 8}, e.act); });
  err("key heads mismatch", INV, "key: expected dimension 1 (num_kv_heads of key_cache) to be 2, got 4",
      [](E& e, Args& x) { x.k = e.tensor({3, 4, 8}, e.act); });
  err("key head_dim mismatch", INV, "key: expected dimension 2 (head_dim of key_cache) to be 8, got 16",
      [](E& e, Args& x) { x.k = e.tensor({3, 2, 16}, e.act); });
  err("value shape mismatch", INV, "value: expected shape [3, 2, 8] (the shape of key), got [2, 2, 8]",
      [](E& e, Args& x) { x.v = e.tensor({2, 2, 8}, e.act); });
  err("slot_mapping length", INV, "slot_mapping: expected dimension 0 (tokens of key) to be 3, got 4",
      [](E& e, Args& x) { x.slots = e.tensor({4}, kInt64, {0, 1, 2, 3}); });
  err("slot_mapping rank", INV, "slot_mapping: expected rank 1, got rank 2", [](E& e, Args& x) { x.slots = e.tensor({3, 1}, kInt64); });
  err("integer key_cache", DT, "key_cache: expected dtype float32 | bfloat16 | float16 | float64, got int32", [](E& e, Args& x) {
    x.kc = e.tensor({4, 2, 2, 8}, kInt32);
  });
  err("key dtype differs from the cache", DT, "key: expected dtype", [](E& e, Args& x) {
    x.k = e.tensor({3, 2, 8}, same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16);
  });
  err("value_cache dtype differs", DT, "value_cache: expected dtype", [](E& e, Args& x) {
    x.vc = e.tensor({4, 2, 2, 8}, same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16);
  });
  err("float slot_mapping", DT, "slot_mapping: expected dtype int32 | int64, got float32", [](E& e, Args& x) {
    x.slots = e.tensor({3}, kFloat32, {5, -1, 0});
  });
  err("non-contiguous head_dim of key", INV, "key: expected the last dimension to be contiguous (stride 1), got stride 2",
      [](E& e, Args& x) { x.k = e.strided({3, 2, 8}, {32, 16, 2}, e.act); });
  err("non-contiguous head_dim of key_cache", INV, "key_cache: expected the last dimension to be contiguous (stride 1), got stride 2",
      [](E& e, Args& x) { x.kc = e.strided({4, 2, 2, 8}, {64, 32, 16, 2}, e.act); });
  err("key_cache with stride 0", INV, "key_cache: output view addresses the same element more than once",
      [](E& e, Args& x) { x.kc = e.strided({4, 2, 2, 8}, {0, 16, 8, 1}, e.act); });
  err("key_cache is value_cache", INV, "key_cache: must not overlap value_cache (forbidden aliasing)", [](E&, Args& x) { x.vc = x.kc; });
  err("value_cache overlaps key", INV, "value_cache: must not overlap key (forbidden aliasing)",
      [](E& e, Args& x) { x.k = e.view_of(x.vc, {3, 2, 8}, 16); });
  err("key_cache overlaps value", INV, "key_cache: must not overlap value (forbidden aliasing)",
      [](E& e, Args& x) { x.v = e.view_of(x.kc, {3, 2, 8}, 40); });
  err("NULL data", INV, "value: data is NULL but the tensor has 48 elements", [](E& e, Args& x) { x.v = e.null_data({3, 2, 8}, e.act); });
  err("size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "key_cache: the element count of shape", [](E& e, Args& x) {
    const int64_t big = int64_t(1) << 40;
    x.kc = e.huge({big, big, 2, 8}, e.act);
  });
  err("slot past the cache", OOR, "slot_mapping[1] = 8 is outside [0, 8) (num_blocks * block_size = 4 * 2; negative slots are padding)",
      [](E& e, Args& x) { x.slots = e.tensor({3}, kInt64, {5, 8, 0}); }, true);
  err("int32 slot past the cache", OOR, "slot_mapping[2] = 1000 is outside [0, 8)",
      [](E& e, Args& x) { x.slots = e.tensor({3}, kInt32, {5, -1, 1000}); }, true);
  err("repeated slot", INV, "slot_mapping[2] = 5 repeats slot_mapping[0] (non-negative slots must be distinct)",
      [](E& e, Args& x) { x.slots = e.tensor({3}, kInt64, {5, -1, 5}); }, true);
}

}  // namespace opdev::conformance
