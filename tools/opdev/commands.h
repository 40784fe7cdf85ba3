// Subcommands of the opdev command line.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "opdev/opdev.hpp"

namespace opdev::cli {

void add_check(CLI::App& app);  // opdev check: the conformance suite
void add_bench(CLI::App& app);  // opdev bench: operator benchmarks
// Model runtime commands.
void add_tokenize(CLI::App& app);    // opdev tokenize: text -> ids (JSON array)
void add_make_model(CLI::App& app);  // opdev make-model: synthetic Hugging Face checkpoint
void add_run(CLI::App& app);         // opdev run: one prompt, streamed
void add_chat(CLI::App& app);        // opdev chat: interactive multi-turn
void add_logits(CLI::App& app);      // opdev logits: float32 logits of every position -> .npy
void add_bench_model(CLI::App& app); // opdev bench-model: ppN / tgM tokens/s beside the bandwidth floor
// Precision debugging (src/inspect).
void add_compare(CLI::App& app);  // opdev compare: two backend:dtype sides op by op, first op over tolerance
void add_replay(CLI::App& app);   // opdev replay: one dumped op call against ref

// Parses "float32,bf16" etc.; throws CLI::ValidationError on an unknown name.
std::vector<DLDataType> parse_dtypes(const std::vector<std::string>& names);

}  // namespace opdev::cli
