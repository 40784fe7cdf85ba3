// The inference engine: requests, a paged KV cache (block allocator, slot mapping, block tables),
// continuous batching with chunked prefill, sampling on the device (opdev_sample), stopping on eos ids,
// stop strings and max tokens. Running out of KV blocks preempts the youngest running request (its
// blocks are freed and it is recomputed later) or, when a request cannot fit even alone, fails that
// request with a clear error; the process never dies for it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/qwen3.h"
#include "model/tokenizer.h"

namespace opdev::model {

struct SamplingParams {
  float temperature = 0.7f;  // 0 = greedy
  int32_t top_k = 20;        // <= 0: off
  float top_p = 0.8f;        // 1: off
  uint64_t seed = 0;         // per request; equal seeds and prompts give equal outputs
  int64_t max_tokens = 128;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool ignore_eos = false;
};

enum class FinishReason { None, Eos, Length, Stop, Error };
const char* finish_reason_name(FinishReason r);

struct EngineConfig {
  int64_t block_size = 16;
  int64_t num_blocks = 0;           // 0: derive from kv_cache_bytes
  size_t kv_cache_bytes = 256u << 20;
  int64_t max_batched_tokens = 512;  // tokens per forward (the prefill chunk budget)
  int64_t max_num_seqs = 16;         // sequences per forward
  bool record_logits = false;        // keep float32 logits of every sampled position (tests)
};

struct Request {
  int64_t id = 0;
  std::vector<int32_t> prompt;     // prompt tokens (after a preemption: prompt + the first `folded` generated)
  int64_t prompt_len = 0;          // original prompt length
  std::vector<int32_t> generated;  // sampled tokens
  int64_t folded = 0;              // generated tokens folded into `prompt` by preemptions
  SamplingParams params;
  int64_t computed = 0;            // tokens whose keys/values are in the cache
  std::vector<int32_t> blocks;     // KV blocks, in order
  bool running = false;            // in the decode phase
  FinishReason finish = FinishReason::None;
  std::string error;
  std::string text_tail;           // recent decoded text, for stop strings
  std::vector<std::vector<float>> logits;  // with record_logits: one row per sampled token
  int64_t preemptions = 0;
};

struct StepOutput {
  int64_t id;
  std::vector<int32_t> new_tokens;
  bool finished = false;
  FinishReason reason = FinishReason::None;
  std::string error;
};

struct EngineStats {
  int64_t steps = 0, prefill_tokens = 0, decode_tokens = 0, preemptions = 0;
};

class Engine {
 public:
  // tokenizer may be nullptr (no stop strings then).
  Engine(Qwen3Model& model, const EngineConfig& cfg, std::vector<int64_t> eos_ids, const Tokenizer* tokenizer = nullptr);

  // Queues a request; throws ModelError for an empty prompt, ids outside the vocabulary, a prompt plus
  // max_tokens longer than the model's context, or bad sampling parameters.
  int64_t add_request(std::vector<int32_t> prompt, SamplingParams params);
  // Schedules and runs one forward; returns what each request produced in it.
  std::vector<StepOutput> step();
  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  const Request& request(int64_t id) const;
  const EngineStats& stats() const { return stats_; }
  int64_t free_blocks() const { return int64_t(free_.size()); }
  int64_t num_blocks() const { return cache_.num_blocks; }

 private:
  struct Scheduled {
    Request* r;
    int64_t start, count;  // tokens [start, start + count) of r's sequence
    bool sample;
  };
  bool ensure_blocks(Request& r, int64_t tokens);
  void release(Request& r);
  void preempt(Request& r);
  void fail(Request& r, const std::string& why, std::vector<StepOutput>& out);
  int32_t token_at(const Request& r, int64_t i) const;
  bool check_stop(Request& r);

  Qwen3Model& model_;
  EngineConfig cfg_;
  std::vector<int64_t> eos_;
  const Tokenizer* tok_;
  KvCache cache_;
  std::vector<int32_t> free_;
  std::map<int64_t, Request> requests_;
  std::deque<int64_t> waiting_;  // arrival order (preempted ones go to the front)
  std::vector<int64_t> running_;
  int64_t next_id_ = 1;
  Tensor logits_, sampled_;
  EngineStats stats_;
};

}  // namespace opdev::model
