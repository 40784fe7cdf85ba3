// Errors of the model runtime (checkpoints, tokenizer, engine): a message that says what is wrong,
// where (file, tensor, field, request) and, where it helps, what to do next.
#pragma once

#include <stdexcept>
#include <string>

namespace opdev::model {

class ModelError : public std::runtime_error {
 public:
  explicit ModelError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace opdev::model
