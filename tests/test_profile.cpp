// The profiler through the public C API: the files it writes (parsed here with nlohmann-json and a CSV
// reader of this file), the fusion finder on chains built on purpose with a fixed roofline, OPDEV_PROFILE,
// errors. Expected values come from what the test did (its own calls, the op cost its own hook saw, the
// formulas of docs/ARCHITECTURE.md), never from the profiler.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "csv_reader.h"
#include "opdev/opdev.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using opdev::kFloat32;
using opdev::TensorRef;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/opdev_profile_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path(const std::string& name = "") const { return name.empty() ? path_ : path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A CSV file as maps from the header's names; every row has the header's field count.
std::vector<std::map<std::string, std::string>> read_csv(const std::string& path) {
  int ragged = 0;
  auto rows = opdev::test::read_csv(path, &ragged);
  EXPECT_EQ(ragged, 0) << path;
  return rows;
}

std::vector<json> complete_events(const json& trace) {
  std::vector<json> v;
  for (const json& e : trace.at("traceEvents"))
    if (e.at("ph") == "X") v.push_back(e);
  return v;
}

// What the test's own hook sees of each call (it must keep working beside the profile).
struct Seen {
  std::vector<std::string> ops;
  std::vector<double> bytes, flops;
};
opdev_profiler seen_hook(Seen* s) {
  opdev_profiler p{};
  p.user = s;
  p.op_begin = [](void* u, const opdev_op_info* info) {
    auto* s = static_cast<Seen*>(u);
    s->ops.push_back(opdev_op_name(info->op));
    s->bytes.push_back(info->bytes);
    s->flops.push_back(info->flops);
  };
  return p;
}

opdev_profile_options fixed_roofline(double read_gbps, double peak_gflops) {
  opdev_profile_options o;
  opdev_profile_options_init(&o);
  o.read_gbps = read_gbps;
  o.peak_gflops = peak_gflops;
  return o;
}

TEST(Profile, TraceHasOneCompleteEventPerCallWithLabelsAndThreads) {
  opdev::Context ctx("cpu", 1);
  Seen seen;
  opdev_profiler hook = seen_hook(&seen);
  ASSERT_EQ(opdev_context_set_profiler(ctx, &hook), OPDEV_STATUS_SUCCESS);
  const opdev_profile_options o = fixed_roofline(10, 100);
  opdev_profile* prof = nullptr;
  ASSERT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_SUCCESS) << opdev_last_error();

  std::vector<float> x(4 * 8, 0.5f), w(8, 1.0f), y(4 * 8), act(4 * 4), sum(4 * 8);
  TensorRef tx(x.data(), kFloat32, {4, 8}), tw(w.data(), kFloat32, {8}), ty(y.data(), kFloat32, {4, 8}),
      ta(act.data(), kFloat32, {4, 4}), ts(sum.data(), kFloat32, {4, 8});
  std::vector<std::string> names, cats;
  auto step = [&](int layer) {
    const std::string norm = "layers." + std::to_string(layer) + ".input_layernorm";
    const std::string silu = "layers." + std::to_string(layer) + ".mlp.act";
    ASSERT_EQ(opdev_context_set_label(ctx, norm.c_str()), OPDEV_STATUS_SUCCESS);
    ASSERT_EQ(opdev_rms_norm(ctx, ty, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
    ASSERT_EQ(opdev_context_set_label(ctx, silu.c_str()), OPDEV_STATUS_SUCCESS);
    ASSERT_EQ(opdev_silu_and_mul(ctx, ta, ty), OPDEV_STATUS_SUCCESS);
    ASSERT_EQ(opdev_context_set_label(ctx, nullptr), OPDEV_STATUS_SUCCESS);
    ASSERT_EQ(opdev_add(ctx, ts, tx, ty), OPDEV_STATUS_SUCCESS);
    EXPECT_NE(opdev_rms_norm(ctx, ty, tx, tw, -1.0), OPDEV_STATUS_SUCCESS);  // fails validation: not an op call
    names.insert(names.end(), {norm, silu, "add"});
    cats.insert(cats.end(), {"rms_norm", "silu_and_mul", "add"});
  };
  for (int l = 0; l < 3; ++l) step(l);
  std::thread([&] { step(3); }).join();  // a second thread: a second track
  EXPECT_EQ(opdev_profile_num_calls(prof), 12u);

  TempDir tmp;
  const std::string dir = tmp.path("out/nested");  // parents are created
  ASSERT_EQ(opdev_profile_write(prof, dir.c_str()), OPDEV_STATUS_SUCCESS) << opdev_last_error();
  for (const char* f : {"trace.json", "op_summary.csv", "fusion_candidates.csv", "report.txt"})
    EXPECT_TRUE(fs::is_regular_file(dir + "/" + f)) << f;

  const json trace = json::parse(read_all(dir + "/trace.json"));
  const std::vector<json> ev = complete_events(trace);
  ASSERT_EQ(ev.size(), names.size());
  ASSERT_EQ(seen.ops.size(), names.size());  // the test's hook saw every call too
  std::set<int64_t> tids;
  for (size_t i = 0; i < ev.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    EXPECT_EQ(ev[i].at("name"), names[i]);
    EXPECT_EQ(ev[i].at("cat"), cats[i]);
    EXPECT_EQ(ev[i].at("args").at("op"), cats[i]);
    EXPECT_EQ(ev[i].at("args").at("backend"), "cpu");
    EXPECT_EQ(ev[i].at("args").at("dtype"), "float32");
    EXPECT_EQ(ev[i].at("args").at("bytes").get<double>(), seen.bytes[i]);
    EXPECT_EQ(ev[i].at("args").at("flops").get<double>(), seen.flops[i]);
    EXPECT_GE(ev[i].at("dur").get<double>(), 0.0);
    EXPECT_GE(ev[i].at("ts").get<double>(), 0.0);
    if (i > 0) {  // sequential calls do not overlap (times are printed to the nanosecond)
      EXPECT_GE(ev[i].at("ts").get<double>() + 0.002,
                ev[i - 1].at("ts").get<double>() + ev[i - 1].at("dur").get<double>());
    }
    tids.insert(ev[i].at("tid").get<int64_t>());
  }
  EXPECT_EQ(ev[0].at("args").at("shapes"), "out[4,8] x[4,8] weight[8]");
  EXPECT_EQ(ev[1].at("args").at("shapes"), "out[4,4] x[4,8]");
  EXPECT_EQ(ev[0].at("args").at("label"), "layers.0.input_layernorm");
  EXPECT_EQ(ev[2].at("args").at("label"), "");
  EXPECT_EQ(tids.size(), 2u);
  EXPECT_EQ(ev[0].at("tid"), ev[8].at("tid"));
  EXPECT_NE(ev[0].at("tid"), ev[9].at("tid"));
  // One thread_name per track, and the process's name.
  std::set<int64_t> named;
  bool process = false;
  for (const json& e : trace.at("traceEvents")) {
    if (e.at("ph") != "M") continue;
    if (e.at("name") == "thread_name") named.insert(e.at("tid").get<int64_t>());
    if (e.at("name") == "process_name") process = e.at("args").at("name").get<std::string>().find("cpu") != std::string::npos;
  }
  EXPECT_EQ(named, tids);
  EXPECT_TRUE(process);

  opdev_profile_end(prof);
  // The test's hook outlives the profile.
  ASSERT_EQ(opdev_add(ctx, ts, tx, ty), OPDEV_STATUS_SUCCESS);
  EXPECT_EQ(seen.ops.size(), names.size() + 1);
}

TEST(Profile, SummaryTotalsMatchTheTrace) {
  opdev::Context ctx("cpu", 1);
  const opdev_profile_options o = fixed_roofline(10, 100);
  opdev_profile* prof = nullptr;
  ASSERT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_SUCCESS);
  std::vector<float> x(64 * 32, 0.25f), w(32, 1.0f), y(64 * 32), a(64 * 16);
  for (int rows : {4, 64}) {  // two shapes of each op
    TensorRef tx(x.data(), kFloat32, {rows, 32}), tw(w.data(), kFloat32, {32}), ty(y.data(), kFloat32, {rows, 32}),
        ta(a.data(), kFloat32, {rows, 16});
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(opdev_rms_norm(ctx, ty, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
      ASSERT_EQ(opdev_silu_and_mul(ctx, ta, ty), OPDEV_STATUS_SUCCESS);
    }
  }
  TempDir tmp;
  ASSERT_EQ(opdev_profile_write(prof, tmp.path().c_str()), OPDEV_STATUS_SUCCESS) << opdev_last_error();
  opdev_profile_end(prof);

  const std::vector<json> ev = complete_events(json::parse(read_all(tmp.path("trace.json"))));
  std::map<std::pair<std::string, std::string>, std::pair<int, double>> from_trace;  // (op, shapes) -> calls, us
  std::map<std::pair<std::string, std::string>, double> bytes, flops;
  for (const json& e : ev) {
    auto key = std::make_pair(e.at("cat").get<std::string>(), e.at("args").at("shapes").get<std::string>());
    from_trace[key].first += 1;
    from_trace[key].second += e.at("dur").get<double>();
    bytes[key] += e.at("args").at("bytes").get<double>();
    flops[key] += e.at("args").at("flops").get<double>();
  }
  const auto rows = read_csv(tmp.path("op_summary.csv"));
  ASSERT_EQ(rows.size(), 4u);  // 2 ops x 2 shapes
  ASSERT_EQ(rows.size(), from_trace.size());
  double prev_total = 1e300;
  for (const auto& r : rows) {
    const auto key = std::make_pair(r.at("op"), r.at("shapes"));
    SCOPED_TRACE(r.at("op") + " " + r.at("shapes"));
    ASSERT_TRUE(from_trace.count(key));  // the shapes field survived CSV quoting (it holds commas)
    EXPECT_EQ(r.at("backend"), "cpu");
    EXPECT_EQ(r.at("dtype"), "float32");
    EXPECT_EQ(std::stoi(r.at("calls")), 5);
    EXPECT_EQ(std::stoi(r.at("calls")), from_trace[key].first);
    const double total = std::stod(r.at("total_us"));
    EXPECT_NEAR(total, from_trace[key].second, 5 * 0.001 + 1e-9);  // both rounded to the nanosecond
    EXPECT_NEAR(std::stod(r.at("mean_us")), total / 5, 0.001);
    EXPECT_LE(std::stod(r.at("min_us")), std::stod(r.at("mean_us")) + 0.001);
    EXPECT_LE(total, prev_total);  // sorted by total time
    prev_total = total;
    // Rates and the roofline from the trace's own bytes, flops and durations, with the given machine
    // (10 GB/s, 100 GFLOP/s: balance 10 flop/byte; these ops are far below it).
    const double t_ns = from_trace[key].second * 1e3;
    EXPECT_NEAR(std::stod(r.at("gbps")), bytes[key] / t_ns, 1e-3 * bytes[key] / t_ns + 0.01 * bytes[key] / t_ns);
    EXPECT_EQ(r.at("bound"), "memory");
    ASSERT_LT(flops[key] / bytes[key], 10.0);
    const double roof_ns = std::max(bytes[key] / 10.0, flops[key] / 100.0);
    EXPECT_NEAR(std::stod(r.at("roofline_frac")), roof_ns / t_ns, 0.01 * roof_ns / t_ns + 1e-4);
    EXPECT_EQ(std::stod(r.at("bytes")), bytes[key]);
  }
}

// rms_norm writes a buffer that silu_and_mul reads, twice (layers 0 and 1); then chains that do not pass a
// tensor along or change the token count. With a fixed roofline the result is exact.
TEST(Profile, FusionFinderFindsAChainThroughASharedBufferOnly) {
  const int T = 4, H = 16;
  std::vector<float> x(T * H, 1.0f), w(H, 1.0f), a(T * H), b(T * H / 2), c(T * H, 2.0f), d(T * H / 2), e(T * H);
  TensorRef tx(x.data(), kFloat32, {T, H}), tw(w.data(), kFloat32, {H}), ta(a.data(), kFloat32, {T, H}),
      tb(b.data(), kFloat32, {T, H / 2}), tc(c.data(), kFloat32, {T, H}), td(d.data(), kFloat32, {T, H / 2}),
      te(e.data(), kFloat32, {T, H});
  // a viewed with another token count: [2T, H/2] -> silu_and_mul -> [2T, H/4]
  TensorRef ta2(a.data(), kFloat32, {2 * T, H / 2}), td2(d.data(), kFloat32, {2 * T, H / 4});
  std::vector<float> sq(H * H, 0.01f);
  TensorRef tsq(sq.data(), kFloat32, {H, H});
  auto ok = [](opdev_status s) { ASSERT_EQ(s, OPDEV_STATUS_SUCCESS) << opdev_last_error(); };
  auto calls = [&](opdev_context* ctx) {
    for (int l = 0; l < 2; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      opdev_context_set_label(ctx, (p + "post_norm").c_str());
      ok(opdev_rms_norm(ctx, ta, tx, tw, 1e-6));
      opdev_context_set_label(ctx, (p + "act").c_str());
      ok(opdev_silu_and_mul(ctx, tb, ta));
    }
    // No tensor shared: silu_and_mul reads c, not what rms_norm wrote (e).
    opdev_context_set_label(ctx, "unshared.norm");
    ok(opdev_rms_norm(ctx, te, tx, tw, 1e-6));
    opdev_context_set_label(ctx, "unshared.act");
    ok(opdev_silu_and_mul(ctx, td, tc));
    // A matrix product in between ends the run: norm -> linear -> activation share buffers but are not a
    // candidate (linear streams weights; epilogue fusion is not estimated).
    opdev_context_set_label(ctx, "gemm.norm");
    ok(opdev_rms_norm(ctx, te, tx, tw, 1e-6));
    opdev_context_set_label(ctx, "gemm.proj");
    ok(opdev_linear(ctx, tc, te, tsq, nullptr));
    opdev_context_set_label(ctx, "gemm.act");
    ok(opdev_silu_and_mul(ctx, td, tc));
    // Shared, but over another token count (leading dimension 2T instead of T).
    opdev_context_set_label(ctx, "retokened.norm");
    ok(opdev_rms_norm(ctx, ta, tx, tw, 1e-6));
    opdev_context_set_label(ctx, "retokened.act");
    ok(opdev_silu_and_mul(ctx, td2, ta2));
    opdev_context_set_label(ctx, nullptr);
  };

  {  // 2 GB/s, 1000 GFLOP/s: every call is memory-bound.
    opdev::Context ctx("cpu", 1);
    const opdev_profile_options o = fixed_roofline(2, 1000);
    opdev_profile* prof = nullptr;
    ASSERT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_SUCCESS);
    calls(ctx);
    TempDir tmp;
    ASSERT_EQ(opdev_profile_write(prof, tmp.path().c_str()), OPDEV_STATUS_SUCCESS) << opdev_last_error();
    const auto rows = read_csv(tmp.path("fusion_candidates.csv"));
    ASSERT_EQ(rows.size(), 1u) << read_all(tmp.path("fusion_candidates.csv"));
    const auto& r = rows[0];
    EXPECT_EQ(r.at("sequence"), "post_norm -> act");
    EXPECT_EQ(r.at("ops"), "rms_norm -> silu_and_mul");
    EXPECT_EQ(r.at("occurrences"), "2");
    EXPECT_EQ(r.at("calls_per_run"), "2");
    // The intermediate a [T, H] float32 is written once and read once per run: 2 x 256 bytes, 2 runs.
    const double avoided = 2.0 * 2 * (T * H * 4);
    EXPECT_EQ(std::stod(r.at("bytes_avoided")), avoided);
    EXPECT_NEAR(std::stod(r.at("saving_us")), avoided / 2.0 / 1e3, 1e-3);  // bytes / (2 bytes per ns)
    const std::string report = read_all(tmp.path("report.txt"));
    EXPECT_NE(report.find("post_norm -> act"), std::string::npos) << report;
    const std::string fusion = report.substr(report.find("fusion candidates"));
    EXPECT_EQ(fusion.find("unshared"), std::string::npos) << fusion;
    EXPECT_EQ(fusion.find("retokened"), std::string::npos) << fusion;
    EXPECT_EQ(fusion.find("gemm."), std::string::npos) << fusion;
    const char* text = nullptr;
    ASSERT_EQ(opdev_profile_report(prof, &text), OPDEV_STATUS_SUCCESS);
    EXPECT_EQ(std::string(text), report);
    opdev_profile_end(prof);
  }
  {  // 1e6 GB/s, 1e-3 GFLOP/s: every call is compute-bound, so no candidate.
    opdev::Context ctx("cpu", 1);
    const opdev_profile_options o = fixed_roofline(1e6, 1e-3);
    opdev_profile* prof = nullptr;
    ASSERT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_SUCCESS);
    calls(ctx);
    TempDir tmp;
    ASSERT_EQ(opdev_profile_write(prof, tmp.path().c_str()), OPDEV_STATUS_SUCCESS) << opdev_last_error();
    EXPECT_EQ(read_csv(tmp.path("fusion_candidates.csv")).size(), 0u) << read_all(tmp.path("fusion_candidates.csv"));
    for (const auto& r : read_csv(tmp.path("op_summary.csv"))) EXPECT_EQ(r.at("bound"), "compute") << r.at("op");
    opdev_profile_end(prof);
  }
}

TEST(Profile, LabelsAreEscapedInTheTrace) {
  opdev::Context ctx("cpu", 1);
  const opdev_profile_options o = fixed_roofline(10, 100);
  opdev_profile* prof = nullptr;
  ASSERT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_SUCCESS);
  std::vector<float> x(8, 1.0f), w(4, 1.0f), y(8);
  TensorRef tx(x.data(), kFloat32, {2, 4}), tw(w.data(), kFloat32, {4}), ty(y.data(), kFloat32, {2, 4});
  const std::string label = "q\"uote\\back\nline\t\xff\xc3\xa9";  // quote, backslash, controls, a bad byte, é
  ASSERT_EQ(opdev_context_set_label(ctx, label.c_str()), OPDEV_STATUS_SUCCESS);
  ASSERT_EQ(opdev_rms_norm(ctx, ty, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
  TempDir tmp;
  ASSERT_EQ(opdev_profile_write(prof, tmp.path().c_str()), OPDEV_STATUS_SUCCESS);
  opdev_profile_end(prof);
  const std::vector<json> ev = complete_events(json::parse(read_all(tmp.path("trace.json"))));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].at("name"), "q\"uote\\back\nline\t\xef\xbf\xbd\xc3\xa9");  // U+FFFD for the bad byte
}

TEST(Profile, OutlivesItsContextAndReportsErrorsWithThePath) {
  opdev_profile* prof = nullptr;
  {
    opdev::Context ctx("cpu", 1);
    const opdev_profile_options o = fixed_roofline(10, 100);
    ASSERT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_SUCCESS);
    opdev_profile* second = reinterpret_cast<opdev_profile*>(0x1);
    EXPECT_EQ(opdev_profile_begin(ctx, &o, &second), OPDEV_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(second, nullptr);
    EXPECT_NE(std::string(opdev_last_error()).find("already has a profile"), std::string::npos) << opdev_last_error();
    std::vector<float> x(8, 1.0f), w(4, 1.0f), y(8);
    TensorRef tx(x.data(), kFloat32, {2, 4}), tw(w.data(), kFloat32, {4}), ty(y.data(), kFloat32, {2, 4});
    ASSERT_EQ(opdev_rms_norm(ctx, ty, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
  }  // the context is destroyed first
  EXPECT_EQ(opdev_profile_num_calls(prof), 1u);
  TempDir tmp;
  ASSERT_EQ(opdev_profile_write(prof, tmp.path().c_str()), OPDEV_STATUS_SUCCESS) << opdev_last_error();
  EXPECT_EQ(complete_events(json::parse(read_all(tmp.path("trace.json")))).size(), 1u);

  // A path below a regular file cannot be a directory, whoever runs the test.
  { std::ofstream(tmp.path("file")) << "x"; }
  const std::string bad = tmp.path("file") + "/sub";
  EXPECT_EQ(opdev_profile_write(prof, bad.c_str()), OPDEV_STATUS_INVALID_ARGUMENT);
  std::string msg = opdev_last_error();
  EXPECT_EQ(msg.rfind("opdev_profile_write: ", 0), 0u) << msg;
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
  EXPECT_EQ(opdev_profile_write(prof, nullptr), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(opdev_profile_write(nullptr, tmp.path().c_str()), OPDEV_STATUS_INVALID_ARGUMENT);
  const char* text = nullptr;
  EXPECT_EQ(opdev_profile_report(nullptr, &text), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_STREQ(text, "");
  opdev_profile_end(prof);
  opdev_profile_end(nullptr);

  opdev::Context ctx("cpu", 1);
  opdev_profile_options o = fixed_roofline(-1, 100);
  EXPECT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(opdev_last_error()).find("options.read_gbps"), std::string::npos) << opdev_last_error();
  o = fixed_roofline(1, 1);
  o.struct_size = sizeof(o) + 8;
  EXPECT_EQ(opdev_profile_begin(ctx, &o, &prof), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(opdev_profile_begin(nullptr, nullptr, &prof), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(opdev_profile_begin(ctx, nullptr, nullptr), OPDEV_STATUS_INVALID_ARGUMENT);
}

// Restores OPDEV_PROFILE when a test that sets it ends.
struct EnvProfile {
  explicit EnvProfile(const std::string& v) { ::setenv("OPDEV_PROFILE", v.c_str(), 1); }
  ~EnvProfile() { ::unsetenv("OPDEV_PROFILE"); }
};

TEST(Profile, EnvironmentVariableRecordsContextsFromCreation) {
  TempDir tmp;
  const std::string root = tmp.path("env/profiles");
  {
    EnvProfile env(root);
    for (int k = 0; k < 2; ++k) {
      opdev::Context ctx("cpu", 1);
      std::vector<float> x(8, 1.0f), w(4, 1.0f), y(8);
      TensorRef tx(x.data(), kFloat32, {2, 4}), tw(w.data(), kFloat32, {4}), ty(y.data(), kFloat32, {2, 4});
      ASSERT_EQ(opdev_context_set_label(ctx, "layers.0.input_layernorm"), OPDEV_STATUS_SUCCESS);
      for (int i = 0; i <= k; ++i) ASSERT_EQ(opdev_rms_norm(ctx, ty, tx, tw, 1e-6), OPDEV_STATUS_SUCCESS);
      // The context already records: a second profile is refused, naming the variable.
      opdev_profile* p = nullptr;
      EXPECT_EQ(opdev_profile_begin(ctx, nullptr, &p), OPDEV_STATUS_INVALID_ARGUMENT);
      EXPECT_NE(std::string(opdev_last_error()).find("OPDEV_PROFILE"), std::string::npos) << opdev_last_error();
    }  // destroyed: written
  }
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(root)) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  ASSERT_EQ(dirs.size(), 2u);
  std::multiset<size_t> counts;
  for (const std::string& d : dirs) {
    EXPECT_EQ(fs::path(d).filename().string().rfind("ctx-", 0), 0u) << d;
    for (const char* f : {"trace.json", "op_summary.csv", "fusion_candidates.csv", "report.txt"})
      EXPECT_TRUE(fs::is_regular_file(d + "/" + f)) << d << "/" << f;
    const std::vector<json> ev = complete_events(json::parse(read_all(d + "/trace.json")));
    for (const json& e : ev) EXPECT_EQ(e.at("name"), "layers.0.input_layernorm");
    counts.insert(ev.size());
  }
  EXPECT_EQ(counts, (std::multiset<size_t>{1, 2}));

  // Contexts made after the variable is gone are not profiled.
  {
    opdev::Context ctx("cpu", 1);
  }
  size_t n = 0;
  for (auto it = fs::directory_iterator(root); it != fs::directory_iterator(); ++it) ++n;
  EXPECT_EQ(n, 2u);

  // An unusable directory fails the context's creation, naming the path.
  { std::ofstream(tmp.path("file")) << "x"; }
  const std::string bad = tmp.path("file") + "/profiles";
  EnvProfile env(bad);
  opdev_context* c = reinterpret_cast<opdev_context*>(0x1);
  EXPECT_EQ(opdev_context_create("cpu", nullptr, &c), OPDEV_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(c, nullptr);
  const std::string msg = opdev_last_error();
  EXPECT_NE(msg.find("OPDEV_PROFILE"), std::string::npos) << msg;
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
}

}  // namespace
