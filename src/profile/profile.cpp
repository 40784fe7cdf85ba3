// C API of the profiler (opdev_profile_*) and OPDEV_PROFILE.
#include "profile/profile.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "core/context.h"
#include "core/env.h"
#include "core/error.h"
#include "core/logging.h"
#include "profile/machine.h"
#include "profile/report.h"

namespace opdev::profile {

namespace fs = std::filesystem;

namespace {

// The quick measurement, once per process and thread count.
Machine measured_machine(int threads) {
  static std::mutex mu;
  static std::map<int, Machine> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(threads);
  if (it == cache.end()) {
    log(LogLevel::Info, "profile: measuring the roofline (read bandwidth, FMA peaks) with ", threads, " threads");
    it = cache.emplace(threads, measure_machine(threads, Effort::Quick)).first;
  }
  return it->second;
}

// The options' figures; else, on a host context, this host's (measured once); on a device context none.
Roofline resolve_roofline(const opdev_profile_options& o, int threads, bool device) {
  Roofline r;
  const bool given = o.read_gbps > 0 && o.peak_gflops > 0;
  if (device && !given) {
    r.absent = true;
    return r;
  }
  if (given) {
    r.machine.threads = threads;
    r.machine.simd = "given";
    r.measured = false;
  } else {
    r.machine = measured_machine(threads);
    r.measured = true;
  }
  if (o.read_gbps > 0) r.machine.read_gbps = o.read_gbps;
  if (o.peak_gflops > 0) r.machine.f32_gflops = o.peak_gflops;
  if (o.peak_gflops_bf16 > 0) r.machine.bf16_gflops = o.peak_gflops_bf16;
  else if (!r.measured) r.machine.bf16_gflops = o.peak_gflops;
  return r;
}

opdev_profile_options checked_options(const opdev_profile_options* options) {
  opdev_profile_options o;
  opdev_profile_options_init(&o);
  if (!options) return o;
  if (options->struct_size < sizeof(size_t) || options->struct_size > sizeof(o))
    fail(OPDEV_STATUS_INVALID_ARGUMENT, "options: struct_size ", options->struct_size, " is not a known opdev_profile_options size (",
         sizeof(o), "); call opdev_profile_options_init first");
  std::memcpy(&o, options, options->struct_size);
  const std::pair<const char*, double> numbers[] = {
      {"read_gbps", o.read_gbps}, {"peak_gflops", o.peak_gflops}, {"peak_gflops_bf16", o.peak_gflops_bf16}};
  for (const auto& [name, v] : numbers)
    if (!(v >= 0) || !std::isfinite(v)) fail(OPDEV_STATUS_INVALID_ARGUMENT, "options.", name, ": expected >= 0 (0 = measure), got ", v);
  if (o.top < 0) fail(OPDEV_STATUS_INVALID_ARGUMENT, "options.top: expected >= 0 (0 = 15), got ", o.top);
  return o;
}

int top_rows(const opdev_profile_options& o) { return o.top > 0 ? o.top : 15; }

void make_directory(const std::string& dir, const char* what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(OPDEV_STATUS_INVALID_ARGUMENT, what, "cannot create directory '", dir, "': ", ec.message());
  if (!fs::is_directory(dir, ec)) fail(OPDEV_STATUS_INVALID_ARGUMENT, what, "'", dir, "' is not a directory");
}

void write_all(opdev_profile* p, const std::string& dir) {
  make_directory(dir, "dir: ");
  const Roofline roof = resolve_roofline(p->options, p->recorder.num_threads(), p->recorder.device());
  const Recorder& r = p->recorder;
  double op_ns = 0;
  for (const CallRecord& c : r.calls()) op_ns += double(c.end_ns - c.begin_ns);
  const fs::path d(dir);
  write_trace(r, roof, (d / "trace.json").string());
  write_summary_csv(summarize(r, roof), (d / "op_summary.csv").string());
  write_fusion_csv(fusion_candidates(r, roof), op_ns, (d / "fusion_candidates.csv").string());
  p->report = format_report(r, roof, top_rows(p->options));
  write_text(p->report, (d / "report.txt").string());
}

void check_profile(const opdev_profile* p) {
  if (!p) fail(OPDEV_STATUS_INVALID_ARGUMENT, "profile: expected a profile, got NULL");
}

}  // namespace

void start_env_profile(opdev_context* ctx) {
  const std::string dir = env_string("OPDEV_PROFILE");
  if (dir.empty()) return;
  const std::string what = "environment variable OPDEV_PROFILE='" + dir + "': ";
  make_directory(dir, what.c_str());
  // The first ctx-<n> not taken (other contexts, other processes, earlier runs); mkdir claims it.
  static std::atomic<int> next{0};
  std::string sub;
  for (int tries = 0;; ++tries) {
    sub = (fs::path(dir) / ("ctx-" + std::to_string(next++))).string();
    if (::mkdir(sub.c_str(), 0777) == 0) break;
    if (errno != EEXIST || tries > 100000) fail(OPDEV_STATUS_INVALID_ARGUMENT, what, "cannot create directory '", sub, "': ", std::strerror(errno));
  }
  auto p = std::make_unique<opdev_profile>();
  opdev_profile_options_init(&p->options);
  p->recorder.attach(ctx);
  ctx->env_profile = p.release();
  ctx->env_profile_dir = sub;
  log(LogLevel::Info, "profile: recording the context into ", sub);
}

void finish_env_profile(opdev_context* ctx) noexcept {
  opdev_profile* p = ctx->env_profile;
  if (!p) return;
  ctx->env_profile = nullptr;
  try {
    write_all(p, ctx->env_profile_dir);
    log(LogLevel::Info, "profile: wrote ", p->recorder.calls().size(), " op calls to ", ctx->env_profile_dir);
  } catch (const std::exception& e) {
    log(LogLevel::Error, "OPDEV_PROFILE: ", e.what());
  }
  delete p;  // detaches
}

}  // namespace opdev::profile

using namespace opdev;
using namespace opdev::profile;

extern "C" {

OPDEV_API void opdev_profile_options_init(opdev_profile_options* options) {
  if (!options) return;
  std::memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
}

OPDEV_API opdev_status opdev_profile_begin(opdev_context* ctx, const opdev_profile_options* options, opdev_profile** out_profile) {
  return api_call("opdev_profile_begin", [&] {
    if (!out_profile) fail(OPDEV_STATUS_INVALID_ARGUMENT, "out_profile: expected a pointer, got NULL");
    *out_profile = nullptr;
    if (!ctx) fail(OPDEV_STATUS_INVALID_ARGUMENT, "ctx: expected a context, got NULL");
    const opdev_profile_options o = checked_options(options);
    if (ctx->recorder) {
      if (ctx->env_profile)
        fail(OPDEV_STATUS_INVALID_ARGUMENT, "ctx: already profiled by OPDEV_PROFILE (into ", ctx->env_profile_dir,
             "); a context has one profile at a time");
      fail(OPDEV_STATUS_INVALID_ARGUMENT, "ctx: already has a profile (opdev_profile_begin); end it first");
    }
    auto p = std::make_unique<opdev_profile>();
    p->options = o;
    p->recorder.attach(ctx);
    *out_profile = p.release();
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API uint64_t opdev_profile_num_calls(const opdev_profile* profile) { return profile ? profile->recorder.calls().size() : 0; }

OPDEV_API opdev_status opdev_profile_write(opdev_profile* profile, const char* dir) {
  return api_call("opdev_profile_write", [&] {
    check_profile(profile);
    if (!dir || !*dir) fail(OPDEV_STATUS_INVALID_ARGUMENT, "dir: expected a directory path, got ", dir ? "\"\"" : "NULL");
    write_all(profile, dir);
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API opdev_status opdev_profile_report(opdev_profile* profile, const char** out_text) {
  return api_call("opdev_profile_report", [&] {
    if (!out_text) fail(OPDEV_STATUS_INVALID_ARGUMENT, "out_text: expected a pointer, got NULL");
    *out_text = "";
    check_profile(profile);
    profile->report = format_report(profile->recorder, resolve_roofline(profile->options, profile->recorder.num_threads(), profile->recorder.device()),
                                    top_rows(profile->options));
    *out_text = profile->report.c_str();
    return OPDEV_STATUS_SUCCESS;
  });
}

OPDEV_API void opdev_profile_end(opdev_profile* profile) { delete profile; }

}  // extern "C"
