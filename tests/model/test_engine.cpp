// The engine and the model graph on the paged cache: prefill + decode through the cache equals one
// full-sequence forward; chunked prefill equals unchunked; a batch equals each request alone; running
// out of KV blocks preempts or fails one request with a clear error; stop conditions; bad requests.
// Checkpoints are synthetic (write_synthetic_checkpoint), computed in float32.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine_fixture.h"

namespace {

using namespace opdev::model;
using namespace opdev::model::testing;

// max |a - b| <= 1e-4 * max |b| (the parity bound of the issue), row by row.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double m = 0, d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, double(std::fabs(b[i])));
    d = std::max(d, double(std::fabs(a[i] - b[i])));
  }
  EXPECT_GT(m, 0.1) << what << ": degenerate logits";
  EXPECT_LE(d, 1e-4 * m) << what << ": max |diff| " << d << " vs max |ref| " << m;
}

class EngineTest : public ::testing::TestWithParam<bool> {};

TEST_P(EngineTest, PrefillThenDecodeMatchesFullForward) {
  Fixture f(GetParam());
  const std::vector<int32_t> prompt = prompt_ids(19, 1);
  RunResult r = run_all(*f.model, {prompt}, {greedy(12)}, EngineConfig{});
  ASSERT_EQ(r.tokens[0].size(), 12u);
  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), r.tokens[0].begin(), r.tokens[0].end() - 1);
  auto full = full_forward(*f.model, f.ctx, seq);
  for (size_t j = 0; j < r.tokens[0].size(); ++j)
    expect_close(r.logits[0][j], full[prompt.size() - 1 + j], "position " + std::to_string(prompt.size() - 1 + j));
  // Greedy tokens are the argmax of the full forward's logits.
  for (size_t j = 0; j < r.tokens[0].size(); ++j) {
    const auto& row = full[prompt.size() - 1 + j];
    EXPECT_EQ(r.tokens[0][j], int32_t(std::max_element(row.begin(), row.end()) - row.begin())) << "token " << j;
  }
}

TEST_P(EngineTest, ChunkedPrefillEqualsUnchunked) {
  Fixture f(GetParam());
  const std::vector<int32_t> prompt = prompt_ids(45, 2);
  EngineConfig whole, chunked;
  chunked.max_batched_tokens = 7;
  RunResult a = run_all(*f.model, {prompt}, {greedy(6)}, whole), b = run_all(*f.model, {prompt}, {greedy(6)}, chunked);
  EXPECT_EQ(a.tokens[0], b.tokens[0]);
  EXPECT_GT(b.stats.steps, a.stats.steps);  // it really was chunked
  for (size_t j = 0; j < a.logits[0].size(); ++j) expect_close(b.logits[0][j], a.logits[0][j], "step " + std::to_string(j));
}

TEST_P(EngineTest, BatchGivesTheSameTokensAsEachAlone) {
  Fixture f(GetParam());
  const std::vector<std::vector<int32_t>> prompts = {prompt_ids(5, 3), prompt_ids(31, 4), prompt_ids(1, 5), prompt_ids(17, 6)};
  const std::vector<SamplingParams> params = {greedy(9), greedy(4), greedy(12), greedy(7)};
  EngineConfig cfg;
  cfg.max_batched_tokens = 20;  // prefills of different requests share steps with decodes
  RunResult together = run_all(*f.model, prompts, params, cfg);
  for (size_t i = 0; i < prompts.size(); ++i) {
    RunResult alone = run_all(*f.model, {prompts[i]}, {params[i]}, EngineConfig{});
    EXPECT_EQ(together.tokens[i], alone.tokens[0]) << "request " << i;
    for (size_t j = 0; j < alone.logits[0].size(); ++j)
      expect_close(together.logits[i][j], alone.logits[0][j], "request " + std::to_string(i) + " step " + std::to_string(j));
  }
}

TEST_P(EngineTest, SamplingIsSeededAndBatchInvariant) {
  Fixture f(GetParam());
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 50;
  p.top_p = 0.9f;
  p.max_tokens = 10;
  p.ignore_eos = true;
  p.seed = 1234;
  const auto prompt = prompt_ids(9, 7);
  RunResult a = run_all(*f.model, {prompt}, {p}, EngineConfig{});
  RunResult b = run_all(*f.model, {prompt_ids(4, 8), prompt, prompt_ids(13, 9)}, {greedy(3), p, greedy(5)}, EngineConfig{});
  EXPECT_EQ(a.tokens[0], b.tokens[1]);  // same seed, different batch: same tokens
  SamplingParams q = p;
  q.seed = 99;
  RunResult c = run_all(*f.model, {prompt}, {q}, EngineConfig{});
  EXPECT_NE(a.tokens[0], c.tokens[0]);  // another seed gives another sample (10 tokens at temperature 1)
}

// Deterministic mode (OPDEV_DETERMINISTIC / the context flag): logits are bitwise identical across runs,
// thread counts and batch compositions, in float32 and bfloat16 compute.
TEST_P(EngineTest, DeterministicModeIsBitwiseBatchInvariant) {
  const std::vector<std::vector<int32_t>> prompts = {prompt_ids(5, 3), prompt_ids(31, 4), prompt_ids(1, 5), prompt_ids(17, 6)};
  const std::vector<SamplingParams> params = {greedy(9), greedy(4), greedy(12), greedy(7)};
  EngineConfig mixed;
  mixed.max_batched_tokens = 20;  // prefill chunks of different requests share steps with decodes
  for (DLDataType dt : {opdev::kFloat32, opdev::kBFloat16}) {
    SCOPED_TRACE(dt.code == kDLBfloat ? "bfloat16" : "float32");
    Fixture f(GetParam(), dt, /*deterministic=*/true, /*threads=*/2);
    RunResult together = run_all(*f.model, prompts, params, mixed);
    RunResult again = run_all(*f.model, prompts, params, mixed);
    EXPECT_EQ(again.logits, together.logits) << "two identical runs differ";
    Fixture f1(GetParam(), dt, /*deterministic=*/true, /*threads=*/1);
    RunResult one_thread = run_all(*f1.model, prompts, params, mixed);
    EXPECT_EQ(one_thread.logits, together.logits) << "1 thread differs from 2 threads";
    for (size_t i = 0; i < prompts.size(); ++i) {
      RunResult alone = run_all(*f.model, {prompts[i]}, {params[i]}, EngineConfig{});
      EXPECT_EQ(together.tokens[i], alone.tokens[0]) << "request " << i;
      EXPECT_EQ(together.logits[i], alone.logits[0]) << "request " << i << ": batched logits differ from the request alone";
    }
  }
}

// Without the flag the way a prompt is cut into steps changes the bits (a chunk of at most 16 rows takes
// another matmul kernel than a longer one), so the test above can fail; the values still agree within
// the parity bound (ChunkedPrefillEqualsUnchunked).
TEST_P(EngineTest, WithoutDeterministicModeChunkingChangesTheBits) {
  Fixture f(GetParam(), opdev::kFloat32, /*deterministic=*/false, /*threads=*/2);
  const auto prompt = prompt_ids(31, 4);
  EngineConfig chunked;
  chunked.max_batched_tokens = 20;  // 20 + 11 rows
  RunResult a = run_all(*f.model, {prompt}, {greedy(2)}, chunked), b = run_all(*f.model, {prompt}, {greedy(2)}, EngineConfig{});
  EXPECT_NE(a.logits[0][0], b.logits[0][0]);
}

TEST_P(EngineTest, KvExhaustionPreemptsThenCompletes) {
  Fixture f(GetParam());
  const std::vector<std::vector<int32_t>> prompts = {prompt_ids(20, 10), prompt_ids(20, 11), prompt_ids(20, 12)};
  const std::vector<SamplingParams> params = {greedy(20), greedy(20), greedy(20)};
  EngineConfig small;
  small.block_size = 4;
  small.num_blocks = 14;  // 56 tokens: one request (40) fits, three at once do not
  RunResult tight = run_all(*f.model, prompts, params, small);
  EXPECT_GT(tight.stats.preemptions, 0);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(tight.reasons[i], FinishReason::Length) << tight.errors[i];
    RunResult alone = run_all(*f.model, {prompts[i]}, {params[i]}, EngineConfig{});
    EXPECT_EQ(tight.tokens[i], alone.tokens[0]) << "request " << i;
  }
}

TEST_P(EngineTest, RequestLargerThanTheCacheFailsAloneWithAClearError) {
  Fixture f(GetParam());
  EngineConfig small;
  small.block_size = 4;
  small.num_blocks = 6;  // 24 tokens
  RunResult r = run_all(*f.model, {prompt_ids(30, 13), prompt_ids(5, 14), prompt_ids(10, 15)}, {greedy(3), greedy(3), greedy(30)}, small);
  EXPECT_EQ(r.reasons[0], FinishReason::Error);
  EXPECT_NE(r.errors[0].find("KV cache exhausted"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("--kv-cache-mb"), std::string::npos);
  EXPECT_EQ(r.reasons[1], FinishReason::Length);  // the others are unaffected...
  EXPECT_EQ(r.tokens[1].size(), 3u);
  EXPECT_EQ(r.reasons[2], FinishReason::Error);   // ...until one outgrows the whole cache while decoding
  EXPECT_NE(r.errors[2].find("whole cache holds 24"), std::string::npos) << r.errors[2];
}

TEST_P(EngineTest, StopsOnEosAndMaxTokens) {
  Fixture f(GetParam());
  const auto prompt = prompt_ids(8, 16);
  RunResult free_run = run_all(*f.model, {prompt}, {greedy(5)}, EngineConfig{});
  ASSERT_EQ(free_run.tokens[0].size(), 5u);
  EXPECT_EQ(free_run.reasons[0], FinishReason::Length);
  // Make the third greedy token an eos id: generation stops right after it.
  EngineConfig cfg;
  Engine e(*f.model, cfg, {int64_t(free_run.tokens[0][2])});
  SamplingParams p = greedy(5);
  p.ignore_eos = false;
  const int64_t id = e.add_request(prompt, p);
  while (e.has_unfinished()) e.step();
  const Request& q = e.request(id);
  EXPECT_EQ(q.finish, FinishReason::Eos);
  EXPECT_EQ(q.generated, std::vector<int32_t>(free_run.tokens[0].begin(), free_run.tokens[0].begin() + 3));
  EXPECT_EQ(e.free_blocks(), e.num_blocks());  // finished requests give their blocks back
}

TEST_P(EngineTest, RejectsBadRequests) {
  Fixture f(GetParam());
  Engine e(*f.model, EngineConfig{}, {});
  auto expect_error = [&](std::vector<int32_t> ids, SamplingParams p, const std::string& msg) {
    try {
      e.add_request(std::move(ids), p);
      ADD_FAILURE() << "no error for: " << msg;
    } catch (const ModelError& err) {
      EXPECT_NE(std::string(err.what()).find(msg), std::string::npos) << err.what();
    }
  };
  expect_error({}, greedy(1), "the prompt is empty");
  expect_error({1, 512}, greedy(1), "prompt token 1 = 512 is outside the vocabulary [0, 512)");
  expect_error({1, -3}, greedy(1), "prompt token 1 = -3 is outside");
  expect_error(prompt_ids(10, 1), greedy(503), "exceeds the model's context of 512 tokens");
  SamplingParams bad = greedy(1);
  bad.temperature = -1;
  expect_error({1}, bad, "temperature");
  bad = greedy(1);
  bad.top_p = 0;
  expect_error({1}, bad, "top_p");
  EXPECT_FALSE(e.has_unfinished());
}

INSTANTIATE_TEST_SUITE_P(DenseAndMoe, EngineTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? std::string("moe") : std::string("dense"); });

}  // namespace
