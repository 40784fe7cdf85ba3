// opdev chat (arrives with the model runtime).
#include "commands.h"

namespace opdev::cli {

void add_chat(CLI::App&) {}

}  // namespace opdev::cli
