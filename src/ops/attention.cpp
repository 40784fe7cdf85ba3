// Front-end of paged_attention: validate (shapes, dtypes, layout, aliasing, the scale, and on
// host-visible devices cu_seqlens_q, seq_lens_kv and the block table entries that will be read), then
// dispatch with a cost formula taken from the actual sequence lengths when they are visible.
#include <algorithm>

#include "ops/cost_bounds.h"
#include "ops/dispatch.h"

using namespace opdev;

namespace {

inline int64_t idx2(const TensorView& v, int64_t i, int64_t j) {
  return int64_t(static_cast<const int32_t*>(v.data)[i * v.strides[0] + j * v.strides[1]]);
}

// What the call will touch, from the host-visible index data: keys read per sequence and query-key
// pairs scored (for the cost formula).
struct Extent {
  double kv_tokens = 0, pairs = 0;
};

// cu_seqlens_q: 0, non-decreasing, last = Tq. seq_lens_kv: [0, max_blocks * BS]. block_table: the first
// ceil(kv_len / BS) entries of each row in [0, NB).
Extent check_index_data(const paged_attention_args& a, bool causal) {
  const int64_t B = a.seq_lens_kv.size(0), Tq = a.q.size(0);
  const int64_t NB = a.key_cache.size(0), BS = a.key_cache.size(1), max_blocks = a.block_table.size(1);
  Extent e;
  int64_t prev = read_index(a.cu_seqlens_q, 0);
  if (prev != 0) fail(OPDEV_STATUS_OUT_OF_RANGE, "cu_seqlens_q[0] = ", prev, ", expected 0");
  for (int64_t b = 0; b < B; ++b) {
    const int64_t cur = read_index(a.cu_seqlens_q, b + 1);
    if (cur < prev || cur > Tq)
      fail(OPDEV_STATUS_OUT_OF_RANGE, "cu_seqlens_q[", b + 1, "] = ", cur, " is outside [", prev, ", ", Tq,
           "] (non-decreasing from cu_seqlens_q[", b, "], at most Tq)");
    const int64_t kv = read_index(a.seq_lens_kv, b);
    // kv <= max_blocks * BS without forming the product (it may overflow for absurd shapes).
    const bool fits = kv >= 0 && (kv == 0 || (BS > 0 && (kv - 1) / BS < max_blocks));
    if (!fits)
      fail(OPDEV_STATUS_OUT_OF_RANGE, "seq_lens_kv[", b, "] = ", kv, " is outside [0, max_blocks * block_size] (max_blocks = ", max_blocks,
           ", block_size = ", BS, ")");
    const int64_t used = kv == 0 ? 0 : (kv - 1) / BS + 1;
    for (int64_t j = 0; j < used; ++j) {
      const int64_t blk = idx2(a.block_table, b, j);
      if (blk < 0 || blk >= NB)
        fail(OPDEV_STATUS_OUT_OF_RANGE, "block_table[", b, ", ", j, "] = ", blk, " is outside [0, ", NB, ") (num_blocks; row ", b, " uses ",
             used, " blocks for seq_lens_kv[", b, "] = ", kv, ")");
    }
    const int64_t ql = cur - prev;
    e.kv_tokens += double(kv);
    if (!causal) {
      e.pairs += double(ql) * double(kv);
    } else {
      // Row i sees min(kv, max(0, kv - ql + i + 1)) keys.
      for (int64_t i = 0; i < ql; ++i) e.pairs += double(std::min(kv, std::max<int64_t>(0, kv - ql + i + 1)));
    }
    prev = cur;
  }
  if (prev != Tq)
    fail(OPDEV_STATUS_OUT_OF_RANGE, "cu_seqlens_q[", B, "] = ", prev, ", expected Tq = ", Tq, " (the last entry is the number of query rows)");
  return e;
}

}  // namespace

extern "C" {

OPDEV_API opdev_status opdev_paged_attention(opdev_context* ctx, const DLTensor* out, const DLTensor* softmax_lse, const DLTensor* q,
                                             const DLTensor* key_cache, const DLTensor* value_cache, const DLTensor* block_table,
                                             const DLTensor* cu_seqlens_q, const DLTensor* seq_lens_kv, double scale, int causal) {
  return api_call("opdev_paged_attention", [&] {
    OpCheck c(ctx);
    paged_attention_args a;
    a.out = c.tensor("out", out);
    a.softmax_lse = c.optional("softmax_lse", softmax_lse);
    a.q = c.tensor("q", q);
    a.key_cache = c.tensor("key_cache", key_cache);
    a.value_cache = c.tensor("value_cache", value_cache);
    a.block_table = c.tensor("block_table", block_table);
    a.cu_seqlens_q = c.tensor("cu_seqlens_q", cu_seqlens_q);
    a.seq_lens_kv = c.tensor("seq_lens_kv", seq_lens_kv);
    // q [Tq, Hq, D]; caches [NB, BS, Hk, D]
    c.rank(a.q, 3);
    c.activation_dtype(a.q);
    const int64_t Tq = a.q.size(0), Hq = a.q.size(1), D = a.q.size(2);
    c.rank(a.key_cache, 4);
    c.same_dtype(a.key_cache, a.q);
    const int64_t Hk = a.key_cache.size(2);
    c.dim(a.key_cache, 3, D, "head_dim of q");
    if (Hk < 1 || Hq % Hk != 0)
      fail(OPDEV_STATUS_INVALID_ARGUMENT, "key_cache: expected num_kv_heads (dimension 2) to divide the ", Hq, " query heads of q, got ", Hk);
    c.same_shape(a.value_cache, a.key_cache);
    c.same_dtype(a.value_cache, a.q);
    c.same_shape(a.out, a.q);
    c.same_dtype(a.out, a.q);
    if (a.softmax_lse.present) {
      c.shape(a.softmax_lse, {Tq, Hq});
      c.dtype(a.softmax_lse, DType::F32);
    }
    // Index tensors: block_table [B, max_blocks], cu_seqlens_q [B + 1], seq_lens_kv [B], all int32.
    c.rank(a.seq_lens_kv, 1);
    c.dtype(a.seq_lens_kv, DType::I32);
    const int64_t B = a.seq_lens_kv.size(0);
    c.rank(a.block_table, 2);
    c.dtype(a.block_table, DType::I32);
    c.dim(a.block_table, 0, B, "sequences of seq_lens_kv");
    c.rank(a.cu_seqlens_q, 1);
    c.dtype(a.cu_seqlens_q, DType::I32);
    c.dim(a.cu_seqlens_q, 0, B + 1, "sequences of seq_lens_kv + 1");
    // Layout: head_dim contiguous everywhere; q may be a view of a fused qkv buffer.
    for (const TensorView* v : {&a.out, &a.softmax_lse, &a.q, &a.key_cache, &a.value_cache})
      if (v->present) c.inner_contiguous(*v);
    c.writable(a.out);
    if (a.softmax_lse.present) c.writable(a.softmax_lse);
    // No aliasing at all: every output is disjoint from every input and from the other output.
    for (const TensorView* o : {&a.out, &a.softmax_lse}) {
      if (!o->present) continue;
      for (const TensorView* in : {&a.q, &a.key_cache, &a.value_cache, &a.block_table, &a.cu_seqlens_q, &a.seq_lens_kv}) c.disjoint(*o, *in);
    }
    c.disjoint(a.out, a.softmax_lse);
    c.finite_positive("scale", scale);
    a.scale = scale;
    a.causal = causal != 0;
    Extent ext;
    const bool known = c.host_visible();
    if (known) ext = check_index_data(a, a.causal);
    auto cost = [&] {
      const double item = double(a.q.itemsize());
      if (!known) {
        // Index data on the device: the B sequences share the Tq rows equally and each uses its whole
        // block-table row (cost_bounds.h; exact for the benchmarks' uniform batches).
        const double kv = double(a.block_table.size(1)) * double(a.key_cache.size(1));
        ext.kv_tokens = double(B) * kv;
        ext.pairs = uniform_attention_pairs(B, Tq, kv, a.causal);
      }
      // K and V rows read once per kv head; q read and out written once; per query head and visible key
      // 2D flops for q.k and 2D for p.v.
      const double bytes = nbytes(a.q) + nbytes(a.out) + nbytes(a.softmax_lse) + 2.0 * ext.kv_tokens * double(Hk * D) * item +
                           nbytes(a.block_table) + nbytes(a.cu_seqlens_q) + nbytes(a.seq_lens_kv);
      return OpCost{bytes, 4.0 * double(D) * double(Hq) * ext.pairs};
    };
    const bool empty = (Tq == 0 || Hq == 0);
    return dispatch(c, a, a.q.dtype, empty, cost,
                    {{"out", out}, {"softmax_lse", softmax_lse}, {"q", q}, {"key_cache", key_cache}, {"value_cache", value_cache},
                     {"block_table", block_table}, {"cu_seqlens_q", cu_seqlens_q}, {"seq_lens_kv", seq_lens_kv}},
                    {{"scale", scale}, {"causal", double(causal)}});
  });
}

}  // extern "C"
