#include "profile/report.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string_view>
#include <tuple>

#include "core/dtype.h"
#include "core/error.h"

namespace opdev::profile {

namespace {

double dur_ns(const CallRecord& c) { return double(c.end_ns - c.begin_ns); }

// Arguments an op reads although they are outputs (in/out arguments, docs/OPS.md): rope's q and k.
bool reads_outputs(opdev_op op) { return op == OPDEV_OP_ROPE; }

bool same_dt(DLDataType a, DLDataType b) { return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes; }

// ---- formatting -------------------------------------------------------------------------------------

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

// A JSON number: integers exactly, others to 6 significant digits; never inf or NaN.
std::string json_num(double x) {
  if (!std::isfinite(x)) return "0";
  if (x == std::floor(x) && std::fabs(x) < 1e15) return fmt("%.0f", x);
  return fmt("%.6g", x);
}

// Length of the valid UTF-8 sequence at s[i], 0 if invalid (overlong, surrogate, > U+10FFFF, truncated).
size_t utf8_len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// A JSON string literal; invalid UTF-8 bytes become U+FFFD.
void json_str(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += char(ch);
      ++i;
    } else if (ch < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", ch);
      out += b;
      ++i;
    } else if (ch < 0x80) {
      out += char(ch);
      ++i;
    } else if (size_t n = utf8_len(s, i)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break; quotes doubled.
std::string csv(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"') q += '"';
    q += ch;
  }
  return q + "\"";
}

std::string human_bytes(double b) {
  if (b >= 1e9) return fmt("%.2f GB", b / 1e9);
  if (b >= 1e6) return fmt("%.2f MB", b / 1e6);
  if (b >= 1e3) return fmt("%.1f kB", b / 1e3);
  return fmt("%.0f B", b);
}

// 3 significant digits, "-" for zero (as bench prints).
std::string g3(double x) { return x == 0 || !std::isfinite(x) ? std::string("-") : fmt("%.3g", x); }

// Writes a file, reporting every failure with the path.
class OutFile {
 public:
  explicit OutFile(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (!f_) fail(OPDEV_STATUS_INVALID_ARGUMENT, "cannot write '", path, "': ", std::strerror(errno));
  }
  ~OutFile() {
    if (f_) std::fclose(f_);
  }
  void write(const std::string& s) {
    if (!s.empty() && std::fwrite(s.data(), 1, s.size(), f_) != s.size())
      fail(OPDEV_STATUS_INVALID_ARGUMENT, "cannot write '", path_, "': ", std::strerror(errno));
  }
  void close() {
    const bool bad = std::ferror(f_) != 0;
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (bad || rc != 0) fail(OPDEV_STATUS_INVALID_ARGUMENT, "cannot write '", path_, "': ", std::strerror(errno));
  }

 private:
  std::string path_;
  FILE* f_;
};

const TensorRecord* first_output(const Recorder& r, const CallRecord& c) {
  for (uint32_t k = 0; k < c.num_tensors; ++k) {
    const TensorRecord& t = r.tensors()[c.first_tensor + k];
    if (t.output) return &t;
  }
  return nullptr;
}

bool overlap(const TensorRecord& a, const TensorRecord& b) { return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi; }

// Index (within the call) of the outputs of `w` that call `rd` reads, appended to *out. True if any.
bool reads_from(const Recorder& r, const CallRecord& w, const CallRecord& rd, std::vector<uint32_t>* out) {
  bool any = false;
  for (uint32_t k = 0; k < w.num_tensors; ++k) {
    const TensorRecord& o = r.tensors()[w.first_tensor + k];
    if (!o.output) continue;
    for (uint32_t j = 0; j < rd.num_tensors; ++j) {
      const TensorRecord& in = r.tensors()[rd.first_tensor + j];
      if ((!in.output || reads_outputs(rd.op)) && overlap(o, in)) {
        any = true;
        if (out) out->push_back(k);
        break;
      }
    }
  }
  return any;
}

}  // namespace

// ---- roofline --------------------------------------------------------------------------------------

double Roofline::peak(const CallRecord& c) const {
  // The int8 products run int8 multiply-adds whatever their output (activation) dtype.
  if (c.op == OPDEV_OP_LINEAR_W8A8 || c.op == OPDEV_OP_GROUPED_MATMUL_W8A8) return machine.peak_int8_gops();
  return machine.peak_gflops(c.dtype);
}

bool Roofline::memory_bound(const CallRecord& c) const {
  if (absent) return c.flops < kAbsentBalance * c.bytes;
  // flops / bytes < peak / bandwidth, without dividing by zero.
  return c.flops * machine.read_gbps < peak(c) * c.bytes;
}

double Roofline::roofline_ns(const CallRecord& c) const {
  if (absent) return 0.0;
  const double bw = machine.read_gbps, peak = this->peak(c);
  return std::max(bw > 0 ? c.bytes / bw : 0.0, peak > 0 ? c.flops / peak : 0.0);
}

// ---- keys ------------------------------------------------------------------------------------------

std::string label_key(const std::string& label, opdev_op op) {
  if (label.empty()) return std::string("(") + (opdev_op_name(op) ? opdev_op_name(op) : "?") + ")";
  std::vector<std::string> parts;
  size_t b = 0;
  while (b <= label.size()) {
    size_t e = label.find('.', b);
    if (e == std::string::npos) e = label.size();
    std::string p = label.substr(b, e - b);
    const bool numeric = !p.empty() && std::all_of(p.begin(), p.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (numeric) {
      if (!parts.empty() && parts.back() == "layers") parts.pop_back();
    } else {
      parts.push_back(p);
    }
    b = e + 1;
  }
  std::string k;
  for (const std::string& p : parts) k += (k.empty() ? "" : ".") + p;
  return k.empty() ? label : k;
}

std::string shape_signature(const Recorder& r, const CallRecord& c) {
  std::string s;
  for (uint32_t k = 0; k < c.num_tensors; ++k) {
    const TensorRecord& t = r.tensors()[c.first_tensor + k];
    if (!s.empty()) s += ' ';
    s += t.name;
    s += '[';
    for (int d = 0; d < t.ndim; ++d) {
      if (d) s += ',';
      s += std::to_string(r.dims()[t.dims + uint32_t(d)]);
    }
    s += ']';
    if (!same_dt(t.dtype, c.dtype)) s += ":" + dl_dtype_name(t.dtype);
  }
  return s;
}

// ---- summary ---------------------------------------------------------------------------------------

std::vector<SummaryRow> summarize(const Recorder& r, const Roofline& roof) {
  std::map<std::tuple<std::string, std::string, std::string, std::string>, SummaryRow> groups;
  for (const CallRecord& c : r.calls()) {
    SummaryRow row;
    row.op = opdev_op_name(c.op);
    row.backend = c.backend;
    row.dtype = dl_dtype_name(c.dtype);
    row.dl_dtype = c.dtype;
    row.shapes = shape_signature(r, c);
    SummaryRow& g = groups.try_emplace({row.op, row.backend, row.dtype, row.shapes}, row).first->second;
    const double t = dur_ns(c);
    g.min_ns = g.calls == 0 ? t : std::min(g.min_ns, t);
    ++g.calls;
    g.total_ns += t;
    g.bytes += c.bytes;
    g.flops += c.flops;
    g.roofline_ns += roof.roofline_ns(c);
  }
  std::vector<SummaryRow> rows;
  for (auto& kv : groups) {
    SummaryRow& g = kv.second;
    CallRecord total;  // the group's totals as one call, for the bound
    total.bytes = g.bytes;
    total.flops = g.flops;
    total.dtype = g.dl_dtype;
    g.memory_bound = roof.memory_bound(total);
    if (roof.absent) g.roofline_ns = -1;  // no roofline: the CSV leaves the fraction empty
    rows.push_back(std::move(g));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const SummaryRow& a, const SummaryRow& b) { return a.total_ns > b.total_ns; });
  return rows;
}

// ---- fusion ----------------------------------------------------------------------------------------

// Ops that stream weights or the KV cache are kernels of their own in every engine (GEMM, attention):
// they end a run. Fusing an elementwise op into their prologue or epilogue is another optimisation.
static bool streams_weights_or_cache(opdev_op op) {
  return op == OPDEV_OP_LINEAR || op == OPDEV_OP_GROUPED_MATMUL || op == OPDEV_OP_PAGED_ATTENTION || op == OPDEV_OP_LINEAR_W8A8 ||
         op == OPDEV_OP_GROUPED_MATMUL_W8A8;
}

std::vector<FusionRun> find_fusion_runs(const Recorder& r, const Roofline& roof) {
  const std::vector<CallRecord>& calls = r.calls();
  std::vector<FusionRun> runs;
  std::vector<uint32_t> run;
  int64_t lead = 0;
  auto flush = [&] {
    if (run.size() >= 2) {
      // Each output of a call in the run that a later call of the run reads is an intermediate, counted once.
      FusionRun fr;
      fr.calls = run;
      for (size_t a = 0; a + 1 < run.size(); ++a) {
        std::vector<uint32_t> outs;
        for (size_t b = a + 1; b < run.size(); ++b) reads_from(r, calls[run[a]], calls[run[b]], &outs);
        std::sort(outs.begin(), outs.end());
        outs.erase(std::unique(outs.begin(), outs.end()), outs.end());
        for (uint32_t k : outs) fr.bytes_avoided += 2 * r.tensors()[calls[run[a]].first_tensor + k].nbytes;
      }
      runs.push_back(std::move(fr));
    }
    run.clear();
  };
  for (uint32_t i = 0; i < uint32_t(calls.size()); ++i) {
    const CallRecord& c = calls[i];
    const TensorRecord* out = first_output(r, c);
    const bool eligible =
        c.status == OPDEV_STATUS_SUCCESS && out && out->ndim >= 1 && !streams_weights_or_cache(c.op) && roof.memory_bound(c);
    if (!eligible) {
      flush();
      continue;
    }
    const int64_t l = r.dims()[out->dims];
    bool joins = !run.empty() && l == lead;
    if (joins) {
      joins = false;
      for (uint32_t j : run)
        if (reads_from(r, calls[j], c, nullptr)) {
          joins = true;
          break;
        }
    }
    if (!joins) {
      flush();
      lead = l;
    }
    run.push_back(i);
  }
  flush();
  return runs;
}

std::vector<FusionCandidate> fusion_candidates(const Recorder& r, const Roofline& roof) {
  std::map<std::string, FusionCandidate> by_key;
  for (const FusionRun& run : find_fusion_runs(r, roof)) {
    std::string seq, ops;
    double t = 0;
    for (uint32_t i : run.calls) {
      const CallRecord& c = r.calls()[i];
      seq += (seq.empty() ? "" : " -> ") + label_key(r.label(c.label), c.op);
      ops += std::string(ops.empty() ? "" : " -> ") + opdev_op_name(c.op);
      t += dur_ns(c);
    }
    FusionCandidate& fc = by_key[seq];
    if (fc.occurrences == 0) {
      fc.sequence = seq;
      fc.ops = ops;
      fc.length = run.calls.size();
    }
    ++fc.occurrences;
    fc.run_ns += t;
    fc.bytes_avoided += run.bytes_avoided;
  }
  std::vector<FusionCandidate> v;
  for (auto& kv : by_key) {
    kv.second.saving_ns = roof.machine.read_gbps > 0 ? kv.second.bytes_avoided / roof.machine.read_gbps : 0;
    v.push_back(std::move(kv.second));
  }
  // By saving; without a roofline (saving 0) by the bytes a fusion avoids.
  std::stable_sort(v.begin(), v.end(), [](const FusionCandidate& a, const FusionCandidate& b) {
    return a.saving_ns != b.saving_ns ? a.saving_ns > b.saving_ns : a.bytes_avoided > b.bytes_avoided;
  });
  return v;
}

// ---- files -----------------------------------------------------------------------------------------

void write_trace(const Recorder& r, const Roofline& roof, const std::string& path) {
  OutFile f(path);
  const long pid = long(::getpid());
  std::string s;
  s.reserve(1 << 20);
  s += "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"opdev profiler\",\"backend\":";
  json_str(s, r.backend_name());
  s += ",\"read_gbps\":" + json_num(roof.machine.read_gbps) + ",\"f32_gflops\":" + json_num(roof.machine.f32_gflops) +
       ",\"bf16_gflops\":" + json_num(roof.machine.bf16_gflops) + ",\"roofline_measured\":" + (roof.measured ? "true" : "false") +
       ",\"roofline_absent\":" + (roof.absent ? "true" : "false") +
       "},\n\"traceEvents\":[\n";
  // Metadata: the process and one named track per thread.
  std::string pname = "opdev " + r.backend_name();
  if (!r.backend_describe().empty()) pname += " (" + r.backend_describe() + ")";
  s += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) + ",\"tid\":0,\"args\":{\"name\":";
  json_str(s, pname);
  s += "}}";
  for (const ThreadRecord& t : r.threads()) {
    s += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(t.os_tid) +
         ",\"args\":{\"name\":";
    json_str(s, (t.name.empty() ? std::string("thread") : t.name) + " (tid " + std::to_string(t.os_tid) + ")");
    s += "}}";
  }
  for (const CallRecord& c : r.calls()) {
    const std::string& label = r.label(c.label);
    const char* op = opdev_op_name(c.op);
    const double ns = dur_ns(c);
    s += ",\n{\"name\":";
    json_str(s, label.empty() ? std::string(op) : label);
    s += ",\"cat\":";
    json_str(s, op);
    s += ",\"ph\":\"X\",\"ts\":" + fmt("%.3f", double(c.begin_ns) / 1e3) + ",\"dur\":" + fmt("%.3f", ns / 1e3) +
         ",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(r.threads()[c.thread].os_tid) + ",\"args\":{\"op\":";
    json_str(s, op);
    s += ",\"label\":";
    json_str(s, label);
    s += ",\"backend\":";
    json_str(s, c.backend);
    s += ",\"dtype\":";
    json_str(s, dl_dtype_name(c.dtype));
    s += ",\"shapes\":";
    json_str(s, shape_signature(r, c));
    s += ",\"bytes\":" + json_num(c.bytes) + ",\"flops\":" + json_num(c.flops) + ",\"GB/s\":" + json_num(ns > 0 ? c.bytes / ns : 0) +
         ",\"GFLOP/s\":" + json_num(ns > 0 ? c.flops / ns : 0) + ",\"call_index\":" + std::to_string(c.call_index);
    if (c.status != OPDEV_STATUS_SUCCESS) {
      s += ",\"status\":";
      json_str(s, opdev_status_string(c.status));
    }
    s += "}}";
    if (s.size() > (1 << 20) - 4096) {
      f.write(s);
      s.clear();
    }
  }
  s += "\n]}\n";
  f.write(s);
  f.close();
}

void write_summary_csv(const std::vector<SummaryRow>& rows, const std::string& path) {
  OutFile f(path);
  std::string s = "op,backend,dtype,shapes,calls,total_us,mean_us,min_us,gbps,gflops,bound,roofline_frac,bytes,flops\n";
  for (const SummaryRow& g : rows) {
    s += csv(g.op) + "," + csv(g.backend) + "," + csv(g.dtype) + "," + csv(g.shapes) + "," + std::to_string(g.calls) + "," +
         fmt("%.3f", g.total_ns / 1e3) + "," + fmt("%.3f", g.total_ns / 1e3 / double(g.calls)) + "," + fmt("%.3f", g.min_ns / 1e3) + "," +
         fmt("%.4g", g.total_ns > 0 ? g.bytes / g.total_ns : 0) + "," + fmt("%.4g", g.total_ns > 0 ? g.flops / g.total_ns : 0) + "," +
         (g.memory_bound ? "memory" : "compute") + "," +
         (g.roofline_ns < 0 ? std::string() : fmt("%.4f", g.total_ns > 0 ? g.roofline_ns / g.total_ns : 0)) + "," +
         json_num(g.bytes) + "," + json_num(g.flops) + "\n";
  }
  f.write(s);
  f.close();
}

void write_fusion_csv(const std::vector<FusionCandidate>& cands, double total_op_ns, const std::string& path) {
  OutFile f(path);
  std::string s = "sequence,ops,occurrences,calls_per_run,run_time_us,bytes_avoided,saving_us,saving_share\n";
  for (const FusionCandidate& c : cands)
    s += csv(c.sequence) + "," + csv(c.ops) + "," + std::to_string(c.occurrences) + "," + std::to_string(c.length) + "," +
         fmt("%.3f", c.run_ns / 1e3) + "," + json_num(c.bytes_avoided) + "," + fmt("%.3f", c.saving_ns / 1e3) + "," +
         fmt("%.4f", total_op_ns > 0 ? c.saving_ns / total_op_ns : 0) + "\n";
  f.write(s);
  f.close();
}

void write_text(const std::string& text, const std::string& path) {
  OutFile f(path);
  f.write(text);
  f.close();
}

// ---- text report -----------------------------------------------------------------------------------

std::string format_report(const Recorder& r, const Roofline& roof, int top) {
  const Machine& m = roof.machine;
  double op_ns = 0;
  for (const CallRecord& c : r.calls()) op_ns += dur_ns(c);
  const double wall_ns = double(r.span_ns());
  std::string s;
  s += "profile: " + std::to_string(r.calls().size()) + " op calls on " + r.backend_name();
  if (!r.backend_describe().empty()) s += " (" + r.backend_describe() + ")";
  s += ", " + std::to_string(r.num_threads()) + " threads: " + fmt("%.3f", op_ns / 1e6) + " ms in ops over " +
       fmt("%.3f", wall_ns / 1e6) + " ms from the first op's start to the last op's end\n";
  if (roof.absent)
    s += "roofline: none (a device context: the host's figures would not apply; give read_gbps / peak_gflops in "
         "opdev_profile_options, or use opdev bench-model, which measures the device); memory-bound: under " +
         fmt("%.0f", Roofline::kAbsentBalance) + " FLOP per byte\n";
  else
    s += std::string("roofline (") + (roof.measured ? "measured on this host" : "given") + "): read " + fmt("%.1f", m.read_gbps) +
         " GB/s, float32 " + fmt("%.0f", m.f32_gflops) + " GFLOP/s, bfloat16 " +
         (m.bf16_gflops > 0 ? fmt("%.0f", m.bf16_gflops) + " GFLOP/s" : std::string("n/a (float32 peak)")) + ", int8 " +
         (m.i8_gops > 0 ? fmt("%.0f", m.i8_gops) + " GOP/s" : std::string("n/a (float32 peak)")) + "\n";
  if (r.calls().empty()) return s + "no op calls recorded\n";

  // A table of groups by total time.
  struct Agg {
    std::string key1, key2;
    uint64_t calls = 0;
    double ns = 0, bytes = 0, flops = 0, roof_ns = 0;
  };
  auto table = [&](const char* title, const char* h1, const char* h2, int w1, int w2, auto key) {
    std::map<std::pair<std::string, std::string>, Agg> groups;
    for (const CallRecord& c : r.calls()) {
      auto k = key(c);
      Agg& a = groups[k];
      a.key1 = k.first;
      a.key2 = k.second;
      ++a.calls;
      a.ns += dur_ns(c);
      a.bytes += c.bytes;
      a.flops += c.flops;
      a.roof_ns += roof.roofline_ns(c);
    }
    std::vector<Agg> v;
    for (auto& kv : groups) v.push_back(kv.second);
    std::stable_sort(v.begin(), v.end(), [](const Agg& a, const Agg& b) { return a.ns > b.ns; });
    char line[512];
    s += std::string("\n") + title + "\n";
    std::snprintf(line, sizeof line, "  %-*s %-*s %8s %10s %6s %10s %8s %8s %5s\n", w1, h1, w2, h2, "calls", "total ms", "share", "mean us",
                  "GB/s", "GFLOP/s", "roof");
    s += line;
    size_t shown = 0;
    for (const Agg& a : v) {
      if (int(shown) >= top) break;
      ++shown;
      const std::string rf = roof.absent ? std::string("-") : fmt("%.0f%%", a.ns > 0 ? 100 * a.roof_ns / a.ns : 0.0);
      std::snprintf(line, sizeof line, "  %-*s %-*s %8llu %10.3f %5.1f%% %10.2f %8s %8s %5s\n", w1, a.key1.c_str(), w2, a.key2.c_str(),
                    (unsigned long long)a.calls, a.ns / 1e6, op_ns > 0 ? 100 * a.ns / op_ns : 0.0, a.ns / 1e3 / double(a.calls),
                    g3(a.ns > 0 ? a.bytes / a.ns : 0).c_str(), g3(a.ns > 0 ? a.flops / a.ns : 0).c_str(), rf.c_str());
      s += line;
    }
    if (v.size() > shown) s += "  (" + std::to_string(v.size() - shown) + " more)\n";
  };
  table("top operators by op and dtype:", "op", "dtype", 18, 9, [&](const CallRecord& c) {
    return std::make_pair(std::string(opdev_op_name(c.op)), dl_dtype_name(c.dtype));
  });
  size_t w = 5;
  for (uint32_t i = 0; i < r.calls().size(); ++i) w = std::max(w, label_key(r.label(r.calls()[i].label), r.calls()[i].op).size());
  table("top operators by label (layer number dropped):", "label", "op", int(std::min<size_t>(w, 40)), 16, [&](const CallRecord& c) {
    return std::make_pair(label_key(r.label(c.label), c.op), std::string(opdev_op_name(c.op)));
  });
  s += "(share: of the time in ops; roof: roofline time max(bytes / bandwidth, flops / peak) / measured time)\n";

  const std::vector<FusionCandidate> fc = fusion_candidates(r, roof);
  s += "\nfusion candidates: adjacent memory-bound calls over the same tokens, each reading what an earlier one wrote;\n"
       "saving = 2 x bytes of each intermediate / read bandwidth\n";
  if (fc.empty()) return s + "  none\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %10s %6s %6s %6s %10s  %s\n", "saving us", "share", "runs", "calls", "avoided", "sequence");
  s += line;
  size_t shown = 0;
  for (const FusionCandidate& c : fc) {
    if (int(shown) >= top) break;
    ++shown;
    if (roof.absent)
      std::snprintf(line, sizeof line, "  %10s %6s %6llu %6zu %10s  ", "-", "-", (unsigned long long)c.occurrences, c.length,
                    human_bytes(c.bytes_avoided).c_str());
    else
      std::snprintf(line, sizeof line, "  %10.2f %5.1f%% %6llu %6zu %10s  ", c.saving_ns / 1e3, op_ns > 0 ? 100 * c.saving_ns / op_ns : 0.0,
                    (unsigned long long)c.occurrences, c.length, human_bytes(c.bytes_avoided).c_str());
    s += line + c.sequence + "\n";
  }
  if (fc.size() > shown) s += "  (" + std::to_string(fc.size() - shown) + " more)\n";
  return s;
}

}  // namespace opdev::profile
