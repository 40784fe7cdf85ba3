// config.json and generation_config.json of the supported architectures (Qwen3ForCausalLM,
// Qwen3MoeForCausalLM), with every field they use and the Hugging Face defaults; validated (positive
// sizes, divisibility, ranges) with errors that name the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/error.h"

namespace opdev::model {

struct RopeScalingConfig {
  std::string type;  // "linear" | "yarn" (HF "rope_type" or "type"); "default" means none
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
  std::string torch_dtype;  // "bfloat16", "float16", "float32"
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;

  // Hugging Face Qwen3MoeDecoderLayer: experts when the layer is not in mlp_only_layers, num_experts > 0
  // and (layer + 1) % decoder_sparse_step == 0.
  bool is_moe_layer(int64_t layer) const;
  bool is_moe() const { return num_experts > 0; }

  // Parses config.json text; `path` names the file in messages. Unknown architectures get an error
  // that lists the supported ones.
  static ModelConfig parse(const std::string& json_text, const std::string& path);
  std::string to_json() const;  // what make-model writes
};

struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k;
  std::optional<bool> do_sample;
  static GenerationConfig parse(const std::string& json_text, const std::string& path);
};

std::vector<std::string> supported_architectures();

}  // namespace opdev::model
