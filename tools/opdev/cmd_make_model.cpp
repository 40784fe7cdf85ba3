// opdev make-model (arrives with the model runtime).
#include "commands.h"

namespace opdev::cli {

void add_make_model(CLI::App&) {}

}  // namespace opdev::cli
