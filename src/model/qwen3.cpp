// Qwen3 / Qwen3-MoE forward pass on the opdev operators.
#include "model/qwen3.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "model/error.h"

namespace opdev::model {

namespace {

DLDataType st_to_dl(StDtype t) {
  switch (t) {
    case StDtype::BF16: return kBFloat16;
    case StDtype::F16: return kFloat16;
    case StDtype::F32: return kFloat32;
    default: break;
  }
  throw ModelError(std::string("unsupported weight dtype ") + st_dtype_name(t));
}

// Throws ModelError with the op's message and where in the model it happened.
void ok(opdev_status s, const char* what, int64_t layer = -1) {
  if (s == OPDEV_STATUS_SUCCESS) return;
  std::string where = layer >= 0 ? "layer " + std::to_string(layer) + " " + what : std::string(what);
  throw ModelError(where + ": " + opdev_status_string(s) + ": " + opdev_last_error());
}

// Labels the next op calls "layers.<l>.<what>" (or "<what>" outside the layers) for the profiler, the
// precision tools and error messages.
void at(opdev_context* ctx, const char* what, int64_t layer) {
  if (layer < 0) {
    opdev_context_set_label(ctx, what);
    return;
  }
  char buf[128];
  std::snprintf(buf, sizeof buf, "layers.%lld.%s", static_cast<long long>(layer), what);
  opdev_context_set_label(ctx, buf);
}

#define OP(what, layer, call) \
  do {                        \
    at(ctx_, what, layer);    \
    ok(call, what, layer);    \
  } while (0)

TensorRef view(const Tensor& t, std::vector<int64_t> shape, std::vector<int64_t> strides, int64_t elem_offset) {
  return TensorRef(t.buf.data(), t.dtype, std::move(shape), std::move(strides), t.ref.get()->device,
                   uint64_t(elem_offset) * dtype_bytes(t.dtype));
}

}  // namespace

size_t g_quantise_staging_bytes = size_t(64) << 20;

WeightFormat parse_weight_format(const std::string& n) {
  if (n.empty() || n == "dtype") return WeightFormat::Compute;
  if (n == "int8") return WeightFormat::Int8;
  if (n == "int8-proj" || n == "w8a8") return WeightFormat::Int8Projections;
  throw ModelError("--weights '" + n + "' is not one of dtype (the compute dtype), int8 (projections and lm_head), int8-proj "
                   "(projections only)");
}

DLDataType parse_compute_dtype(const std::string& n) {
  if (n == "float32" || n == "f32" || n == "fp32") return kFloat32;
  if (n == "bfloat16" || n == "bf16") return kBFloat16;
  if (n == "float16" || n == "f16" || n == "fp16") return kFloat16;
  throw ModelError("--dtype '" + n + "' is not one of float32, bfloat16, float16");
}

// ---- loading ----

namespace {

struct Loader {
  const Checkpoint& ck;
  opdev_context* ctx;
  DLDataType dt;
  const ProgressFn& progress;
  size_t done = 0, total = 0;

  // dst = src on the device, converting the dtype where they differ; `name` labels errors.
  void convert(const DLTensor* dst, const DLTensor* src, const std::string& name) {
    ok(same_dtype(src->dtype, dst->dtype) ? opdev_copy(ctx, dst, src) : opdev_cast(ctx, dst, src), name.c_str());
  }

  // Copies checkpoint tensor `name` (any float dtype) into `dst` (a compact device view with the same
  // element count) converting to the compute dtype on the device.
  void into(const std::string& name, const DLTensor* dst) {
    const StTensor& t = ck.tensor(name);
    const DLDataType src_dt = st_to_dl(t.dtype);
    int64_t n = 1;
    for (int64_t s : t.shape) n *= s;
    int64_t dn = 1;
    for (int d = 0; d < dst->ndim; ++d) dn *= dst->shape[d];
    if (n != dn) throw ModelError("tensor '" + name + "' has " + std::to_string(n) + " elements, its slot " + std::to_string(dn));
    Tensor staging(ctx, src_dt, {n}, "loading " + name);
    upload(ctx, staging, t.data, t.nbytes);
    TensorRef flat_dst(dst->data, dst->dtype, {n}, {}, dst->device, dst->byte_offset);
    convert(flat_dst, staging, name);
    done += t.nbytes;
    if (progress) progress(done, total, name);
  }

  Tensor whole(const std::string& name, std::vector<int64_t> shape) {
    Tensor t(ctx, dt, std::move(shape), name);
    into(name, t);
    return t;
  }

  // Rows of several checkpoint tensors stacked into one [sum rows, cols] tensor (fused projections).
  Tensor stacked(const std::vector<std::string>& names, int64_t cols, const std::string& what) {
    int64_t rows = 0;
    for (const auto& n : names) rows += ck.tensor(n).shape[0];
    Tensor t(ctx, dt, {rows, cols}, what);
    int64_t r0 = 0;
    for (const auto& n : names) {
      const int64_t r = ck.tensor(n).shape[0];
      into(n, t.rows(r0, r));
      r0 += r;
    }
    return t;
  }

  // Rows of checkpoint tensors stacked ([sum rows, cols]), converted to float32 and quantised per row
  // (opdev_quantize_int8) into q (int8 [sum rows, cols]) and scale (float32 [sum rows]), device views.
  void quantized_into(const std::vector<std::string>& names, int64_t cols, const DLTensor* q, const DLTensor* scale,
                      const std::string& what) {
    int64_t rows = 0;
    for (const auto& n : names) rows += ck.tensor(n).shape[0];
    Tensor f(ctx, kFloat32, {rows, cols}, what + " (float32, to quantise)");
    int64_t r0 = 0;
    for (const auto& n : names) {
      const int64_t r = ck.tensor(n).shape[0];
      into(n, f.rows(r0, r));
      r0 += r;
    }
    ok(opdev_quantize_int8(ctx, q, scale, f), what.c_str());
  }

  // A projection's weight: the stacked rows in the compute dtype, or int8 with its scales.
  void projection(const std::vector<std::string>& names, int64_t cols, const std::string& what, bool int8, Tensor& w,
                  Tensor& scale) {
    if (!int8) {
      w = stacked(names, cols, what);
      return;
    }
    int64_t rows = 0;
    for (const auto& n : names) rows += ck.tensor(n).shape[0];
    w = Tensor(ctx, kInt8, {rows, cols}, what);
    scale = Tensor(ctx, kFloat32, {rows}, what + " scales");
    quantized_into(names, cols, w, scale, what);
  }

  // Checkpoint tensor `name` ([rows, cols], any float dtype) quantised per row into q (int8 [rows, cols])
  // and scale (float32 [rows]), a block of rows at a time: a vocabulary-sized lm_head is 0.6-2.5 GB in
  // float32, the staging stays at g_quantise_staging_bytes.
  void quantized_blocks(const std::string& name, const Tensor& q, const Tensor& scale, const std::string& what) {
    const StTensor& t = ck.tensor(name);
    const int64_t rows = t.shape[0], cols = t.shape[1];
    if (q.shape != std::vector<int64_t>{rows, cols} || scale.shape != std::vector<int64_t>{rows})
      throw ModelError("internal error: " + what + " does not have the shape of '" + name + "'");
    const DLDataType src_dt = st_to_dl(t.dtype);
    const size_t row_bytes = t.nbytes / size_t(rows);
    const int64_t block = std::max<int64_t>(1, std::min<int64_t>(rows, int64_t(g_quantise_staging_bytes / size_t(cols * 4))));
    Tensor staging(ctx, src_dt, {block, cols}, "loading " + name);
    Tensor f(ctx, kFloat32, {block, cols}, what + " (float32, to quantise)");
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
      const int64_t n = std::min(block, rows - r0);
      upload(ctx, staging, t.data + size_t(r0) * row_bytes, size_t(n) * row_bytes);
      const TensorRef src = staging.rows(0, n), dst = f.rows(0, n);
      convert(dst, src, name);
      ok(opdev_quantize_int8(ctx, q.rows(r0, n), scale.rows(r0, n), dst), what.c_str());
      done += size_t(n) * row_bytes;
      if (progress) progress(done, total, what);
    }
  }

  Tensor stacked_1d(const std::vector<std::string>& names, const std::string& what) {
    int64_t n = 0;
    for (const auto& x : names) n += ck.tensor(x).shape[0];
    Tensor t(ctx, dt, {n}, what);
    int64_t o = 0;
    for (const auto& x : names) {
      const int64_t k = ck.tensor(x).shape[0];
      into(x, t.rows(o, k));
      o += k;
    }
    return t;
  }
};

}  // namespace

Qwen3Model::Qwen3Model(const Checkpoint& ck, opdev_context* ctx, DLDataType dt, const ProgressFn& progress, WeightFormat weights)
    : cfg_(ck.config()), ctx_(ctx), dtype_(dt), weights_(weights) {
  const bool q8 = is_int8(weights);
  const ModelConfig& c = cfg_;
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads;
  Loader L{ck, ctx, dt, progress};
  for (const auto& [name, shape] : Checkpoint::expected_tensors(c))
    if (ck.has(name)) L.total += ck.tensor(name).nbytes;
  const std::string head = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  if (weights == WeightFormat::Int8 && c.tie_word_embeddings) L.total += ck.tensor(head).nbytes;  // read twice

  embed_ = L.whole("model.embed_tokens.weight", {c.vocab_size, H});
  final_norm_ = L.whole("model.norm.weight", {H});
  if (weights == WeightFormat::Int8) {
    lm_head_q_ = Tensor(ctx, kInt8, {c.vocab_size, H}, "lm_head");
    lm_head_s_ = Tensor(ctx, kFloat32, {c.vocab_size}, "lm_head scales");
    L.quantized_blocks(head, lm_head_q_, lm_head_s_, "lm_head");
  } else if (!c.tie_word_embeddings) {
    lm_head_ = L.whole("lm_head.weight", {c.vocab_size, H});
  }
  layers_.resize(size_t(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights& w = layers_[size_t(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w.input_norm = L.whole(p + "input_layernorm.weight", {H});
    w.post_norm = L.whole(p + "post_attention_layernorm.weight", {H});
    w.q_norm = L.whole(p + "self_attn.q_norm.weight", {D});
    w.k_norm = L.whole(p + "self_attn.k_norm.weight", {D});
    L.projection({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"}, H, p + "qkv", q8,
                 w.qkv_w, w.qkv_s);
    L.projection({p + "self_attn.o_proj.weight"}, Hq * D, p + "o_proj", q8, w.o_w, w.o_s);
    if (c.attention_bias) {
      w.qkv_b = L.stacked_1d({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"}, p + "qkv bias");
      w.o_b = L.whole(p + "self_attn.o_proj.bias", {H});
    }
    w.moe = c.is_moe_layer(l);
    if (!w.moe) {
      L.projection({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, H, p + "gate_up", q8, w.gate_up_w, w.gate_up_s);
      L.projection({p + "mlp.down_proj.weight"}, c.intermediate_size, p + "down_proj", q8, w.down_w, w.down_s);
    } else {
      const int64_t E = c.num_experts, Im = c.moe_intermediate_size;
      w.router_w = L.whole(p + "mlp.gate.weight", {E, H});
      w.experts_gate_up_w = Tensor(ctx, q8 ? kInt8 : dt, {E, 2 * Im, H}, p + "experts gate_up");
      w.experts_down_w = Tensor(ctx, q8 ? kInt8 : dt, {E, H, Im}, p + "experts down");
      if (q8) {
        w.experts_gate_up_s = Tensor(ctx, kFloat32, {E, 2 * Im}, p + "experts gate_up scales");
        w.experts_down_s = Tensor(ctx, kFloat32, {E, H}, p + "experts down scales");
      }
      for (int64_t e = 0; e < E; ++e) {
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        if (q8) {
          L.quantized_into({q + "gate_proj.weight", q + "up_proj.weight"}, H, view(w.experts_gate_up_w, {2 * Im, H}, {}, e * 2 * Im * H),
                           view(w.experts_gate_up_s, {2 * Im}, {}, e * 2 * Im), q + "gate_up");
          L.quantized_into({q + "down_proj.weight"}, Im, view(w.experts_down_w, {H, Im}, {}, e * H * Im),
                           view(w.experts_down_s, {H}, {}, e * H), q + "down");
          continue;
        }
        L.into(q + "gate_proj.weight", view(w.experts_gate_up_w, {Im, H}, {}, e * 2 * Im * H));
        L.into(q + "up_proj.weight", view(w.experts_gate_up_w, {Im, H}, {}, (e * 2 + 1) * Im * H));
        L.into(q + "down_proj.weight", view(w.experts_down_w, {H, Im}, {}, e * H * Im));
      }
    }
  }
  // Bytes the weights occupy on the device.
  weight_bytes_ = embed_.nbytes() + final_norm_.nbytes() + lm_head_.nbytes() + lm_head_q_.nbytes() + lm_head_s_.nbytes();
  for (const LayerWeights& w : layers_)
    for (const Tensor* t : {&w.input_norm, &w.post_norm, &w.q_norm, &w.k_norm, &w.qkv_w, &w.qkv_b, &w.o_w, &w.o_b, &w.gate_up_w,
                            &w.down_w, &w.router_w, &w.experts_gate_up_w, &w.experts_down_w, &w.qkv_s, &w.o_s, &w.gate_up_s,
                            &w.down_s, &w.experts_gate_up_s, &w.experts_down_s})
      weight_bytes_ += t->nbytes();

  // Rotary table for every position the model supports.
  cos_sin_ = Tensor(ctx, kFloat32, {c.max_position_embeddings, D}, "rope cos/sin table");
  opdev_rope_scaling sc;
  opdev_rope_scaling_init(&sc);
  if (c.rope_scaling) {
    const RopeScalingConfig& r = *c.rope_scaling;
    if (r.type == "linear") {
      sc.type = OPDEV_ROPE_SCALING_LINEAR;
      sc.factor = r.factor;
    } else if (r.type == "yarn") {
      sc.type = OPDEV_ROPE_SCALING_YARN;
      sc.factor = r.factor;
      sc.original_max_position_embeddings = r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings
                                                                                    : c.max_position_embeddings;
      // Hugging Face: with an explicit original_max_position_embeddings the factor is the ratio of the
      // context lengths (modeling_rope_utils._compute_yarn_parameters).
      if (r.original_max_position_embeddings > 0)
        sc.factor = double(c.max_position_embeddings) / double(r.original_max_position_embeddings);
      sc.beta_fast = r.beta_fast;
      sc.beta_slow = r.beta_slow;
      sc.mscale = r.mscale;
      sc.mscale_all_dim = r.mscale_all_dim;
      sc.attention_factor = r.attention_factor;
      sc.truncate = r.truncate ? 1 : 0;
    }
  }
  ok(opdev_rope_cache(ctx, cos_sin_, c.rope_theta, &sc), "rope_cache");
}

double Qwen3Model::decode_weight_bytes() const {
  const double item = double(dtype_bytes(dtype_));
  const ModelConfig& c = cfg_;
  // lm_head (the tied embedding counts as it)
  double b = lm_head_q_.defined() ? double(lm_head_q_.nbytes() + lm_head_s_.nbytes()) : double(c.vocab_size * c.hidden_size) * item;
  b += double(c.hidden_size) * item;                       // final norm
  for (const LayerWeights& w : layers_) {
    for (const Tensor* t : {&w.input_norm, &w.post_norm, &w.q_norm, &w.k_norm, &w.qkv_w, &w.qkv_b, &w.o_w, &w.o_b, &w.gate_up_w,
                            &w.down_w, &w.router_w, &w.qkv_s, &w.o_s, &w.gate_up_s, &w.down_s})
      b += double(t->nbytes());
    if (w.moe)
      b += double(w.experts_gate_up_w.nbytes() + w.experts_down_w.nbytes() + w.experts_gate_up_s.nbytes() + w.experts_down_s.nbytes()) *
           double(c.num_experts_per_tok) / double(c.num_experts);
  }
  return b;
}

size_t Qwen3Model::kv_bytes_per_block(int64_t block_size) const {
  return size_t(2 * cfg_.num_hidden_layers * block_size * cfg_.num_key_value_heads * cfg_.head_dim) * dtype_bytes(dtype_);
}

KvCache Qwen3Model::make_kv_cache(int64_t num_blocks, int64_t block_size) const {
  KvCache kv;
  kv.num_blocks = num_blocks;
  kv.block_size = block_size;
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    kv.k.emplace_back(ctx_, dtype_, std::vector<int64_t>{num_blocks, block_size, cfg_.num_key_value_heads, cfg_.head_dim}, "key cache");
    kv.v.emplace_back(ctx_, dtype_, std::vector<int64_t>{num_blocks, block_size, cfg_.num_key_value_heads, cfg_.head_dim}, "value cache");
  }
  return kv;
}

// ---- forward ----

struct Qwen3Model::Scratch {
  int64_t T = 0, R = 0;
  Tensor x, residual, qkv, attn, mlp_out, gate_up, act;            // dense path and attention
  Tensor router, topk_w, topk_ids, permuted, offsets, rows, egu, eact, ey;  // MoE path
  Tensor sel;                                                     // [R, H] rows that need logits
  Tensor xq, xs;  // Int8: a projection's input quantised, int8 [rows, K] (K up to the widest input) and float32 [rows]
  Tensor ids, positions, slots, cu, seqlens, block_table, logit_rows;
};

Qwen3Model::~Qwen3Model() = default;

void Qwen3Model::ensure_scratch(int64_t T, int64_t R) {
  if (!s_) s_ = std::make_unique<Scratch>();
  Scratch& s = *s_;
  const ModelConfig& c = cfg_;
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads, Hk = c.num_key_value_heads;
  if (T > s.T) {
    const int64_t cap = T;
    s.x = Tensor(ctx_, dtype_, {cap, H}, "hidden states");
    s.residual = Tensor(ctx_, dtype_, {cap, H}, "residual");
    s.qkv = Tensor(ctx_, dtype_, {cap, (Hq + 2 * Hk) * D}, "qkv");
    s.attn = Tensor(ctx_, dtype_, {cap, Hq * D}, "attention output");
    s.mlp_out = Tensor(ctx_, dtype_, {cap, H}, "mlp output");
    if (c.intermediate_size > 0) {
      s.gate_up = Tensor(ctx_, dtype_, {cap, 2 * c.intermediate_size}, "gate_up");
      s.act = Tensor(ctx_, dtype_, {cap, c.intermediate_size}, "mlp activation");
    }
    if (c.is_moe()) {
      const int64_t E = c.num_experts, k = c.num_experts_per_tok, Im = c.moe_intermediate_size;
      s.router = Tensor(ctx_, dtype_, {cap, E}, "router logits");
      s.topk_w = Tensor(ctx_, kFloat32, {cap, k}, "top-k weights");
      s.topk_ids = Tensor(ctx_, kInt32, {cap, k}, "top-k ids");
      s.permuted = Tensor(ctx_, dtype_, {cap * k, H}, "permuted tokens");
      s.offsets = Tensor(ctx_, kInt64, {E + 1}, "expert offsets");
      s.rows = Tensor(ctx_, kInt32, {cap * k}, "sorted rows");
      s.egu = Tensor(ctx_, dtype_, {cap * k, 2 * Im}, "expert gate_up");
      s.eact = Tensor(ctx_, dtype_, {cap * k, Im}, "expert activation");
      s.ey = Tensor(ctx_, dtype_, {cap * k, H}, "expert output");
    }
    s.T = cap;
  }
  if (R > s.R) {
    s.sel = Tensor(ctx_, dtype_, {R, H}, "selected rows");
    s.R = R;
  }
  if (is_int8(weights_)) {
    // The widest quantised input: the projections' (T rows, T * top-k for the experts) and, with an int8
    // lm_head, the R selected rows of width H.
    const int64_t rows = std::max(s.T * (c.is_moe() ? std::max<int64_t>(1, c.num_experts_per_tok) : 1), s.R);
    const int64_t K = std::max({H, Hq * D, c.intermediate_size, c.is_moe() ? c.moe_intermediate_size : int64_t(0)});
    if (!s.xq.defined() || s.xs.shape[0] < rows) {
      s.xq = Tensor(ctx_, kInt8, {rows * K}, "quantised projection input");
      s.xs = Tensor(ctx_, kFloat32, {rows}, "projection input scales");
    }
  }
}

void Qwen3Model::forward(const BatchInputs& in, KvCache& cache, Tensor& logits) {
  const ModelConfig& c = cfg_;
  const int64_t T = int64_t(in.ids.size()), B = int64_t(in.seq_lens_kv.size()), R = int64_t(in.logit_rows.size());
  const int64_t V = c.vocab_size;
  if (int64_t(in.positions.size()) != T || int64_t(in.slot_mapping.size()) != T || int64_t(in.cu_seqlens_q.size()) != B + 1 ||
      int64_t(in.block_table.size()) != B * in.max_blocks)
    throw ModelError("forward: inconsistent batch (internal error)");
  ensure_scratch(T, R);
  Scratch& s = *s_;
  // Batch metadata to the device.
  s.ids = Tensor(ctx_, kInt32, {T}, "ids");
  s.positions = Tensor(ctx_, kInt32, {T}, "positions");
  s.slots = Tensor(ctx_, kInt64, {T}, "slot mapping");
  s.cu = Tensor(ctx_, kInt32, {B + 1}, "cu_seqlens_q");
  s.seqlens = Tensor(ctx_, kInt32, {B}, "seq_lens_kv");
  s.block_table = Tensor(ctx_, kInt32, {B, in.max_blocks}, "block table");
  s.logit_rows = Tensor(ctx_, kInt32, {R}, "logit rows");
  upload(ctx_, s.ids, in.ids.data(), s.ids.nbytes());
  upload(ctx_, s.positions, in.positions.data(), s.positions.nbytes());
  upload(ctx_, s.slots, in.slot_mapping.data(), s.slots.nbytes());
  upload(ctx_, s.cu, in.cu_seqlens_q.data(), s.cu.nbytes());
  upload(ctx_, s.seqlens, in.seq_lens_kv.data(), s.seqlens.nbytes());
  upload(ctx_, s.block_table, in.block_table.data(), s.block_table.nbytes());
  upload(ctx_, s.logit_rows, in.logit_rows.data(), s.logit_rows.nbytes());

  // residual = embedding; x = input_layernorm(residual) of layer 0 (later layers fuse the add).
  TensorRef residual = s.residual.rows(0, T), x = s.x.rows(0, T), mlp_out = s.mlp_out.rows(0, T);
  OP("embedding", -1, opdev_embedding(ctx_, residual, embed_, s.ids));
  OP("input_layernorm", 0, opdev_rms_norm(ctx_, x, residual, layers_[0].input_norm, c.rms_norm_eps));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    layer(l, T, cache);
    const Tensor& next_norm = l + 1 < c.num_hidden_layers ? layers_[size_t(l + 1)].input_norm : final_norm_;
    // residual += mlp_out; x = norm(residual)
    const bool last = l + 1 == c.num_hidden_layers;
    OP(last ? "norm" : "input_layernorm", last ? -1 : l + 1,
       opdev_add_rms_norm(ctx_, x, residual, mlp_out, residual, next_norm, c.rms_norm_eps));
  }
  // Gather the rows that need logits, then the lm_head (none in a step of prefill chunks only).
  if (R == 0) {
    opdev_context_set_label(ctx_, nullptr);
    return;
  }
  TensorRef sel = s.sel.rows(0, R);
  OP("gather_logit_rows", -1, opdev_embedding(ctx_, sel, x, s.logit_rows));
  if (logits.shape != std::vector<int64_t>{R, V} || !same_dtype(logits.dtype, dtype_)) logits = Tensor(ctx_, dtype_, {R, V}, "logits");
  const Tensor& head = lm_head_q_.defined() ? lm_head_q_ : c.tie_word_embeddings ? embed_ : lm_head_;
  project("lm_head", -1, logits, sel, head, lm_head_s_, nullptr);
  opdev_context_set_label(ctx_, nullptr);
}

namespace {

// x [rows, K] quantised into the scratch: int8 [rows, K] and float32 [rows] views; labelled "<what>.quantize".
struct Quantised {
  TensorRef q, scale;
};

Quantised quantise(opdev_context* ctx, const Tensor& xq, const Tensor& xs, const DLTensor* x, const char* what, int64_t l) {
  const int64_t rows = x->shape[0], K = x->shape[1];
  Quantised r{view(xq, {rows, K}, {}, 0), view(xs, {rows}, {}, 0)};
  const std::string label = std::string(what) + ".quantize";
  at(ctx, label.c_str(), l);
  ok(opdev_quantize_int8(ctx, r.q, r.scale, x), label.c_str(), l);
  return r;
}

}  // namespace

void Qwen3Model::project(const char* what, int64_t l, const DLTensor* out, const TensorRef& x, const Tensor& w, const Tensor& scale,
                         const DLTensor* bias) {
  if (!same_dtype(w.dtype, kInt8)) {
    OP(what, l, opdev_linear(ctx_, out, x, w, bias));
    return;
  }
  const Quantised q = quantise(ctx_, s_->xq, s_->xs, x.get(), what, l);
  OP(what, l, opdev_linear_w8a8(ctx_, out, q.q, q.scale, w, scale, bias));
}

void Qwen3Model::project_experts(const char* what, int64_t l, const DLTensor* out, const TensorRef& x, const Tensor& w,
                                 const Tensor& scale) {
  if (!same_dtype(w.dtype, kInt8)) {
    OP(what, l, opdev_grouped_matmul(ctx_, out, x, w, s_->offsets));
    return;
  }
  const Quantised q = quantise(ctx_, s_->xq, s_->xs, x.get(), what, l);
  OP(what, l, opdev_grouped_matmul_w8a8(ctx_, out, q.q, q.scale, w, scale, s_->offsets));
}

void Qwen3Model::layer(int64_t l, int64_t T, KvCache& cache) {
  const ModelConfig& c = cfg_;
  const LayerWeights& w = layers_[size_t(l)];
  Scratch& s = *s_;
  const int64_t D = c.head_dim, Hq = c.num_attention_heads, Hk = c.num_key_value_heads;
  const int64_t QKV = (Hq + 2 * Hk) * D;
  TensorRef x = s.x.rows(0, T), qkv = s.qkv.rows(0, T);
  // Attention.
  project("self_attn.qkv_proj", l, qkv, x, w.qkv_w, w.qkv_s, c.attention_bias ? w.qkv_b.ref.get() : nullptr);
  TensorRef q = view(s.qkv, {T, Hq, D}, {QKV, D, 1}, 0);
  TensorRef k = view(s.qkv, {T, Hk, D}, {QKV, D, 1}, Hq * D);
  TensorRef v = view(s.qkv, {T, Hk, D}, {QKV, D, 1}, (Hq + Hk) * D);
  OP("self_attn.q_norm", l, opdev_rms_norm(ctx_, q, q, w.q_norm, c.rms_norm_eps));
  OP("self_attn.k_norm", l, opdev_rms_norm(ctx_, k, k, w.k_norm, c.rms_norm_eps));
  OP("self_attn.rope", l, opdev_rope(ctx_, q, k, s.positions, cos_sin_, 1));
  OP("self_attn.reshape_and_cache", l, opdev_reshape_and_cache(ctx_, cache.k[size_t(l)], cache.v[size_t(l)], k, v, s.slots));
  TensorRef attn3 = view(s.attn, {T, Hq, D}, {}, 0);
  OP("self_attn.attention", l,
     opdev_paged_attention(ctx_, attn3, nullptr, q, cache.k[size_t(l)], cache.v[size_t(l)], s.block_table, s.cu, s.seqlens,
                           1.0 / std::sqrt(double(D)), 1));
  TensorRef o = s.mlp_out.rows(0, T), residual = s.residual.rows(0, T);
  project("self_attn.o_proj", l, o, s.attn.rows(0, T), w.o_w, w.o_s, c.attention_bias ? w.o_b.ref.get() : nullptr);
  // residual += o; x = post_attention_layernorm(residual)
  OP("post_attention_layernorm", l, opdev_add_rms_norm(ctx_, x, residual, o, residual, w.post_norm, c.rms_norm_eps));
  // MLP into mlp_out.
  TensorRef mlp_out = s.mlp_out.rows(0, T);
  if (!w.moe) {
    TensorRef gu = s.gate_up.rows(0, T), act = s.act.rows(0, T);
    project("mlp.gate_up_proj", l, gu, x, w.gate_up_w, w.gate_up_s, nullptr);
    OP("mlp.silu_and_mul", l, opdev_silu_and_mul(ctx_, act, gu));
    project("mlp.down_proj", l, mlp_out, act, w.down_w, w.down_s, nullptr);
    return;
  }
  const int64_t k_ = c.num_experts_per_tok;
  TensorRef router = s.router.rows(0, T), tw = s.topk_w.rows(0, T), tid = s.topk_ids.rows(0, T);
  OP("mlp.gate", l, opdev_linear(ctx_, router, x, w.router_w, nullptr));
  OP("mlp.moe_gating_topk", l,
     opdev_moe_gating_topk(ctx_, tw, tid, router, nullptr, OPDEV_MOE_SCORING_SOFTMAX, c.norm_topk_prob ? 1 : 0, 1, 1, 1.0));
  TensorRef px = s.permuted.rows(0, T * k_), rows = s.rows.rows(0, T * k_);
  OP("mlp.moe_permute", l, opdev_moe_permute(ctx_, px, s.offsets, rows, x, tid));
  TensorRef egu = s.egu.rows(0, T * k_), eact = s.eact.rows(0, T * k_), ey = s.ey.rows(0, T * k_);
  project_experts("mlp.experts.gate_up", l, egu, px, w.experts_gate_up_w, w.experts_gate_up_s);
  OP("mlp.experts.silu_and_mul", l, opdev_silu_and_mul(ctx_, eact, egu));
  project_experts("mlp.experts.down", l, ey, eact, w.experts_down_w, w.experts_down_s);
  OP("mlp.moe_unpermute", l, opdev_moe_unpermute(ctx_, mlp_out, ey, tw, rows));
}

}  // namespace opdev::model
