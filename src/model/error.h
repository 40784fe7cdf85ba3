// Errors of the model runtime (checkpoints, tokenizer, engine): a message that says what is wrong,
// where (file, tensor, field, request) and, where it helps, what to do next.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "opdev/opdev.h"

namespace opdev::model {

class ModelError : public std::runtime_error {
 public:
  explicit ModelError(const std::string& message) : std::runtime_error(message) {}
};

// Writes one line to opdev's log (OPDEV_LOG_LEVEL, OPDEV_LOG_FILE) as "<component>: <args...>"; the
// message is only formatted when the level is enabled.
template <class... Args>
void log(opdev_log_level level, const char* component, Args&&... args) {
  if (!opdev_log_enabled(level)) return;
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  opdev_log(level, component, os.str().c_str());
}

}  // namespace opdev::model
