// Synthetic checkpoints: presets, the deterministic weight streams specified in synthetic.h, and the
// crash-safe directory writer.
#include "model/synthetic.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/half.h"
#include "model/checkpoint.h"

namespace opdev::model {

namespace fs = std::filesystem;
using json = nlohmann::json;

uint64_t splitmix64_mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

uint64_t synthetic_key(uint64_t seed, const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a 64
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 0x100000001B3ull;
  }
  return splitmix64_mix(seed ^ h);
}

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr double kTwoPi = 6.283185307179586476925286766559;

inline double unit(uint64_t key, uint64_t c) {
  return double((splitmix64_mix(key + c * kGolden) >> 11) + 1) * (1.0 / 9007199254740992.0);  // 2^-53
}

// Normals 2j and 2j+1 of the stream.
inline void normal_pair(uint64_t key, uint64_t j, double* n0, double* n1) {
  double r = std::sqrt(-2.0 * std::log(unit(key, 2 * j + 1)));
  double t = kTwoPi * unit(key, 2 * j + 2);
  *n0 = r * std::cos(t);
  *n1 = r * std::sin(t);
}

// float nearest to v toward zero with the lowest bit set when inexact ("round to odd"): rounding that
// to a format with at least 2 fewer significand bits gives the correctly rounded result of v itself,
// so double -> bf16 / f16 rounds once.
inline float round_to_odd_float(double v) {
  float f = float(v);
  if (double(f) == v || std::isnan(v)) return f;
  if (std::fabs(double(f)) > std::fabs(v)) f = std::nextafter(f, 0.0f);
  return f32_from_bits(f32_bits(f) | 1u);
}

}  // namespace

double synthetic_normal(uint64_t key, uint64_t i) {
  double n0, n1;
  normal_pair(key, i / 2, &n0, &n1);
  return (i & 1) ? n1 : n0;
}

void store_rounded(double v, StDtype dtype, uint8_t* dst) {
  switch (dtype) {
    case StDtype::F32: {
      uint32_t b = f32_bits(float(v));
      for (int k = 0; k < 4; ++k) dst[k] = uint8_t(b >> (8 * k));
      return;
    }
    case StDtype::BF16:
    case StDtype::F16: {
      float f = round_to_odd_float(v);
      uint16_t b = dtype == StDtype::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
      dst[0] = uint8_t(b);
      dst[1] = uint8_t(b >> 8);
      return;
    }
    default:
      throw ModelError(std::string("synthetic weights: dtype ") + st_dtype_name(dtype) + " is not BF16, F16 or F32");
  }
}

WeightInit synthetic_init(const std::string& name, const ModelConfig& c) {
  auto ends_with = [&](const char* s) {
    size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  const double H = double(c.hidden_size);
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return {0, 2 / std::sqrt(H)};
  if (ends_with("layernorm.weight") || ends_with("q_norm.weight") || ends_with("k_norm.weight") ||
      name == "model.norm.weight")
    return {1, 0.1};
  if (ends_with(".bias")) return {0, 0.2};
  if (ends_with("mlp.gate.weight")) return {0, 2 / std::sqrt(H)};
  if (ends_with("q_proj.weight") || ends_with("k_proj.weight") || ends_with("v_proj.weight") ||
      ends_with("gate_proj.weight") || ends_with("up_proj.weight"))
    return {0, 1 / std::sqrt(H)};
  if (ends_with("o_proj.weight")) return {0, 1 / std::sqrt(double(c.num_attention_heads * c.head_dim))};
  if (ends_with("down_proj.weight")) {
    bool expert = name.find(".experts.") != std::string::npos;
    return {0, 1 / std::sqrt(double(expert ? c.moe_intermediate_size : c.intermediate_size))};
  }
  throw ModelError("synthetic weights: no initialisation rule for tensor '" + name + "'");
}

std::vector<std::string> synthetic_presets() { return {"tiny", "qwen3-0.6b", "qwen3-moe-small", "tiny-moe"}; }

ModelConfig synthetic_preset(const std::string& name) {
  ModelConfig c;
  c.architecture = "Qwen3ForCausalLM";
  c.model_type = "qwen3";
  c.vocab_size = 151936;  // Qwen3's embedding rows (the tokenizer uses ids up to 151668)
  c.max_position_embeddings = 40960;
  c.rope_theta = 1000000.0;
  c.rms_norm_eps = 1e-6;
  c.torch_dtype = "bfloat16";
  c.bos_token_id = 151643;
  c.eos_token_ids = {151645};
  if (name == "tiny" || name == "tiny-moe") {
    c.hidden_size = 256;
    c.num_hidden_layers = name == "tiny" ? 4 : 3;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 4;
    c.head_dim = 64;
    c.intermediate_size = 768;
    c.tie_word_embeddings = name == "tiny";
    if (name == "tiny-moe") {
      c.architecture = "Qwen3MoeForCausalLM";
      c.model_type = "qwen3_moe";
      c.num_experts = 8;
      c.num_experts_per_tok = 2;
      c.moe_intermediate_size = 128;
      c.norm_topk_prob = true;
    }
  } else if (name == "qwen3-0.6b") {  // Qwen/Qwen3-0.6B config.json
    c.hidden_size = 1024;
    c.num_hidden_layers = 28;
    c.num_attention_heads = 16;
    c.num_key_value_heads = 8;
    c.head_dim = 128;
    c.intermediate_size = 3072;
    c.tie_word_embeddings = true;
  } else if (name == "qwen3-moe-small") {  // Qwen/Qwen3-30B-A3B with half the width and a quarter of the depth
    c.architecture = "Qwen3MoeForCausalLM";
    c.model_type = "qwen3_moe";
    c.hidden_size = 1024;
    c.num_hidden_layers = 12;
    c.num_attention_heads = 16;
    c.num_key_value_heads = 4;
    c.head_dim = 128;
    c.intermediate_size = 3072;
    c.num_experts = 64;
    c.num_experts_per_tok = 8;
    c.moe_intermediate_size = 384;
    c.norm_topk_prob = true;
    c.tie_word_embeddings = false;
  } else {
    std::string list;
    for (const auto& p : synthetic_presets()) list += (list.empty() ? "" : ", ") + p;
    throw ModelError("unknown preset '" + name + "' (presets: " + list + ")");
  }
  return c;
}

namespace {

// Fills one tensor: elements [0, n) of the stream, split into chunks generated in parallel (a chunk's
// values depend only on its indices, so the bytes do not depend on the thread count).
void fill_tensor(uint64_t key, WeightInit init, StDtype dtype, uint8_t* dst, size_t n, int threads) {
  const size_t esize = st_dtype_size(dtype);
  const size_t chunk = size_t(1) << 16;  // even: no pair straddles two chunks
  const size_t nchunks = (n + chunk - 1) / chunk;
  auto run = [&](size_t first, size_t step) {
    for (size_t ci = first; ci < nchunks; ci += step) {
      size_t begin = ci * chunk, end = std::min(n, begin + chunk);
      for (size_t i = begin; i < end; i += 2) {
        double n0, n1;
        normal_pair(key, i / 2, &n0, &n1);
        store_rounded(init.mean + init.std * n0, dtype, dst + i * esize);
        if (i + 1 < end) store_rounded(init.mean + init.std * n1, dtype, dst + (i + 1) * esize);
      }
    }
  };
  size_t t = threads > 0 ? size_t(threads) : std::max(1u, std::thread::hardware_concurrency());
  t = std::min(t, nchunks);
  if (t <= 1) {
    run(0, 1);
    return;
  }
  std::vector<std::thread> pool;
  for (size_t k = 1; k < t; ++k) pool.emplace_back(run, k, t);
  run(0, t);
  for (auto& th : pool) th.join();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw ModelError(path.string() + ": write failed");
}

// Largest token id a tokenizer.json defines (model.vocab and added_tokens).
int64_t tokenizer_max_id(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path.string() + ": cannot read");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw ModelError(path.string() + ": not valid JSON: " + e.what());
  }
  int64_t max_id = -1;
  auto id_of = [&](const json& v) {
    if (v.is_number_integer()) max_id = std::max<int64_t>(max_id, v.get<int64_t>());
  };
  if (j.contains("model") && j["model"].is_object() && j["model"].contains("vocab") && j["model"]["vocab"].is_object())
    for (const auto& kv : j["model"]["vocab"].items()) id_of(kv.value());
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& t : j["added_tokens"])
      if (t.is_object() && t.contains("id")) id_of(t["id"]);
  return max_id;
}

std::string generation_json(const ModelConfig& c) {
  // Qwen3's generation_config.json (sampling settings recommended for thinking mode).
  json g;
  if (c.bos_token_id) g["bos_token_id"] = *c.bos_token_id;
  std::vector<int64_t> eos = c.eos_token_ids;
  if (c.bos_token_id && std::find(eos.begin(), eos.end(), *c.bos_token_id) == eos.end()) eos.push_back(*c.bos_token_id);
  if (!eos.empty()) g["eos_token_id"] = eos;
  if (c.bos_token_id) g["pad_token_id"] = *c.bos_token_id;
  g["do_sample"] = true;
  g["temperature"] = 0.6;
  g["top_k"] = 20;
  g["top_p"] = 0.95;
  return g.dump(2) + "\n";
}

}  // namespace

SyntheticResult write_synthetic_checkpoint(const std::string& out_arg, const SyntheticOptions& opt) {
  if (opt.dtype != StDtype::BF16 && opt.dtype != StDtype::F16 && opt.dtype != StDtype::F32)
    throw ModelError(std::string("make-model: dtype ") + st_dtype_name(opt.dtype) + " is not BF16, F16 or F32");
  ModelConfig c = opt.config;
  c.torch_dtype = opt.dtype == StDtype::BF16 ? "bfloat16" : opt.dtype == StDtype::F16 ? "float16" : "float32";
  // Qwen3's special ids only make sense when the vocabulary holds them.
  if (c.bos_token_id && *c.bos_token_id >= c.vocab_size) c.bos_token_id.reset();
  c.eos_token_ids.erase(std::remove_if(c.eos_token_ids.begin(), c.eos_token_ids.end(),
                                       [&](int64_t id) { return id >= c.vocab_size; }),
                        c.eos_token_ids.end());
  c.validate("make-model");

  fs::path out = fs::path(out_arg).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  if (out.empty()) throw ModelError("make-model: empty output path");
  std::error_code ec;
  bool exists = fs::exists(fs::symlink_status(out, ec));
  if (exists) {
    if (!opt.overwrite) throw ModelError(out.string() + " already exists (use --force to replace it)");
    bool looks_like_checkpoint = fs::is_directory(out, ec) && (fs::is_empty(out, ec) || fs::exists(out / "config.json", ec));
    if (!looks_like_checkpoint)
      throw ModelError("refusing to replace " + out.string() + ": it is not an empty directory or a checkpoint (no config.json)");
  }

  fs::path tok_json, tok_config;
  if (!opt.tokenizer_dir.empty()) {
    tok_json = fs::path(opt.tokenizer_dir) / "tokenizer.json";
    tok_config = fs::path(opt.tokenizer_dir) / "tokenizer_config.json";
    for (const auto& p : {tok_json, tok_config})
      if (!fs::is_regular_file(p, ec))
        throw ModelError(p.string() + ": not found (run scripts/fetch-tokenizer.sh, or give --tokenizer-dir)");
    int64_t max_id = tokenizer_max_id(tok_json);
    if (max_id >= c.vocab_size)
      throw ModelError("make-model: the tokenizer uses ids up to " + std::to_string(max_id) + ", but vocab_size is " +
                       std::to_string(c.vocab_size) + " (raise --vocab, or leave the tokenizer out)");
  }

  fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) throw ModelError(parent.string() + ": cannot create: " + ec.message());
  fs::path tmp = parent / ("." + out.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec) || ec) throw ModelError(tmp.string() + ": cannot create: " + ec.message());

  SyntheticResult result;
  try {
    write_text(tmp / "config.json", c.to_json());
    write_text(tmp / "generation_config.json", generation_json(c));
    if (!tok_json.empty()) {
      fs::copy_file(tok_json, tmp / "tokenizer.json");
      fs::copy_file(tok_config, tmp / "tokenizer_config.json");
    }

    // Group the tensors into files: in order, a new shard when the next tensor would overflow this one.
    auto expected = Checkpoint::expected_tensors(c);
    const size_t esize = st_dtype_size(opt.dtype);
    std::vector<std::vector<size_t>> groups(1);
    std::vector<uint64_t> group_bytes(1, 0);
    uint64_t total = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      uint64_t nbytes = esize;
      for (int64_t d : expected[i].second) nbytes *= uint64_t(d);  // validated sizes: no overflow
      if (opt.shard_size > 0 && !groups.back().empty() && group_bytes.back() + nbytes > opt.shard_size) {
        groups.emplace_back();
        group_bytes.push_back(0);
      }
      groups.back().push_back(i);
      group_bytes.back() += nbytes;
      total += nbytes;
    }
    const bool sharded = opt.shard_size > 0;
    json weight_map = json::object();
    uint64_t done_before = 0;
    for (size_t g = 0; g < groups.size(); ++g) {
      char name[64];
      if (sharded)
        std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", g + 1, groups.size());
      else
        std::snprintf(name, sizeof name, "model.safetensors");
      SafetensorsWriter w;
      w.set_metadata("format", "pt");
      for (size_t i : groups[g]) {
        const std::string& tname = expected[i].first;
        WeightInit init = synthetic_init(tname, c);
        uint64_t key = synthetic_key(opt.seed, tname);
        StDtype dtype = opt.dtype;
        int threads = opt.threads;
        w.add(tname, dtype, expected[i].second, [key, init, dtype, threads](uint8_t* dst, size_t nbytes) {
          fill_tensor(key, init, dtype, dst, nbytes / st_dtype_size(dtype), threads);
        });
        weight_map[tname] = name;
      }
      const uint64_t data = w.data_bytes();
      w.write((tmp / name).string(), [&](uint64_t done, uint64_t file_total) {
        if (opt.progress) opt.progress(done_before + done - (file_total - data), total);
      });
      done_before += data;
    }
    if (sharded) {
      json index;
      index["metadata"]["total_size"] = total;
      index["weight_map"] = weight_map;
      write_text(tmp / "model.safetensors.index.json", index.dump(2) + "\n");
    }
    result.bytes = total;
    result.tensors = expected.size();
    result.files = groups.size();

    if (exists) {
      fs::path old = parent / ("." + out.filename().string() + ".old-" + std::to_string(::getpid()));
      fs::rename(out, old);
      fs::rename(tmp, out);
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp, out);
    }
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw ModelError(std::string("make-model: ") + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return result;
}

}  // namespace opdev::model
