#include "core/logging.h"

#include <cstdio>
#include <mutex>

#include "core/env.h"

namespace opdev {
namespace {

struct LogState {
  LogLevel level = LogLevel::Warn;
  FILE* file = stderr;
  std::mutex mu;
  LogState() {
    std::string l = env_string("OPDEV_LOG_LEVEL", "warn");
    if (l == "error") level = LogLevel::Error;
    else if (l == "warn" || l == "warning") level = LogLevel::Warn;
    else if (l == "info") level = LogLevel::Info;
    else if (l == "debug") level = LogLevel::Debug;
    else std::fprintf(stderr, "opdev [warn] OPDEV_LOG_LEVEL='%s' is not one of error|warn|info|debug; using warn\n", l.c_str());
    std::string path = env_string("OPDEV_LOG_FILE");
    if (!path.empty()) {
      FILE* f = std::fopen(path.c_str(), "a");
      if (f) file = f;
      else std::fprintf(stderr, "opdev [warn] cannot open OPDEV_LOG_FILE='%s' for appending; logging to stderr\n", path.c_str());
    }
  }
};

LogState& state() {
  static LogState s;
  return s;
}

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Error: return "error";
    case LogLevel::Warn: return "warn";
    case LogLevel::Info: return "info";
    case LogLevel::Debug: return "debug";
  }
  return "?";
}

}  // namespace

bool log_enabled(LogLevel level) { return int(level) <= int(state().level); }

void log_write(LogLevel level, const std::string& message) {
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  std::fprintf(s.file, "opdev [%s] %s\n", level_name(level), message.c_str());
  std::fflush(s.file);
}

}  // namespace opdev

extern "C" {

OPDEV_API int opdev_log_enabled(opdev_log_level level) {
  return level >= OPDEV_LOG_ERROR && level <= OPDEV_LOG_DEBUG && opdev::log_enabled(opdev::LogLevel(int(level)));
}

OPDEV_API void opdev_log(opdev_log_level level, const char* component, const char* message) {
  if (!message || !opdev_log_enabled(level)) return;
  try {
    opdev::log_write(opdev::LogLevel(int(level)), component && *component ? opdev::cat(component, ": ", message) : std::string(message));
  } catch (...) {
    // Logging never fails its caller.
  }
}

}  // extern "C"
