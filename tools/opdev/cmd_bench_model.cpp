// opdev bench-model: prompt processing and decode speed of a checkpoint (llama-bench style ppN / tgM),
// beside the decode floor: bytes of weights one decode step reads / the bandwidth measured in the same run
// (the host's read bandwidth for cpu; on cuda the GPU's device-to-device copy bandwidth, read + write bytes).
// On the host the read bandwidth is measured again right after every repetition's decode (each rep's line
// on stderr pairs its tg with it), and the floor uses the best bandwidth seen in the run: a VM's bandwidth
// drifts by tens of percent within a minute, and the best figure is the conservative floor for the best tg.
// Like llama-bench, an untimed warm-up run (the same prompt and one decode step) comes first unless
// --no-warmup: it touches the activation buffers and a KV cache the timed runs reuse (the context's caching
// allocator hands the freed blocks back), so the timed prefill does not pay the first-touch page faults of
// fresh memory (about 3 ms per layer of a 512-token prefill on this project's 4 KiB-page CI VM).
// Also like llama-bench, ppN and tgM are separate runs on fresh KV caches: ppN is the prefill of an N-token
// prompt (to its first token), tgM is M single-token forwards at positions 0..M-1 (a 1-token prompt and
// M - 1 decode steps). --tg-after-prompt times the decode after the prompt instead (positions N..N+M-2,
// llama-bench's -pg): then each decode step also reads the prompt's KV cache, on the Qwen3-0.6B shape at
// N = 512 59-66 MB per step beside the 1192 MB of weights the floor counts.
#include <chrono>
#include <cstdio>

#include "bench.h"
#include "model_session.h"

namespace opdev::cli {

void add_bench_model(CLI::App& app) {
  struct Opts {
    ModelOptions m;
    int64_t prompt_tokens = 512, gen_tokens = 64;
    int reps = 2;
    bool no_warmup = false, tg_after_prompt = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("bench-model", "Prompt (ppN) and decode (tgM) tokens/s of a checkpoint beside the bandwidth floor");
  add_model_options(c, o->m);
  c->add_option("--prompt-tokens,-P", o->prompt_tokens, "Prompt length")->default_val(512)->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  c->add_option("--gen-tokens,-G", o->gen_tokens, "Generated tokens")->default_val(64)->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  c->add_option("--reps,-r", o->reps, "Repetitions (the best is reported; on the host the read bandwidth is measured after each, the floor uses the best)")->default_val(2)->check(CLI::Range(1, 1000));
  c->add_flag("--no-warmup", o->no_warmup, "Time the first run too (no untimed warm-up run before the reps)");
  c->add_flag("--tg-after-prompt", o->tg_after_prompt,
              "Time the decode after the prompt (one run per rep, like llama-bench -pg) instead of from an empty KV cache (llama-bench's tg)");
  c->callback([o] {
    auto s = open_session(o->m, false);
    const model::ModelConfig& cfg = s->model->config();
    const int threads = opdev_context_num_threads(s->ctx);
    const bool host = opdev_context_device(s->ctx).device_type == kDLCPU;
    if (host) std::fprintf(stderr, "measuring read bandwidth with %d threads...\n", threads);
    else std::fprintf(stderr, "measuring the device's copy bandwidth and GEMM rates...\n");
    const bench::Roofline mach = bench::measure_roofline(s->ctx);
    // --profile: every rep's ops, against the roofline just measured.
    opdev_profile_options po;
    opdev_profile_options_init(&po);
    po.read_gbps = mach.bw_gbps;
    po.peak_gflops = mach.f32_gflops;
    po.peak_gflops_bf16 = mach.bf16_gflops > 0 ? mach.bf16_gflops : mach.f32_gflops;
    // One run: a fresh engine (KV cache) prefills the prompt and decodes gen_tokens; returns the seconds to
    // the first token, the total seconds and the tokens produced.
    struct Run {
      double t_first = 0, total = 0;
      int64_t produced = 0;
    };
    std::vector<int32_t> prompt;
    for (int64_t i = 0; i < o->prompt_tokens; ++i) prompt.push_back(int32_t((i * 7919 + 13) % std::min<int64_t>(cfg.vocab_size, 150000)));
    const std::vector<int32_t> one_token{prompt[0]};  // -P >= 1
    auto run_once = [&](const std::vector<int32_t>& prompt, int64_t gen_tokens) {
      model::EngineConfig ec = engine_config(o->m);
      ec.max_batched_tokens = std::max<int64_t>(o->m.chunk, 1);
      model::Engine engine(*s->model, ec, {});
      model::SamplingParams p;
      p.temperature = 0;
      p.max_tokens = gen_tokens;
      p.ignore_eos = true;
      engine.add_request(prompt, p);
      Run r;
      auto t0 = std::chrono::steady_clock::now();
      while (engine.has_unfinished())
        for (const model::StepOutput& so : engine.step()) {
          if (!so.error.empty()) throw model::ModelError(so.error);
          if (!so.new_tokens.empty() && r.produced++ == 0)
            r.t_first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
      r.total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return r;
    };
    if (!o->no_warmup) {
      if (!o->m.quiet) std::fprintf(stderr, "warm-up run (untimed)...\n");
      run_once(prompt, std::max<int64_t>(1, std::min<int64_t>(o->gen_tokens, 2)));
    }
    s->profile.begin(s->ctx, o->m.profile_dir, &po);
    double best_pp = 0, best_tg = 0, best_bw = mach.bw_gbps;
    const double bytes = s->model->decode_weight_bytes();
    for (int rep = 0; rep < o->reps; ++rep) {
      double pp = 0, tg = 0;
      if (o->tg_after_prompt) {
        const Run r = run_once(prompt, o->gen_tokens);
        pp = double(o->prompt_tokens) / r.t_first;
        tg = r.produced > 1 ? double(r.produced - 1) / (r.total - r.t_first) : 0;
      } else {
        pp = double(o->prompt_tokens) / run_once(prompt, 1).t_first;
        const Run g = run_once(one_token, o->gen_tokens);  // every forward is one token, the first included
        tg = double(g.produced) / g.total;
      }
      const double bw = host ? bench::measure_host_read_gbps(s->ctx) : mach.bw_gbps;
      if (!o->m.quiet)
        std::fprintf(stderr, "rep %d: pp%lld %.1f tok/s, tg%lld %.1f tok/s, %s %.1f GB/s measured after it, tg / floor %.0f%%\n", rep + 1,
                     (long long)o->prompt_tokens, pp, (long long)o->gen_tokens, tg, host ? "read" : "copy", bw, 100.0 * tg * bytes / (bw * 1e9));
      best_pp = std::max(best_pp, pp);
      best_tg = std::max(best_tg, tg);
      best_bw = std::max(best_bw, bw);
    }
    const double floor_tps = best_bw * 1e9 / bytes;
    if (host) {
      std::printf("| model | dtype | threads | pp%lld tok/s | tg%lld tok/s | weights read per token | read GB/s | floor tok/s | tg / floor |\n",
                  (long long)o->prompt_tokens, (long long)o->gen_tokens);
      std::printf("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
      std::printf("| %s | %s | %d | %.1f | %.1f | %.0f MB | %.1f | %.1f | %.0f%% |\n", o->m.model.c_str(), dtype_str(s->model->dtype()),
                  threads, best_pp, best_tg, bytes / 1e6, best_bw, floor_tps, 100.0 * best_tg / floor_tps);
    } else {
      std::printf("| model | dtype | backend | pp%lld tok/s | tg%lld tok/s | weights read per token | copy GB/s | floor tok/s | tg / floor |\n",
                  (long long)o->prompt_tokens, (long long)o->gen_tokens);
      std::printf("|---|---|---|--:|--:|--:|--:|--:|--:|\n");
      std::printf("| %s | %s | %s | %.1f | %.1f | %.0f MB | %.0f | %.1f | %.0f%% |\n", o->m.model.c_str(), dtype_str(s->model->dtype()),
                  o->m.backend.c_str(), best_pp, best_tg, bytes / 1e6, mach.bw_gbps, floor_tps, 100.0 * best_tg / floor_tps);
      std::printf("(floor: weight bytes per decode token / the copy bandwidth measured in this run; roofline: %s)\n", mach.summary.c_str());
    }
    std::fflush(stdout);
    s->profile.finish();
  });
}

}  // namespace opdev::cli
