// opdev logits (arrives with the model runtime).
#include "commands.h"

namespace opdev::cli {

void add_logits(CLI::App&) {}

}  // namespace opdev::cli
