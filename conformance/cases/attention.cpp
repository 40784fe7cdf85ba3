// Conformance cases of paged_attention: decode, prefill, chunked prefill and mixed batches over a paged
// cache whose block tables hold shuffled, non-contiguous block ids with -1 padding past the used blocks.
//
// Tolerance: the output is a softmax-weighted sum of value rows, accumulated in float32; its forward
// error is bounded relative to the same sum over |v| (mag over value_cache, as for any reduction). The
// scores' own float32 error perturbs the weights by a relative amount of order u * scale * |q||k|
// (random-walk over D), which with the O(1)..O(10) scores of these cases stays below that term; no extra
// term is added. Values are drawn with standard deviation 32 so that outputs are well above the
// absolute tolerance (1e-5) and a float32 error of a few ulp in the kernel is visible to the check.
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

struct Seqs {
  std::vector<int64_t> q_lens, kv_lens;
};

struct AttnSpec {
  std::string what;
  int64_t Hq = 16, Hk = 8, D = 128, block_size = 16;
  Seqs seqs;
  bool causal = true;
  bool lse = true;
  int64_t q_pad = 0;        // > 0: q is a strided view (a fused qkv row has q_pad more elements)
  int64_t out_pad = 0;      // > 0: out rows strided too
  int64_t cache_pad = 0;    // > 0: block stride of the caches padded (e.g. K and V interleaved per block)
  int64_t table_pad = 0;    // > 0: block_table rows strided
  int64_t spare_blocks = 3; // unused blocks in the cache
  int64_t spare_cols = 2;   // -1 entries past each row's used blocks
  double q_std = 1.0;       // > 1 makes the softmax peaked (large score range, frequent rescaling)
  bool large = false;
  std::vector<DLDataType> dtypes{kFloat32, kBFloat16, kFloat16};
};

std::string lens_name(const Seqs& s) {
  std::string r;
  for (size_t b = 0; b < s.q_lens.size(); ++b) r += (b ? "," : "") + std::to_string(s.q_lens[b]) + "/" + std::to_string(s.kv_lens[b]);
  return r;
}

int64_t blocks_for(int64_t kv, int64_t bs) { return kv == 0 ? 0 : (kv - 1) / bs + 1; }

void attn_case(const AttnSpec& sp) {
  const int64_t B = int64_t(sp.seqs.q_lens.size());
  int64_t Tq = 0, used = 0, max_used = 0;
  for (int64_t b = 0; b < B; ++b) {
    Tq += sp.seqs.q_lens[size_t(b)];
    const int64_t nb = blocks_for(sp.seqs.kv_lens[size_t(b)], sp.block_size);
    used += nb;
    max_used = std::max(max_used, nb);
  }
  const int64_t NB = used + sp.spare_blocks, max_blocks = max_used + sp.spare_cols;
  const int64_t bs = sp.block_size;
  Case c;
  c.op = "paged_attention";
  c.name = sp.what + " Hq=" + std::to_string(sp.Hq) + " Hk=" + std::to_string(sp.Hk) + " D=" + std::to_string(sp.D) + " bs=" +
           std::to_string(bs) + " q/kv=" + lens_name(sp.seqs) + (sp.causal ? " causal" : " non-causal") + (sp.lse ? "" : " no-lse") +
           (sp.q_pad ? " q-strided" : "") + (sp.cache_pad ? " cache-strided" : "") + (sp.table_pad ? " table-strided" : "");
  c.large = sp.large;
  c.dtypes = sp.dtypes;
  c.output("out", {Tq, sp.Hq, sp.D}).strided(sp.out_pad);
  if (sp.lse) c.output("softmax_lse", {Tq, sp.Hq}).dtype(kFloat32);
  else c.absent("softmax_lse");
  c.input("q", {Tq, sp.Hq, sp.D}).normal(0, sp.q_std).strided(sp.q_pad);
  c.input("key_cache", {NB, bs, sp.Hk, sp.D}).normal(0, 1).strided(sp.cache_pad);
  c.input("value_cache", {NB, bs, sp.Hk, sp.D}).normal(0, 32).strided(sp.cache_pad);
  // Each sequence gets the next blocks of a random permutation of all block ids; -1 past them.
  const Seqs seqs = sp.seqs;
  c.input("block_table", {B, max_blocks}).dtype(kInt32).strided(sp.table_pad).values([=](std::vector<double>& v, uint64_t seed) {
    std::vector<int64_t> perm(static_cast<size_t>(NB));
    for (int64_t i = 0; i < NB; ++i) perm[size_t(i)] = i;
    Rng r(seed);
    for (int64_t i = NB - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(r.next() % uint64_t(i + 1))]);
    size_t next = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t nb = blocks_for(seqs.kv_lens[size_t(b)], bs);
      for (int64_t j = 0; j < max_blocks; ++j) v[size_t(b * max_blocks + j)] = j < nb ? double(perm[next++]) : -1.0;
    }
  });
  c.input("cu_seqlens_q", {B + 1}).dtype(kInt32).values([=](std::vector<double>& v, uint64_t) {
    v[0] = 0;
    for (int64_t b = 0; b < B; ++b) v[size_t(b + 1)] = v[size_t(b)] + double(seqs.q_lens[size_t(b)]);
  });
  c.input("seq_lens_kv", {B}).dtype(kInt32).values([=](std::vector<double>& v, uint64_t) {
    for (int64_t b = 0; b < B; ++b) v[size_t(b)] = double(seqs.kv_lens[size_t(b)]);
  });
  const double scale = 1.0 / std::sqrt(double(sp.D));
  const int causal = sp.causal ? 1 : 0;
  c.call = [scale, causal](Call& k) {
    return opdev_paged_attention(k.ctx, k["out"], k["softmax_lse"], k["q"], k["key_cache"], k["value_cache"], k["block_table"],
                                 k["cu_seqlens_q"], k["seq_lens_kv"], scale, causal);
  };
  c.mag({"value_cache"}, contract::paged_attention_mag_rtol());
  add(std::move(c));
}

AttnSpec spec(const std::string& what, int64_t Hq, int64_t Hk, int64_t D, int64_t bs, Seqs seqs, bool causal = true) {
  AttnSpec s;
  s.what = what;
  s.Hq = Hq;
  s.Hk = Hk;
  s.D = D;
  s.block_size = bs;
  s.seqs = std::move(seqs);
  s.causal = causal;
  return s;
}

}  // namespace

void register_attention() {
  const int64_t qwen_qkv_pad_06 = (16 + 2 * 8) * 128 - 16 * 128;  // q of Qwen3-0.6B's fused qkv row
  const int64_t qwen_qkv_pad_30 = (32 + 2 * 4) * 128 - 32 * 128;

  // Decode (q_len 1), Qwen3-0.6B shape, kv 1, 17, 1000 (two kv chunks), 4096.
  for (int64_t kv : {1, 17, 513, 1000}) attn_case(spec("decode", 16, 8, 128, 16, {{1}, {kv}}));
  {
    AttnSpec s = spec("decode", 16, 8, 128, 16, {{1}, {4096}});
    s.large = true;
    attn_case(s);
  }
  // Decode batches: different kv lengths in one call, both models, fused-qkv q views.
  {
    AttnSpec s = spec("decode batch qwen3-0.6b", 16, 8, 128, 16, {{1, 1, 1, 1}, {5, 700, 64, 1025}});
    s.q_pad = qwen_qkv_pad_06;
    attn_case(s);
  }
  {
    AttnSpec s = spec("decode batch qwen3-30b-a3b", 32, 4, 128, 16, {{1, 1, 1, 1}, {300, 1, 1537, 48}});
    s.q_pad = qwen_qkv_pad_30;
    attn_case(s);
  }
  {
    Seqs many;
    for (int64_t b = 0; b < 16; ++b) {
      many.q_lens.push_back(1);
      many.kv_lens.push_back(37 * b + 3);
    }
    attn_case(spec("decode B=16", 16, 8, 128, 16, many));
  }
  // Speculative decode: a few queries over a long context (split into kv chunks, causal per row).
  attn_case(spec("spec-decode", 16, 8, 128, 16, {{4}, {1000}}));
  attn_case(spec("spec-decode", 32, 4, 128, 16, {{8, 3}, {1300, 515}}));

  // Prefill, causal, q_len = kv_len.
  for (int64_t n : {1, 7, 33}) attn_case(spec("prefill", 16, 8, 128, 16, {{n}, {n}}));
  attn_case(spec("prefill qwen3-30b-a3b", 32, 4, 128, 16, {{33}, {33}}));
  {
    AttnSpec s = spec("prefill", 16, 8, 128, 16, {{512}, {512}});
    s.large = true;
    s.q_pad = qwen_qkv_pad_06;
    attn_case(s);
  }
  {
    AttnSpec s = spec("prefill qwen3-30b-a3b", 32, 4, 128, 16, {{512}, {512}});
    s.large = true;
    s.lse = false;
    attn_case(s);
  }
  // Chunked prefill: new tokens after cached ones (the causal diagonal is bottom-right aligned).
  attn_case(spec("chunked prefill", 16, 8, 128, 16, {{16}, {116}}));
  attn_case(spec("chunked prefill", 32, 4, 128, 16, {{33}, {600}}));
  // Mixed batches: prefill, decode, a zero-length query, chunked prefill.
  attn_case(spec("mixed", 16, 8, 128, 16, {{5, 1, 0}, {40, 77, 20}}));
  {
    AttnSpec s = spec("mixed", 32, 4, 128, 16, {{7, 0, 1, 20, 1}, {7, 0, 900, 150, 2}});
    s.q_pad = qwen_qkv_pad_30;
    s.out_pad = 96;
    attn_case(s);
  }
  // Non-causal (encoder-style / cross attention over the cache).
  attn_case(spec("non-causal", 16, 8, 128, 16, {{7}, {33}}, false));
  attn_case(spec("non-causal", 8, 8, 64, 16, {{9, 1, 4}, {9, 600, 0}}, false));
  // Rows that see no key: causal with kv_len < q_len, and kv_len = 0.
  attn_case(spec("rows without keys", 16, 8, 128, 16, {{5, 3, 2, 12}, {3, 0, 1, 4}}));
  attn_case(spec("rows without keys", 8, 2, 64, 16, {{2}, {0}}, false));
  // Each of the cases below has a sequence with q_len > 8 (a long-query item: the bf16 pair kernels on
  // AVX-512 BF16) besides the short ones (decode items: float32 kernels).
  // Head layouts: MHA, MQA, GQA groups; head_dim 64, 256 and ones that are not a multiple of the vector.
  attn_case(spec("mha", 8, 8, 128, 16, {{3, 1}, {50, 300}}));
  attn_case(spec("mqa", 8, 1, 128, 16, {{3, 1, 12}, {50, 600, 40}}));
  attn_case(spec("gqa 4", 8, 2, 64, 16, {{6, 1, 10}, {20, 200, 33}}));
  attn_case(spec("head_dim 256", 8, 2, 256, 16, {{4, 1, 12}, {30, 530, 40}}));
  attn_case(spec("head_dim 80", 4, 2, 80, 16, {{5, 1, 11}, {12, 90, 30}}));
  attn_case(spec("head_dim 7", 4, 4, 7, 16, {{5, 1, 10}, {12, 700, 20}}));
  attn_case(spec("head_dim 1", 2, 1, 1, 16, {{3, 10}, {9, 21}}));
  // Block sizes 1 and 128 (and 7: a block boundary inside every key tile).
  attn_case(spec("block_size 1", 16, 8, 128, 1, {{3, 1, 10}, {40, 70, 25}}));
  attn_case(spec("block_size 128", 16, 8, 128, 128, {{3, 1, 9}, {200, 700, 150}}));
  attn_case(spec("block_size 7", 8, 4, 64, 7, {{9, 1}, {30, 520}}));
  // softmax_lse off; strided q and out; caches with a padded block stride (K and V of a block
  // interleaved, the [num_blocks, 2, block_size, Hk, D] allocation).
  {
    AttnSpec s = spec("lse off", 16, 8, 128, 16, {{4, 1}, {20, 700}});
    s.lse = false;
    attn_case(s);
  }
  {
    AttnSpec s = spec("strided", 16, 8, 128, 16, {{6, 1, 11}, {60, 600, 30}});
    s.q_pad = qwen_qkv_pad_06;
    s.out_pad = 128;
    s.cache_pad = 16 * 8 * 128;
    s.table_pad = 5;
    attn_case(s);
  }
  // Peaked softmax (scores with a range of tens): exercises the rescaling of the online softmax.
  {
    AttnSpec s = spec("peaked", 16, 8, 128, 16, {{9, 1}, {100, 1200}});
    s.q_std = 3.0;
    attn_case(s);
  }
  // Tq = 0: every sequence without queries; and no sequences at all.
  attn_case(spec("zero queries", 16, 8, 128, 16, {{0, 0}, {10, 0}}));
  attn_case(spec("no sequences", 16, 8, 128, 16, {{}, {}}));

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE, OOR = OPDEV_STATUS_OUT_OF_RANGE;
  // A valid call: 2 sequences (q 2/kv 5, q 1/kv 3), Tq = 3, Hq 4, Hk 2, D 8, 4 blocks of 4.
  struct Args {
    const DLTensor *out, *lse, *q, *kc, *vc, *bt, *cu, *kv;
    double scale = 0.35;
    int causal = 1;
  };
  auto valid = [](E& e) {
    Args x;
    x.out = e.tensor({3, 4, 8}, e.act);
    x.lse = e.tensor({3, 4}, kFloat32);
    x.q = e.tensor({3, 4, 8}, e.act);
    x.kc = e.tensor({4, 4, 2, 8}, e.act);
    x.vc = e.tensor({4, 4, 2, 8}, e.act);
    x.bt = e.tensor({2, 3}, kInt32, {2, 0, -1, 3, -1, -1});
    x.cu = e.tensor({3}, kInt32, {0, 2, 3});
    x.kv = e.tensor({2}, kInt32, {5, 3});
    return x;
  };
  auto call = [](E& e, const Args& x) {
    return opdev_paged_attention(e.ctx(), x.out, x.lse, x.q, x.kc, x.vc, x.bt, x.cu, x.kv, x.scale, x.causal);
  };
  using Mod = std::function<void(E&, Args&)>;
  auto err = [&](const std::string& name, opdev_status st, const std::string& msg, Mod mod, bool host = false) {
    add_error("paged_attention", name, st, msg,
              [=](E& e) {
                Args x = valid(e);
                mod(e, x);
                return call(e, x);
              },
              host);
  };
  add_error("paged_attention", "NULL context", INV, "ctx: expected a context, got NULL", [=](E& e) {
    Args x = valid(e);
    return opdev_paged_attention(nullptr, x.out, x.lse, x.q, x.kc, x.vc, x.bt, x.cu, x.kv, x.scale, x.causal);
  });
  err("NULL q", INV, "q: expected a tensor, got NULL", [](E&, Args& x) { x.q = nullptr; });
  err("NULL out", INV, "out: expected a tensor, got NULL", [](E&, Args& x) { x.out = nullptr; });
  err("NULL value_cache", INV, "value_cache: expected a tensor, got NULL", [](E&, Args& x) { x.vc = nullptr; });
  err("NULL block_table", INV, "block_table: expected a tensor, got NULL", [](E&, Args& x) { x.bt = nullptr; });
  err("wrong rank of q", INV, "q: expected rank 3, got rank 2", [](E& e, Args& x) { x.q = e.tensor({3, 32}, e.act); });
  err("wrong rank of key_cache", INV, "key_cache: expected rank 4, got rank 3",
      [](E& e, Args& x) { x.kc = e.tensor({16, 2, 8}, e.act); });
  err("head_dim mismatch", INV, "key_cache: expected dimension 3 (head_dim of q) to be 8, got 16",
      [](E& e, Args& x) { x.kc = e.tensor({4, 4, 2, 16}, e.act); });
  err("Hq not a multiple of Hk", INV, "key_cache: expected num_kv_heads (dimension 2) to divide the 4 query heads of q, got 3",
      [](E& e, Args& x) { x.kc = e.tensor({4, 4, 3, 8}, e.act); });
  err("value_cache shape mismatch", INV, "value_cache: expected shape [4, 4, 2, 8] (the shape of key_cache), got [4, 8, 2, 8]",
      [](E& e, Args& x) { x.vc = e.tensor({4, 8, 2, 8}, e.act); });
  err("out shape mismatch", INV, "out: expected shape [3, 4, 8] (the shape of q), got [3, 2, 8]",
      [](E& e, Args& x) { x.out = e.tensor({3, 2, 8}, e.act); });
  err("softmax_lse shape mismatch", INV, "softmax_lse: expected shape [3, 4], got [4, 3]",
      [](E& e, Args& x) { x.lse = e.tensor({4, 3}, kFloat32); });
  err("block_table rows", INV, "block_table: expected dimension 0 (sequences of seq_lens_kv) to be 2, got 3",
      [](E& e, Args& x) { x.bt = e.tensor({3, 3}, kInt32); });
  err("cu_seqlens_q length", INV, "cu_seqlens_q: expected dimension 0 (sequences of seq_lens_kv + 1) to be 3, got 2",
      [](E& e, Args& x) { x.cu = e.tensor({2}, kInt32, {0, 3}); });
  err("integer q", DT, "q: expected dtype float32 | bfloat16 | float16 | float64, got int32", [](E& e, Args& x) {
    x.q = e.tensor({3, 4, 8}, kInt32);
  });
  err("mixed dtypes (key_cache)", DT, "key_cache: expected dtype", [](E& e, Args& x) {
    x.kc = e.tensor({4, 4, 2, 8}, same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16);
  });
  err("mixed dtypes (out)", DT, "out: expected dtype", [](E& e, Args& x) {
    x.out = e.tensor({3, 4, 8}, same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16);
  });
  err("float16 softmax_lse", DT, "softmax_lse: expected dtype float32, got float16", [](E& e, Args& x) { x.lse = e.tensor({3, 4}, kFloat16); });
  err("int64 block_table", DT, "block_table: expected dtype int32, got int64", [](E& e, Args& x) {
    x.bt = e.tensor({2, 3}, kInt64, {2, 0, -1, 3, -1, -1});
  });
  err("float cu_seqlens_q", DT, "cu_seqlens_q: expected dtype int32, got float32", [](E& e, Args& x) {
    x.cu = e.tensor({3}, kFloat32, {0, 2, 3});
  });
  err("int64 seq_lens_kv", DT, "seq_lens_kv: expected dtype int32, got int64", [](E& e, Args& x) { x.kv = e.tensor({2}, kInt64, {5, 3}); });
  err("non-contiguous head_dim of q", INV, "q: expected the last dimension to be contiguous (stride 1), got stride 2",
      [](E& e, Args& x) { x.q = e.strided({3, 4, 8}, {64, 16, 2}, e.act); });
  err("non-contiguous head_dim of value_cache", INV, "value_cache: expected the last dimension to be contiguous (stride 1), got stride 2",
      [](E& e, Args& x) { x.vc = e.strided({4, 4, 2, 8}, {256, 64, 16, 2}, e.act); });
  err("out with stride 0", INV, "out: output view addresses the same element more than once",
      [](E& e, Args& x) { x.out = e.strided({3, 4, 8}, {0, 8, 1}, e.act); });
  err("out overlaps q", INV, "out: must not overlap q (forbidden aliasing)", [](E&, Args& x) { x.out = x.q; });
  err("out overlaps value_cache", INV, "out: must not overlap value_cache (forbidden aliasing)",
      [](E& e, Args& x) { x.out = e.view_of(x.vc, {3, 4, 8}, 8); });
  // out and softmax_lse in one float32 buffer (the activation dtype is float32 on host backends).
  err("softmax_lse overlaps out", INV, "out: must not overlap softmax_lse (forbidden aliasing)", [](E& e, Args& x) {
    const DLTensor* buf = e.tensor({128}, kFloat32);
    x.lse = e.view_of(buf, {3, 4}, 0);
    x.out = e.view_of(buf, {3, 4, 8}, 6);
  });
  err("NULL data", INV, "key_cache: data is NULL but the tensor has 256 elements",
      [](E& e, Args& x) { x.kc = e.null_data({4, 4, 2, 8}, e.act); });
  err("size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "key_cache: the element count of shape", [](E& e, Args& x) {
    const int64_t big = int64_t(1) << 40;
    x.kc = e.huge({big, big, 2, 8}, e.act);
  });
  err("scale zero", INV, "scale: expected a finite value > 0, got 0", [](E&, Args& x) { x.scale = 0; });
  err("scale infinite", INV, "scale: expected a finite value > 0, got inf", [](E&, Args& x) { x.scale = INFINITY; });
  err("scale NaN", INV, "scale: expected a finite value > 0, got nan", [](E&, Args& x) { x.scale = NAN; });
  // Index data (host-visible range checks).
  err("cu_seqlens_q not starting at 0", OOR, "cu_seqlens_q[0] = 1, expected 0",
      [](E& e, Args& x) { x.cu = e.tensor({3}, kInt32, {1, 2, 3}); }, true);
  err("cu_seqlens_q decreasing", OOR, "cu_seqlens_q[2] = 1 is outside [2, 3]",
      [](E& e, Args& x) { x.cu = e.tensor({3}, kInt32, {0, 2, 1}); }, true);
  err("cu_seqlens_q past Tq", OOR, "cu_seqlens_q[1] = 4 is outside [0, 3]",
      [](E& e, Args& x) { x.cu = e.tensor({3}, kInt32, {0, 4, 4}); }, true);
  err("cu_seqlens_q short of Tq", OOR, "cu_seqlens_q[2] = 2, expected Tq = 3",
      [](E& e, Args& x) { x.cu = e.tensor({3}, kInt32, {0, 1, 2}); }, true);
  err("seq_lens_kv negative", OOR, "seq_lens_kv[1] = -1 is outside [0, max_blocks * block_size]",
      [](E& e, Args& x) { x.kv = e.tensor({2}, kInt32, {5, -1}); }, true);
  err("seq_lens_kv past the block table", OOR, "seq_lens_kv[0] = 13 is outside [0, max_blocks * block_size] (max_blocks = 3, block_size = 4)",
      [](E& e, Args& x) { x.kv = e.tensor({2}, kInt32, {13, 3}); }, true);
  err("block id -1 inside the sequence", OOR, "block_table[0, 1] = -1 is outside [0, 4) (num_blocks; row 0 uses 2 blocks",
      [](E& e, Args& x) { x.bt = e.tensor({2, 3}, kInt32, {2, -1, -1, 3, -1, -1}); }, true);
  err("block id past num_blocks", OOR, "block_table[1, 0] = 4 is outside [0, 4)",
      [](E& e, Args& x) { x.bt = e.tensor({2, 3}, kInt32, {2, 0, -1, 4, -1, -1}); }, true);
}

}  // namespace opdev::conformance
