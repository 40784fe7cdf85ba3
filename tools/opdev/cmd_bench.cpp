// opdev bench: operator benchmarks with the roofline table.
#include <cstdio>

#include "bench.h"
#include "commands.h"

namespace opdev::cli {

void add_bench(CLI::App& app) {
  auto opts = std::make_shared<bench::Options>();
  auto dtypes = std::make_shared<std::vector<std::string>>();
  auto csv = std::make_shared<std::string>();
  auto list = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("bench", "Benchmark every op at Qwen3-0.6B and Qwen3-30B-A3B decode/prefill shapes");
  c->add_option("--backend,-b", opts->backend, "Backend to benchmark")->default_val("cpu");
  c->add_option("--op,-o", opts->ops, "Only these ops")->delimiter(',');
  c->add_option("--dtype,-d", *dtypes, "Only these dtypes: float32, bfloat16, float16")->delimiter(',');
  c->add_option("--model,-m", opts->models, "Only these models: qwen3-0.6b, qwen3-30b-a3b")->delimiter(',');
  c->add_option("--tokens,-T", opts->tokens,
                "Only these token counts (1, 4, 16, 512; the device-only cases also 2048, 4096, 8192, 16384)")
      ->delimiter(',');
  c->add_option("--threads,-t", opts->threads, "Threads (0 = all cores)");
  c->add_option("--min-time", opts->min_seconds, "Seconds per measurement")->default_val(0.2);
  c->add_option("--csv", *csv, "Also write the results as CSV to this file");
  c->add_option("--budget", opts->budget_seconds, "Start no case after this many seconds (0 = no limit); the table covers those run");
  c->add_flag("--list", *list,
              "List the selected cases instead of running them (no device needed); with --csv, one row per case and dtype "
              "with its tensors and parameters (what bench/torch_peers.py reads)");
  c->add_flag("--device-cases", opts->device_cases,
              "Also run the device-only cases (8k-token prefill attention, 32k decode, 16k-token memory-bound ops) on a host backend");
  c->add_flag("--fast-fill", opts->fast_fill,
              "Fill large tensors by repeating 2^20 generated values (how device backends always fill them) on a host backend too");
  c->callback([opts, dtypes, csv, list] {
    if (!dtypes->empty()) opts->dtypes = parse_dtypes(*dtypes);
    FILE* f = nullptr;
    if (!csv->empty()) {
      f = std::fopen(csv->c_str(), "w");
      if (!f) throw CLI::ValidationError("--csv", "cannot write " + *csv);
      opts->csv = f;
    }
    if (*list) {
      bench::list(*opts, stdout);
      if (f) std::fclose(f);
      return;
    }
    int failures = bench::run(*opts, stdout);
    if (f) std::fclose(f);
    if (failures) throw CLI::RuntimeError(1);
  });
}

}  // namespace opdev::cli
