// opdev tokenize (arrives with the model runtime).
#include "commands.h"

namespace opdev::cli {

void add_tokenize(CLI::App&) {}

}  // namespace opdev::cli
