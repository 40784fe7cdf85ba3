// opdev run (arrives with the model runtime).
#include "commands.h"

namespace opdev::cli {

void add_run(CLI::App&) {}

}  // namespace opdev::cli
