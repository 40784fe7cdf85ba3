// A Hugging Face checkpoint directory: config.json, optional generation_config.json, and the weights in
// model.safetensors or shards listed by model.safetensors.index.json ("weight_map"). All files are
// memory-mapped and validated; every tensor the config implies must be present with the right shape
// and a floating dtype (BF16, F16, F32).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"

namespace opdev::model {

// Reports loading progress: (bytes done, bytes total, what).
using ProgressFn = std::function<void(size_t done, size_t total, const std::string& what)>;

class Checkpoint {
 public:
  static std::unique_ptr<Checkpoint> open(const std::string& dir, const ProgressFn& progress = nullptr);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const GenerationConfig& generation() const { return generation_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor; throws ModelError naming the missing tensor.
  const StTensor& tensor(const std::string& name) const;
  // Every tensor name the architecture needs, with its expected shape (also used by make-model).
  static std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const ModelConfig& c);

 private:
  std::string dir_;
  ModelConfig config_;
  GenerationConfig generation_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const StTensor*> tensors_;
};

}  // namespace opdev::model
