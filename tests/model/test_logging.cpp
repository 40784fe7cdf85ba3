// Logging: OPDEV_LOG_LEVEL and OPDEV_LOG_FILE are honoured by the library and the model runtime alike,
// and the lines carry their context: which op and layer (label) an error came from, which request the
// engine added, finished or failed. The environment is set before anything logs (the sink is opened
// once per process), by a static initialiser of this test program.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine_fixture.h"

namespace {

using namespace opdev::model;
using namespace opdev::model::testing;

std::string log_path() {
  static const std::string p = (fs::temp_directory_path() / ("opdev_log_test_" + std::to_string(::getpid()) + ".log")).string();
  return p;
}

const bool g_env = [] {
  fs::remove(log_path());
  ::setenv("OPDEV_LOG_LEVEL", "debug", 1);
  ::setenv("OPDEV_LOG_FILE", log_path().c_str(), 1);
  return true;
}();

std::string read_log() {
  std::ifstream f(log_path());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(Logging, LibraryAndRuntimeWriteToTheConfiguredFileWithContext) {
  ASSERT_TRUE(g_env);
  EXPECT_EQ(opdev_log_enabled(OPDEV_LOG_DEBUG), 1);
  EXPECT_EQ(opdev_log_enabled(opdev_log_level(7)), 0);  // not a level
  opdev_log(OPDEV_LOG_WARN, "test", "a line from a program");

  Fixture f(/*moe=*/false);  // creates a context: an info line
  // An op error under a label: the library logs it at debug level with the label.
  float x[4] = {1, 2, 3, 4}, w[2] = {1, 1}, out[4];
  opdev::TensorRef tx(x, opdev::kFloat32, {2, 2}), tw(w, opdev::kFloat32, {2}), to(out, opdev::kFloat32, {2, 2});
  ASSERT_EQ(opdev_context_set_label(f.ctx, "layers.2.self_attn.q_norm"), OPDEV_STATUS_SUCCESS);
  EXPECT_NE(opdev_rms_norm(f.ctx, to, tx, tw, -1.0), OPDEV_STATUS_SUCCESS);
  // The engine: one request that completes and one larger than the whole cache, which fails alone.
  EngineConfig cfg;
  cfg.num_blocks = 4;
  cfg.block_size = 16;
  RunResult r = run_all(*f.model, {prompt_ids(5, 1), prompt_ids(100, 2)}, {greedy(3), greedy(3)}, cfg);
  EXPECT_EQ(r.reasons[0], FinishReason::Length);
  EXPECT_EQ(r.reasons[1], FinishReason::Error);

  const std::string log = read_log();
  for (const char* expected : {"opdev [warn] test: a line from a program", "opdev [info] context created: backend cpu",
                               "opdev [debug] error: opdev_rms_norm: eps: ", "(at layers.2.self_attn.q_norm)",
                               "opdev [debug] engine: request 1 added: 5 prompt tokens",
                               "opdev [debug] engine: request 1 finished (length) after 3 tokens",
                               "opdev [warn] engine: request 2 failed: KV cache exhausted"})
    EXPECT_NE(log.find(expected), std::string::npos) << "missing '" << expected << "' in:\n" << log;
  fs::remove(log_path());
}

}  // namespace
