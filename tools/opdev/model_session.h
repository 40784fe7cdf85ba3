// What the model commands (run, chat, logits) share: options for the checkpoint, backend, dtype,
// threads and KV cache, and loading it all with a progress bar.
#pragma once

#include <memory>
#include <string>

#include "commands.h"
#include "model/checkpoint.h"
#include "model/engine.h"
#include "model/qwen3.h"
#include "model/tokenizer.h"

namespace opdev::cli {

struct ModelOptions {
  std::string model;
  std::string backend = "cpu";
  std::string dtype;  // empty: the checkpoint's torch_dtype
  std::string weights = "dtype";  // --weights: dtype | int8 (W8A8 projections and lm_head) | int8-proj
  int threads = 0;
  double kv_cache_mb = 512;
  int64_t chunk = 512;       // prefill tokens per forward
  int64_t max_seqs = 16;
  bool quiet = false;        // no progress bar
  bool deterministic = false;  // bitwise-reproducible, batch-invariant kernels (also OPDEV_DETERMINISTIC=1)
  std::string profile_dir;   // --profile: record the op calls, write the profile here
};

void add_model_options(CLI::App* cmd, ModelOptions& o);

struct SamplingOptions {
  int64_t max_tokens = 128;
  float temperature = 0.7f;
  int32_t top_k = 20;
  float top_p = 0.8f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};
void add_sampling_options(CLI::App* cmd, SamplingOptions& o);
model::SamplingParams to_params(const SamplingOptions& o);

// --profile DIR: records every op call of a context (opdev_profile_*), then writes the files into DIR and
// prints the report (top operators, fusion candidates) to stderr.
class ProfileRecording {
 public:
  ProfileRecording() = default;
  ProfileRecording(const ProfileRecording&) = delete;
  ProfileRecording& operator=(const ProfileRecording&) = delete;
  ~ProfileRecording() { opdev_profile_end(profile_); }
  // Starts recording ctx when dir is not empty. options: NULL = measure the roofline at the end.
  void begin(opdev_context* ctx, const std::string& dir, const opdev_profile_options* options = nullptr);
  // Writes the files and prints the report; does nothing when not recording.
  void finish();

 private:
  opdev_profile* profile_ = nullptr;
  std::string dir_;
};

struct Session {
  std::unique_ptr<model::Checkpoint> ckpt;
  Context ctx;
  std::unique_ptr<model::Qwen3Model> model;
  std::unique_ptr<model::Tokenizer> tokenizer;  // null when the checkpoint has no tokenizer.json
  double load_seconds = 0;
  ProfileRecording profile;  // --profile (begun by the command, after loading)
};

// Opens the checkpoint, creates the context, uploads the weights (progress on stderr) and loads the
// tokenizer when `need_tokenizer` (an error if it is missing) or when present.
std::unique_ptr<Session> open_session(const ModelOptions& o, bool need_tokenizer);
model::EngineConfig engine_config(const ModelOptions& o);
std::vector<int64_t> eos_ids(const Session& s);

// "1,2,3" (the --ids option) -> token ids; throws CLI::ValidationError naming the bad item.
std::vector<int32_t> parse_ids(const std::string& s);

}  // namespace opdev::cli
