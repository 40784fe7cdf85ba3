// opdev make-model: writes a synthetic Hugging Face checkpoint (config, generation config, deterministic
// random weights, the real tokenizer) from a preset with optional overrides. See src/model/synthetic.h
// for the weights and the crash-safe write.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "model/synthetic.h"

namespace opdev::cli {

namespace {

namespace fs = std::filesystem;

struct MakeModelArgs {
  std::string preset = "tiny", out, dtype = "bfloat16", shard_size, tokenizer_dir;
  int64_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0, experts = 0,
          experts_per_tok = 0, moe_intermediate = 0, decoder_sparse_step = 0, vocab = 0;
  std::vector<int64_t> mlp_only_layers;
  bool tie = false, attention_bias = false, norm_topk_prob = false, no_tokenizer = false, force = false, quiet = false;
  uint64_t seed = 0;
  int threads = 0;
};

// "500MB", "2GB", "1GiB", "123456" -> bytes (decimal units like Hugging Face's max_shard_size).
uint64_t parse_size(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    throw CLI::ValidationError("--shard-size", "'" + s + "' is not a size like 500MB, 2GB or 1GiB");
  }
  std::string unit = s.substr(pos);
  for (auto& ch : unit) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  double mul = 0;
  const std::pair<const char*, double> units[] = {{"", 1},         {"B", 1},           {"KB", 1e3},
                                                  {"MB", 1e6},     {"GB", 1e9},        {"KIB", 1024.0},
                                                  {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
  for (const auto& u : units)
    if (unit == u.first) mul = u.second;
  if (mul == 0 || !(v > 0) || v * mul > 1e18)
    throw CLI::ValidationError("--shard-size", "'" + s + "' is not a positive size like 500MB, 2GB or 1GiB");
  return uint64_t(v * mul);
}

model::StDtype parse_dtype(const std::string& s) {
  if (s == "bfloat16" || s == "bf16") return model::StDtype::BF16;
  if (s == "float16" || s == "fp16" || s == "f16") return model::StDtype::F16;
  if (s == "float32" || s == "fp32" || s == "f32") return model::StDtype::F32;
  throw CLI::ValidationError("--dtype", "'" + s + "' is not one of bfloat16, float16, float32");
}

bool has_tokenizer(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "tokenizer.json", ec) && fs::is_regular_file(dir / "tokenizer_config.json", ec);
}

// Where scripts/fetch-tokenizer.sh puts the tokenizer: $OPDEV_CACHE_DIR, else the repository's .cache
// (found from the executable, build/tools/opdev, or from the working directory).
std::string find_tokenizer() {
  std::vector<fs::path> tried;
  if (const char* cache = std::getenv("OPDEV_CACHE_DIR"); cache && *cache) {
    tried.push_back(fs::path(cache) / "tokenizer-qwen3" / "models");
  } else {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) tried.push_back(exe.parent_path().parent_path().parent_path() / ".cache" / "tokenizer-qwen3" / "models");
    tried.push_back(fs::current_path(ec) / ".cache" / "tokenizer-qwen3" / "models");
  }
  std::string list;
  for (const auto& p : tried) {
    if (has_tokenizer(p)) return p.string();
    list += (list.empty() ? "" : ", ") + p.string();
  }
  throw CLI::ValidationError("--tokenizer-dir",
                             "no tokenizer.json + tokenizer_config.json found (looked in " + list +
                                 "). Run scripts/fetch-tokenizer.sh, or pass --tokenizer-dir DIR, or --no-tokenizer");
}

std::string human_bytes(double b) {
  char buf[32];
  if (b >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  return buf;
}

}  // namespace

void add_make_model(CLI::App& app) {
  auto a = std::make_shared<MakeModelArgs>();
  CLI::App* c = app.add_subcommand(
      "make-model", "Write a synthetic Hugging Face checkpoint (deterministic random weights, real tokenizer)");
  std::string presets;
  for (const auto& p : model::synthetic_presets()) presets += (presets.empty() ? "" : ", ") + p;
  c->add_option("--preset,-p", a->preset, "Base configuration: " + presets)->capture_default_str();
  c->add_option("--out,-o", a->out, "Checkpoint directory to create")->required();
  auto* layers = c->add_option("--layers", a->layers, "num_hidden_layers");
  auto* hidden = c->add_option("--hidden", a->hidden, "hidden_size");
  auto* heads = c->add_option("--heads", a->heads, "num_attention_heads");
  auto* kv_heads = c->add_option("--kv-heads", a->kv_heads, "num_key_value_heads");
  auto* head_dim = c->add_option("--head-dim", a->head_dim, "head_dim");
  auto* inter = c->add_option("--intermediate", a->intermediate, "intermediate_size (dense MLP)");
  auto* experts = c->add_option("--experts", a->experts, "num_experts (MoE presets; 0: every layer dense)");
  auto* topk = c->add_option("--experts-per-tok", a->experts_per_tok, "num_experts_per_tok");
  auto* moe_inter = c->add_option("--moe-intermediate", a->moe_intermediate, "moe_intermediate_size");
  auto* step = c->add_option("--decoder-sparse-step", a->decoder_sparse_step, "decoder_sparse_step");
  auto* mlp_only = c->add_option("--mlp-only-layers", a->mlp_only_layers, "Dense layers of a MoE model, e.g. 0,2")
                       ->delimiter(',');
  auto* tie = c->add_flag("--tie,!--no-tie", a->tie, "tie_word_embeddings (no lm_head.weight)");
  c->add_flag("--attention-bias", a->attention_bias, "Biases on q/k/v/o projections");
  auto* norm_topk = c->add_flag("--norm-topk-prob,!--no-norm-topk-prob", a->norm_topk_prob, "norm_topk_prob");
  auto* vocab = c->add_option("--vocab", a->vocab, "vocab_size (default 151936, Qwen3's)");
  c->add_option("--dtype,-d", a->dtype, "bfloat16, float16 or float32")->capture_default_str();
  c->add_option("--seed", a->seed, "Weight seed")->capture_default_str();
  c->add_option("--shard-size", a->shard_size, "Split the weights into shards of at most this size (e.g. 500MB)");
  c->add_option("--tokenizer-dir", a->tokenizer_dir,
                "Directory with tokenizer.json and tokenizer_config.json (default: the fetch-tokenizer.sh cache)");
  c->add_flag("--no-tokenizer", a->no_tokenizer, "Do not copy a tokenizer");
  c->add_flag("--force", a->force, "Replace an existing checkpoint at --out");
  c->add_option("--threads,-t", a->threads, "Weight generation threads (0 = all cores)");
  c->add_flag("--quiet,-q", a->quiet, "No progress output");

  c->callback([=] {
    model::SyntheticOptions o;
    try {
      o.config = model::synthetic_preset(a->preset);
    } catch (const model::ModelError& e) {
      throw CLI::ValidationError("--preset", e.what());
    }
    model::ModelConfig& m = o.config;
    if (*layers) m.num_hidden_layers = a->layers;
    if (*hidden) m.hidden_size = a->hidden;
    if (*heads) m.num_attention_heads = a->heads;
    if (*kv_heads) m.num_key_value_heads = a->kv_heads;
    if (*head_dim) m.head_dim = a->head_dim;
    if (*inter) m.intermediate_size = a->intermediate;
    if (*tie) m.tie_word_embeddings = a->tie;
    if (a->attention_bias) m.attention_bias = true;
    if (*vocab) m.vocab_size = a->vocab;
    const bool moe_opts = *experts || *topk || *moe_inter || *step || *mlp_only || *norm_topk;
    if (moe_opts && m.architecture != "Qwen3MoeForCausalLM")
      throw CLI::ValidationError("--experts", "preset '" + a->preset +
                                                  "' is dense; MoE options need a MoE preset (tiny-moe, qwen3-moe-small)");
    if (*experts) m.num_experts = a->experts;
    if (*topk) m.num_experts_per_tok = a->experts_per_tok;
    if (*moe_inter) m.moe_intermediate_size = a->moe_intermediate;
    if (*step) m.decoder_sparse_step = a->decoder_sparse_step;
    if (*mlp_only) m.mlp_only_layers = a->mlp_only_layers;
    if (*norm_topk) m.norm_topk_prob = a->norm_topk_prob;
    o.dtype = parse_dtype(a->dtype);
    o.seed = a->seed;
    o.threads = a->threads;
    o.overwrite = a->force;
    if (!a->shard_size.empty()) o.shard_size = parse_size(a->shard_size);
    if (!a->no_tokenizer) o.tokenizer_dir = a->tokenizer_dir.empty() ? find_tokenizer() : a->tokenizer_dir;

    const bool tty = ::isatty(STDERR_FILENO);
    int last_decile = -1;
    auto start = std::chrono::steady_clock::now();
    if (!a->quiet)
      o.progress = [&](uint64_t done, uint64_t total) {
        double frac = total ? double(done) / double(total) : 1.0;
        if (tty) {
          std::fprintf(stderr, "\rmake-model: %s / %s (%3.0f%%)", human_bytes(double(done)).c_str(),
                       human_bytes(double(total)).c_str(), 100 * frac);
          std::fflush(stderr);
        } else if (int(frac * 10) > last_decile && total > (uint64_t(100) << 20)) {  // logs: a line per 10%
          last_decile = int(frac * 10);
          std::fprintf(stderr, "make-model: %s / %s (%d%%)\n", human_bytes(double(done)).c_str(),
                       human_bytes(double(total)).c_str(), 10 * last_decile);
        }
      };
    model::SyntheticResult r = model::write_synthetic_checkpoint(a->out, o);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!a->quiet && tty) std::fprintf(stderr, "\n");
    std::printf("make-model: wrote %s (%s, %s, %lld layers, %zu tensors in %zu file(s), %s %s, seed %llu%s) in %.1f s\n",
                a->out.c_str(), a->preset.c_str(), m.architecture.c_str(), (long long)m.num_hidden_layers, r.tensors,
                r.files, human_bytes(double(r.bytes)).c_str(), a->dtype.c_str(), (unsigned long long)a->seed,
                o.tokenizer_dir.empty() ? ", no tokenizer" : "", secs);
  });
}

}  // namespace opdev::cli
