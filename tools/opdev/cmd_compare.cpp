// opdev compare: runs the same tokens through the model on two backend:dtype sides, captures every op
// output in graph order through the profiler hook, and reports per layer how far side A is from side B (the
// reference), naming the first op call whose output leaves the tolerance. Exit 0: all within tolerance;
// 1: something exceeds it; 2: usage or load errors.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "commands.h"
#include "inspect/inspect.h"
#include "model/checkpoint.h"
#include "model/error.h"
#include "model/qwen3.h"
#include "model/tokenizer.h"
#include "model_session.h"

namespace opdev::cli {

namespace {

namespace ins = opdev::inspect;

struct Side {
  std::string spec, backend;
  DLDataType dtype{};
};

Side parse_side(const std::string& spec, const std::string& opt, const model::ModelConfig& cfg) {
  Side s;
  s.spec = spec;
  const size_t colon = spec.find(':');
  s.backend = spec.substr(0, colon);
  std::string dt = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (s.backend.empty()) throw model::ModelError(opt + " '" + spec + "': expected BACKEND[:DTYPE], e.g. cpu:bfloat16");
  bool known = false;
  for (int i = 0; i < opdev_backend_count(); ++i) known = known || s.backend == opdev_backend_name(i);
  if (!known) throw model::ModelError(opt + " '" + spec + "': no backend '" + s.backend + "' in this build (see `opdev backends`)");
  if (!opdev_backend_available(s.backend.c_str()))
    throw model::ModelError(opt + " '" + spec + "': backend '" + s.backend + "' is not available on this machine");
  if (dt.empty()) dt = cfg.torch_dtype.empty() ? "bfloat16" : cfg.torch_dtype;
  try {
    s.dtype = model::parse_compute_dtype(dt);
  } catch (const model::ModelError&) {
    throw model::ModelError(opt + " '" + spec + "': dtype '" + dt + "' is not one of float32, bfloat16, float16");
  }
  s.spec = s.backend + ":" + dtype_str(s.dtype);
  return s;
}

// One side's run: the captured outputs of every op call, the forward each call belonged to, and the tokens
// it generated greedily.
struct RunResult {
  std::vector<ins::CapturedCall> calls;
  std::vector<int> step_of_call;
  std::vector<int32_t> generated;
  int perturbed = 0;
  std::string describe;
};

struct RunOptions {
  int threads = 0;
  int steps = 0;
  uint64_t max_ops = 0;
  std::string dump, dump_filter, perturb;
  double perturb_rel = 1e-2;
};

int32_t argmax_last_row(opdev_context* ctx, const model::Tensor& logits) {
  const std::vector<double> v = ins::to_double(ins::download(ctx, logits.ref.get()));
  const int64_t V = logits.shape[1], R = logits.shape[0];
  const double* row = v.data() + (R - 1) * V;
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (row[i] > row[best] || (std::isnan(row[best]) && !std::isnan(row[i]))) best = i;
  return int32_t(best);
}

// Loads the model on one side, runs the prefill over `ids` and `steps` greedy decode steps (feeding
// `forced` tokens when given, else its own argmax), with the hook capturing every op call.
RunResult run_side(const model::Checkpoint& ck, const Side& side, const std::vector<int32_t>& ids, const std::vector<int32_t>& forced,
                   const RunOptions& o, bool is_a) {
  RunResult r;
  opdev::Context ctx(side.backend.c_str(), o.threads);
  const std::string isa = opdev_context_describe(ctx);
  r.describe = side.spec + " (" + (isa.empty() ? "" : isa + ", ") + std::to_string(opdev_context_num_threads(ctx)) + " threads)";
  model::Qwen3Model m(ck, ctx, side.dtype);
  const model::ModelConfig& cfg = m.config();
  const int64_t n = int64_t(ids.size()), total = n + o.steps, bs = 16, nb = (total + bs - 1) / bs;
  model::KvCache cache = m.make_kv_cache(nb, bs);
  model::Tensor logits;

  // The weights are loaded: from here on every op call is the forward's.
  ins::Hooks hooks(ctx);
  std::unique_ptr<ins::Perturber> perturb;
  std::unique_ptr<ins::Dumper> dumper;
  if (is_a && !o.perturb.empty()) {
    perturb = std::make_unique<ins::Perturber>(o.perturb, o.perturb_rel);
    hooks.add(perturb.get());
  }
  ins::OutputRecorder rec(o.max_ops);
  hooks.add(&rec);
  if (is_a && !o.dump.empty()) {
    dumper = std::make_unique<ins::Dumper>(o.dump, o.dump_filter);
    hooks.add(dumper.get());
  }
  auto forward = [&](const model::BatchInputs& in, int step) {
    const size_t before = rec.calls().size();
    m.forward(in, cache, logits);
    hooks.check();
    for (size_t i = before; i < rec.calls().size(); ++i) r.step_of_call.push_back(step);
  };
  model::BatchInputs in;
  in.max_blocks = nb;
  for (int64_t b = 0; b < nb; ++b) in.block_table.push_back(int32_t(b));
  in.cu_seqlens_q = {0, int32_t(n)};
  in.seq_lens_kv = {int32_t(n)};
  for (int64_t i = 0; i < n; ++i) {
    in.ids.push_back(ids[size_t(i)]);
    in.positions.push_back(int32_t(i));
    in.slot_mapping.push_back(i);
    in.logit_rows.push_back(int32_t(i));
  }
  forward(in, 0);
  for (int s = 0; s < o.steps; ++s) {
    const int32_t next = size_t(s) < forced.size() ? forced[size_t(s)] : argmax_last_row(ctx, logits);
    r.generated.push_back(next);
    if (next >= cfg.vocab_size) throw model::ModelError("decode step " + std::to_string(s + 1) + ": token " + std::to_string(next) + " outside the vocabulary");
    const int64_t pos = n + s;
    in.ids = {next};
    in.positions = {int32_t(pos)};
    in.slot_mapping = {pos};
    in.cu_seqlens_q = {0, 1};
    in.seq_lens_kv = {int32_t(pos + 1)};
    in.logit_rows = {0};
    forward(in, s + 1);
  }
  if (dumper) dumper->finish();
  if (perturb) r.perturbed = perturb->applied();
  r.calls = std::move(rec.calls());
  return r;
}

std::string fmt(double x) {
  if (x == 0) return "0";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (std::isnan(x)) return "nan";
  char b[32];
  std::snprintf(b, sizeof b, "%.2e", x);
  return b;
}

std::string suffix_in_row(const std::string& label, const std::string& row) {
  if (label.size() > row.size() + 1 && label.compare(0, row.size(), row) == 0 && label[row.size()] == '.') return label.substr(row.size() + 1) + ":";
  return "";
}

struct Row {
  std::string name;
  int ops = 0, over = 0;
  double worst = -1, max_abs = 0;
  std::string worst_at;
  int64_t nonfinite_a = 0, nonfinite_b = 0;
};

void print_report(const std::vector<ins::CallResult>& res, FILE* out) {
  std::vector<Row> rows;
  for (const ins::CallResult& c : res) {
    const std::string rn = ins::layer_of(c.label).empty() ? std::string("(no label)") : ins::layer_of(c.label);
    auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.name == rn; });
    if (it == rows.end()) {
      rows.push_back(Row{});
      rows.back().name = rn;
      it = rows.end() - 1;
    }
    ++it->ops;
    it->over += c.exceeds;
    for (const ins::OutputResult& o : c.outputs) {
      it->max_abs = std::max(it->max_abs, o.m.max_abs);
      it->nonfinite_a += o.m.nan_a + o.m.inf_a;
      it->nonfinite_b += o.m.nan_b + o.m.inf_b;
      const double v = o.exact ? (o.m.mismatches ? INFINITY : 0.0) : o.m.nmse;
      if (v > it->worst) {
        it->worst = v;
        it->worst_at = suffix_in_row(c.label, rn) + o.name + (o.exact && o.m.mismatches ? " (ids differ)" : "");
      }
    }
  }
  std::fprintf(out, "%-20s %5s %5s  %-10s %-42s %-10s %-10s %-10s\n", "row", "ops", "over", "worst NMSE", "at", "max abs", "NaN/inf A",
               "NaN/inf B");
  for (const Row& r : rows)
    std::fprintf(out, "%-20s %5d %5d  %-10s %-42s %-10s %-10lld %-10lld\n", r.name.c_str(), r.ops, r.over, fmt(std::max(r.worst, 0.0)).c_str(),
                 r.worst_at.c_str(), fmt(r.max_abs).c_str(), (long long)r.nonfinite_a, (long long)r.nonfinite_b);
}

}  // namespace

void add_compare(CLI::App& app) {
  struct Opts {
    std::string model, a, b = "ref:float32", prompt, ids, perturb;
    bool raw = false;
    double tol = 0;
    RunOptions run;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("compare",
                                   "Run a prompt on two backend:dtype sides, compare every op output in graph order, name the first "
                                   "op call over tolerance (exit 0 ok, 1 over tolerance, 2 errors)");
  c->add_option("--model,-m", o->model, "Hugging Face checkpoint directory")->required();
  c->add_option("--a", o->a, "Side A, the one under test: BACKEND[:DTYPE], e.g. cpu:bfloat16 (DTYPE default: the checkpoint's)")
      ->required();
  c->add_option("--b", o->b, "Side B, the reference: BACKEND[:DTYPE]")->capture_default_str();
  c->add_option("--prompt,-p", o->prompt, "Prompt (chat template unless --raw; default: a short fixed sentence)");
  c->add_option("--ids", o->ids, "Comma-separated token ids instead of --prompt (no tokenizer needed)");
  c->add_flag("--raw", o->raw, "Tokenize the prompt as is (no chat template)");
  c->add_option("--steps", o->run.steps, "Greedy decode steps after the prefill (side A's tokens are fed to both)")->default_val(0);
  c->add_option("--threads,-t", o->run.threads, "Threads per side (0 = all cores)");
  c->add_option("--tol", o->tol, "NMSE bound at every op output (default: by the dtype pair, see docs/ARCHITECTURE.md)");
  c->add_option("--max-ops", o->run.max_ops, "Compare only the first N op calls (0 = all)");
  c->add_option("--dump", o->run.dump, "Also dump side A's op calls (inputs and outputs as .npy, index.json) into this new directory");
  c->add_option("--dump-filter", o->run.dump_filter, "Dump only op calls whose label contains this text");
  c->add_option("--perturb", o->perturb,
                "Testing aid: multiply side A's outputs of the op calls labelled LABEL by (1 + REL) after they run "
                "(LABEL[:REL], REL default 1e-2)");
  c->callback([o] {
    if (!o->ids.empty() && !o->prompt.empty()) throw model::ModelError("give at most one of --ids and --prompt");
    if (o->run.steps < 0 || o->run.steps > 4096) throw model::ModelError("--steps must be in [0, 4096]");
    if (o->tol < 0 || !std::isfinite(o->tol)) throw model::ModelError("--tol must be a finite value >= 0");
    if (!o->run.dump_filter.empty() && o->run.dump.empty()) throw model::ModelError("--dump-filter needs --dump DIR");
    if (!o->perturb.empty()) {
      const size_t colon = o->perturb.rfind(':');
      o->run.perturb = o->perturb.substr(0, colon);
      if (colon != std::string::npos) {
        const std::string rel = o->perturb.substr(colon + 1);
        size_t used = 0;
        try {
          o->run.perturb_rel = std::stod(rel, &used);
        } catch (...) {
          used = 0;
        }
        if (used == 0 || used != rel.size() || !std::isfinite(o->run.perturb_rel))
          throw model::ModelError("--perturb '" + o->perturb + "': REL '" + rel + "' is not a number");
      }
      if (o->run.perturb.empty()) throw model::ModelError("--perturb needs a label, e.g. layers.1.mlp.down_proj");
    }
    auto ck = model::Checkpoint::open(o->model);
    const model::ModelConfig& cfg = ck->config();
    const Side a = parse_side(o->a, "--a", cfg), b = parse_side(o->b, "--b", cfg);

    std::vector<int32_t> ids;
    if (!o->ids.empty()) {
      ids = parse_ids(o->ids);
    } else {
      if (!std::filesystem::exists(std::filesystem::path(o->model) / "tokenizer.json"))
        throw model::ModelError(o->model + " has no tokenizer.json: pass the tokens with --ids 1,2,3");
      auto tok = model::Tokenizer::load(o->model);
      const std::string prompt = o->prompt.empty() ? "The quick brown fox jumps over the lazy dog." : o->prompt;
      ids = tok->encode(o->raw ? prompt : tok->apply_chat_template({{"user", prompt}}, true, true));
    }
    if (ids.empty()) throw model::ModelError("no tokens to run");
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= cfg.vocab_size)
        throw model::ModelError("token " + std::to_string(i) + " = " + std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                                std::to_string(cfg.vocab_size) + ")");
    if (int64_t(ids.size()) + o->run.steps > cfg.max_position_embeddings)
      throw model::ModelError("prompt + steps exceed the model's context of " + std::to_string(cfg.max_position_embeddings));

    const RunResult ra = run_side(*ck, a, ids, {}, o->run, true);
    if (!o->run.perturb.empty() && ra.perturbed == 0)
      throw model::ModelError("--perturb: no op call is labelled '" + o->run.perturb + "' (labels look like layers.1.mlp.down_proj, lm_head)");
    RunOptions rb = o->run;
    rb.dump.clear();
    rb.perturb.clear();
    const RunResult rbr = run_side(*ck, b, ids, ra.generated, rb, false);

    const double tol = o->tol > 0 ? o->tol : ins::nmse_tolerance(a.dtype, b.dtype);
    const std::vector<ins::CallResult> res = ins::compare_calls(ra.calls, rbr.calls, tol, ra.step_of_call);

    std::printf("opdev compare %s\n  A: %s%s\n  B: %s (reference)\n", o->model.c_str(), ra.describe.c_str(),
                ra.perturbed ? (" perturbed: outputs of '" + o->run.perturb + "' x (1 + " + fmt(o->run.perturb_rel) + ")").c_str() : "",
                rbr.describe.c_str());
    std::printf("  %zu prompt tokens, %d decode steps, %zu op calls compared; tolerance: NMSE <= %s at every op output (%s)%s\n",
                ids.size(), o->run.steps, res.size(), fmt(tol).c_str(), o->tol > 0 ? "--tol" : "by the less precise dtype of the pair",
                ", integer outputs exact");
    std::printf("  NMSE = sum (a-b)^2 / sum b^2; max rel = max |a-b| / max(|b|, %g * rms(b))\n\n", ins::kRelFloorFraction);
    print_report(res, stdout);

    const ins::CallResult* first = nullptr;
    int over = 0;
    for (const ins::CallResult& r : res) {
      over += r.exceeds;
      if (r.exceeds && !first) first = &r;
    }
    if (!first) {
      std::printf("\nresult: all %zu op calls within tolerance\n", res.size());
      if (!o->run.dump.empty()) std::printf("dump: %s (side A)\n", o->run.dump.c_str());
      return;
    }
    std::printf("\nfirst op call over tolerance (graph order): call %llu", (unsigned long long)first->index);
    if (o->run.steps) std::printf(" (%s)", first->step == 0 ? "prefill" : ("decode step " + std::to_string(first->step)).c_str());
    std::printf(": %s (%s)\n", first->label.c_str(), opdev_op_name(first->op));
    for (const ins::OutputResult& out : first->outputs) {
      std::printf("  output '%s' %s %s vs %s: ", out.name.c_str(), ins::shape_str(out.shape).c_str(), dtype_str(out.dtype_a),
                  dtype_str(out.dtype_b));
      if (out.exact)
        std::printf("%lld of %lld elements differ (integer, compared exactly)", (long long)out.m.mismatches, (long long)out.m.n);
      else
        std::printf("NMSE %s%s, max abs %s, max rel %s", fmt(out.m.nmse).c_str(),
                    out.m.nmse > tol ? (" > " + fmt(tol)).c_str() : "", fmt(out.m.max_abs).c_str(), fmt(out.m.max_rel).c_str());
      std::printf(", NaN/inf A %lld/%lld B %lld/%lld%s%s\n", (long long)out.m.nan_a, (long long)out.m.inf_a, (long long)out.m.nan_b,
                  (long long)out.m.inf_b, out.m.nonfinite_mismatch ? ", non-finite values differ" : "", out.exceeds ? "  <- over" : "");
    }
    if (first->op == OPDEV_OP_MOE_GATING_TOPK)
      std::printf("  the routing differs: if the router logits (the call before) are within tolerance, this is a near-tie that\n"
                  "  rounding flipped (expected now and then in bfloat16/float16), not a kernel error; the calls after it\n"
                  "  then compare different experts' rows\n");
    const size_t at = size_t(first - res.data());
    if (at > 0) {
      const ins::CallResult& prev = res[at - 1];
      std::printf("  the call before it: %s (%s), worst NMSE %s\n", prev.label.c_str(), opdev_op_name(prev.op), fmt(prev.worst_nmse).c_str());
    }
    std::printf("  %d of %zu op calls are over tolerance (errors propagate: later ones may only inherit this one)\n", over, res.size());
    std::printf("  to look at it in isolation: add --dump DIR --dump-filter %s, then opdev replay DIR/%s\n", first->label.c_str(),
                ins::entry_dir_name(first->index, first->label, first->op).c_str());
    throw CLI::RuntimeError(1);
  });
}

}  // namespace opdev::cli
