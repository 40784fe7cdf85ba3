// Logging from the model runtime through opdev's one sink (opdev_log: OPDEV_LOG_LEVEL, OPDEV_LOG_FILE).
// Kept apart from model/error.h so that the loaders, which the fuzz targets build without the library,
// do not depend on it.
#pragma once

#include <sstream>
#include <utility>

#include "opdev/opdev.h"

namespace opdev::model {

// Writes one line "<component>: <args...>"; the message is only formatted when the level is enabled.
template <class... Args>
void log(opdev_log_level level, const char* component, Args&&... args) {
  if (!opdev_log_enabled(level)) return;
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  opdev_log(level, component, os.str().c_str());
}

}  // namespace opdev::model
