// opdev run: one prompt, streamed output, then prompt and generation tokens/s.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "inspect/inspect.h"
#include "model_session.h"
#include "text_stream.h"

namespace opdev::cli {

void add_run(CLI::App& app) {
  struct Opts {
    ModelOptions m;
    SamplingOptions s;
    std::string prompt, file, system, dump, dump_filter;
    bool raw = false, no_think = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("run", "Generate a reply to one prompt (Qwen3 chat template unless --raw), streamed");
  add_model_options(c, o->m);
  add_sampling_options(c, o->s);
  c->add_option("--prompt,-p", o->prompt, "The prompt");
  c->add_option("--file,-f", o->file, "Read the prompt from this file");
  c->add_option("--system", o->system, "System message");
  c->add_flag("--raw", o->raw, "Tokenize the prompt as is (no chat template)");
  c->add_flag("--no-think", o->no_think, "Qwen3 non-thinking mode (empty <think> block)");
  c->add_option("--dump", o->dump, "Dump every op call (inputs and outputs as .npy, index.json) into this new directory");
  c->add_option("--dump-filter", o->dump_filter, "Dump only op calls whose label contains this text");
  c->callback([o] {
    std::string prompt = o->prompt;
    if (!o->file.empty()) {
      std::ifstream f(o->file, std::ios::binary);
      if (!f) throw model::ModelError("cannot read --file " + o->file);
      std::stringstream ss;
      ss << f.rdbuf();
      prompt = ss.str();
    }
    if (prompt.empty()) throw CLI::ValidationError("--prompt", "give a prompt with --prompt or --file");
    if (!o->dump_filter.empty() && o->dump.empty()) throw CLI::ValidationError("--dump-filter", "needs --dump DIR");
    auto s = open_session(o->m, true);
    // After loading: the dump holds the forwards' op calls (and sampling), not the weight uploads.
    std::unique_ptr<inspect::Hooks> hooks;
    std::unique_ptr<inspect::Dumper> dumper;
    if (!o->dump.empty()) {
      hooks = std::make_unique<inspect::Hooks>(s->ctx);
      dumper = std::make_unique<inspect::Dumper>(o->dump, o->dump_filter);
      hooks->add(dumper.get());
    }
    std::string text = prompt;
    if (!o->raw) {
      std::vector<model::ChatMessage> msgs;
      if (!o->system.empty()) msgs.push_back({"system", o->system});
      msgs.push_back({"user", prompt});
      text = s->tokenizer->apply_chat_template(msgs, true, !o->no_think);
    }
    std::vector<int32_t> ids = s->tokenizer->encode(text);
    model::Engine engine(*s->model, engine_config(o->m), eos_ids(*s), s->tokenizer.get());
    s->profile.begin(s->ctx, o->m.profile_dir);
    const int64_t id = engine.add_request(ids, to_params(o->s));
    TextStream out(*s->tokenizer, o->s.stop, stdout);
    auto t0 = std::chrono::steady_clock::now();
    double first = 0;
    int64_t generated = 0;
    model::FinishReason reason = model::FinishReason::None;
    std::string error;
    while (engine.has_unfinished()) {
      for (const model::StepOutput& so : engine.step()) {
        if (so.id != id) continue;
        for (int32_t t : so.new_tokens) {
          if (generated++ == 0) first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          out.push(t);
        }
        if (so.finished) {
          reason = so.reason;
          error = so.error;
        }
      }
    }
    out.finish(reason == model::FinishReason::Stop);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\n");
    std::fflush(stdout);
    if (reason == model::FinishReason::Error) throw model::ModelError(error);
    if (dumper) {
      hooks->check();
      dumper->finish();
      std::fprintf(stderr, "dump: %zu op calls in %s\n", dumper->entries(), o->dump.c_str());
    }
    const double gen_time = total - first;
    std::fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tok/s) | generation: %lld tokens in %.3f s (%.1f tok/s) | finish: %s\n",
                 ids.size(), first, first > 0 ? double(ids.size()) / first : 0.0, (long long)generated, gen_time,
                 generated > 1 && gen_time > 0 ? double(generated - 1) / gen_time : 0.0, model::finish_reason_name(reason));
    s->profile.finish();
  });
}

}  // namespace opdev::cli
