// Errors in layers: user mistakes become an opdev::Error (a status plus a message naming the op, the
// argument and the expected and actual values), caught at the C boundary by api_call() and turned into a
// status and the thread-local last-error message. No exception ever crosses the C ABI.
#pragma once

#include <sstream>
#include <string>
#include <utility>

#include "opdev/opdev.h"

namespace opdev {

class Error : public std::exception {
 public:
  Error(opdev_status status, std::string message) : status_(status), message_(std::move(message)) {}
  opdev_status status() const { return status_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  opdev_status status_;
  std::string message_;
};

// Concatenates anything streamable: cat("expected ", 3, ", got ", 4).
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(opdev_status status, Args&&... args) {
  throw Error(status, cat(std::forward<Args>(args)...));
}

// Internal invariant (a bug in opdev, never a user mistake): reported as OPDEV_STATUS_INTERNAL.
#define OPDEV_ASSERT(cond)                                                                             \
  do {                                                                                                 \
    if (!(cond)) ::opdev::fail(OPDEV_STATUS_INTERNAL, "internal error: ", #cond, " failed at ", __FILE__, \
                               ":", __LINE__);                                                         \
  } while (0)

void set_last_error(const std::string& message);
void clear_last_error();
// Where the current API call happens (the context's label, set by the op front-end), appended to its
// error message as " (at <label>)"; cleared when the next API call starts.
void set_error_context(const char* label);
std::string error_context_suffix();

// Runs fn (which returns opdev_status) and converts any exception into a status + last-error message.
// `where` prefixes messages that do not already name their function (e.g. "opdev_malloc").
template <class Fn>
opdev_status api_call(const char* where, Fn&& fn) noexcept {
  try {
    clear_last_error();
    set_error_context(nullptr);
    opdev_status s = fn();
    return s;
  } catch (const Error& e) {
    set_last_error(cat(where, ": ", e.what(), error_context_suffix()));
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error(cat(where, ": out of host memory", error_context_suffix()));
    return OPDEV_STATUS_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(cat(where, ": internal error: ", e.what(), error_context_suffix()));
    return OPDEV_STATUS_INTERNAL;
  } catch (...) {
    set_last_error(cat(where, ": internal error: unknown exception"));
    return OPDEV_STATUS_INTERNAL;
  }
}

}  // namespace opdev
