#include "core/error.h"

#include "core/logging.h"

#include "opdev/opdev.h"

namespace opdev {
namespace {
thread_local std::string g_last_error;
thread_local const char* g_error_context = nullptr;
}

void set_last_error(const std::string& message) {
  g_last_error = message;
  log(LogLevel::Debug, "error: ", message);
}
void set_error_context(const char* label) { g_error_context = label; }
std::string error_context_suffix() {
  return g_error_context && *g_error_context ? cat(" (at ", g_error_context, ")") : std::string();
}
void clear_last_error() { g_last_error.clear(); }

}  // namespace opdev

extern "C" {

OPDEV_API const char* opdev_last_error(void) { return opdev::g_last_error.c_str(); }

OPDEV_API const char* opdev_status_string(opdev_status status) {
  switch (status) {
    case OPDEV_STATUS_SUCCESS: return "OPDEV_STATUS_SUCCESS";
    case OPDEV_STATUS_INVALID_ARGUMENT: return "OPDEV_STATUS_INVALID_ARGUMENT";
    case OPDEV_STATUS_UNSUPPORTED_DTYPE: return "OPDEV_STATUS_UNSUPPORTED_DTYPE";
    case OPDEV_STATUS_OUT_OF_RANGE: return "OPDEV_STATUS_OUT_OF_RANGE";
    case OPDEV_STATUS_SIZE_OVERFLOW: return "OPDEV_STATUS_SIZE_OVERFLOW";
    case OPDEV_STATUS_UNSUPPORTED: return "OPDEV_STATUS_UNSUPPORTED";
    case OPDEV_STATUS_OUT_OF_MEMORY: return "OPDEV_STATUS_OUT_OF_MEMORY";
    case OPDEV_STATUS_NOT_FOUND: return "OPDEV_STATUS_NOT_FOUND";
    case OPDEV_STATUS_DEVICE_ERROR: return "OPDEV_STATUS_DEVICE_ERROR";
    case OPDEV_STATUS_INTERNAL: return "OPDEV_STATUS_INTERNAL";
    case OPDEV_STATUS_MAX_ENUM: break;
  }
  return "OPDEV_STATUS_<unknown>";
}

}  // extern "C"
