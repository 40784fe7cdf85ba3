// What the loader tests share to check error messages: the message a call throws as a ModelError, and an
// expectation that it contains a fragment.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "model/error.h"

namespace opdev::model::testing {

// The message of the ModelError that fn throws, or a marker when it throws nothing.
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace opdev::model::testing

#define EXPECT_ERROR(msg, fragment) \
  EXPECT_NE((msg).find(fragment), std::string::npos) << "message: " << (msg) << "\nexpected fragment: " << (fragment)
