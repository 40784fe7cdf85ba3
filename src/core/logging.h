// Logging with levels from OPDEV_LOG_LEVEL (error | warn | info | debug; default warn) to stderr or to
// the file named by OPDEV_LOG_FILE. Thread-safe; each line carries the level and "opdev".
#pragma once

#include <string>

#include "core/error.h"

namespace opdev {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

bool log_enabled(LogLevel level);
void log_write(LogLevel level, const std::string& message);

template <class... Args>
void log(LogLevel level, Args&&... args) {
  if (log_enabled(level)) log_write(level, cat(std::forward<Args>(args)...));
}

}  // namespace opdev
