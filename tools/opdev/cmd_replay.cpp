// opdev replay: re-runs one dumped op call (a directory DIR/NNNNN-<label> written by --dump) on a reference
// backend (ref: float64, the oracle) and on another backend in the recorded dtypes, and checks the recorded
// outputs against the reference with the op's conformance tolerance. Exit 0: within tolerance; 1: a
// recorded output is not; 2: bad entry or usage.
#include <cstdio>

#include "commands.h"
#include "inspect/replay.h"

namespace opdev::cli {

namespace {

namespace ins = opdev::inspect;

std::string fmt(double x) {
  if (x == 0) return "0";
  char b[32];
  std::snprintf(b, sizeof b, "%.2e", x);
  return b;
}

void print_metrics(const char* what, const ins::Metrics& m, bool bitwise = false) {
  std::printf("    %-28s NMSE %-9s  max abs %-9s  max rel %-9s  NaN/inf %lld/%lld vs %lld/%lld%s\n", what, fmt(m.nmse).c_str(),
              fmt(m.max_abs).c_str(), fmt(m.max_rel).c_str(), (long long)m.nan_a, (long long)m.inf_a, (long long)m.nan_b,
              (long long)m.inf_b, bitwise ? "  (bitwise identical)" : "");
}

}  // namespace

void add_replay(CLI::App& app) {
  struct Opts {
    std::string entry;
    ins::ReplayOptions r;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("replay",
                                   "Re-run one dumped op call (an entry directory of --dump) on ref and on a backend; check the "
                                   "recorded outputs with the op's conformance tolerance (exit 0 ok, 1 out of tolerance, 2 errors)");
  c->add_option("entry", o->entry, "Entry directory, e.g. DUMP/00034-layers.1.mlp.down_proj")->required();
  c->add_option("--backend", o->r.reference, "Reference backend (ref runs the call in float64)")->capture_default_str();
  c->add_option("--against", o->r.against, "Also run on this backend in the recorded dtypes (default: the entry's own; none: skip)");
  c->add_option("--threads,-t", o->r.threads, "Threads (0 = all cores)");
  c->callback([o] {
    const ins::Entry e = ins::load_entry(o->entry);
    std::printf("replay %s: %s at '%s', recorded on %s (op call %llu)\n", o->entry.c_str(), e.op_name.c_str(), e.label.c_str(),
                e.backend.c_str(), (unsigned long long)e.index);
    for (const ins::EntryTensor& t : e.tensors)
      std::printf("  %-5s %-16s %-9s %s\n", ins::role_name(t.role), t.name.c_str(), ins::dtype_name(t.dtype).c_str(),
                  ins::shape_str(t.shape).c_str());
    for (const auto& [n, v] : e.scalars) std::printf("  scalar %-16s %.17g\n", n.c_str(), v);
    const ins::ReplayResult r = ins::replay(e, o->r);
    std::printf("runs: reference %s; against %s%s\n", r.reference.c_str(), r.against.c_str(),
                r.against == "none" ? "" : " (recorded dtypes)");
    for (const ins::ReplayOutput& out : r.outputs) {
      std::printf("  output '%s' %s %s\n", out.name.c_str(), ins::shape_str(out.shape).c_str(), ins::dtype_name(out.dtype).c_str());
      print_metrics(("recorded vs " + r.reference).c_str(), out.recorded_vs_ref);
      if (out.has_against) {
        print_metrics((r.against + " vs recorded").c_str(), out.against_vs_recorded, out.against_bitwise);
        print_metrics((r.against + " vs " + r.reference).c_str(), out.against_vs_ref);
      }
      if (out.passes)
        std::printf("    conformance tolerance: recorded within it (worst |err|/bound %s)\n", fmt(out.max_ratio).c_str());
      else
        std::printf("    conformance tolerance: recorded output '%s' OUT OF TOLERANCE: %lld of %lld elements, first %s\n", out.name.c_str(),
                    (long long)out.bad, (long long)out.recorded_vs_ref.n, out.first_bad.c_str());
    }
    if (!r.ok) {
      std::string names;
      for (const ins::ReplayOutput& out : r.outputs)
        if (!out.passes) names += (names.empty() ? "'" : ", '") + out.name + "'";
      std::printf("result: %s disagrees with %s beyond %s's conformance tolerance\n", names.c_str(), r.reference.c_str(), e.op_name.c_str());
      throw CLI::RuntimeError(1);
    }
    std::printf("result: every recorded output is within %s's conformance tolerance of %s\n", e.op_name.c_str(), r.reference.c_str());
  });
}

}  // namespace opdev::cli
