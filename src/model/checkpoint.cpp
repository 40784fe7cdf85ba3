// Checkpoint directories: config, generation config, single-file or sharded safetensors weights, and
// the check of every tensor the architecture needs against what the files hold.
#include "model/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace opdev::model {

namespace {

using json = nlohmann::json;
using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// 0: missing, 1: regular file, 2: something else (a directory, ...).
int file_kind(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return S_ISREG(st.st_mode) ? 1 : 2;
}

std::string read_text(const std::string& path) {
  // Config files are small; a huge one is a mistake and must not be read into memory whole.
  constexpr size_t kMaxBytes = 64u << 20;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, size_t(in.gcount()));
    if (text.size() > kMaxBytes) throw ModelError(path + ": larger than 64 MiB, not a configuration file");
  }
  if (in.bad()) throw ModelError(path + ": read error");
  return text;
}

// Calls fn(name, shape) for each tensor the architecture needs, in Hugging Face's module order, until
// fn returns false. Lazy, so that a config implying billions of tensors is rejected after the first
// missing one instead of being listed.
void for_each_expected(const ModelConfig& c, const std::function<bool(const std::string&, const Shape&)>& fn) {
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_attention_heads, Hk = c.num_key_value_heads;
  if (!fn("model.embed_tokens.weight", {c.vocab_size, H})) return;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const std::pair<const char*, Shape> attn[] = {
        {"q_proj", {Hq * D, H}}, {"k_proj", {Hk * D, H}}, {"v_proj", {Hk * D, H}}, {"o_proj", {H, Hq * D}}};
    for (const auto& a : attn) {
      if (!fn(p + "self_attn." + a.first + ".weight", a.second)) return;
      if (c.attention_bias && !fn(p + "self_attn." + a.first + ".bias", {a.second[0]})) return;
    }
    if (!fn(p + "self_attn.q_norm.weight", {D}) || !fn(p + "self_attn.k_norm.weight", {D})) return;
    if (c.is_moe_layer(i)) {
      if (!fn(p + "mlp.gate.weight", {c.num_experts, H})) return;
      const int64_t I = c.moe_intermediate_size;
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        if (!fn(q + "gate_proj.weight", {I, H}) || !fn(q + "up_proj.weight", {I, H}) || !fn(q + "down_proj.weight", {H, I}))
          return;
      }
    } else {
      const int64_t I = c.intermediate_size;
      if (!fn(p + "mlp.gate_proj.weight", {I, H}) || !fn(p + "mlp.up_proj.weight", {I, H}) ||
          !fn(p + "mlp.down_proj.weight", {H, I}))
        return;
    }
    if (!fn(p + "input_layernorm.weight", {H}) || !fn(p + "post_attention_layernorm.weight", {H})) return;
  }
  if (!fn("model.norm.weight", {H})) return;
  if (!c.tie_word_embeddings) fn("lm_head.weight", {c.vocab_size, H});
}

bool log_warnings() {
  const char* level = std::getenv("OPDEV_LOG_LEVEL");
  return !level || std::strcmp(level, "error") != 0;
}

// A shard named by the index must be a plain file name in the checkpoint directory.
void check_shard_name(const std::string& shard, const std::string& index_path) {
  bool bad = shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
             shard.find('\\') != std::string::npos || shard.find('\0') != std::string::npos;
  if (bad)
    throw ModelError(index_path + ": weight_map names the shard '" + shard +
                     "', which is not a plain file name inside the checkpoint directory");
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> Checkpoint::expected_tensors(const ModelConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> v;
  for_each_expected(c, [&](const std::string& name, const Shape& shape) {
    v.emplace_back(name, shape);
    return true;
  });
  return v;
}

const StTensor& Checkpoint::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw ModelError("checkpoint " + dir_ + ": no tensor '" + name + "'");
  return *it->second.tensor;
}

const std::string& Checkpoint::file_of(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw ModelError("checkpoint " + dir_ + ": no tensor '" + name + "'");
  return it->second.file->path();
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& dir, const ProgressFn& progress) {
  int kind = file_kind(dir);
  if (kind != 2)
    throw ModelError(dir + ": " + (kind == 0 ? "no such directory" : "not a directory") +
                     " (a checkpoint is a directory with config.json and model.safetensors)");
  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  ck->dir_ = dir;

  const std::string config_path = join_path(dir, "config.json");
  if (file_kind(config_path) != 1)
    throw ModelError(config_path + ": not found (a Hugging Face checkpoint directory needs config.json)");
  ck->config_ = ModelConfig::parse(read_text(config_path), config_path);
  const ModelConfig& c = ck->config_;

  const std::string gen_path = join_path(dir, "generation_config.json");
  if (file_kind(gen_path) == 1) ck->generation_ = GenerationConfig::parse(read_text(gen_path), gen_path);
  if (ck->generation_.eos_token_ids.empty()) ck->generation_.eos_token_ids = c.eos_token_ids;

  // Which files hold the weights, and (sharded) which tensor lives in which file.
  const std::string single = join_path(dir, "model.safetensors");
  const std::string index_path = join_path(dir, "model.safetensors.index.json");
  std::vector<std::string> shards;
  std::map<std::string, std::string> weight_map;  // empty for a single file
  if (file_kind(single) == 1) {
    shards.push_back("model.safetensors");
  } else if (file_kind(index_path) == 1) {
    json j;
    try {
      j = json::parse(read_text(index_path));
    } catch (const json::exception& e) {
      throw ModelError(index_path + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw ModelError(index_path + ": must be an object with a \"weight_map\" object (tensor name -> shard file)");
    std::set<std::string> seen;
    for (const auto& kv : j["weight_map"].items()) {
      if (!kv.value().is_string())
        throw ModelError(index_path + ": weight_map entry '" + kv.key() + "' must be a file name (a string)");
      std::string shard = kv.value().get<std::string>();
      check_shard_name(shard, index_path);
      if (seen.insert(shard).second) {
        int k = file_kind(join_path(dir, shard));
        if (k != 1)
          throw ModelError(index_path + ": shard '" + shard + "' (holding tensor '" + kv.key() + "') " +
                           (k == 0 ? "does not exist" : "is not a regular file") + " in " + dir);
        shards.push_back(shard);
      }
      weight_map[kv.key()] = shard;
    }
    if (shards.empty()) throw ModelError(index_path + ": weight_map is empty");
  } else {
    std::string hint;
    if (file_kind(join_path(dir, "pytorch_model.bin")) == 1 || file_kind(join_path(dir, "pytorch_model.bin.index.json")) == 1)
      hint = "; it has PyTorch .bin weights, convert them to safetensors first";
    throw ModelError(dir + ": no model.safetensors or model.safetensors.index.json (only safetensors weights are supported" +
                     hint + ")");
  }

  // Map and validate each file (headers only), reporting bytes as they are done.
  size_t total = 0, done = 0;
  std::vector<size_t> sizes;
  for (const auto& s : shards) {
    struct stat st;
    sizes.push_back(::stat(join_path(dir, s).c_str(), &st) == 0 ? size_t(st.st_size) : 0);
    total += sizes.back();
  }
  if (progress) progress(0, total, shards.front());
  std::map<std::string, const SafetensorsFile*> by_name;
  for (size_t i = 0; i < shards.size(); ++i) {
    ck->files_.push_back(SafetensorsFile::open(join_path(dir, shards[i])));
    by_name[shards[i]] = ck->files_.back().get();
    done += sizes[i];
    if (progress) progress(done, total, shards[i]);
  }

  size_t present = 0;
  if (weight_map.empty()) {
    const SafetensorsFile* f = ck->files_.front().get();
    for (const StTensor& t : f->tensors()) ck->tensors_[t.name] = Entry{&t, f};
    present = f->tensors().size();
  } else {
    for (const auto& kv : weight_map) {
      const SafetensorsFile* f = by_name.at(kv.second);
      const StTensor* t = f->find(kv.first);
      if (!t)
        throw ModelError(index_path + ": tensor '" + kv.first + "' is listed in shard '" + kv.second +
                         "', but that file does not hold it");
      ck->tensors_[kv.first] = Entry{t, f};
    }
    // Tensors a shard holds but the index does not list are never looked up: ignored like extras.
    for (const auto& f : ck->files_) {
      present += f->tensors().size();
      for (const StTensor& t : f->tensors())
        if (!weight_map.count(t.name)) ck->ignored_.push_back(t.name);
    }
  }

  // Every expected tensor: present, right shape, floating dtype.
  auto check = [&](const std::string& name, const Shape& shape, const Entry& e) {
    const StTensor& t = *e.tensor;
    if (t.shape != shape)
      throw ModelError(e.file->path() + ": tensor '" + name + "': expected shape " + shape_str(shape) + ", got " +
                       shape_str(t.shape) + " (from " + c.architecture + " and config.json)");
    if (t.dtype != StDtype::BF16 && t.dtype != StDtype::F16 && t.dtype != StDtype::F32)
      throw ModelError(e.file->path() + ": tensor '" + name + "': dtype " + st_dtype_name(t.dtype) +
                       " is not supported (weights must be BF16, F16 or F32)");
  };
  std::set<std::string> used;
  for_each_expected(c, [&](const std::string& name, const Shape& shape) {
    auto it = ck->tensors_.find(name);
    if (it == ck->tensors_.end())
      throw ModelError("checkpoint " + dir + ": missing tensor '" + name + "' (shape " + shape_str(shape) + ", needed by " +
                       c.architecture + "; searched " + std::to_string(ck->files_.size()) + " file(s) holding " +
                       std::to_string(present) + " tensors)");
    check(name, shape, it->second);
    used.insert(name);
    return true;
  });
  if (c.tie_word_embeddings) {
    auto it = ck->tensors_.find("lm_head.weight");
    if (it != ck->tensors_.end()) {
      check("lm_head.weight", {c.vocab_size, c.hidden_size}, it->second);
      used.insert("lm_head.weight");
    }
  }
  for (auto it = ck->tensors_.begin(); it != ck->tensors_.end();) {
    if (used.count(it->first)) {
      ++it;
    } else {
      ck->ignored_.push_back(it->first);
      it = ck->tensors_.erase(it);  // has() answers for the tensors the model uses
    }
  }
  std::sort(ck->ignored_.begin(), ck->ignored_.end());
  if (!ck->ignored_.empty() && log_warnings())
    std::fprintf(stderr, "opdev: checkpoint %s: ignored %zu tensor(s) that %s does not use (first: '%s')\n", dir.c_str(),
                 ck->ignored_.size(), c.architecture.c_str(), ck->ignored_.front().c_str());
  return ck;
}

}  // namespace opdev::model
