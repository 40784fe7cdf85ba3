// config.json and generation_config.json of the supported architectures (Qwen3ForCausalLM,
// Qwen3MoeForCausalLM), with every field they use and the Hugging Face defaults; validated (positive
// sizes, divisibility, ranges) with errors that name the field.
//
// Defaults are those of transformers' Qwen3Config / Qwen3MoeConfig and modeling code, except that the
// sizes every real checkpoint states are required (a config without them is broken, and Hugging Face's
// 8B / 30B defaults would only surface later as a confusing shape mismatch): architectures,
// vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size (MoE: only when
// some layer is dense), and for MoE num_experts, num_experts_per_tok, moe_intermediate_size.
// Optional, with the Hugging Face value when absent:
//   num_key_value_heads  Qwen3: 32, Qwen3-MoE: 4 (the class defaults); null: num_attention_heads
//   head_dim             Qwen3: 128 (Qwen3Config's default); Qwen3-MoE: hidden_size / num_attention_heads
//                        (Qwen3MoeConfig has no head_dim, the model uses getattr(config, "head_dim", ...))
//   max_position_embeddings 32768, rms_norm_eps 1e-6, rope_theta 10000, rope_scaling null,
//   tie_word_embeddings false, attention_bias false, hidden_act "silu" (the only one supported),
//   decoder_sparse_step 1, norm_topk_prob false, mlp_only_layers [] (null too).
// Also read: "rope_parameters" (transformers 5: rope_theta and rope_type in one object) when
// rope_scaling is absent; "dtype" as a synonym of "torch_dtype". Refused with an error:
// use_sliding_window true or sliding layer_types (not implemented).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/error.h"

namespace opdev::model {

// rope_scaling of config.json ("default" is no scaling: ModelConfig::rope_scaling stays empty). As in
// Hugging Face, "type" overrides "rope_type". Fields the file leaves out keep the values below; 0 for
// original_max_position_embeddings and attention_factor means absent (Hugging Face then derives them:
// max_position_embeddings, and yarn's get_mscale(factor)).
struct RopeScalingConfig {
  std::string type;  // "linear" | "yarn"
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32.0, beta_slow = 1.0, mscale = 0.0, mscale_all_dim = 0.0, attention_factor = 0.0;
  bool truncate = true;
};

struct ModelConfig {
  std::string architecture;  // "Qwen3ForCausalLM" | "Qwen3MoeForCausalLM"
  std::string model_type;    // "qwen3" | "qwen3_moe"
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0, max_position_embeddings = 0;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  std::optional<RopeScalingConfig> rope_scaling;
  bool tie_word_embeddings = false, attention_bias = false;
  // Mixture of experts (num_experts == 0 for dense models).
  int64_t num_experts = 0, num_experts_per_tok = 0, moe_intermediate_size = 0, decoder_sparse_step = 1;
  bool norm_topk_prob = false;
  std::vector<int64_t> mlp_only_layers;
  std::string torch_dtype;  // "bfloat16", "float16", "float32", or "" when the file does not say
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;

  // Hugging Face Qwen3MoeDecoderLayer: experts when the layer is not in mlp_only_layers, num_experts > 0
  // and (layer + 1) % decoder_sparse_step == 0.
  bool is_moe_layer(int64_t layer) const;
  bool is_moe() const { return num_experts > 0; }

  // Parses config.json text; `path` names the file in messages. Unknown architectures get an error
  // that lists the supported ones.
  static ModelConfig parse(const std::string& json_text, const std::string& path);
  // Checks the fields (what parse() does after reading them); throws ModelError naming `path` and the
  // field. make-model calls it before writing anything.
  void validate(const std::string& path) const;
  // config.json as Hugging Face writes it (sorted keys, every field above plus the ones transformers
  // expects, e.g. use_sliding_window false); parse(to_json()) gives back an equal config.
  std::string to_json() const;
};

// generation_config.json. eos_token_id may be an int or a list; absent fields stay empty. Checked:
// temperature >= 0, top_p in (0, 1], top_k >= 0.
struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k;
  std::optional<bool> do_sample;
  static GenerationConfig parse(const std::string& json_text, const std::string& path);
};

std::vector<std::string> supported_architectures();

}  // namespace opdev::model
