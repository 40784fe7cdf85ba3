// config.json / generation_config.json: the real Qwen3 files, Hugging Face defaults, MoE layer
// placement, rope scaling, every kind of bad value with its message, and to_json round trips.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/synthetic.h"
#include "model_error_testing.h"

using namespace opdev::model;
using json = nlohmann::json;

namespace {

using opdev::model::testing::error_of;

// Qwen/Qwen3-0.6B config.json as published.
const char* kQwen3_06B = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// Qwen/Qwen3-30B-A3B config.json as published.
const char* kQwen3_30B_A3B = R"({
  "architectures": ["Qwen3MoeForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "decoder_sparse_step": 1,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 6144,
  "max_position_embeddings": 40960,
  "max_window_layers": 48,
  "mlp_only_layers": [],
  "model_type": "qwen3_moe",
  "moe_intermediate_size": 768,
  "norm_topk_prob": true,
  "num_attention_heads": 32,
  "num_experts": 128,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 48,
  "num_key_value_heads": 4,
  "output_router_logits": false,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000.0,
  "router_aux_loss_coef": 0.001,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

json base_dense() {
  return json::parse(R"({"architectures": ["Qwen3ForCausalLM"], "vocab_size": 1000, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16})");
}
json base_moe() {
  return json::parse(R"({"architectures": ["Qwen3MoeForCausalLM"], "vocab_size": 1000, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
    "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 32})");
}

ModelConfig parse(const json& j) { return ModelConfig::parse(j.dump(), "config.json"); }

// The error of parsing `j` after `edit`.
std::string config_error(json j, const std::function<void(json&)>& edit) {
  edit(j);
  return error_of([&] { parse(j); });
}
void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  ASSERT_EQ(a.rope_scaling.has_value(), b.rope_scaling.has_value());
  if (a.rope_scaling) {
    EXPECT_EQ(a.rope_scaling->type, b.rope_scaling->type);
    EXPECT_EQ(a.rope_scaling->factor, b.rope_scaling->factor);
    EXPECT_EQ(a.rope_scaling->original_max_position_embeddings, b.rope_scaling->original_max_position_embeddings);
    EXPECT_EQ(a.rope_scaling->beta_fast, b.rope_scaling->beta_fast);
    EXPECT_EQ(a.rope_scaling->beta_slow, b.rope_scaling->beta_slow);
    EXPECT_EQ(a.rope_scaling->mscale, b.rope_scaling->mscale);
    EXPECT_EQ(a.rope_scaling->mscale_all_dim, b.rope_scaling->mscale_all_dim);
    EXPECT_EQ(a.rope_scaling->attention_factor, b.rope_scaling->attention_factor);
    EXPECT_EQ(a.rope_scaling->truncate, b.rope_scaling->truncate);
  }
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.num_experts, b.num_experts);
  EXPECT_EQ(a.num_experts_per_tok, b.num_experts_per_tok);
  EXPECT_EQ(a.moe_intermediate_size, b.moe_intermediate_size);
  EXPECT_EQ(a.decoder_sparse_step, b.decoder_sparse_step);
  EXPECT_EQ(a.norm_topk_prob, b.norm_topk_prob);
  EXPECT_EQ(a.mlp_only_layers, b.mlp_only_layers);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
}

}  // namespace

TEST(Config, RealQwen3_06B) {
  ModelConfig c = ModelConfig::parse(kQwen3_06B, "config.json");
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c.model_type, "qwen3");
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.num_hidden_layers, 28);
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position_embeddings, 40960);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 1e6);  // written as the integer 1000000
  EXPECT_FALSE(c.rope_scaling);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.is_moe());
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.bos_token_id, 151643);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
}

TEST(Config, RealQwen3_30B_A3B) {
  ModelConfig c = ModelConfig::parse(kQwen3_30B_A3B, "config.json");
  EXPECT_EQ(c.architecture, "Qwen3MoeForCausalLM");
  EXPECT_EQ(c.model_type, "qwen3_moe");
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.num_hidden_layers, 48);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 128);  // not hidden / heads (64): the file says 128
  EXPECT_EQ(c.num_experts, 128);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.moe_intermediate_size, 768);
  EXPECT_EQ(c.intermediate_size, 6144);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.is_moe());
  for (int l = 0; l < 48; ++l) EXPECT_TRUE(c.is_moe_layer(l)) << l;
}

TEST(Config, HuggingFaceDefaultsDense) {
  json j = json::parse(R"({"architectures": ["Qwen3ForCausalLM"], "vocab_size": 1000, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 32})");
  ModelConfig c = parse(j);
  EXPECT_EQ(c.model_type, "qwen3");
  EXPECT_EQ(c.num_key_value_heads, 32);  // Qwen3Config(num_key_value_heads=32)
  EXPECT_EQ(c.head_dim, 128);            // Qwen3Config(head_dim=128), not 64 / 32
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.rope_scaling);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.torch_dtype, "");
  EXPECT_FALSE(c.bos_token_id);
  EXPECT_TRUE(c.eos_token_ids.empty());
  // null means "use num_attention_heads" (transformers' backward-compatibility branch).
  j["num_attention_heads"] = 8;
  EXPECT_ERROR(error_of([&] { parse(j); }),
               "num_key_value_heads is absent and Hugging Face's default for Qwen3ForCausalLM (32) does not divide "
               "num_attention_heads (8)");
  j["num_key_value_heads"] = nullptr;
  EXPECT_EQ(parse(j).num_key_value_heads, 8);
}

TEST(Config, HuggingFaceDefaultsMoe) {
  json j = base_moe();
  j.erase("num_key_value_heads");
  ModelConfig c = parse(j);
  EXPECT_EQ(c.num_key_value_heads, 4);  // Qwen3MoeConfig(num_key_value_heads=4)
  EXPECT_EQ(c.head_dim, 16);            // getattr(config, "head_dim", hidden_size // num_attention_heads)
  EXPECT_EQ(c.decoder_sparse_step, 1);
  EXPECT_FALSE(c.norm_topk_prob);       // Qwen3MoeConfig's default (real checkpoints say true)
  EXPECT_TRUE(c.mlp_only_layers.empty());
  j["mlp_only_layers"] = nullptr;
  EXPECT_TRUE(parse(j).mlp_only_layers.empty());
  // intermediate_size is only needed when some layer is dense.
  j.erase("intermediate_size");
  EXPECT_EQ(parse(j).intermediate_size, 6144);
  j["decoder_sparse_step"] = 2;
  EXPECT_ERROR(error_of([&] { parse(j); }), "missing required field 'intermediate_size'");
}

TEST(Config, MoeLayerPlacement) {
  json j = base_moe();
  j["num_hidden_layers"] = 6;
  j["decoder_sparse_step"] = 2;
  ModelConfig c = parse(j);
  std::vector<bool> want = {false, true, false, true, false, true};  // (layer + 1) % 2 == 0
  for (int l = 0; l < 6; ++l) EXPECT_EQ(c.is_moe_layer(l), want[l]) << l;
  j["decoder_sparse_step"] = 1;
  j["mlp_only_layers"] = {0, 2};
  c = parse(j);
  want = {false, true, false, true, true, true};
  for (int l = 0; l < 6; ++l) EXPECT_EQ(c.is_moe_layer(l), want[l]) << l;
  j["num_experts"] = 0;  // allowed by Hugging Face: every layer dense
  c = parse(j);
  EXPECT_FALSE(c.is_moe());
  for (int l = 0; l < 6; ++l) EXPECT_FALSE(c.is_moe_layer(l));
}

TEST(Config, RopeScaling) {
  json j = base_dense();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  ModelConfig c = parse(j);
  ASSERT_TRUE(c.rope_scaling);
  EXPECT_EQ(c.rope_scaling->type, "yarn");
  EXPECT_EQ(c.rope_scaling->factor, 4.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 32768);
  EXPECT_EQ(c.rope_scaling->beta_fast, 32.0);
  EXPECT_EQ(c.rope_scaling->beta_slow, 1.0);
  EXPECT_EQ(c.rope_scaling->attention_factor, 0.0);  // absent
  EXPECT_TRUE(c.rope_scaling->truncate);
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 2}, {"beta_fast", 16}, {"beta_slow", 2}, {"mscale", 0.707},
                       {"mscale_all_dim", 1.0}, {"attention_factor", 1.2}, {"truncate", false}};
  c = parse(j);
  EXPECT_EQ(c.rope_scaling->type, "yarn");
  EXPECT_EQ(c.rope_scaling->beta_fast, 16.0);
  EXPECT_EQ(c.rope_scaling->mscale, 0.707);
  EXPECT_EQ(c.rope_scaling->attention_factor, 1.2);
  EXPECT_FALSE(c.rope_scaling->truncate);
  // "type" wins over "rope_type" (transformers copies it over).
  j["rope_scaling"] = {{"type", "linear"}, {"rope_type", "yarn"}, {"factor", 2}};
  EXPECT_EQ(parse(j).rope_scaling->type, "linear");
  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_FALSE(parse(j).rope_scaling);
  j["rope_scaling"] = nullptr;
  EXPECT_FALSE(parse(j).rope_scaling);
  // transformers 5 layout.
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 5e5}, {"factor", 8}};
  c = parse(j);
  EXPECT_EQ(c.rope_theta, 5e5);
  EXPECT_EQ(c.rope_scaling->type, "linear");
  EXPECT_EQ(c.rope_scaling->factor, 8.0);
}

TEST(Config, TokenIds) {
  json j = base_dense();
  j["eos_token_id"] = {151645, 151643};
  EXPECT_EQ(parse(j).eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  j["eos_token_id"] = 7;
  EXPECT_EQ(parse(j).eos_token_ids, (std::vector<int64_t>{7}));
  j["eos_token_id"] = nullptr;
  EXPECT_TRUE(parse(j).eos_token_ids.empty());
  j["eos_token_id"] = "</s>";
  EXPECT_ERROR(error_of([&] { parse(j); }), "config.json: eos_token_id must be an integer or a list of integers, got a string");
  j["eos_token_id"] = {1, "x"};
  EXPECT_ERROR(error_of([&] { parse(j); }), "eos_token_id must be an integer, got a string");
  j["eos_token_id"] = -3;
  EXPECT_ERROR(error_of([&] { parse(j); }), "eos_token_id holds the negative token id -3");
}

TEST(Config, MissingRequiredFields) {
  for (const char* f : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"})
    EXPECT_ERROR(config_error(base_dense(), [&](json& j) { j.erase(f); }),
                 std::string("config.json: missing required field '") + f + "'");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j.erase("architectures"); }),
               "missing required field 'architectures'");
  for (const char* f : {"num_experts", "num_experts_per_tok", "moe_intermediate_size"})
    EXPECT_ERROR(config_error(base_moe(), [&](json& j) { j.erase(f); }), std::string("missing required field '") + f + "'");
  // A required size that is null is a type error, not a default.
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["hidden_size"] = nullptr; }),
               "hidden_size must be an integer, got null");
}

TEST(Config, WrongTypes) {
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["hidden_size"] = "1024"; }),
               "config.json: hidden_size must be an integer, got a string");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["hidden_size"] = 64.5; }),
               "hidden_size must be an integer, got a number with a fraction or exponent (64.5)");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["num_hidden_layers"] = true; }),
               "num_hidden_layers must be an integer, got a boolean");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["tie_word_embeddings"] = "yes"; }),
               "tie_word_embeddings must be true or false, got a string");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_theta"] = "1e6"; }), "rope_theta must be a number, got a string");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["architectures"] = "Qwen3ForCausalLM"; }),
               "architectures must be a non-empty list of names, got a string");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["architectures"] = json::array(); }),
               "architectures must be a non-empty list of names, got []");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_scaling"] = "yarn"; }),
               "rope_scaling must be an object or null, got a string");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["mlp_only_layers"] = 3; }),
               "mlp_only_layers must be a list of layer indices, got an integer");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["hidden_size"] = 18446744073709551615ull; }),
               "hidden_size is too large");
  EXPECT_ERROR(error_of([] { ModelConfig::parse("[1]", "config.json"); }), "config.json: must be a JSON object, got an array");
  EXPECT_ERROR(error_of([] { ModelConfig::parse("{\"a\":", "dir/config.json"); }), "dir/config.json: not valid JSON");
  EXPECT_ERROR(error_of([] { ModelConfig::parse("", "config.json"); }), "config.json: not valid JSON");
  // Found by fuzz_config: nlohmann reports a number too large for a double as out_of_range, not as a
  // parse_error; it must still be a ModelError.
  EXPECT_ERROR(error_of([] { ModelConfig::parse("{\"rope_theta\": 2e308}", "config.json"); }),
               "config.json: not valid JSON: number overflow parsing '2e308'");
  EXPECT_ERROR(error_of([] { GenerationConfig::parse("{\"top_p\": -1e999}", "g.json"); }), "g.json: not valid JSON");
  EXPECT_ERROR(error_of([] { ModelConfig::parse(std::string("{}\0{\"a\":1}", 10), "config.json"); }),
               "config.json: not valid JSON: NUL byte at offset 2");
}

TEST(Config, BadValues) {
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["num_attention_heads"] = 0; }),
               "config.json: num_attention_heads must be positive, got 0");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["num_key_value_heads"] = 0; }),
               "num_key_value_heads must be positive, got 0");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["num_key_value_heads"] = 3; }),
               "num_attention_heads (4) must be a multiple of num_key_value_heads (3)");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["num_hidden_layers"] = 0; }),
               "num_hidden_layers must be positive, got 0");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["vocab_size"] = -5; }), "vocab_size must be positive, got -5");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["hidden_size"] = 1ll << 40; }), "hidden_size is too large");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["head_dim"] = 15; }), "head_dim must be even");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rms_norm_eps"] = 0; }), "rms_norm_eps must be a positive number");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_theta"] = -1; }), "rope_theta must be a positive number");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["max_position_embeddings"] = 0; }),
               "max_position_embeddings must be positive");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["num_experts_per_tok"] = 9; }),
               "num_experts_per_tok (9) must not exceed num_experts (8)");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["num_experts_per_tok"] = 0; }),
               "num_experts_per_tok must be positive, got 0");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["moe_intermediate_size"] = 0; }),
               "moe_intermediate_size must be positive");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["num_experts"] = -1; }), "num_experts must be between 0 and");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["decoder_sparse_step"] = 0; }),
               "decoder_sparse_step must be positive, got 0");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["mlp_only_layers"] = {1, 4}; }),
               "mlp_only_layers holds layer 4, outside 0..3");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) { j["mlp_only_layers"] = {-1}; }), "mlp_only_layers holds layer -1");
  EXPECT_ERROR(config_error(base_moe(), [](json& j) {
                 j.erase("head_dim");
                 j["num_attention_heads"] = 6;
                 j["num_key_value_heads"] = 2;
               }),
               "head_dim is absent and hidden_size (64) is not a multiple of num_attention_heads (6)");
}

TEST(Config, UnsupportedFeatures) {
  std::string m = config_error(base_dense(), [](json& j) { j["architectures"] = {"LlamaForCausalLM"}; });
  EXPECT_ERROR(m, "config.json: architectures [\"LlamaForCausalLM\"] names no supported architecture");
  EXPECT_ERROR(m, "(supported: Qwen3ForCausalLM, Qwen3MoeForCausalLM)");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["hidden_act"] = "gelu"; }),
               "config.json: hidden_act 'gelu' is not supported (supported: silu)");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2}}; }),
               "config.json: rope_scaling: rope_type 'dynamic' is not supported (supported: default, linear, yarn)");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_scaling"] = {{"type", "longrope"}}; }),
               "'longrope' is not supported");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_scaling"] = {{"factor", 2}}; }),
               "rope_scaling: missing rope_type");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}}; }),
               "rope_scaling: missing required field 'factor' for rope_type linear");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 0}}; }),
               "rope_scaling.factor must be a positive number");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["use_sliding_window"] = true; }),
               "use_sliding_window is true: sliding-window attention is not supported");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["layer_types"] = {"full_attention", "sliding_attention"}; }),
               "layer_types holds \"sliding_attention\"");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["torch_dtype"] = "int8"; }),
               "torch_dtype 'int8' is not supported (supported: bfloat16, float16, float32)");
  EXPECT_ERROR(config_error(base_dense(), [](json& j) { j["model_type"] = "qwen3_moe"; }),
               "model_type 'qwen3_moe' does not match architecture Qwen3ForCausalLM (expected 'qwen3')");
  // A list with a supported name among others picks it.
  json j = base_dense();
  j["architectures"] = {"Foo", "Qwen3ForCausalLM"};
  EXPECT_EQ(parse(j).architecture, "Qwen3ForCausalLM");
  j["dtype"] = "float16";  // transformers >= 4.56 name
  EXPECT_EQ(parse(j).torch_dtype, "float16");
}

TEST(Config, SupportedArchitectures) {
  EXPECT_EQ(supported_architectures(), (std::vector<std::string>{"Qwen3ForCausalLM", "Qwen3MoeForCausalLM"}));
}

TEST(Config, ToJsonRoundTrip) {
  std::vector<ModelConfig> configs;
  for (const auto& p : synthetic_presets()) configs.push_back(synthetic_preset(p));
  configs.push_back(ModelConfig::parse(kQwen3_06B, "a"));
  configs.push_back(ModelConfig::parse(kQwen3_30B_A3B, "b"));
  json j = base_moe();
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  j["attention_bias"] = true;
  j["rms_norm_eps"] = 1.0e-5;
  j["rope_theta"] = 123456.789;
  j["eos_token_id"] = {5, 6};
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 4096},
                       {"attention_factor", 1.1}, {"mscale", 0.5}, {"truncate", false}};
  configs.push_back(parse(j));
  j = base_dense();
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.5}};
  configs.push_back(parse(j));
  for (const ModelConfig& c : configs) {
    SCOPED_TRACE(c.architecture + " " + std::to_string(c.hidden_size));
    std::string text = c.to_json();
    ModelConfig back = ModelConfig::parse(text, "to_json");
    expect_same(c, back);
    // Fields transformers needs to rebuild the model, checked on the JSON itself.
    json out = json::parse(text);
    EXPECT_EQ(out["architectures"][0], c.architecture);
    EXPECT_EQ(out["model_type"], c.architecture == "Qwen3ForCausalLM" ? "qwen3" : "qwen3_moe");
    EXPECT_EQ(out["head_dim"], c.head_dim);
    EXPECT_EQ(out["hidden_act"], "silu");
    EXPECT_EQ(out["use_sliding_window"], false);
    EXPECT_EQ(out.contains("num_experts"), c.architecture == "Qwen3MoeForCausalLM");
  }
}

TEST(GenerationConfig, RealQwen3) {
  GenerationConfig g = GenerationConfig::parse(R"({
    "bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
    "temperature": 0.6, "top_k": 20, "top_p": 0.95, "transformers_version": "4.51.0"})",
                                               "generation_config.json");
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  EXPECT_EQ(g.temperature, 0.6);
  EXPECT_EQ(g.top_k, 20);
  EXPECT_EQ(g.top_p, 0.95);
  EXPECT_EQ(g.do_sample, true);
  GenerationConfig empty = GenerationConfig::parse("{}", "generation_config.json");
  EXPECT_TRUE(empty.eos_token_ids.empty());
  EXPECT_FALSE(empty.temperature);
  EXPECT_FALSE(empty.top_p);
  EXPECT_FALSE(empty.top_k);
  EXPECT_FALSE(empty.do_sample);
  EXPECT_EQ(GenerationConfig::parse("{\"eos_token_id\": 2, \"temperature\": null}", "g").eos_token_ids,
            std::vector<int64_t>{2});
}

TEST(GenerationConfig, Errors) {
  auto err = [](const std::string& text) { return error_of([&] { GenerationConfig::parse(text, "generation_config.json"); }); };
  EXPECT_ERROR(err("{\"top_p\": 1.5}"), "generation_config.json: top_p must be in (0, 1]");
  EXPECT_ERROR(err("{\"top_p\": 0}"), "top_p must be in (0, 1]");
  EXPECT_ERROR(err("{\"temperature\": -1}"), "temperature must be a number >= 0");
  EXPECT_ERROR(err("{\"top_k\": -1}"), "top_k must not be negative");
  EXPECT_ERROR(err("{\"top_k\": 2.5}"), "top_k must be an integer");
  EXPECT_ERROR(err("{\"do_sample\": 1}"), "do_sample must be true or false, got an integer");
  EXPECT_ERROR(err("{\"eos_token_id\": \"x\"}"), "eos_token_id must be an integer or a list of integers");
  EXPECT_ERROR(err("[]"), "generation_config.json: must be a JSON object");
  EXPECT_ERROR(err("{"), "generation_config.json: not valid JSON");
}
