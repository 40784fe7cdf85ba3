// A Hugging Face checkpoint directory: config.json, optional generation_config.json, and the weights in
// model.safetensors or shards listed by model.safetensors.index.json ("weight_map"). All files are
// memory-mapped and validated; every tensor the config implies must be present with the right shape
// and a floating dtype (BF16, F16, F32).
//
// Opening touches only headers (the weights stay on disk until read through the mapping), so a
// multi-GB checkpoint opens in milliseconds. Like transformers, model.safetensors is preferred over an
// index when both exist. Index shards must be plain file names inside the directory. Tensors the
// architecture does not use are ignored, counted (ignored_tensors()) and reported in one line on stderr
// unless OPDEV_LOG_LEVEL=error. Without generation_config.json (or when it has no eos_token_id),
// generation().eos_token_ids comes from config.json, as transformers' GenerationConfig.from_model_config.
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
  // has() / tensor() / file_of() answer for the tensors the model uses (ignored ones are not kept).
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor; throws ModelError naming the missing tensor.
  const StTensor& tensor(const std::string& name) const;
  // The path of the file that holds the tensor; throws like tensor().
  const std::string& file_of(const std::string& name) const;
  // Every tensor name the architecture needs, with its expected shape (also used by make-model), in
  // the order Hugging Face lists them. lm_head.weight is left out when tie_word_embeddings is true (the
  // checkpoint may still carry it; then open() checks its shape too).
  static std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const ModelConfig& c);

  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // Names of tensors in the files that the architecture does not use (sorted).
  const std::vector<std::string>& ignored_tensors() const { return ignored_; }

 private:
  struct Entry {
    const StTensor* tensor;
    const SafetensorsFile* file;
  };
  std::string dir_;
  ModelConfig config_;
  GenerationConfig generation_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> tensors_;
  std::vector<std::string> ignored_;
};

}  // namespace opdev::model
