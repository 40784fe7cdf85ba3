// config.json / generation_config.json parsing and validation. Every access goes through Fields, which
// checks the JSON type and says which field of which file is wrong. This file links only nlohmann_json
// (the fuzzer builds it alone).
#include "model/config.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace opdev::model {

namespace {

using json = nlohmann::json;

// Sizes stay within int32 so that products of two of them (numels of the weight matrices) and index
// arithmetic in the kernels cannot overflow.
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();

const char* kind_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number with a fraction or exponent";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Typed, named access to the members of one JSON object. `where` prefixes messages ("config.json" or
// "config.json: rope_scaling").
class Fields {
 public:
  Fields(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw ModelError(where_ + ": " + field + " " + message);
  }
  // Present and not null.
  bool has(const char* name) const {
    auto it = obj_.find(name);
    return it != obj_.end() && !it->is_null();
  }
  bool present(const char* name) const { return obj_.find(name) != obj_.end(); }
  const json& at(const char* name) const { return obj_.at(name); }

  int64_t integer(const char* name) const {
    if (!present(name)) throw ModelError(where_ + ": missing required field '" + name + "'");
    return as_int(name, at(name));
  }
  int64_t integer(const char* name, int64_t def) const { return has(name) ? as_int(name, at(name)) : def; }
  int64_t as_int(const std::string& name, const json& v) const {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) fail(name, "is too large");
      return int64_t(v.get<uint64_t>());
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    fail(name, std::string("must be an integer, got ") + kind_of(v) + (v.is_number_float() ? " (" + v.dump() + ")" : ""));
  }
  double number(const char* name, double def) const {
    if (!has(name)) return def;
    const json& v = at(name);
    if (!v.is_number()) fail(name, std::string("must be a number, got ") + kind_of(v));
    return v.get<double>();
  }
  bool boolean(const char* name, bool def) const {
    if (!has(name)) return def;
    const json& v = at(name);
    if (!v.is_boolean()) fail(name, std::string("must be true or false, got ") + kind_of(v));
    return v.get<bool>();
  }
  std::string string(const char* name, const std::string& def) const {
    if (!has(name)) return def;
    const json& v = at(name);
    if (!v.is_string()) fail(name, std::string("must be a string, got ") + kind_of(v));
    return v.get<std::string>();
  }
  // An int or a list of ints (eos_token_id); null or absent is empty.
  std::vector<int64_t> token_ids(const char* name) const {
    std::vector<int64_t> ids;
    if (!has(name)) return ids;
    const json& v = at(name);
    if (v.is_array()) {
      for (const json& x : v) ids.push_back(as_int(name, x));
    } else if (v.is_number()) {
      ids.push_back(as_int(name, v));
    } else {
      fail(name, std::string("must be an integer or a list of integers, got ") + kind_of(v));
    }
    for (int64_t id : ids)
      if (id < 0) fail(name, "holds the negative token id " + std::to_string(id));
    return ids;
  }

 private:
  const json& obj_;
  std::string where_;
};

json parse_object(const std::string& text, const std::string& path) {
  // nlohmann stops at a NUL byte as if the input ended there; JSON never holds one.
  if (size_t nul = text.find('\0'); nul != std::string::npos)
    throw ModelError(path + ": not valid JSON: NUL byte at offset " + std::to_string(nul));
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    std::string m = e.what();
    size_t p = m.find("] ");
    throw ModelError(path + ": not valid JSON: " + (p == std::string::npos ? m : m.substr(p + 2)));
  }
  if (!j.is_object()) throw ModelError(path + ": must be a JSON object, got " + kind_of(j));
  return j;
}

struct ArchInfo {
  const char* architecture;
  const char* model_type;
  bool moe;
};
constexpr ArchInfo kArchs[] = {{"Qwen3ForCausalLM", "qwen3", false}, {"Qwen3MoeForCausalLM", "qwen3_moe", true}};

RopeScalingConfig parse_rope(const Fields& f, const std::string& where, bool* is_default) {
  // Hugging Face: a "type" key is copied over "rope_type" (backward compatibility).
  std::string type = f.string("type", f.string("rope_type", ""));
  if (type.empty()) throw ModelError(where + ": missing rope_type (one of default, linear, yarn)");
  *is_default = type == "default";
  RopeScalingConfig r;
  if (*is_default) return r;
  if (type != "linear" && type != "yarn")
    f.fail("rope_type", "'" + type + "' is not supported (supported: default, linear, yarn)");
  r.type = type;
  if (!f.has("factor")) throw ModelError(where + ": missing required field 'factor' for rope_type " + type);
  r.factor = f.number("factor", 1.0);
  if (type == "yarn") {
    r.original_max_position_embeddings = f.integer("original_max_position_embeddings", 0);
    r.beta_fast = f.number("beta_fast", r.beta_fast);
    r.beta_slow = f.number("beta_slow", r.beta_slow);
    r.mscale = f.number("mscale", r.mscale);
    r.mscale_all_dim = f.number("mscale_all_dim", r.mscale_all_dim);
    r.attention_factor = f.number("attention_factor", r.attention_factor);
    r.truncate = f.boolean("truncate", r.truncate);
    if (f.has("original_max_position_embeddings") && r.original_max_position_embeddings <= 0)
      f.fail("original_max_position_embeddings", "must be positive");
    if (f.has("attention_factor") && !(r.attention_factor > 0))
      f.fail("attention_factor", "must be positive");
  }
  return r;
}

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> v;
  for (const auto& a : kArchs) v.push_back(a.architecture);
  return v;
}

bool ModelConfig::is_moe_layer(int64_t layer) const {
  for (int64_t l : mlp_only_layers)
    if (l == layer) return false;
  return num_experts > 0 && decoder_sparse_step > 0 && (layer + 1) % decoder_sparse_step == 0;
}

ModelConfig ModelConfig::parse(const std::string& json_text, const std::string& path) {
  json j = parse_object(json_text, path);
  Fields f(j, path);
  ModelConfig c;

  if (!f.present("architectures")) throw ModelError(path + ": missing required field 'architectures' (e.g. [\"Qwen3ForCausalLM\"])");
  const json& archs = f.at("architectures");
  if (!archs.is_array() || archs.empty())
    f.fail("architectures", std::string("must be a non-empty list of names, got ") + (archs.is_array() ? "[]" : kind_of(archs)));
  const ArchInfo* arch = nullptr;
  for (const json& a : archs) {
    if (!a.is_string()) f.fail("architectures", std::string("must hold strings, got ") + kind_of(a));
    for (const auto& k : kArchs)
      if (!arch && a.get<std::string>() == k.architecture) arch = &k;
  }
  if (!arch)
    f.fail("architectures", archs.dump() + " names no supported architecture (supported: " +
                                join(supported_architectures()) + ")");
  c.architecture = arch->architecture;
  c.model_type = f.string("model_type", arch->model_type);
  if (c.model_type != arch->model_type)
    f.fail("model_type", "'" + c.model_type + "' does not match architecture " + c.architecture + " (expected '" +
                             arch->model_type + "')");

  c.vocab_size = f.integer("vocab_size");
  c.hidden_size = f.integer("hidden_size");
  c.num_hidden_layers = f.integer("num_hidden_layers");
  c.num_attention_heads = f.integer("num_attention_heads");
  // transformers: an absent num_key_value_heads takes the class default, an explicit null means
  // num_attention_heads ("for backward compatibility").
  if (f.present("num_key_value_heads") && f.at("num_key_value_heads").is_null())
    c.num_key_value_heads = c.num_attention_heads;
  else
    c.num_key_value_heads = f.integer("num_key_value_heads", arch->moe ? 4 : 32);
  if (!f.present("num_key_value_heads") && c.num_attention_heads > 0 && c.num_attention_heads % c.num_key_value_heads != 0)
    f.fail("num_key_value_heads", "is absent and Hugging Face's default for " + c.architecture + " (" +
                                      std::to_string(c.num_key_value_heads) + ") does not divide num_attention_heads (" +
                                      std::to_string(c.num_attention_heads) + "): state it in config.json");
  if (f.has("head_dim"))
    c.head_dim = f.integer("head_dim");
  else if (!arch->moe)
    c.head_dim = 128;
  else if (c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0)
    c.head_dim = c.hidden_size / c.num_attention_heads;
  else
    f.fail("head_dim", "is absent and hidden_size (" + std::to_string(c.hidden_size) +
                           ") is not a multiple of num_attention_heads (" + std::to_string(c.num_attention_heads) + ")");
  c.max_position_embeddings = f.integer("max_position_embeddings", 32768);
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
  c.rope_theta = f.number("rope_theta", 10000.0);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.attention_bias = f.boolean("attention_bias", false);
  std::string act = f.string("hidden_act", "silu");
  if (act != "silu") f.fail("hidden_act", "'" + act + "' is not supported (supported: silu)");
  if (f.boolean("use_sliding_window", false))
    f.fail("use_sliding_window", "is true: sliding-window attention is not supported (set it to false)");
  if (f.has("layer_types")) {
    const json& lt = f.at("layer_types");
    if (!lt.is_array()) f.fail("layer_types", std::string("must be a list, got ") + kind_of(lt));
    for (const json& t : lt)
      if (!t.is_string() || t.get<std::string>() != "full_attention")
        f.fail("layer_types", "holds " + t.dump() + ": only \"full_attention\" is supported");
  }

  if (f.has("rope_scaling")) {
    const json& rs = f.at("rope_scaling");
    if (!rs.is_object()) f.fail("rope_scaling", std::string("must be an object or null, got ") + kind_of(rs));
    bool is_default;
    RopeScalingConfig r = parse_rope(Fields(rs, path + ": rope_scaling"), path + ": rope_scaling", &is_default);
    if (!is_default) c.rope_scaling = r;
  } else if (f.has("rope_parameters")) {
    // transformers 5 writes rope_theta inside rope_parameters.
    const json& rp = f.at("rope_parameters");
    if (!rp.is_object()) f.fail("rope_parameters", std::string("must be an object, got ") + kind_of(rp));
    Fields rf(rp, path + ": rope_parameters");
    c.rope_theta = rf.number("rope_theta", c.rope_theta);
    bool is_default;
    RopeScalingConfig r = parse_rope(rf, path + ": rope_parameters", &is_default);
    if (!is_default) c.rope_scaling = r;
  }

  c.torch_dtype = f.string("torch_dtype", f.string("dtype", ""));
  if (!c.torch_dtype.empty() && c.torch_dtype != "bfloat16" && c.torch_dtype != "float16" && c.torch_dtype != "float32")
    f.fail(f.has("torch_dtype") ? "torch_dtype" : "dtype",
           "'" + c.torch_dtype + "' is not supported (supported: bfloat16, float16, float32)");
  if (f.has("bos_token_id")) {
    c.bos_token_id = f.integer("bos_token_id");
    if (*c.bos_token_id < 0) f.fail("bos_token_id", "must not be negative");
  }
  c.eos_token_ids = f.token_ids("eos_token_id");

  if (arch->moe) {
    c.num_experts = f.integer("num_experts");
    c.decoder_sparse_step = f.integer("decoder_sparse_step", 1);
    c.norm_topk_prob = f.boolean("norm_topk_prob", false);
    if (f.has("mlp_only_layers")) {
      const json& m = f.at("mlp_only_layers");
      if (!m.is_array()) f.fail("mlp_only_layers", std::string("must be a list of layer indices, got ") + kind_of(m));
      for (const json& x : m) c.mlp_only_layers.push_back(f.as_int("mlp_only_layers", x));
    }
    if (c.num_experts > 0) {
      c.num_experts_per_tok = f.integer("num_experts_per_tok");
      c.moe_intermediate_size = f.integer("moe_intermediate_size");
    } else {
      c.num_experts_per_tok = f.integer("num_experts_per_tok", 0);
      c.moe_intermediate_size = f.integer("moe_intermediate_size", 0);
    }
    // intermediate_size only matters for the dense layers; Qwen3MoeConfig's default otherwise.
    // Some layer is dense when there are no experts, when the step skips layer 0, or when a listed
    // mlp-only layer exists.
    bool any_dense = c.num_experts == 0 || c.decoder_sparse_step != 1;
    for (int64_t l : c.mlp_only_layers) any_dense = any_dense || (l >= 0 && l < c.num_hidden_layers);
    c.intermediate_size = any_dense ? f.integer("intermediate_size") : f.integer("intermediate_size", 6144);
  } else {
    c.intermediate_size = f.integer("intermediate_size");
  }
  c.validate(path);
  return c;
}

void ModelConfig::validate(const std::string& path) const {
  auto fail = [&](const std::string& field, const std::string& m) { throw ModelError(path + ": " + field + " " + m); };
  auto positive = [&](const char* field, int64_t v) {
    if (v <= 0) fail(field, "must be positive, got " + std::to_string(v));
    if (v > kMaxSize) fail(field, "is too large (" + std::to_string(v) + " > " + std::to_string(kMaxSize) + ")");
  };
  const ArchInfo* arch = nullptr;
  for (const auto& a : kArchs)
    if (architecture == a.architecture) arch = &a;
  if (!arch)
    fail("architectures", "'" + architecture + "' is not supported (supported: " + join(supported_architectures()) + ")");
  if (!model_type.empty() && model_type != arch->model_type)
    fail("model_type", "'" + model_type + "' does not match architecture " + architecture + " (expected '" +
                           arch->model_type + "')");
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("max_position_embeddings", max_position_embeddings);
  positive("intermediate_size", intermediate_size);
  if (num_attention_heads % num_key_value_heads != 0)
    fail("num_attention_heads", "(" + std::to_string(num_attention_heads) + ") must be a multiple of num_key_value_heads (" +
                                    std::to_string(num_key_value_heads) + ")");
  if (head_dim % 2 != 0) fail("head_dim", "must be even (RoPE rotates pairs of dimensions), got " + std::to_string(head_dim));
  if (num_attention_heads * head_dim > kMaxSize) fail("num_attention_heads * head_dim", "is too large");
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) fail("rms_norm_eps", "must be a positive number");
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) fail("rope_theta", "must be a positive number");
  if (rope_scaling) {
    const RopeScalingConfig& r = *rope_scaling;
    if (r.type != "linear" && r.type != "yarn")
      fail("rope_scaling.rope_type", "'" + r.type + "' is not supported (supported: default, linear, yarn)");
    if (!(r.factor > 0) || !std::isfinite(r.factor)) fail("rope_scaling.factor", "must be a positive number");
    for (double v : {r.beta_fast, r.beta_slow, r.mscale, r.mscale_all_dim, r.attention_factor})
      if (!std::isfinite(v)) fail("rope_scaling", "holds a non-finite number");
    if (r.original_max_position_embeddings < 0) fail("rope_scaling.original_max_position_embeddings", "must be positive");
  }
  if (bos_token_id && *bos_token_id < 0) fail("bos_token_id", "must not be negative");
  for (int64_t id : eos_token_ids)
    if (id < 0) fail("eos_token_id", "holds the negative token id " + std::to_string(id));

  if (!arch->moe && num_experts != 0)
    fail("num_experts", "must be 0 for " + architecture + " (experts need Qwen3MoeForCausalLM)");
  if (num_experts < 0 || num_experts > kMaxSize) fail("num_experts", "must be between 0 and " + std::to_string(kMaxSize));
  if (decoder_sparse_step <= 0 || decoder_sparse_step > kMaxSize)
    fail("decoder_sparse_step", "must be positive, got " + std::to_string(decoder_sparse_step));
  if (num_experts > 0) {
    positive("num_experts_per_tok", num_experts_per_tok);
    positive("moe_intermediate_size", moe_intermediate_size);
    if (num_experts_per_tok > num_experts)
      fail("num_experts_per_tok", "(" + std::to_string(num_experts_per_tok) + ") must not exceed num_experts (" +
                                      std::to_string(num_experts) + ")");
  }
  for (int64_t l : mlp_only_layers)
    if (l < 0 || l >= num_hidden_layers)
      fail("mlp_only_layers", "holds layer " + std::to_string(l) + ", outside 0.." + std::to_string(num_hidden_layers - 1));
  if (!torch_dtype.empty() && torch_dtype != "bfloat16" && torch_dtype != "float16" && torch_dtype != "float32")
    fail("torch_dtype", "'" + torch_dtype + "' is not supported (supported: bfloat16, float16, float32)");
}

std::string ModelConfig::to_json() const {
  json j;  // keys come out sorted, as transformers writes them
  j["architectures"] = json::array({architecture});
  j["model_type"] = model_type.empty() ? (architecture == "Qwen3MoeForCausalLM" ? "qwen3_moe" : "qwen3") : model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  if (rope_scaling) {
    const RopeScalingConfig& r = *rope_scaling;
    json rs;
    rs["rope_type"] = r.type;
    rs["factor"] = r.factor;
    if (r.type == "yarn") {
      if (r.original_max_position_embeddings > 0) rs["original_max_position_embeddings"] = r.original_max_position_embeddings;
      if (r.attention_factor > 0) rs["attention_factor"] = r.attention_factor;
      rs["beta_fast"] = r.beta_fast;
      rs["beta_slow"] = r.beta_slow;
      rs["mscale"] = r.mscale;
      rs["mscale_all_dim"] = r.mscale_all_dim;
      rs["truncate"] = r.truncate;
    }
    j["rope_scaling"] = rs;
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["attention_bias"] = attention_bias;
  j["attention_dropout"] = 0.0;
  j["initializer_range"] = 0.02;
  j["use_cache"] = true;
  j["use_sliding_window"] = false;
  j["sliding_window"] = nullptr;
  j["max_window_layers"] = num_hidden_layers;
  if (!torch_dtype.empty()) j["torch_dtype"] = torch_dtype;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  if (eos_token_ids.size() > 1) j["eos_token_id"] = eos_token_ids;
  if (architecture == "Qwen3MoeForCausalLM") {
    j["num_experts"] = num_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["moe_intermediate_size"] = moe_intermediate_size;
    j["decoder_sparse_step"] = decoder_sparse_step;
    j["norm_topk_prob"] = norm_topk_prob;
    j["mlp_only_layers"] = mlp_only_layers;
    j["output_router_logits"] = false;
    j["router_aux_loss_coef"] = 0.001;
  }
  return j.dump(2) + "\n";
}

GenerationConfig GenerationConfig::parse(const std::string& json_text, const std::string& path) {
  json j = parse_object(json_text, path);
  Fields f(j, path);
  GenerationConfig g;
  g.eos_token_ids = f.token_ids("eos_token_id");
  if (f.has("temperature")) {
    g.temperature = f.number("temperature", 1.0);
    if (!(*g.temperature >= 0) || !std::isfinite(*g.temperature)) f.fail("temperature", "must be a number >= 0");
  }
  if (f.has("top_p")) {
    g.top_p = f.number("top_p", 1.0);
    if (!(*g.top_p > 0 && *g.top_p <= 1)) f.fail("top_p", "must be in (0, 1]");
  }
  if (f.has("top_k")) {
    g.top_k = f.integer("top_k");
    if (*g.top_k < 0) f.fail("top_k", "must not be negative");
  }
  if (f.has("do_sample")) g.do_sample = f.boolean("do_sample", false);
  return g;
}

}  // namespace opdev::model
