// Environment configuration (read when used; every variable is documented in docs/ARCHITECTURE.md).
#pragma once

#include <string>

namespace opdev {

// The variable's value, or `fallback` when unset or empty.
std::string env_string(const char* name, const std::string& fallback = "");
// The variable as an integer; `fallback` when unset; throws opdev::Error naming the variable when it is
// set but not an integer.
long env_int(const char* name, long fallback);

}  // namespace opdev
