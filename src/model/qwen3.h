// Qwen3 (dense) and Qwen3-MoE as a graph of opdev operators. Every tensor computation of the forward
// pass is an opdev_* call on the model's context, so any backend that passes conformance runs the model.
//
// One forward runs a flat batch of T tokens from B sequences (prefill chunks and decode tokens mixed),
// reading and writing the paged KV cache:
//   embedding -> per layer: [add_]rms_norm -> linear(qkv, fused) -> rms_norm(q, k per head, in place on
//   views of the qkv rows) -> rope(q, k) -> reshape_and_cache(k, v) -> paged_attention -> linear(o) ->
//   add_rms_norm -> dense MLP: linear(gate_up, fused) -> silu_and_mul -> linear(down)
//                   MoE: linear(router) -> moe_gating_topk -> moe_permute -> grouped_matmul(gate_up) ->
//                        silu_and_mul -> grouped_matmul(down) -> moe_unpermute
//   -> add_rms_norm(final) -> embedding (gathers the rows that need logits) -> linear(lm_head).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/checkpoint.h"
#include "model/device.h"

namespace opdev::model {

// How the projections' weights are held. The embedding, the norms and the MoE router stay in the compute
// dtype either way (as vLLM's W8A8 checkpoints keep them; the embedding is a row gather, one row per token).
enum class WeightFormat {
  Compute,         // the compute dtype
  Int8,            // W8A8 projections and an int8 lm_head (the layout of llama.cpp's Q8_0, which quantises
                   // output.weight too): int8 per output channel with float32 scales, quantised from the
                   // checkpoint at load (opdev_quantize_int8 on float32 rows); activations are quantised per
                   // token before each projection (quantize_int8, then linear_w8a8 / grouped_matmul_w8a8).
                   // A tied lm_head gets its own int8 copy; the embedding gather keeps the float table.
  Int8Projections, // W8A8 projections, lm_head in the compute dtype (vLLM's W8A8 layout)
};

// True for both int8 formats.
inline bool is_int8(WeightFormat w) { return w == WeightFormat::Int8 || w == WeightFormat::Int8Projections; }

// Bytes of float32 staging used to quantise a large weight (the lm_head) at load, a block of rows at a
// time; 64 MiB. Settable so that tests can exercise many blocks on a small model.
extern size_t g_quantise_staging_bytes;

// "dtype" (the compute dtype) | "int8" | "int8-proj" (the --weights option).
WeightFormat parse_weight_format(const std::string& name);

struct LayerWeights {
  bool moe = false;
  Tensor input_norm, post_norm, q_norm, k_norm;  // [H], [H], [D], [D]
  Tensor qkv_w, qkv_b;                           // [(Hq + 2 Hk) D, H], [(Hq + 2 Hk) D] (bias only with attention_bias)
  Tensor o_w, o_b;                               // [H, Hq D], [H]
  Tensor gate_up_w, down_w;                      // dense: [2 I, H] (gate rows, then up rows), [H, I]
  Tensor router_w;                               // MoE: [E, H]
  Tensor experts_gate_up_w, experts_down_w;      // MoE: [E, 2 Im, H], [E, H, Im]
  // Both int8 formats: the *_w above (not the router) are int8 and these their float32 scales, one per
  // output row: [(Hq + 2 Hk) D], [H], [2 I], [H], [E, 2 Im], [E, H].
  Tensor qkv_s, o_s, gate_up_s, down_s, experts_gate_up_s, experts_down_s;
};

// The paged KV cache: per layer [num_blocks, block_size, Hk, D] keys and values.
struct KvCache {
  int64_t num_blocks = 0, block_size = 0;
  std::vector<Tensor> k, v;
};

// One forward's batch, host side. Sequence b owns tokens [cu_seqlens_q[b], cu_seqlens_q[b+1]) of the flat
// batch; seq_lens_kv[b] counts its cached tokens after this step (earlier ones + these).
struct BatchInputs {
  std::vector<int32_t> ids;            // [T]
  std::vector<int32_t> positions;      // [T]
  std::vector<int64_t> slot_mapping;   // [T]
  std::vector<int32_t> cu_seqlens_q;   // [B + 1]
  std::vector<int32_t> seq_lens_kv;    // [B]
  std::vector<int32_t> block_table;    // [B * max_blocks], row-major
  int64_t max_blocks = 0;
  std::vector<int32_t> logit_rows;     // rows of the batch whose logits are wanted
};

class Qwen3Model {
 public:
  // Uploads every weight to the context's device in the compute dtype (float32, bfloat16 or float16),
  // fusing q/k/v and gate/up. `progress` reports bytes as tensors are loaded.
  Qwen3Model(const Checkpoint& ckpt, opdev_context* ctx, DLDataType compute, const ProgressFn& progress = nullptr,
             WeightFormat weights = WeightFormat::Compute);
  ~Qwen3Model();
  Qwen3Model(const Qwen3Model&) = delete;
  Qwen3Model& operator=(const Qwen3Model&) = delete;

  const ModelConfig& config() const { return cfg_; }
  opdev_context* ctx() const { return ctx_; }
  DLDataType dtype() const { return dtype_; }
  WeightFormat weight_format() const { return weights_; }
  size_t weight_bytes() const { return weight_bytes_; }  // on the device
  // Bytes of weights one decode step reads (the decode floor's numerator): every dense weight, the
  // experts a token routes to (num_experts_per_tok of num_experts per MoE layer), the lm_head once and
  // the embedding row (negligible; not counted).
  double decode_weight_bytes() const;

  // Bytes of KV cache per block of `block_size` tokens, all layers, keys and values.
  size_t kv_bytes_per_block(int64_t block_size) const;
  KvCache make_kv_cache(int64_t num_blocks, int64_t block_size) const;

  // Runs the batch; writes the logits of in.logit_rows into `logits` ([R, V], the compute dtype), which
  // is (re)allocated when its shape differs.
  void forward(const BatchInputs& in, KvCache& cache, Tensor& logits);

 private:
  struct Scratch;
  void ensure_scratch(int64_t T, int64_t R);
  void layer(int64_t l, int64_t T, KvCache& cache);
  // out[rows] = x[rows] . w^T (+ bias): opdev_linear, or (an int8 w, with its row scales) quantize_int8(x)
  // then linear_w8a8.
  void project(const char* what, int64_t l, const DLTensor* out, const TensorRef& x, const Tensor& w, const Tensor& scale,
               const DLTensor* bias);
  // The experts' grouped_matmul, or (int8 w) quantize_int8(x) then grouped_matmul_w8a8.
  void project_experts(const char* what, int64_t l, const DLTensor* out, const TensorRef& x, const Tensor& w, const Tensor& scale);

  ModelConfig cfg_;
  opdev_context* ctx_;
  DLDataType dtype_;
  WeightFormat weights_ = WeightFormat::Compute;
  size_t weight_bytes_ = 0;
  Tensor embed_, final_norm_, lm_head_;  // lm_head_ empty when tied (and with WeightFormat::Int8)
  Tensor lm_head_q_, lm_head_s_;         // WeightFormat::Int8: int8 [V, H] and float32 [V] scales
  std::vector<LayerWeights> layers_;
  Tensor cos_sin_;  // [max_position_embeddings, head_dim] float32
  std::unique_ptr<Scratch> s_;
};

// The compute dtype named on the command line ("float32" | "bfloat16" | "float16").
DLDataType parse_compute_dtype(const std::string& name);

}  // namespace opdev::model
