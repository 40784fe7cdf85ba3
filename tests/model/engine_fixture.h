// What the engine tests share: a small synthetic checkpoint (dense or MoE) loaded on a cpu context,
// prompts, greedy sampling and running requests to completion with their logits recorded.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/engine.h"
#include "model/synthetic.h"

namespace opdev::model::testing {

namespace fs = std::filesystem;

inline ModelConfig small_config(bool moe) {
  ModelConfig c = synthetic_preset(moe ? "tiny-moe" : "tiny");
  c.vocab_size = 512;
  c.hidden_size = 64;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.intermediate_size = 96;
  c.max_position_embeddings = 512;
  if (moe) {
    c.num_experts = 8;
    c.num_experts_per_tok = 2;
    c.moe_intermediate_size = 32;
    c.decoder_sparse_step = 1;
    c.mlp_only_layers = {1};
  }
  return c;
}

struct Fixture {
  static inline int counter = 0;  // distinct directories for fixtures alive at the same time
  std::string dir;
  std::unique_ptr<Checkpoint> ckpt;
  opdev::Context ctx;
  std::unique_ptr<Qwen3Model> model;
  // compute: the model's compute dtype; deterministic and threads: the context's flag and thread count.
  explicit Fixture(bool moe, DLDataType compute = opdev::kFloat32, bool deterministic = false, int threads = 0)
      : ctx("cpu", threads, deterministic) {
    dir = (fs::temp_directory_path() / ("opdev_engine_test_" + std::string(moe ? "moe" : "dense") + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++))).string();
    SyntheticOptions o;
    o.config = small_config(moe);
    o.dtype = StDtype::F32;
    o.seed = 7;
    o.overwrite = true;
    write_synthetic_checkpoint(dir, o);
    ckpt = Checkpoint::open(dir);
    model = std::make_unique<Qwen3Model>(*ckpt, ctx, compute);
  }
  ~Fixture() { fs::remove_all(dir); }
};

// Logits of every position of `ids` from one forward over the whole sequence, as float32 (the model's
// logits are in its compute dtype: cast on the context before the download).
inline std::vector<std::vector<float>> full_forward(Qwen3Model& m, opdev_context* ctx, const std::vector<int32_t>& ids) {
  const int64_t n = int64_t(ids.size()), bs = 16, nb = (n + bs - 1) / bs, V = m.config().vocab_size;
  KvCache cache = m.make_kv_cache(nb, bs);
  BatchInputs in;
  in.ids = ids;
  in.max_blocks = nb;
  for (int64_t b = 0; b < nb; ++b) in.block_table.push_back(int32_t(b));
  in.cu_seqlens_q = {0, int32_t(n)};
  in.seq_lens_kv = {int32_t(n)};
  for (int64_t i = 0; i < n; ++i) {
    in.positions.push_back(int32_t(i));
    in.slot_mapping.push_back(i);
    in.logit_rows.push_back(int32_t(i));
  }
  Tensor logits;
  m.forward(in, cache, logits);
  Tensor f32(ctx, opdev::kFloat32, {n, V}, "logits (float32)");
  opdev::check(opdev::same_dtype(logits.dtype, opdev::kFloat32) ? opdev_copy(ctx, f32, logits) : opdev_cast(ctx, f32, logits));
  std::vector<float> host(size_t(n * V));
  download(ctx, host.data(), f32, f32.nbytes());
  std::vector<std::vector<float>> rows;
  for (int64_t i = 0; i < n; ++i) rows.emplace_back(host.begin() + i * V, host.begin() + (i + 1) * V);
  return rows;
}

inline std::vector<int32_t> prompt_ids(int n, int salt) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(int32_t((i * 37 + salt * 101 + 11) % 512));
  return ids;
}

inline SamplingParams greedy(int64_t max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

// Runs requests to completion; returns each request's generated tokens and recorded logits.
struct RunResult {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<std::vector<float>>> logits;
  std::vector<FinishReason> reasons;
  std::vector<std::string> errors;
  EngineStats stats;
};
inline RunResult run_all(Qwen3Model& m, const std::vector<std::vector<int32_t>>& prompts, const std::vector<SamplingParams>& params, EngineConfig cfg) {
  cfg.record_logits = true;
  Engine e(m, cfg, {});
  std::vector<int64_t> ids;
  for (size_t i = 0; i < prompts.size(); ++i) ids.push_back(e.add_request(prompts[i], params[i]));
  int guard = 0;
  while (e.has_unfinished() && ++guard < 10000) e.step();
  EXPECT_LT(guard, 10000) << "engine did not finish";
  RunResult r;
  for (int64_t id : ids) {
    const Request& q = e.request(id);
    r.tokens.push_back(q.generated);
    r.logits.push_back(q.logits);
    r.reasons.push_back(q.finish);
    r.errors.push_back(q.error);
  }
  r.stats = e.stats();
  return r;
}

}  // namespace opdev::model::testing
