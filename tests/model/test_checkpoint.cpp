// Checkpoint directories: the tensors Qwen3 / Qwen3-MoE need (names and shapes listed here by hand from
// the Hugging Face modules), every way a directory can be wrong, sharded indexes, and synthetic
// checkpoints from make-model (round trip, values regenerated independently, determinism, atomicity).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "model/checkpoint.h"
#include "model/synthetic.h"
#include "model_error_testing.h"

using namespace opdev::model;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Shape = std::vector<int64_t>;

namespace {

using opdev::model::testing::error_of;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/opdev_ck_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path(const std::string& name = "") const { return name.empty() ? path_ : path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A small dense config: H 16, 2 q heads / 1 kv head of 8, I 24, vocab 40, 2 layers.
ModelConfig small_dense() {
  ModelConfig c;
  c.architecture = "Qwen3ForCausalLM";
  c.model_type = "qwen3";
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  c.max_position_embeddings = 128;
  c.eos_token_ids = {3};
  return c;
}
ModelConfig small_moe() {
  ModelConfig c = small_dense();
  c.architecture = "Qwen3MoeForCausalLM";
  c.model_type = "qwen3_moe";
  c.num_hidden_layers = 3;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 12;
  return c;
}

struct TensorSpec {
  std::string name;
  StDtype dtype;
  Shape shape;
};
std::vector<TensorSpec> specs_for(const ModelConfig& c, bool with_lm_head_if_tied = false) {
  std::vector<TensorSpec> v;
  for (const auto& e : Checkpoint::expected_tensors(c)) v.push_back({e.first, StDtype::BF16, e.second});
  if (c.tie_word_embeddings && with_lm_head_if_tied)
    v.push_back({"lm_head.weight", StDtype::BF16, {c.vocab_size, c.hidden_size}});
  return v;
}
size_t nbytes(const TensorSpec& s) {
  size_t n = st_dtype_size(s.dtype);
  for (int64_t d : s.shape) n *= size_t(d);
  return n;
}
// A checkpoint directory with these tensors (bytes: a pattern), in one file or split into `shards` files
// with an index.
void write_checkpoint(const std::string& dir, const ModelConfig& c, const std::vector<TensorSpec>& specs, int shards = 0) {
  fs::create_directories(dir);
  write_text(dir + "/config.json", c.to_json());
  int nfiles = shards > 0 ? shards : 1;
  std::vector<SafetensorsWriter> writers(static_cast<size_t>(nfiles));
  json weight_map;
  for (size_t i = 0; i < specs.size(); ++i) {
    size_t f = i % size_t(nfiles);
    std::vector<uint8_t> bytes(nbytes(specs[i]));
    for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = uint8_t(i + k);
    writers[f].add(specs[i].name, specs[i].dtype, specs[i].shape, std::move(bytes));
    weight_map[specs[i].name] = "part-" + std::to_string(f) + ".safetensors";
  }
  if (shards == 0) {
    writers[0].write(dir + "/model.safetensors");
    return;
  }
  for (int f = 0; f < nfiles; ++f) writers[size_t(f)].write(dir + "/part-" + std::to_string(f) + ".safetensors");
  write_text(dir + "/model.safetensors.index.json", json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());
}

// --- An independent implementation of the synthetic weight streams (as specified in synthetic.h) ---

uint64_t mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
double ref_value(uint64_t seed, const std::string& name, uint64_t i, double mean, double std) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  uint64_t key = mix(seed ^ h);
  uint64_t j = i / 2;
  auto u = [&](uint64_t c) { return std::ldexp(double((mix(key + c * 0x9E3779B97F4A7C15ull) >> 11) + 1), -53); };
  double r = std::sqrt(-2 * std::log(u(2 * j + 1))), t = 2 * M_PI * u(2 * j + 2);
  return mean + std * (i % 2 ? r * std::sin(t) : r * std::cos(t));
}
double decode(const StTensor& t, size_t i) {
  if (t.dtype == StDtype::F32) {
    float f;
    std::memcpy(&f, t.data + 4 * i, 4);
    return f;
  }
  uint16_t b = uint16_t(t.data[2 * i] | (t.data[2 * i + 1] << 8));
  if (t.dtype == StDtype::BF16) {
    uint32_t u = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  // F16 by hand: sign, 5-bit exponent, 10-bit fraction.
  int e = (b >> 10) & 31, m = b & 1023;
  double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (b & 0x8000) ? -v : v;
}

// v rounded once to `bits` significant bits (8: bf16, 11: f16) with ties to even, by exact scaling:
// v / ulp is exact in double, nearbyint rounds it (the default mode is to nearest even). min_exp is the
// format's smallest normal exponent (below it the ulp stops shrinking: subnormals).
double round_exact(double v, int bits, int min_exp) {
  if (v == 0) return v;
  int e = std::max(std::ilogb(v), min_exp);
  double ulp = std::ldexp(1.0, e - (bits - 1));
  return std::nearbyint(v / ulp) * ulp;
}

SyntheticOptions synth(ModelConfig c, uint64_t seed = 0) {
  SyntheticOptions o;
  o.config = std::move(c);
  o.seed = seed;
  return o;
}

}  // namespace

TEST(Checkpoint, ExpectedTensorsDense) {
  ModelConfig c = small_dense();
  c.attention_bias = true;
  auto e = Checkpoint::expected_tensors(c);
  // Hand-written from Qwen3ForCausalLM's modules (H 16, Hq*D 16, Hk*D 8, I 24, V 40).
  std::vector<std::pair<std::string, Shape>> want = {{"model.embed_tokens.weight", {40, 16}}};
  for (int i = 0; i < 2; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    std::vector<std::pair<std::string, Shape>> layer = {
        {p + "self_attn.q_proj.weight", {16, 16}}, {p + "self_attn.q_proj.bias", {16}},
        {p + "self_attn.k_proj.weight", {8, 16}},  {p + "self_attn.k_proj.bias", {8}},
        {p + "self_attn.v_proj.weight", {8, 16}},  {p + "self_attn.v_proj.bias", {8}},
        {p + "self_attn.o_proj.weight", {16, 16}}, {p + "self_attn.o_proj.bias", {16}},
        {p + "self_attn.q_norm.weight", {8}},      {p + "self_attn.k_norm.weight", {8}},
        {p + "mlp.gate_proj.weight", {24, 16}},    {p + "mlp.up_proj.weight", {24, 16}},
        {p + "mlp.down_proj.weight", {16, 24}},    {p + "input_layernorm.weight", {16}},
        {p + "post_attention_layernorm.weight", {16}}};
    want.insert(want.end(), layer.begin(), layer.end());
  }
  want.push_back({"model.norm.weight", {16}});
  want.push_back({"lm_head.weight", {40, 16}});
  EXPECT_EQ(e, want);
  c.tie_word_embeddings = true;
  want.pop_back();
  EXPECT_EQ(Checkpoint::expected_tensors(c), want);
}

TEST(Checkpoint, ExpectedTensorsMoe) {
  ModelConfig c = small_moe();
  c.num_hidden_layers = 4;
  c.decoder_sparse_step = 2;  // MoE at layers 1 and 3
  c.mlp_only_layers = {3};    // ... but 3 is dense
  std::set<std::string> names;
  std::map<std::string, Shape> shapes;
  for (const auto& x : Checkpoint::expected_tensors(c)) {
    EXPECT_TRUE(names.insert(x.first).second) << "duplicate " << x.first;
    shapes[x.first] = x.second;
  }
  EXPECT_EQ(shapes.at("model.layers.1.mlp.gate.weight"), (Shape{4, 16}));
  EXPECT_EQ(shapes.at("model.layers.1.mlp.experts.3.gate_proj.weight"), (Shape{12, 16}));
  EXPECT_EQ(shapes.at("model.layers.1.mlp.experts.0.up_proj.weight"), (Shape{12, 16}));
  EXPECT_EQ(shapes.at("model.layers.1.mlp.experts.2.down_proj.weight"), (Shape{16, 12}));
  EXPECT_EQ(shapes.count("model.layers.1.mlp.experts.4.up_proj.weight"), 0u);
  EXPECT_EQ(shapes.count("model.layers.1.mlp.gate_proj.weight"), 0u);
  for (int dense : {0, 2, 3}) {
    std::string p = "model.layers." + std::to_string(dense) + ".mlp.";
    EXPECT_EQ(shapes.at(p + "gate_proj.weight"), (Shape{24, 16})) << dense;
    EXPECT_EQ(shapes.at(p + "down_proj.weight"), (Shape{16, 24})) << dense;
    EXPECT_EQ(shapes.count(p + "gate.weight"), 0u) << dense;
  }
  // 1 embed + 4 layers x (4 attn + 2 qk norms + 2 layer norms) + 3 dense x 3 + 1 MoE x (1 + 4 x 3) + norm + lm_head
  EXPECT_EQ(names.size(), 1u + 4 * 8 + 3 * 3 + 13 + 2);
}

TEST(Checkpoint, OpensValidDirectory) {
  TempDir d;
  ModelConfig c = small_dense();
  write_checkpoint(d.path("m"), c, specs_for(c));
  write_text(d.path("m/generation_config.json"), R"({"eos_token_id": [3, 4], "temperature": 0.7})");
  std::vector<std::pair<size_t, size_t>> progress;
  auto ck = Checkpoint::open(d.path("m"), [&](size_t done, size_t total, const std::string&) { progress.emplace_back(done, total); });
  EXPECT_EQ(ck->dir(), d.path("m"));
  EXPECT_EQ(ck->config().hidden_size, 16);
  EXPECT_EQ(ck->generation().eos_token_ids, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(ck->generation().temperature, 0.7);
  ASSERT_EQ(ck->files().size(), 1u);
  const StTensor& t = ck->tensor("model.layers.1.mlp.down_proj.weight");
  EXPECT_EQ(t.shape, (Shape{16, 24}));
  EXPECT_EQ(t.dtype, StDtype::BF16);
  EXPECT_EQ(ck->file_of("model.norm.weight"), d.path("m") + "/model.safetensors");
  EXPECT_TRUE(ck->has("lm_head.weight"));
  EXPECT_FALSE(ck->has("nope"));
  EXPECT_ERROR(error_of([&] { ck->tensor("nope"); }), "no tensor 'nope'");
  EXPECT_TRUE(ck->ignored_tensors().empty());
  // Progress: starts at 0, ends at the file size, never decreases.
  size_t fsize = size_t(fs::file_size(d.path("m/model.safetensors")));
  ASSERT_GE(progress.size(), 2u);
  EXPECT_EQ(progress.front().first, 0u);
  EXPECT_EQ(progress.back(), std::make_pair(fsize, fsize));
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_LE(progress[i - 1].first, progress[i].first);
}

TEST(Checkpoint, GenerationFallsBackToConfig) {
  TempDir d;
  ModelConfig c = small_dense();
  write_checkpoint(d.path("m"), c, specs_for(c));
  EXPECT_EQ(Checkpoint::open(d.path("m"))->generation().eos_token_ids, std::vector<int64_t>{3});
  write_text(d.path("m/generation_config.json"), R"({"top_p": 2})");
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("m")); }), "generation_config.json: top_p must be in (0, 1]");
}

TEST(Checkpoint, MissingTensor) {
  TempDir d;
  ModelConfig c = small_dense();
  auto specs = specs_for(c);
  specs.erase(std::find_if(specs.begin(), specs.end(), [](const TensorSpec& s) { return s.name == "model.layers.1.mlp.down_proj.weight"; }));
  write_checkpoint(d.path("m"), c, specs);
  std::string m = error_of([&] { Checkpoint::open(d.path("m")); });
  EXPECT_ERROR(m, "missing tensor 'model.layers.1.mlp.down_proj.weight' (shape [16, 24], needed by Qwen3ForCausalLM");
  EXPECT_ERROR(m, "searched 1 file(s) holding " + std::to_string(specs.size()) + " tensors");
}

TEST(Checkpoint, WrongShape) {
  TempDir d;
  ModelConfig c = small_dense();
  auto specs = specs_for(c);
  for (auto& s : specs)
    if (s.name == "model.layers.0.self_attn.k_proj.weight") s.shape = {16, 8};
  write_checkpoint(d.path("m"), c, specs);
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("m")); }),
               "model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight': expected shape [8, 16], got [16, 8]");
}

TEST(Checkpoint, BadDtype) {
  TempDir d;
  ModelConfig c = small_dense();
  auto specs = specs_for(c);
  specs[3].dtype = StDtype::I32;
  write_checkpoint(d.path("m"), c, specs);
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("m")); }),
               "tensor '" + specs[3].name + "': dtype I32 is not supported (weights must be BF16, F16 or F32)");
  // F16 and F32 are fine, also mixed.
  specs[3].dtype = StDtype::F32;
  specs[4].dtype = StDtype::F16;
  fs::remove_all(d.path("m"));
  write_checkpoint(d.path("m"), c, specs);
  EXPECT_EQ(Checkpoint::open(d.path("m"))->tensor(specs[3].name).dtype, StDtype::F32);
}

TEST(Checkpoint, TiedAndUntiedLmHead) {
  TempDir d;
  ModelConfig c = small_dense();
  c.tie_word_embeddings = true;
  write_checkpoint(d.path("tied"), c, specs_for(c));
  auto ck = Checkpoint::open(d.path("tied"));
  EXPECT_FALSE(ck->has("lm_head.weight"));
  write_checkpoint(d.path("tied_with"), c, specs_for(c, true));
  EXPECT_TRUE(Checkpoint::open(d.path("tied_with"))->has("lm_head.weight"));
  auto specs = specs_for(c);
  specs.push_back({"lm_head.weight", StDtype::BF16, {16, 40}});
  write_checkpoint(d.path("tied_bad"), c, specs);
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("tied_bad")); }), "tensor 'lm_head.weight': expected shape [40, 16], got [16, 40]");
  // Untied config, no lm_head: an error.
  ModelConfig u = small_dense();
  write_checkpoint(d.path("untied"), u, specs_for(c));  // the tied tensor set
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("untied")); }), "missing tensor 'lm_head.weight' (shape [40, 16]");
}

TEST(Checkpoint, ExtraTensorsIgnoredAndCounted) {
  TempDir d;
  ModelConfig c = small_dense();
  auto specs = specs_for(c);
  specs.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", StDtype::F32, {4}});
  specs.push_back({"extra", StDtype::I64, {2}});
  write_checkpoint(d.path("m"), c, specs);
  ::testing::internal::CaptureStderr();
  auto ck = Checkpoint::open(d.path("m"));
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(ck->ignored_tensors(), (std::vector<std::string>{"extra", "model.layers.0.self_attn.rotary_emb.inv_freq"}));
  EXPECT_FALSE(ck->has("extra"));
  EXPECT_ERROR(log, "ignored 2 tensor(s) that Qwen3ForCausalLM does not use (first: 'extra')");
  // OPDEV_LOG_LEVEL=error silences it.
  ::setenv("OPDEV_LOG_LEVEL", "error", 1);
  ::testing::internal::CaptureStderr();
  Checkpoint::open(d.path("m"));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ::unsetenv("OPDEV_LOG_LEVEL");
}

TEST(Checkpoint, Sharded) {
  TempDir d;
  ModelConfig c = small_moe();
  write_checkpoint(d.path("m"), c, specs_for(c), 3);
  size_t total_size = 0;
  for (int f = 0; f < 3; ++f) total_size += size_t(fs::file_size(d.path("m/part-" + std::to_string(f) + ".safetensors")));
  size_t last_done = 0, last_total = 0;
  auto ck = Checkpoint::open(d.path("m"), [&](size_t done, size_t total, const std::string&) {
    last_done = done;
    last_total = total;
  });
  EXPECT_EQ(ck->files().size(), 3u);
  EXPECT_EQ(last_done, total_size);
  EXPECT_EQ(last_total, total_size);
  auto specs = specs_for(c);
  EXPECT_EQ(ck->file_of(specs[0].name), d.path("m") + "/part-0.safetensors");
  EXPECT_EQ(ck->file_of(specs[1].name), d.path("m") + "/part-1.safetensors");
  // The data is the pattern write_checkpoint put there.
  const StTensor& t = ck->tensor(specs[5].name);
  EXPECT_EQ(t.data[0], uint8_t(5));
  EXPECT_EQ(t.data[7], uint8_t(12));
}

TEST(Checkpoint, ShardedIndexErrors) {
  TempDir d;
  ModelConfig c = small_dense();
  auto specs = specs_for(c);
  auto with_index = [&](const std::string& name, const std::function<void(json&)>& edit) {
    std::string dir = d.path(name);
    write_checkpoint(dir, c, specs, 2);
    json j = json::parse(read_all(dir + "/model.safetensors.index.json"));
    edit(j);
    write_text(dir + "/model.safetensors.index.json", j.dump());
    return error_of([&] { Checkpoint::open(dir); });
  };
  EXPECT_ERROR(with_index("a", [](json& j) { j["weight_map"]["model.norm.weight"] = "../part-0.safetensors"; }),
               "weight_map names the shard '../part-0.safetensors', which is not a plain file name inside the checkpoint directory");
  EXPECT_ERROR(with_index("b", [](json& j) { j["weight_map"]["model.norm.weight"] = "/etc/passwd"; }), "not a plain file name");
  EXPECT_ERROR(with_index("c", [](json& j) { j["weight_map"]["model.norm.weight"] = ".."; }), "not a plain file name");
  EXPECT_ERROR(with_index("d", [](json& j) { j["weight_map"]["model.norm.weight"] = "part-9.safetensors"; }),
               "shard 'part-9.safetensors' (holding tensor 'model.norm.weight') does not exist");
  // Listed in the wrong shard: that shard does not hold it.
  std::string m = with_index("e", [&](json& j) {
    std::string s = j["weight_map"]["model.norm.weight"];
    j["weight_map"]["model.norm.weight"] = s == "part-0.safetensors" ? "part-1.safetensors" : "part-0.safetensors";
  });
  EXPECT_ERROR(m, "tensor 'model.norm.weight' is listed in shard");
  EXPECT_ERROR(m, "but that file does not hold it");
  // A tensor left out of the index is missing, even though a shard holds it.
  EXPECT_ERROR(with_index("f", [](json& j) { j["weight_map"].erase("model.norm.weight"); }), "missing tensor 'model.norm.weight'");
  EXPECT_ERROR(with_index("g", [](json& j) { j["weight_map"] = json::array(); }), "must be an object with a \"weight_map\" object");
  EXPECT_ERROR(with_index("h", [](json& j) { j["weight_map"]["model.norm.weight"] = 3; }),
               "weight_map entry 'model.norm.weight' must be a file name (a string)");
  EXPECT_ERROR(with_index("i", [](json& j) { j["weight_map"] = json::object(); }), "weight_map is empty");
  fs::create_directory(d.path("j"));
  write_text(d.path("j/config.json"), c.to_json());
  write_text(d.path("j/model.safetensors.index.json"), "{");
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("j")); }), "model.safetensors.index.json: not valid JSON");
}

TEST(Checkpoint, DirectoryErrors) {
  TempDir d;
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("none")); }), "none: no such directory");
  write_text(d.path("file"), "x");
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("file")); }), "file: not a directory");
  fs::create_directory(d.path("empty"));
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("empty")); }),
               "empty/config.json: not found (a Hugging Face checkpoint directory needs config.json)");
  write_text(d.path("empty/config.json"), small_dense().to_json());
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("empty")); }), "no model.safetensors or model.safetensors.index.json");
  write_text(d.path("empty/pytorch_model.bin"), "x");
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("empty")); }), "convert them to safetensors first");
  write_text(d.path("empty/config.json"), "{\"architectures\": [\"GPT2LMHeadModel\"]}");
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("empty")); }), "config.json: architectures [\"GPT2LMHeadModel\"] names no supported");
  // A corrupt weight file names itself.
  write_text(d.path("empty/config.json"), small_dense().to_json());
  write_text(d.path("empty/model.safetensors"), "short");
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("empty")); }), "empty/model.safetensors: file is 5 bytes, too short");
}

TEST(Checkpoint, HugeConfigFailsFast) {
  // A config implying billions of tensors must be rejected at the first missing one, not enumerated.
  TempDir d;
  ModelConfig c = small_moe();
  write_checkpoint(d.path("m"), c, specs_for(c));
  ModelConfig huge = c;
  huge.num_hidden_layers = 2000000000;
  write_text(d.path("m/config.json"), huge.to_json());
  EXPECT_ERROR(error_of([&] { Checkpoint::open(d.path("m")); }), "missing tensor 'model.layers.3.self_attn.q_proj.weight'");
}

// ---- synthetic checkpoints (make-model) ----

TEST(Synthetic, TinyRoundTripAndValues) {
  TempDir d;
  ModelConfig c = synthetic_preset("tiny");
  c.vocab_size = 512;  // keep the test quick; the preset's real vocabulary is exercised by the CLI
  c.attention_bias = true;
  SyntheticOptions o = synth(c, 7);
  SyntheticResult r = write_synthetic_checkpoint(d.path("tiny"), o);
  auto ck = Checkpoint::open(d.path("tiny"));
  EXPECT_EQ(ck->config().tie_word_embeddings, true);
  EXPECT_EQ(ck->config().attention_bias, true);
  EXPECT_EQ(ck->config().torch_dtype, "bfloat16");
  EXPECT_FALSE(ck->has("lm_head.weight"));
  EXPECT_EQ(r.tensors, Checkpoint::expected_tensors(ck->config()).size());
  EXPECT_EQ(r.files, 1u);
  EXPECT_TRUE(ck->ignored_tensors().empty());
  EXPECT_FALSE(ck->config().bos_token_id);  // 151643 is outside a 512-token vocabulary
  // Values: every element regenerated here from the specification and rounded once to bf16, bit for bit
  // (double rounding through float would differ in about 1 of 2^17 elements; these are 600k).
  const double H = 256;
  struct Probe {
    std::string name;
    double mean, std;
  };
  std::vector<Probe> probes = {{"model.embed_tokens.weight", 0, 2 / std::sqrt(H)},
                               {"model.layers.0.self_attn.q_proj.weight", 0, 1 / std::sqrt(H)},
                               {"model.layers.3.self_attn.o_proj.weight", 0, 1 / std::sqrt(512.0)},
                               {"model.layers.2.mlp.down_proj.weight", 0, 1 / std::sqrt(768.0)},
                               {"model.layers.1.self_attn.k_proj.bias", 0, 0.2},
                               {"model.layers.1.self_attn.q_norm.weight", 1, 0.1},
                               {"model.norm.weight", 1, 0.1}};
  for (const auto& p : probes) {
    const StTensor& t = ck->tensor(p.name);
    size_t n = t.nbytes / 2;
    size_t wrong = 0, first_wrong = 0;
    for (size_t i = 0; i < n; ++i) {
      if (decode(t, i) != round_exact(ref_value(7, p.name, i, p.mean, p.std), 8, -126) && wrong++ == 0) first_wrong = i;
    }
    EXPECT_EQ(wrong, 0u) << p.name << ": first at [" << first_wrong << "] = " << decode(t, first_wrong) << ", want "
                         << round_exact(ref_value(7, p.name, first_wrong, p.mean, p.std), 8, -126);
    // The whole tensor has about the intended spread.
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; ++i) {
      double v = decode(t, i) - p.mean;
      s += v;
      s2 += v * v;
    }
    double sd = std::sqrt(s2 / double(n) - (s / double(n)) * (s / double(n)));
    EXPECT_NEAR(sd, p.std, p.std * (n > 1000 ? 0.05 : 0.35)) << p.name;
  }
}

TEST(Synthetic, F32AndF16AreRoundedOnce) {
  TempDir d;
  ModelConfig c = synthetic_preset("tiny");
  c.vocab_size = 64;
  c.num_hidden_layers = 1;
  for (StDtype dt : {StDtype::F32, StDtype::F16}) {
    SyntheticOptions o = synth(c, 3);
    o.dtype = dt;
    std::string dir = d.path(st_dtype_name(dt));
    write_synthetic_checkpoint(dir, o);
    auto ck = Checkpoint::open(dir);
    EXPECT_EQ(ck->config().torch_dtype, dt == StDtype::F32 ? "float32" : "float16");
    const StTensor& t = ck->tensor("model.layers.0.mlp.up_proj.weight");
    EXPECT_EQ(t.dtype, dt);
    size_t wrong = 0;
    for (size_t i = 0; i < t.nbytes / st_dtype_size(dt); ++i) {
      double want = ref_value(3, "model.layers.0.mlp.up_proj.weight", i, 0, 1 / 16.0);
      wrong += decode(t, i) != (dt == StDtype::F32 ? double(float(want)) : round_exact(want, 11, -14));
    }
    EXPECT_EQ(wrong, 0u) << st_dtype_name(dt);
  }
}

TEST(Synthetic, MoeVariantsRoundTrip) {
  TempDir d;
  struct Variant {
    std::string name;
    std::function<void(ModelConfig&)> edit;
  };
  std::vector<Variant> variants = {
      {"plain", [](ModelConfig&) {}},
      {"bias_step2", [](ModelConfig& c) { c.attention_bias = true; c.decoder_sparse_step = 2; }},
      {"mlp_only", [](ModelConfig& c) { c.mlp_only_layers = {0, 2}; }},
      {"no_experts", [](ModelConfig& c) { c.num_experts = 0; }},
  };
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    ModelConfig c = synthetic_preset("tiny-moe");
    c.vocab_size = 300;
    v.edit(c);
    write_synthetic_checkpoint(d.path(v.name), synth(c, 1));
    auto ck = Checkpoint::open(d.path(v.name));
    const ModelConfig& k = ck->config();
    EXPECT_EQ(k.architecture, "Qwen3MoeForCausalLM");
    EXPECT_EQ(k.mlp_only_layers, c.mlp_only_layers);
    EXPECT_EQ(k.decoder_sparse_step, c.decoder_sparse_step);
    EXPECT_TRUE(ck->has("lm_head.weight"));  // untied
    for (int l = 0; l < 3; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".mlp.";
      EXPECT_EQ(ck->has(p + "gate.weight"), c.is_moe_layer(l)) << l;
      EXPECT_EQ(ck->has(p + "experts.7.down_proj.weight"), c.is_moe_layer(l)) << l;
      EXPECT_EQ(ck->has(p + "gate_proj.weight"), !c.is_moe_layer(l)) << l;
    }
    if (c.is_moe_layer(1)) {
      const StTensor& t = ck->tensor("model.layers.1.mlp.experts.5.down_proj.weight");
      EXPECT_EQ(t.shape, (Shape{256, 128}));
      double want = ref_value(1, "model.layers.1.mlp.experts.5.down_proj.weight", 11, 0, 1 / std::sqrt(128.0));
      EXPECT_NEAR(decode(t, 11), want, std::abs(want) * 0x1p-8);
      const StTensor& g = ck->tensor("model.layers.1.mlp.gate.weight");
      EXPECT_EQ(g.shape, (Shape{8, 256}));
      want = ref_value(1, "model.layers.1.mlp.gate.weight", 100, 0, 2 / 16.0);
      EXPECT_NEAR(decode(g, 100), want, std::abs(want) * 0x1p-8);
    }
  }
}

TEST(Synthetic, Deterministic) {
  TempDir d;
  ModelConfig c = synthetic_preset("tiny-moe");
  c.vocab_size = 256;
  SyntheticOptions a = synth(c, 42);
  a.threads = 1;
  SyntheticOptions b = synth(c, 42);
  b.threads = 3;  // the bytes must not depend on the thread count
  SyntheticOptions other = synth(c, 43);
  write_synthetic_checkpoint(d.path("a"), a);
  write_synthetic_checkpoint(d.path("b"), b);
  write_synthetic_checkpoint(d.path("c"), other);
  std::string wa = read_all(d.path("a/model.safetensors"));
  EXPECT_EQ(wa, read_all(d.path("b/model.safetensors")));
  EXPECT_EQ(read_all(d.path("a/config.json")), read_all(d.path("b/config.json")));
  std::string wc = read_all(d.path("c/model.safetensors"));
  ASSERT_EQ(wa.size(), wc.size());
  EXPECT_NE(wa, wc);
  // Different seeds differ everywhere, not in a few bytes: compare one tensor element by element.
  auto ca = Checkpoint::open(d.path("a")), cc = Checkpoint::open(d.path("c"));
  const StTensor& ta = ca->tensor("model.layers.0.self_attn.v_proj.weight");
  const StTensor& tc = cc->tensor("model.layers.0.self_attn.v_proj.weight");
  size_t same = 0;
  for (size_t i = 0; i < ta.nbytes / 2; ++i) same += decode(ta, i) == decode(tc, i);
  EXPECT_LT(same, ta.nbytes / 2 / 20);
  // Different tensors of one checkpoint are different streams too.
  EXPECT_NE(decode(ca->tensor("model.layers.0.mlp.experts.0.up_proj.weight"), 0),
            decode(ca->tensor("model.layers.0.mlp.experts.1.up_proj.weight"), 0));
}

TEST(Synthetic, ShardedMatchesSingleFile) {
  TempDir d;
  ModelConfig c = synthetic_preset("tiny-moe");
  c.vocab_size = 1000;
  write_synthetic_checkpoint(d.path("single"), synth(c, 5));
  SyntheticOptions o = synth(c, 5);
  o.shard_size = 600000;
  uint64_t last = 0, total = 0;
  o.progress = [&](uint64_t done, uint64_t t) {
    EXPECT_GE(done, last);
    last = done;
    total = t;
  };
  SyntheticResult r = write_synthetic_checkpoint(d.path("sharded"), o);
  EXPECT_GT(r.files, 2u);
  EXPECT_EQ(last, total);
  EXPECT_EQ(total, r.bytes);
  json index = json::parse(read_all(d.path("sharded/model.safetensors.index.json")));
  EXPECT_EQ(index["metadata"]["total_size"], r.bytes);
  char first[64];
  std::snprintf(first, sizeof first, "model-00001-of-%05zu.safetensors", r.files);
  EXPECT_EQ(index["weight_map"]["model.embed_tokens.weight"], first);
  for (const auto& kv : index["weight_map"].items())
    EXPECT_LE(fs::file_size(d.path("sharded/" + kv.value().get<std::string>())), 600000u + 4096u) << kv.key();
  auto s = Checkpoint::open(d.path("single")), h = Checkpoint::open(d.path("sharded"));
  EXPECT_EQ(h->files().size(), r.files);
  for (const auto& e : Checkpoint::expected_tensors(c)) {
    const StTensor &a = s->tensor(e.first), &b = h->tensor(e.first);
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << e.first;
  }
}

TEST(Synthetic, TokenizerCopyAndVocabCheck) {
  TempDir d;
  fs::create_directory(d.path("tok"));
  write_text(d.path("tok/tokenizer.json"), R"({"model": {"vocab": {"a": 0, "b": 299}}, "added_tokens": [{"id": 300}]})");
  write_text(d.path("tok/tokenizer_config.json"), "{}");
  ModelConfig c = synthetic_preset("tiny");
  c.num_hidden_layers = 1;
  c.vocab_size = 300;
  SyntheticOptions o = synth(c);
  o.tokenizer_dir = d.path("tok");
  EXPECT_ERROR(error_of([&] { write_synthetic_checkpoint(d.path("m"), o); }),
               "the tokenizer uses ids up to 300, but vocab_size is 300");
  EXPECT_FALSE(fs::exists(d.path("m")));
  o.config.vocab_size = 301;
  write_synthetic_checkpoint(d.path("m"), o);
  EXPECT_EQ(read_all(d.path("m/tokenizer.json")), read_all(d.path("tok/tokenizer.json")));
  EXPECT_TRUE(fs::exists(d.path("m/tokenizer_config.json")));
  o.tokenizer_dir = d.path("nowhere");
  EXPECT_ERROR(error_of([&] { write_synthetic_checkpoint(d.path("m2"), o); }), "run scripts/fetch-tokenizer.sh");
}

TEST(Synthetic, AtomicAndCarefulWithExistingPaths) {
  TempDir d;
  ModelConfig c = synthetic_preset("tiny");
  c.vocab_size = 128;
  c.num_hidden_layers = 1;
  // An invalid config fails before anything is created.
  ModelConfig bad = c;
  bad.num_key_value_heads = 3;
  EXPECT_ERROR(error_of([&] { write_synthetic_checkpoint(d.path("m"), synth(bad)); }),
               "num_attention_heads (8) must be a multiple of num_key_value_heads (3)");
  EXPECT_FALSE(fs::exists(d.path("m")));
  write_synthetic_checkpoint(d.path("m"), synth(c, 1));
  EXPECT_ERROR(error_of([&] { write_synthetic_checkpoint(d.path("m"), synth(c, 2)); }), "already exists (use --force");
  SyntheticOptions o = synth(c, 2);
  o.overwrite = true;
  write_synthetic_checkpoint(d.path("m/"), o);  // replaces the checkpoint
  auto ck = Checkpoint::open(d.path("m"));
  EXPECT_NEAR(decode(ck->tensor("model.norm.weight"), 0), ref_value(2, "model.norm.weight", 0, 1, 0.1), 0x1p-8);
  // Never replaces a directory that is not a checkpoint.
  fs::create_directory(d.path("precious"));
  write_text(d.path("precious/notes.txt"), "keep");
  EXPECT_ERROR(error_of([&] { write_synthetic_checkpoint(d.path("precious"), o); }), "refusing to replace");
  EXPECT_EQ(read_all(d.path("precious/notes.txt")), "keep");
  // A failure during the write (the output's parent is a file) leaves no temporary directory behind.
  write_text(d.path("afile"), "x");
  EXPECT_NE(error_of([&] { write_synthetic_checkpoint(d.path("afile/m"), synth(c)); }), "<no error>");
  for (const auto& e : fs::directory_iterator(d.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST(Synthetic, Presets) {
  ModelConfig t = synthetic_preset("tiny");
  EXPECT_EQ(t.vocab_size, 151936);
  EXPECT_EQ(t.hidden_size, 256);
  EXPECT_EQ(t.num_hidden_layers, 4);
  EXPECT_EQ(t.num_attention_heads, 8);
  EXPECT_EQ(t.num_key_value_heads, 4);
  EXPECT_EQ(t.head_dim, 64);
  EXPECT_EQ(t.intermediate_size, 768);
  EXPECT_TRUE(t.tie_word_embeddings);
  ModelConfig q = synthetic_preset("qwen3-0.6b");  // must equal the published Qwen3-0.6B config
  EXPECT_EQ(q.num_hidden_layers, 28);
  EXPECT_EQ(q.hidden_size, 1024);
  EXPECT_EQ(q.num_attention_heads, 16);
  EXPECT_EQ(q.num_key_value_heads, 8);
  EXPECT_EQ(q.head_dim, 128);
  EXPECT_EQ(q.intermediate_size, 3072);
  EXPECT_TRUE(q.tie_word_embeddings);
  EXPECT_EQ(q.rope_theta, 1e6);
  EXPECT_EQ(q.max_position_embeddings, 40960);
  ModelConfig m = synthetic_preset("qwen3-moe-small");
  EXPECT_EQ(m.architecture, "Qwen3MoeForCausalLM");
  EXPECT_EQ(m.num_experts, 64);
  EXPECT_EQ(m.num_experts_per_tok, 8);
  EXPECT_EQ(m.moe_intermediate_size, 384);
  EXPECT_TRUE(m.norm_topk_prob);
  EXPECT_FALSE(m.tie_word_embeddings);
  ModelConfig tm = synthetic_preset("tiny-moe");
  EXPECT_EQ(tm.num_hidden_layers, 3);
  EXPECT_EQ(tm.num_experts, 8);
  EXPECT_EQ(tm.num_experts_per_tok, 2);
  EXPECT_EQ(tm.moe_intermediate_size, 128);
  EXPECT_FALSE(tm.tie_word_embeddings);
  for (const auto& p : synthetic_presets()) EXPECT_NO_THROW(synthetic_preset(p).validate(p));
  EXPECT_ERROR(error_of([] { synthetic_preset("huge"); }), "unknown preset 'huge' (presets: tiny, qwen3-0.6b, qwen3-moe-small, tiny-moe)");
}

// Opens a checkpoint made outside the test (e.g. `opdev make-model --preset tiny --out /tmp/x`) when
// OPDEV_TEST_CHECKPOINT names it.
TEST(Checkpoint, OpensExternalCheckpoint) {
  const char* dir = std::getenv("OPDEV_TEST_CHECKPOINT");
  if (!dir || !*dir) GTEST_SKIP() << "set OPDEV_TEST_CHECKPOINT to a checkpoint directory";
  auto ck = Checkpoint::open(dir);
  const ModelConfig& c = ck->config();
  for (const auto& e : Checkpoint::expected_tensors(c)) EXPECT_EQ(ck->tensor(e.first).shape, e.second);
  std::printf("opened %s: %s, %lld layers, %zu file(s), %zu ignored tensors\n", dir, c.architecture.c_str(),
              (long long)c.num_hidden_layers, ck->files().size(), ck->ignored_tensors().size());
}
