// opdev: the command line of the operator library.
//   opdev check [--backend B] [--op NAME] [--dtype D] [--filter S] [--quick]   conformance suite
//   opdev bench [--backend B] [--op NAME] [--dtype D] [--model M] [--tokens T]  operator benchmarks
//   opdev backends                                                               what this build has
//   opdev compare / replay, run --dump                                           precision debugging
// Exit status: 0 success; 1 a check failed (check, compare, replay); 2 usage errors (CLI11's own codes are
// folded into 2) and runtime errors; 77 check skipped: the backend's device is absent (ctest's skip code).
#include <cstdio>

#include "commands.h"
#include "opdev/opdev.hpp"

int main(int argc, char** argv) {
  CLI::App app{"opdev: a portable LLM operator library (conformance suite, benchmarks)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("opdev ") + opdev_version_string());
  opdev::cli::add_check(app);
  opdev::cli::add_bench(app);
  opdev::cli::add_tokenize(app);
  opdev::cli::add_make_model(app);
  opdev::cli::add_run(app);
  opdev::cli::add_chat(app);
  opdev::cli::add_logits(app);
  opdev::cli::add_bench_model(app);
  opdev::cli::add_compare(app);
  opdev::cli::add_replay(app);
  app.add_subcommand("backends", "List the backends of this build and whether each runs here")->callback([] {
    for (int i = 0; i < opdev_backend_count(); ++i) {
      const char* n = opdev_backend_name(i);
      std::printf("%-6s %s\n", n, opdev_backend_available(n) ? "available" : "not available on this machine");
    }
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc == 77) return rc;
    return rc > 2 ? 2 : rc;
  } catch (const opdev::StatusError& e) {
    std::fprintf(stderr, "opdev: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "opdev: %s\n", e.what());
    return 2;
  }
  return 0;
}
