// opdev check: runs the conformance suite on a backend against the ref backend and prints the table.
// A backend this build has but whose device is absent (cuda on a machine without a GPU) is skipped:
// "conformance cuda: skipped: no GPU (<the driver's reason>)" and exit status 77 (ctest's
// SKIP_RETURN_CODE), never a pass. An unknown backend name is an error (exit 2).
#include <cstdio>
#include <cstdlib>

#include "commands.h"
#include "conformance.h"
#ifdef OPDEV_WITH_CUDA
#include "cuda_roofline.h"
#endif

namespace opdev::cli {

std::vector<DLDataType> parse_dtypes(const std::vector<std::string>& names) {
  std::vector<DLDataType> r;
  for (const std::string& n : names) {
    if (n == "float32" || n == "f32" || n == "fp32") r.push_back(kFloat32);
    else if (n == "bfloat16" || n == "bf16") r.push_back(kBFloat16);
    else if (n == "float16" || n == "f16" || n == "fp16") r.push_back(kFloat16);
    else throw CLI::ValidationError("--dtype", "unknown dtype '" + n + "' (float32, bfloat16, float16)");
  }
  return r;
}

namespace {

bool backend_in_build(const std::string& name) {
  for (int i = 0; i < opdev_backend_count(); ++i)
    if (name == opdev_backend_name(i)) return true;
  return false;
}

// Why the backend's device is not usable here.
std::string no_device_reason(const std::string& backend) {
#ifdef OPDEV_WITH_CUDA
  if (backend == "cuda") {
    const std::string r = bench::cuda::unavailable_reason(0);
    if (!r.empty()) return r;
  }
#endif
  return "backend '" + backend + "' reports no device 0 on this machine";
}

}  // namespace

void add_check(CLI::App& app) {
  auto opts = std::make_shared<conformance::Options>();
  auto dtypes = std::make_shared<std::vector<std::string>>();
  CLI::App* c = app.add_subcommand("check", "Run the conformance suite: every op on a backend against the float64 ref backend");
  c->add_option("--backend,-b", opts->backend, "Backend under test")->default_val("cpu");
  c->add_option("--op,-o", opts->ops, "Only these ops (repeatable, or comma-separated)")->delimiter(',');
  c->add_option("--dtype,-d", *dtypes, "Only these dtypes: float32, bfloat16, float16")->delimiter(',');
  c->add_option("--filter,-f", opts->filter, "Only cases whose name contains this text");
  c->add_option("--threads,-t", opts->num_threads, "Threads of the backend under test (0 = all cores)");
  c->add_flag("--quick,-q", opts->quick, "Skip the large (prefill-sized) cases");
  c->add_flag("--verbose,-v", opts->verbose, "Print every case");
  c->add_flag("!--no-errors", opts->errors, "Skip the bad-argument cases");
  c->add_flag("!--no-numeric", opts->numeric, "Skip the numeric cases");
  c->callback([opts, dtypes] {
    opts->dtypes = parse_dtypes(*dtypes);
    for (const std::string& op : opts->ops)
      if (opdev_op_from_name(op.c_str()) == OPDEV_OP_COUNT) throw CLI::ValidationError("--op", "unknown op '" + op + "'");
    // Unknown names fall through to the context's error (exit 2), which lists this build's backends.
    if (backend_in_build(opts->backend) && !opdev_backend_available(opts->backend.c_str())) {
      std::printf("conformance %s: skipped: no %s (%s)\n", opts->backend.c_str(), opts->backend == "cuda" ? "GPU" : "device",
                  no_device_reason(opts->backend).c_str());
      std::fflush(stdout);
      throw CLI::RuntimeError(77);
    }
    const conformance::Summary s = conformance::run(*opts);
    conformance::print_summary(s, *opts, stdout);
    if (s.failed) throw CLI::RuntimeError(1);
    if (s.passed == 0) {
      std::fprintf(stderr, "opdev check: no case ran (check --op / --dtype / --filter)\n");
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace opdev::cli
