// opdev logits: the float32 logits of every position of a prompt (or an id list), as a .npy [n, V], for
// precision checks against other implementations.
#include <cstdio>
#include <sstream>

#include "model/npy.h"
#include "model_session.h"

namespace opdev::cli {

void add_logits(CLI::App& app) {
  struct Opts {
    ModelOptions m;
    std::string ids, prompt, out;
    bool chat = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("logits", "Write the float32 logits of every position to a .npy file [positions, vocab]");
  add_model_options(c, o->m);
  c->add_option("--ids", o->ids, "Comma-separated token ids");
  c->add_option("--prompt,-p", o->prompt, "Text to tokenize instead of --ids");
  c->add_flag("--chat", o->chat, "Wrap --prompt as one user turn with the chat template");
  c->add_option("--out,-o", o->out, "Output .npy file")->required();
  c->callback([o] {
    if (o->ids.empty() == o->prompt.empty()) throw CLI::ValidationError("--ids/--prompt", "give exactly one of --ids and --prompt");
    auto s = open_session(o->m, !o->prompt.empty());
    std::vector<int32_t> ids =
        o->ids.empty() ? s->tokenizer->encode(o->chat ? s->tokenizer->apply_chat_template({{"user", o->prompt}}, true, true) : o->prompt)
                       : parse_ids(o->ids);
    const model::ModelConfig& cfg = s->model->config();
    if (ids.empty()) throw model::ModelError("no tokens to run");
    if (int64_t(ids.size()) > cfg.max_position_embeddings)
      throw model::ModelError("the input has " + std::to_string(ids.size()) + " tokens; the model's context is " +
                              std::to_string(cfg.max_position_embeddings));
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= cfg.vocab_size)
        throw model::ModelError("--ids: token " + std::to_string(i) + " = " + std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                                std::to_string(cfg.vocab_size) + ")");
    // One sequence through the paged cache, in chunks of --chunk tokens; logits of every position.
    const int64_t n = int64_t(ids.size()), V = cfg.vocab_size, bs = 16, nb = (n + bs - 1) / bs;
    model::KvCache cache = s->model->make_kv_cache(nb, bs);
    s->profile.begin(s->ctx, o->m.profile_dir);
    std::vector<float> all(size_t(n * V));
    model::Tensor logits, f32;
    for (int64_t start = 0; start < n; start += o->m.chunk) {
      const int64_t cnt = std::min<int64_t>(o->m.chunk, n - start);
      model::BatchInputs in;
      in.max_blocks = nb;
      for (int64_t b = 0; b < nb; ++b) in.block_table.push_back(int32_t(b));
      in.cu_seqlens_q = {0, int32_t(cnt)};
      in.seq_lens_kv = {int32_t(start + cnt)};
      for (int64_t i = start; i < start + cnt; ++i) {
        in.ids.push_back(ids[size_t(i)]);
        in.positions.push_back(int32_t(i));
        in.slot_mapping.push_back(i);
        in.logit_rows.push_back(int32_t(i - start));
      }
      s->model->forward(in, cache, logits);
      f32 = model::Tensor(s->ctx, kFloat32, {cnt, V}, "float32 logits");
      check(same_dtype(logits.dtype, kFloat32) ? opdev_copy(s->ctx, f32, logits) : opdev_cast(s->ctx, f32, logits));
      model::download(s->ctx, all.data() + start * V, f32, f32.nbytes());
    }
    model::write_npy_f32(o->out, all.data(), {n, V});
    if (!o->m.quiet) std::fprintf(stderr, "wrote %s: logits of %lld positions x %lld\n", o->out.c_str(), (long long)n, (long long)V);
    s->profile.finish();
  });
}

}  // namespace opdev::cli
