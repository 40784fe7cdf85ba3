// The precision tools end to end through the command line (label `model`): `opdev compare` on a tiny
// synthetic model (clean: exit 0; with --perturb: exit 1 naming exactly the perturbed op first), `--dump`
// then `opdev replay` of one entry of each op kind (exit 0), a corrupted output (exit 1 naming it), bad
// input (exit 2 with a clear message), and `opdev run --dump` when the tokenizer cache is there.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "model/npy.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int rc = -1;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(OPDEV_CLI) + " " + args + " 2>&1";
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Synthetic checkpoints made once per test process (ctest runs tests in parallel: own directories).
class Cli : public ::testing::Test {
 protected:
  static fs::path dir_;
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("opdev-inspect-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Dense, 4 layers; and a MoE model whose layer 0 is dense, so one dump has every op kind of the graph.
    Result a = run("make-model --preset tiny --vocab 1024 --no-tokenizer -q --out " + (dir_ / "tiny").string());
    ASSERT_EQ(a.rc, 0) << a.out;
    Result b = run("make-model --preset tiny-moe --vocab 512 --mlp-only-layers 0 --no-tokenizer -q --out " + (dir_ / "moe").string());
    ASSERT_EQ(b.rc, 0) << b.out;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string tiny() { return (dir_ / "tiny").string(); }
  static std::string moe() { return (dir_ / "moe").string(); }
};
fs::path Cli::dir_;

const char* kIds = "--ids 3,14,15,92,65,35,89,79,32,38 -t 2";

TEST_F(Cli, CompareCleanFloat32ExitsZero) {
  const Result r = run("compare --model " + tiny() + " --a cpu:float32 --b ref:float32 " + kIds + " --steps 2");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("within tolerance"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layers.3"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("first op call over tolerance"), std::string::npos) << r.out;
}

TEST_F(Cli, CompareHalfPrecisionExitsZero) {
  for (const char* a : {"cpu:bfloat16", "cpu:float16"}) {
    const Result r = run("compare --model " + tiny() + " --a " + a + " " + kIds);
    EXPECT_EQ(r.rc, 0) << a << "\n" << r.out;
  }
}

TEST_F(Cli, ComparePerturbNamesExactlyThePerturbedOp) {
  const Result r = run("compare --model " + tiny() + " --a cpu:float32 " + kIds + " --perturb layers.1.mlp.down_proj");
  EXPECT_EQ(r.rc, 1) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("first op call over tolerance \\(graph order\\): call ([0-9]+)[^:]*: (\\S+) \\((\\w+)\\)")))
      << r.out;
  EXPECT_EQ(m[2].str(), "layers.1.mlp.down_proj");
  EXPECT_EQ(m[3].str(), "linear");
  // Nothing before it: layer 0 and the embedding have no call over tolerance; the perturbed call's NMSE is
  // (1e-2)^2 = 1e-4.
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\nembedding +1 +0 ")));
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\nlayers\\.0 +12 +0 ")));
  EXPECT_TRUE(std::regex_search(r.out, std::regex("output 'out' \\[10, 256\\] float32 vs float32: NMSE 1\\.0[0-9]e-04 > 1\\.00e-08")))
      << r.out;
  // Another label, a larger REL: lm_head is the last call, so it is the first and only one over.
  const Result l = run("compare --model " + tiny() + " --a cpu:float32 " + kIds + " --perturb lm_head:0.5");
  EXPECT_EQ(l.rc, 1) << l.out;
  EXPECT_NE(l.out.find(": lm_head (linear)"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("1 of 52 op calls are over tolerance"), std::string::npos) << l.out;
}

TEST_F(Cli, CompareUsageAndLoadErrorsExitTwo) {
  Result r = run("compare --model " + tiny() + " --a nosuch:float32 " + kIds);
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("no backend 'nosuch'"), std::string::npos) << r.out;
  r = run("compare --model " + tiny() + " --a cpu:float8 " + kIds);
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("dtype 'float8' is not one of"), std::string::npos) << r.out;
  r = run("compare --model " + tiny() + " --a cpu " + kIds + " --perturb layers.99.mlp.down_proj");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("no op call is labelled 'layers.99.mlp.down_proj'"), std::string::npos) << r.out;
  r = run("compare --model " + tiny() + " --a cpu");  // no tokenizer: needs --ids
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("--ids"), std::string::npos) << r.out;
  r = run("compare --model " + (dir_ / "nothing").string() + " --a cpu --ids 1");
  EXPECT_EQ(r.rc, 2) << r.out;
  r = run("compare --model " + tiny());  // --a is required
  EXPECT_EQ(r.rc, 2) << r.out;
}

TEST_F(Cli, DumpThenReplayEveryOpKind) {
  const fs::path d = dir_ / "dump";
  Result r = run("compare --model " + moe() + " --a cpu:float32 " + kIds + " --dump " + d.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream f(d / "index.json");
  ASSERT_TRUE(f) << "no index.json";
  const nlohmann::json idx = nlohmann::json::parse(f);
  std::map<std::string, std::string> first_of_op;  // op -> entry directory
  for (const auto& e : idx.at("entries")) {
    const std::string op = e.at("op");
    if (!first_of_op.count(op)) first_of_op[op] = e.at("dir");
    ASSERT_TRUE(fs::exists(d / e.at("dir").get<std::string>() / "entry.json"));
  }
  const std::set<std::string> expected = {"embedding",       "rms_norm",       "add_rms_norm",   "linear",
                                          "rope",            "reshape_and_cache", "paged_attention", "silu_and_mul",
                                          "moe_gating_topk", "moe_permute",    "grouped_matmul", "moe_unpermute"};
  for (const std::string& op : expected) EXPECT_TRUE(first_of_op.count(op)) << "no " << op << " in the dump";
  for (const auto& [op, dir] : first_of_op) {
    const Result p = run("replay " + (d / dir).string() + " --backend ref");
    EXPECT_EQ(p.rc, 0) << op << ":\n" << p.out;
    EXPECT_NE(p.out.find("(bitwise identical)"), std::string::npos) << op << ": cpu re-run differs from the recording\n" << p.out;
  }

  // Corrupt one recorded output: scale the first linear's out by 1.01.
  const fs::path e = d / first_of_op.at("linear");
  std::vector<int64_t> shape;
  std::vector<float> v = opdev::model::read_npy_f32((e / "out.npy").string(), &shape);
  for (float& x : v) x *= 1.01f;
  opdev::model::write_npy_f32((e / "out.npy").string(), v.data(), shape);
  r = run("replay " + e.string());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("recorded output 'out' OUT OF TOLERANCE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("result: 'out' disagrees with ref (float64)"), std::string::npos) << r.out;

  // Bad entries: exit 2 and say what is wrong.
  r = run("replay " + d.string());
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("is a dump directory"), std::string::npos) << r.out;
  const fs::path g = d / first_of_op.at("rms_norm");
  std::vector<double> junk(2, 1.0);
  opdev::model::write_npy((g / "weight.npy").string(), "<f8", {2}, junk.data(), 16);
  r = run("replay " + g.string());
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("weight.npy: element type '<f8', but entry.json says float32"), std::string::npos) << r.out;
  std::ofstream((d / first_of_op.at("rope") / "entry.json").string()) << R"({"op": "rope2", "backend": "cpu", "tensors": [], "scalars": {}})";
  r = run("replay " + (d / first_of_op.at("rope")).string());
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("unknown op 'rope2'"), std::string::npos) << r.out;
}

TEST_F(Cli, DumpFilterKeepsOnlyMatchingLabels) {
  const fs::path d = dir_ / "dump-filter";
  const Result r = run("compare --model " + tiny() + " --a cpu:float32 " + kIds + " --dump " + d.string() + " --dump-filter layers.2.mlp");
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream f(d / "index.json");
  const nlohmann::json idx = nlohmann::json::parse(f);
  ASSERT_EQ(idx.at("entries").size(), 3u);  // gate_up_proj, silu_and_mul, down_proj
  for (const auto& e : idx.at("entries")) EXPECT_EQ(e.at("label").get<std::string>().rfind("layers.2.mlp.", 0), 0u);
}

// `opdev run --dump` goes through the engine, so its dump has sample calls; needs the tokenizer cache.
TEST_F(Cli, RunDumpIncludesSampling) {
  const fs::path tok = fs::path(OPDEV_SOURCE_DIR) / ".cache" / "tokenizer-qwen3" / "models";
  if (!fs::exists(tok / "tokenizer.json")) GTEST_SKIP() << "no tokenizer cache (scripts/fetch-tokenizer.sh)";
  const fs::path m = dir_ / "tok";
  Result r = run("make-model --preset tiny --layers 1 -q --tokenizer-dir " + tok.string() + " --out " + m.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  const fs::path d = dir_ / "run-dump";
  r = run("run --model " + m.string() + " -q -p hi --raw -n 2 -t 2 --dump " + d.string() + " --dump-filter sample");
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream f(d / "index.json");
  const nlohmann::json idx = nlohmann::json::parse(f);
  std::string sample;
  for (const auto& e : idx.at("entries"))
    if (e.at("op") == "sample" && sample.empty()) sample = e.at("dir");
  ASSERT_FALSE(sample.empty()) << "no sample call in the dump";
  r = run("replay " + (d / sample).string());
  EXPECT_EQ(r.rc, 0) << r.out;
}

}  // namespace
