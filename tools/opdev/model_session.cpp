#include "model_session.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace opdev::cli {

void add_model_options(CLI::App* c, ModelOptions& o) {
  c->add_option("--model,-m", o.model, "Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json)")->required();
  c->add_option("--backend,-b", o.backend, "Backend to run on")->default_val("cpu");
  c->add_option("--dtype", o.dtype, "Compute dtype: float32, bfloat16, float16 (default: the checkpoint's)");
  c->add_option("--weights", o.weights,
                 "Projection weights: dtype (the compute dtype); int8 (W8A8: int8 per-channel projection and lm_head "
                 "weights quantised at load, int8 per-token activations; the embedding gather, norms and MoE router stay in "
                 "the compute dtype); int8-proj (the same with the lm_head in the compute dtype)")
      ->default_val("dtype");
  c->add_option("--threads,-t", o.threads, "Threads (0 = all cores)");
  c->add_flag("--deterministic", o.deterministic,
              "Bitwise-reproducible results across runs, thread counts and batch compositions (slower prefill)");
  c->add_option("--kv-cache-mb", o.kv_cache_mb, "KV cache budget in MiB")->default_val(512);
  c->add_option("--chunk", o.chunk, "Prefill tokens per forward (chunked prefill)")->default_val(512);
  c->add_option("--max-seqs", o.max_seqs, "Sequences batched per forward")->default_val(16);
  c->add_flag("--quiet,-q", o.quiet, "No progress output");
  c->add_option("--profile", o.profile_dir,
                "Record every op call after loading; write trace.json (Perfetto), op_summary.csv, fusion_candidates.csv and "
                "report.txt into this directory and print the top operators and fusion candidates");
}

void ProfileRecording::begin(opdev_context* ctx, const std::string& dir, const opdev_profile_options* options) {
  if (dir.empty()) return;
  check(opdev_profile_begin(ctx, options, &profile_));
  dir_ = dir;
}

void ProfileRecording::finish() {
  if (!profile_) return;
  std::fprintf(stderr, "profile: writing %llu op calls to %s...\n", (unsigned long long)opdev_profile_num_calls(profile_), dir_.c_str());
  check(opdev_profile_write(profile_, dir_.c_str()));
  const char* text = "";
  check(opdev_profile_report(profile_, &text));
  std::fprintf(stderr, "%s", text);
  std::fprintf(stderr, "profile: wrote %s/{trace.json,op_summary.csv,fusion_candidates.csv,report.txt} (open trace.json in "
                       "https://ui.perfetto.dev)\n", dir_.c_str());
  opdev_profile_end(profile_);
  profile_ = nullptr;
}

void add_sampling_options(CLI::App* c, SamplingOptions& o) {
  c->add_option("--max-tokens,-n", o.max_tokens, "Tokens to generate at most")->default_val(128);
  c->add_option("--temperature", o.temperature, "Sampling temperature (0 = greedy)")->default_val(0.7);
  c->add_option("--top-k", o.top_k, "Keep the k most likely tokens (0 = off)")->default_val(20);
  c->add_option("--top-p", o.top_p, "Nucleus sampling mass (1 = off)")->default_val(0.8);
  c->add_option("--seed", o.seed, "Random seed")->default_val(0);
  c->add_option("--stop", o.stop, "Stop when this text appears (repeatable)");
  c->add_flag("--ignore-eos", o.ignore_eos, "Keep generating past end-of-sequence tokens");
}

model::SamplingParams to_params(const SamplingOptions& o) {
  model::SamplingParams p;
  p.max_tokens = o.max_tokens;
  p.temperature = o.temperature;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.seed = o.seed;
  p.stop = o.stop;
  p.ignore_eos = o.ignore_eos;
  return p;
}

std::unique_ptr<Session> open_session(const ModelOptions& o, bool need_tokenizer) {
  auto t0 = std::chrono::steady_clock::now();
  auto s = std::make_unique<Session>();
  auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto bar = [&](size_t done, size_t total, const std::string& what) {
    if (o.quiet) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last < std::chrono::milliseconds(100)) return;
    last = now;
    std::fprintf(stderr, "\r%-8s %3d%% (%zu / %zu MiB) %-48.48s", what.c_str(), total ? int(100.0 * double(done) / double(total)) : 100,
                 done >> 20, total >> 20, "");
    std::fflush(stderr);
  };
  s->ckpt = model::Checkpoint::open(o.model, [&](size_t d, size_t t, const std::string&) { bar(d, t, "checking"); });
  s->ctx = Context(o.backend.c_str(), o.threads, o.deterministic);
  std::string dt = o.dtype;
  if (dt.empty()) dt = s->ckpt->config().torch_dtype.empty() ? "bfloat16" : s->ckpt->config().torch_dtype;
  const model::WeightFormat wf = model::parse_weight_format(o.weights);
  s->model = std::make_unique<model::Qwen3Model>(*s->ckpt, s->ctx, model::parse_compute_dtype(dt),
                                                 [&](size_t d, size_t t, const std::string&) { bar(d, t, "loading"); }, wf);
  if (!o.quiet) std::fprintf(stderr, "\r%-80s\r", "");
  const bool has_tok = std::filesystem::exists(std::filesystem::path(o.model) / "tokenizer.json");
  if (need_tokenizer || has_tok) {
    if (!has_tok)
      throw model::ModelError(o.model + " has no tokenizer.json; copy the model's tokenizer files there (or pass --ids where available)");
    s->tokenizer = model::Tokenizer::load(o.model);
  }
  s->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!o.quiet)
    std::fprintf(stderr, "loaded %s: %s, %lld layers, %.0f MiB of weights (computing in %s%s) on %s (%s, %d threads%s) in %.1f s\n",
                 o.model.c_str(), s->ckpt->config().architecture.c_str(), (long long)s->ckpt->config().num_hidden_layers,
                 double(s->model->weight_bytes()) / (1 << 20), dtype_str(s->model->dtype()),
                 wf == model::WeightFormat::Int8              ? ", int8 W8A8 projections and lm_head"
                 : wf == model::WeightFormat::Int8Projections ? ", int8 W8A8 projections"
                                                              : "", o.backend.c_str(),
                 opdev_context_describe(s->ctx), opdev_context_num_threads(s->ctx),
                 opdev_context_deterministic(s->ctx) ? ", deterministic" : "", s->load_seconds);
  return s;
}

model::EngineConfig engine_config(const ModelOptions& o) {
  model::EngineConfig c;
  if (!(o.kv_cache_mb > 0)) throw model::ModelError("--kv-cache-mb must be > 0");
  c.kv_cache_bytes = size_t(o.kv_cache_mb * 1024.0 * 1024.0);
  c.max_batched_tokens = o.chunk;
  c.max_num_seqs = o.max_seqs;
  return c;
}

std::vector<int64_t> eos_ids(const Session& s) {
  std::vector<int64_t> ids = s.ckpt->generation().eos_token_ids;
  for (int64_t x : s.ckpt->config().eos_token_ids)
    if (std::find(ids.begin(), ids.end(), x) == ids.end()) ids.push_back(x);
  if (s.tokenizer)  // ChatML ends turns with <|im_end|>
    for (const char* t : {"<|im_end|>", "<|endoftext|>"})
      if (auto id = s.tokenizer->token_id(t))
        if (std::find(ids.begin(), ids.end(), int64_t(*id)) == ids.end()) ids.push_back(*id);
  return ids;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX) throw CLI::ValidationError("--ids", "'" + item + "' is not a token id");
    ids.push_back(int32_t(v));
  }
  return ids;
}

}  // namespace opdev::cli
