#include "core/env.h"

#include <cerrno>
#include <cstdlib>

#include "core/error.h"

namespace opdev {

std::string env_string(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

long env_int(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  errno = 0;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (errno || *end) fail(OPDEV_STATUS_INVALID_ARGUMENT, "environment variable ", name, "='", v, "' is not an integer");
  return x;
}

}  // namespace opdev
