// Engine: scheduling (decode first, then prefill chunks), the KV block allocator, sampling, stopping.
#include "model/engine.h"

#include <algorithm>
#include <cmath>

#include "model/error.h"
#include "model/log.h"

namespace opdev::model {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Eos: return "eos";
    case FinishReason::Length: return "length";
    case FinishReason::Stop: return "stop";
    case FinishReason::Error: return "error";
  }
  return "?";
}

Engine::Engine(Qwen3Model& model, const EngineConfig& cfg, std::vector<int64_t> eos_ids, const Tokenizer* tokenizer)
    : model_(model), cfg_(cfg), eos_(std::move(eos_ids)), tok_(tokenizer) {
  if (cfg_.block_size < 1) throw ModelError("block size must be >= 1");
  if (cfg_.max_batched_tokens < 1) throw ModelError("max batched tokens must be >= 1");
  if (cfg_.max_num_seqs < 1) throw ModelError("max sequences per step must be >= 1");
  int64_t nb = cfg_.num_blocks;
  if (nb <= 0) {
    const size_t per = model_.kv_bytes_per_block(cfg_.block_size);
    nb = int64_t(cfg_.kv_cache_bytes / per);
    if (nb < 1)
      throw ModelError("the KV cache budget of " + std::to_string(cfg_.kv_cache_bytes >> 20) + " MiB holds no block of " +
                       std::to_string(cfg_.block_size) + " tokens (" + std::to_string(per) + " bytes); raise --kv-cache-mb");
  }
  cache_ = model_.make_kv_cache(nb, cfg_.block_size);
  for (int64_t b = nb - 1; b >= 0; --b) free_.push_back(int32_t(b));
}

int64_t Engine::add_request(std::vector<int32_t> prompt, SamplingParams p) {
  const ModelConfig& c = model_.config();
  if (prompt.empty()) throw ModelError("the prompt is empty");
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= c.vocab_size)
      throw ModelError("prompt token " + std::to_string(i) + " = " + std::to_string(prompt[i]) + " is outside the vocabulary [0, " +
                       std::to_string(c.vocab_size) + ")");
  if (p.max_tokens < 1) throw ModelError("max_tokens must be >= 1");
  if (int64_t(prompt.size()) + p.max_tokens > c.max_position_embeddings)
    throw ModelError("the prompt (" + std::to_string(prompt.size()) + " tokens) plus max_tokens (" + std::to_string(p.max_tokens) +
                     ") exceeds the model's context of " + std::to_string(c.max_position_embeddings) + " tokens");
  if (!(std::isfinite(p.temperature) && p.temperature >= 0)) throw ModelError("temperature must be a finite value >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw ModelError("top_p must be in (0, 1]");
  Request r;
  r.id = next_id_++;
  r.prompt_len = int64_t(prompt.size());
  r.prompt = std::move(prompt);
  r.params = std::move(p);
  const int64_t id = r.id;
  log(OPDEV_LOG_DEBUG, "engine", "request ", id, " added: ", r.prompt_len, " prompt tokens, at most ", r.params.max_tokens, " new");
  requests_.emplace(id, std::move(r));
  waiting_.push_back(id);
  return id;
}

const Request& Engine::request(int64_t id) const {
  auto it = requests_.find(id);
  if (it == requests_.end()) throw ModelError("no request " + std::to_string(id));
  return it->second;
}

bool Engine::ensure_blocks(Request& r, int64_t tokens) {
  const int64_t need = (tokens + cfg_.block_size - 1) / cfg_.block_size - int64_t(r.blocks.size());
  if (need <= 0) return true;
  if (need > int64_t(free_.size())) return false;
  for (int64_t i = 0; i < need; ++i) {
    r.blocks.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void Engine::release(Request& r) {
  for (auto it = r.blocks.rbegin(); it != r.blocks.rend(); ++it) free_.push_back(*it);
  r.blocks.clear();
}

// Frees a request's cache; it will be recomputed from its prompt and what it generated. A running
// request goes back to the front of the queue; one whose prefill was under way keeps its place.
void Engine::preempt(Request& r) {
  release(r);
  for (int64_t i = r.folded; i < int64_t(r.generated.size()); ++i) r.prompt.push_back(r.generated[size_t(i)]);
  r.folded = int64_t(r.generated.size());
  r.computed = 0;
  ++r.preemptions;
  ++stats_.preemptions;
  log(OPDEV_LOG_INFO, "engine", "request ", r.id, " preempted (KV cache full); it will recompute ", r.prompt.size(), " tokens");
  if (r.running) {
    r.running = false;
    running_.erase(std::remove(running_.begin(), running_.end(), r.id), running_.end());
    waiting_.push_front(r.id);
  }
}

void Engine::fail(Request& r, const std::string& why, std::vector<StepOutput>& out) {
  release(r);
  r.finish = FinishReason::Error;
  r.error = why;
  log(OPDEV_LOG_WARN, "engine", "request ", r.id, " failed: ", why);
  running_.erase(std::remove(running_.begin(), running_.end(), r.id), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r.id), waiting_.end());
  StepOutput o;
  o.id = r.id;
  o.finished = true;
  o.reason = FinishReason::Error;
  o.error = why;
  out.push_back(std::move(o));
}

int32_t Engine::token_at(const Request& r, int64_t i) const {
  const int64_t p = int64_t(r.prompt.size());
  return i < p ? r.prompt[size_t(i)] : r.generated[size_t(r.folded + (i - p))];
}

bool Engine::check_stop(Request& r) {
  const int32_t t = r.generated.back();
  if (!r.params.ignore_eos && std::find(eos_.begin(), eos_.end(), int64_t(t)) != eos_.end()) {
    r.finish = FinishReason::Eos;
    return true;
  }
  if (tok_ && !r.params.stop.empty()) {
    r.text_tail += tok_->token_bytes(t);
    size_t longest = 0;
    for (const std::string& s : r.params.stop) longest = std::max(longest, s.size());
    for (const std::string& s : r.params.stop)
      if (!s.empty() && r.text_tail.find(s) != std::string::npos) {
        r.finish = FinishReason::Stop;
        return true;
      }
    const size_t keep = longest + 64;
    if (r.text_tail.size() > 2 * keep) r.text_tail.erase(0, r.text_tail.size() - keep);
  }
  if (int64_t(r.generated.size()) >= r.params.max_tokens) {
    r.finish = FinishReason::Length;
    return true;
  }
  return false;
}

std::vector<StepOutput> Engine::step() {
  std::vector<StepOutput> out;
  std::vector<Scheduled> sched;
  int64_t budget = cfg_.max_batched_tokens;
  const int64_t bs = cfg_.block_size;

  // 1. One decode token per running request, oldest first. When blocks run out, preempt the youngest
  // request that holds blocks and is not scheduled in this step (a running one, or one whose prefill is
  // under way; possibly this one). A sequence longer than the whole cache fails.
  auto scheduled = [&](int64_t id) {
    for (const Scheduled& x : sched)
      if (x.r->id == id) return true;
    return false;
  };
  const std::vector<int64_t> running = running_;
  for (int64_t id : running) {
    Request& r = requests_.at(id);
    if (!r.running || r.finish != FinishReason::None) continue;  // preempted or failed meanwhile
    if (int64_t(sched.size()) >= cfg_.max_num_seqs || budget < 1) break;
    if (r.computed + 1 > cache_.num_blocks * bs) {
      fail(r, "KV cache exhausted: the sequence has reached " + std::to_string(r.computed + 1) + " tokens and the whole cache holds " +
                  std::to_string(cache_.num_blocks * bs) + "; raise --kv-cache-mb or lower --max-tokens",
           out);
      continue;
    }
    while (!ensure_blocks(r, r.computed + 1)) {
      int64_t victim = -1;  // the youngest holder of blocks (ids grow with arrival)
      for (const auto& [rid, q] : requests_)
        if (!q.blocks.empty() && q.finish == FinishReason::None && !scheduled(rid) && rid > victim) victim = rid;
      preempt(requests_.at(victim));  // r holds blocks or needs none more, so a victim always exists
      if (victim == r.id) break;
    }
    if (!r.running) continue;
    sched.push_back({&r, r.computed, 1, true});
    budget -= 1;
  }

  // 2. Prefill chunks in arrival order within the remaining token budget. A request is admitted only
  // when the blocks of its whole prompt are free, and they are reserved at once, so a prefill under way
  // never starves; later requests do not overtake one that waits for blocks.
  const std::deque<int64_t> waiting = waiting_;
  for (int64_t id : waiting) {
    if (budget <= 0 || int64_t(sched.size()) >= cfg_.max_num_seqs) break;
    Request& r = requests_.at(id);
    const int64_t prompt_blocks = (int64_t(r.prompt.size()) + bs - 1) / bs;
    if (prompt_blocks > cache_.num_blocks) {
      fail(r, "KV cache exhausted: the prompt needs " + std::to_string(prompt_blocks) + " blocks of " + std::to_string(bs) +
                  " tokens and the cache has " + std::to_string(cache_.num_blocks) + "; raise --kv-cache-mb or shorten the prompt",
           out);
      continue;
    }
    if (!ensure_blocks(r, int64_t(r.prompt.size()))) break;  // wait for blocks
    const int64_t chunk = std::min(int64_t(r.prompt.size()) - r.computed, budget);
    sched.push_back({&r, r.computed, chunk, r.computed + chunk == int64_t(r.prompt.size())});
    budget -= chunk;
  }
  if (sched.empty()) return out;

  // 3. The flat batch.
  BatchInputs in;
  int64_t max_blocks = 1;
  for (const Scheduled& s : sched) max_blocks = std::max(max_blocks, int64_t(s.r->blocks.size()));
  in.max_blocks = max_blocks;
  in.cu_seqlens_q.push_back(0);
  for (const Scheduled& s : sched) {
    const Request& r = *s.r;
    for (int64_t i = s.start; i < s.start + s.count; ++i) {
      in.ids.push_back(token_at(r, i));
      in.positions.push_back(int32_t(i));
      in.slot_mapping.push_back(int64_t(r.blocks[size_t(i / bs)]) * bs + i % bs);
    }
    in.cu_seqlens_q.push_back(int32_t(in.ids.size()));
    in.seq_lens_kv.push_back(int32_t(s.start + s.count));
    for (int64_t b = 0; b < max_blocks; ++b) in.block_table.push_back(b < int64_t(r.blocks.size()) ? r.blocks[size_t(b)] : 0);
    if (s.sample) in.logit_rows.push_back(int32_t(in.ids.size() - 1));
  }
  // Which requests the failing step carried: the op's message already says which op and layer.
  const int64_t step = stats_.steps;
  auto step_failed = [&](const std::string& what) {
    std::string ids;
    for (const Scheduled& s : sched) ids += (ids.empty() ? "" : ", ") + std::to_string(s.r->id);
    log(OPDEV_LOG_ERROR, "engine", "step ", step, " (requests ", ids, ") failed: ", what);
    return ModelError("step " + std::to_string(step) + " (requests " + ids + "): " + what);
  };
  try {
    model_.forward(in, cache_, logits_);
  } catch (const ModelError& e) {
    throw step_failed(e.what());
  }
  ++stats_.steps;

  // 4. Sampling on the device: one row per sequence that needs a token.
  const int64_t R = int64_t(in.logit_rows.size());
  std::vector<int32_t> sampled(static_cast<size_t>(R));
  if (R > 0) {
    opdev_context* ctx = model_.ctx();
    std::vector<float> temp, top_p;
    std::vector<int32_t> top_k;
    std::vector<int64_t> seeds, steps;
    for (const Scheduled& s : sched)
      if (s.sample) {
        temp.push_back(s.r->params.temperature);
        top_k.push_back(s.r->params.top_k);
        top_p.push_back(s.r->params.top_p);
        seeds.push_back(int64_t(s.r->params.seed));
        steps.push_back(int64_t(s.r->generated.size()));
      }
    Tensor t_temp(ctx, kFloat32, {R}, "temperature"), t_topk(ctx, kInt32, {R}, "top_k"), t_topp(ctx, kFloat32, {R}, "top_p");
    Tensor t_seed(ctx, kInt64, {R}, "seeds"), t_step(ctx, kInt64, {R}, "steps");
    upload(ctx, t_temp, temp.data(), t_temp.nbytes());
    upload(ctx, t_topk, top_k.data(), t_topk.nbytes());
    upload(ctx, t_topp, top_p.data(), t_topp.nbytes());
    upload(ctx, t_seed, seeds.data(), t_seed.nbytes());
    upload(ctx, t_step, steps.data(), t_step.nbytes());
    if (sampled_.shape != std::vector<int64_t>{R}) sampled_ = Tensor(ctx, kInt32, {R}, "sampled ids");
    opdev_context_set_label(ctx, "sample");  // for the profiler, dumps (--dump-filter sample) and errors
    opdev_status st = opdev_sample(ctx, sampled_, logits_, t_temp, t_topk, t_topp, t_seed, t_step);
    opdev_context_set_label(ctx, nullptr);
    if (st != OPDEV_STATUS_SUCCESS) throw ModelError(std::string("sample: ") + opdev_status_string(st) + ": " + opdev_last_error());
    try {
      download(ctx, sampled.data(), sampled_, sampled_.nbytes());
    } catch (const std::exception& e) {
      // The step's first wait for the device: on a device backend a fault in any kernel of the step, or index
      // data a kernel found out of range, surfaces here rather than at its op.
      throw step_failed(std::string("reading the sampled ids back: ") + e.what() +
                        " (on a device backend this covers every kernel of the step; CUDA_LAUNCH_BLOCKING=1, or --profile, "
                        "which waits after every op, names the failing op)");
    }
    if (cfg_.record_logits) {
      const int64_t V = model_.config().vocab_size;
      Tensor f32(ctx, kFloat32, {R, V}, "logits (float32)");
      st = opdev_cast(ctx, f32, logits_);
      if (st != OPDEV_STATUS_SUCCESS && same_dtype(logits_.dtype, kFloat32)) st = opdev_copy(ctx, f32, logits_);
      if (st != OPDEV_STATUS_SUCCESS) throw ModelError(std::string("logits: ") + opdev_last_error());
      std::vector<float> host(size_t(R * V));
      download(ctx, host.data(), f32, f32.nbytes());
      int64_t j = 0;
      for (const Scheduled& s : sched)
        if (s.sample) {
          s.r->logits.emplace_back(host.begin() + j * V, host.begin() + (j + 1) * V);
          ++j;
        }
    }
  }

  // 5. Book-keeping.
  int64_t j = 0;
  for (const Scheduled& s : sched) {
    Request& r = *s.r;
    r.computed += s.count;
    if (r.running) stats_.decode_tokens += s.count;
    else stats_.prefill_tokens += s.count;
    if (!s.sample) continue;
    StepOutput o;
    o.id = r.id;
    r.generated.push_back(sampled[size_t(j++)]);
    o.new_tokens.push_back(r.generated.back());
    if (!r.running) {
      r.running = true;
      waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r.id), waiting_.end());
      running_.push_back(r.id);
    }
    if (check_stop(r)) {
      log(OPDEV_LOG_DEBUG, "engine", "request ", r.id, " finished (", finish_reason_name(r.finish), ") after ", r.generated.size(), " tokens");
      release(r);
      running_.erase(std::remove(running_.begin(), running_.end(), r.id), running_.end());
      o.finished = true;
      o.reason = r.finish;
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace opdev::model
