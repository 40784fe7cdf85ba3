// opdev chat: an interactive multi-turn conversation with the Qwen3 chat template.
#include <cstdio>
#include <iostream>

#include "model_session.h"
#include "text_stream.h"

namespace opdev::cli {

void add_chat(CLI::App& app) {
  struct Opts {
    ModelOptions m;
    SamplingOptions s;
    std::string system;
    bool no_think = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("chat", "Interactive chat (one line per turn; /reset clears the history, /exit or EOF quits)");
  add_model_options(c, o->m);
  add_sampling_options(c, o->s);
  c->add_option("--system", o->system, "System message");
  c->add_flag("--no-think", o->no_think, "Qwen3 non-thinking mode");
  c->callback([o] {
    auto s = open_session(o->m, true);
    model::Engine engine(*s->model, engine_config(o->m), eos_ids(*s), s->tokenizer.get());
    s->profile.begin(s->ctx, o->m.profile_dir);
    std::vector<model::ChatMessage> history;
    if (!o->system.empty()) history.push_back({"system", o->system});
    std::string line;
    uint64_t turn = 0;
    while (true) {
      std::fprintf(stderr, "> ");
      std::fflush(stderr);
      if (!std::getline(std::cin, line) || line == "/exit") break;
      if (line == "/reset") {
        history.resize(o->system.empty() ? 0 : 1);
        continue;
      }
      if (line.empty()) continue;
      history.push_back({"user", line});
      const std::vector<int32_t> ids = s->tokenizer->encode(s->tokenizer->apply_chat_template(history, true, !o->no_think));
      model::SamplingParams p = to_params(o->s);
      p.seed = o->s.seed + turn++;
      int64_t id;
      try {
        id = engine.add_request(ids, p);
      } catch (const model::ModelError& e) {
        std::fprintf(stderr, "opdev chat: %s (/reset starts over)\n", e.what());
        history.pop_back();
        continue;
      }
      TextStream out(*s->tokenizer, o->s.stop, stdout);
      model::FinishReason reason = model::FinishReason::None;
      std::string error;
      while (engine.has_unfinished())
        for (const model::StepOutput& so : engine.step()) {
          if (so.id != id) continue;
          for (int32_t t : so.new_tokens) out.push(t);
          if (so.finished) {
            reason = so.reason;
            error = so.error;
          }
        }
      out.finish(reason == model::FinishReason::Stop);
      std::printf("\n");
      std::fflush(stdout);
      if (reason == model::FinishReason::Error) {
        std::fprintf(stderr, "opdev chat: %s\n", error.c_str());
        history.pop_back();
        continue;
      }
      history.push_back({"assistant", out.text()});
    }
    s->profile.finish();
  });
}

}  // namespace opdev::cli
