// Subcommands of the opdev command line.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "opdev/opdev.hpp"

namespace opdev::cli {

void add_check(CLI::App& app);  // opdev check: the conformance suite
void add_bench(CLI::App& app);  // opdev bench: operator benchmarks

// Parses "float32,bf16" etc.; throws CLI::ValidationError on an unknown name.
std::vector<DLDataType> parse_dtypes(const std::vector<std::string>& names);

}  // namespace opdev::cli
