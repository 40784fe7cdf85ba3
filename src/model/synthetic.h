// Synthetic Hugging Face checkpoints (opdev make-model): a config, a generation config, deterministic
// random weights in safetensors (one file or shards with an index) and optionally the real tokenizer,
// written to a temporary directory and renamed into place only when complete.
//
// The weights are a pure function of (seed, tensor name, element index), specified here so that any
// other implementation (a test, a numpy script) can regenerate them:
//   key   = splitmix64_mix(seed ^ fnv1a64(name))          (FNV-1a 64 over the name's bytes)
//   z(c)  = splitmix64_mix(key + c * 0x9E3779B97F4A7C15)   (the c-th output of splitmix64 seeded with key)
//   u(c)  = ((z(c) >> 11) + 1) * 2^-53                      in (0, 1]
//   pair j of normals (Box-Muller, in double): r = sqrt(-2 ln u(2j+1)), t = 2 pi u(2j+2),
//   element 2j = r cos t, element 2j+1 = r sin t
//   value = mean + std * normal, rounded once (round to nearest even) from double to the file's dtype.
// splitmix64_mix(x): x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27; x *= 0x94D049BB133111EB;
// x ^= x >> 31.
//
// Magnitudes (mean, std) per tensor, chosen so that a pre-norm Qwen3 stack keeps O(1) activations at
// any depth and produces informative logits (see synthetic_init()):
//   linear weights [out, in]:            0, 1/sqrt(in)   unit-variance outputs for unit-RMS inputs
//   embed_tokens, lm_head [V, H]:        0, 2/sqrt(H)    logits = final-normed h . row: std about 2
//   router mlp.gate [E, H]:              0, 2/sqrt(H)    router logits std about 2: distinct top-k
//   attention biases:                    0, 0.2          visible next to O(1) projections
//   RMSNorm weights (all five kinds):    1, 0.1          near 1, but a wrong or missing norm shows
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"

namespace opdev::model {

uint64_t splitmix64_mix(uint64_t x);
uint64_t synthetic_key(uint64_t seed, const std::string& name);
// Element i of the standard normal stream of `key` (see above).
double synthetic_normal(uint64_t key, uint64_t i);

struct WeightInit {
  double mean = 0, std = 0;
};
// The (mean, std) of a tensor by its Hugging Face name; throws ModelError for a name it does not know.
WeightInit synthetic_init(const std::string& name, const ModelConfig& c);

// Rounds a double once to BF16 / F16 (round to nearest even, via round-to-odd to float) or F32 and
// stores it little-endian at dst.
void store_rounded(double v, StDtype dtype, uint8_t* dst);

// Presets: tiny, qwen3-0.6b, qwen3-moe-small, tiny-moe. Throws ModelError listing them.
std::vector<std::string> synthetic_presets();
ModelConfig synthetic_preset(const std::string& name);

struct SyntheticOptions {
  ModelConfig config;              // validated before anything is written
  StDtype dtype = StDtype::BF16;   // BF16, F16 or F32 (torch_dtype in config.json follows it)
  uint64_t seed = 0;
  uint64_t shard_size = 0;         // bytes of tensor data per shard; 0: a single model.safetensors
  std::string tokenizer_dir;       // copy tokenizer.json and tokenizer_config.json from here; "": none
  bool overwrite = false;          // replace an existing checkpoint directory at the destination
  int threads = 0;                 // weight generation threads; 0: all cores
  std::function<void(uint64_t done, uint64_t total)> progress;  // tensor bytes written
};

struct SyntheticResult {
  uint64_t bytes = 0;              // tensor data written
  size_t tensors = 0, files = 0;   // tensors and safetensors files
};

// Writes the checkpoint directory `out`. The files go to a sibling temporary directory that is renamed
// to `out` when everything is written and flushed; on failure the temporary directory is removed. An
// existing `out` is an error unless overwrite is set, and even then it is only replaced when it is empty
// or holds a config.json (so a mistyped path never deletes an unrelated directory).
SyntheticResult write_synthetic_checkpoint(const std::string& out, const SyntheticOptions& options);

}  // namespace opdev::model
