// The argument struct of every op, as its front-end hands it to a backend after validation. Backends may
// trust everything here: ranks, shapes, dtypes, strides, aliasing and (for host tensors) index ranges
// were checked. Field order follows the C signature (outputs first); absent optional tensors have
// present == false. Shape letters: T tokens, H hidden, D head_dim, E experts, k experts per token.
#pragma once

#include "core/tensor.h"
#include "opdev/opdev.h"

namespace opdev {

struct rms_norm_args {
  TensorView out, x, weight;  // [..., H], [..., H], [H]
  double eps;
};

struct add_rms_norm_args {
  TensorView out, residual_out, x, residual, weight;  // [T, H] x4, [H]
  double eps;
};

struct rope_args {
  TensorView q, k;              // [T, Hq, D], [T, Hk, D] (k may be absent)
  TensorView positions;         // [T] int32 | int64
  TensorView cos_sin_cache;     // [P, rot_dim] float32 contiguous
  bool is_neox;
};

struct rope_cache_args {
  TensorView cos_sin_cache;     // [P, rot_dim] float32 contiguous (output)
  double theta;
  opdev_rope_scaling scaling;   // type NONE when the caller passed NULL
};

struct silu_and_mul_args {
  TensorView out, x;  // [..., d], [..., 2d]
};

struct linear_args {
  TensorView out, x, weight, bias;  // [M, N], [M, K], [N, K], [N] or absent
};

struct moe_gating_topk_args {
  TensorView topk_weights, topk_ids, logits, correction_bias;  // f32 [T, k], i32 [T, k], [T, E], f32 [E]?
  opdev_moe_scoring scoring;
  bool renormalize;
  int n_group, topk_group;
  double routed_scaling_factor;
};

struct moe_permute_args {
  TensorView permuted_x, expert_offsets, sorted_rows;  // [T*k, H], i64 [E+1], i32 [T*k]
  TensorView x, topk_ids;                              // [T, H], i32|i64 [T, k]
};

struct grouped_matmul_args {
  TensorView out, x, weight, expert_offsets;  // [R, N], [R, K], [E, N, K], i64 [E+1]
};

struct moe_unpermute_args {
  TensorView out, permuted_y, topk_weights, sorted_rows;  // [T, H], [T*k, H], f32 [T, k], i32 [T*k]
};

struct reshape_and_cache_args {
  TensorView key_cache, value_cache;  // [NB, BS, Hk, D] (value_cache may be absent)
  TensorView key, value;              // [T, Hk, D] (value absent iff value_cache absent)
  TensorView slot_mapping;            // [T] int32 | int64
};

struct paged_attention_args {
  TensorView out, softmax_lse;        // [Tq, Hq, D], f32 [Tq, Hq] (may be absent)
  TensorView q;                       // [Tq, Hq, D]
  TensorView key_cache, value_cache;  // [NB, BS, Hk, D]
  TensorView block_table;             // i32 [B, max_blocks]
  TensorView cu_seqlens_q;            // i32 [B+1]
  TensorView seq_lens_kv;             // i32 [B]
  double scale;
  bool causal;
};

struct embedding_args {
  TensorView out, table, ids;  // [T, H], [V, H], [T]
};

struct sample_args {
  TensorView ids_out, logits;              // i32 [B], [B, V]
  TensorView temperature, top_k, top_p;    // f32 [B], i32 [B], f32 [B]
  TensorView seeds, steps;                 // i64 [B], i64 [B]
};

struct add_args {
  TensorView out, a, b;  // equal shapes, rank <= 8
};

struct cast_args {
  TensorView out, x;
};

struct copy_args {
  TensorView out, x;
};

// The largest K of the int8 matmuls: K * 128 * 128 < 2^31, so no int32 sum of int8 products overflows.
constexpr int64_t kW8A8MaxK = 131071;

struct quantize_int8_args {
  TensorView out, scale, x;  // i8 [M, K], f32 [M], [M, K]
};

struct linear_w8a8_args {
  TensorView out, x, x_scale, weight, weight_scale, bias;  // [M, N], i8 [M, K], f32 [M], i8 [N, K], f32 [N], [N] or absent
};

struct grouped_matmul_w8a8_args {
  TensorView out, x, x_scale, weight, weight_scale, expert_offsets;  // [R, N], i8 [R, K], f32 [R], i8 [E, N, K], f32 [E, N], i64 [E+1]
};

}  // namespace opdev
