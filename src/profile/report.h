// What a profile turns into: the Chrome trace, the per-shape summary, the fusion candidates and the text
// report, all computed from a Recorder's calls and a roofline when written (never while recording).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "profile/machine.h"
#include "profile/recorder.h"

namespace opdev::profile {

// The roofline the calls are measured against.
struct Roofline {
  Machine machine;        // read_gbps (1 GB/s = 1 byte/ns), f32_gflops, bf16_gflops, i8_gops
  bool measured = false;  // false: the numbers were given in opdev_profile_options
  // No roofline: a device context (cuda) without figures in the options. The host's figures would not
  // apply and the device's are not measured here (opdev bench / bench-model measure them). roofline_ns
  // is then 0, reports print "-", and a call is memory-bound below kAbsentBalance FLOP per byte.
  bool absent = false;
  static constexpr double kAbsentBalance = 16.0;  // below any current CPU's or GPU's peak / bandwidth

  // The peak that bounds a call: its activation dtype's (Machine::peak_gflops), the int8 peak for the int8
  // products.
  double peak(const CallRecord& c) const;
  // Memory-bound: arithmetic intensity flops / bytes below the machine balance peak / bandwidth.
  bool memory_bound(const CallRecord& c) const;
  // The roofline's time for a call in ns: max(bytes / bandwidth, flops / peak of its dtype). Its ratio to
  // the measured time equals achieved FLOP/s / min(peak, intensity x bandwidth), and is defined for ops
  // without flops too.
  double roofline_ns(const CallRecord& c) const;
};

// "layers.3.self_attn.qkv_proj" -> "self_attn.qkv_proj": numeric path components are dropped, and a
// "layers" component just before one. An empty label becomes "(<op name>)".
std::string label_key(const std::string& label, opdev_op op);
// "out[2,8] x[2,8] weight[8]", a tensor whose dtype is not the activation dtype suffixed ":int32".
std::string shape_signature(const Recorder& r, const CallRecord& c);

// One row of op_summary.csv: calls of one (op, backend, dtype, shapes).
struct SummaryRow {
  std::string op, backend, dtype, shapes;
  uint64_t calls = 0;
  double total_ns = 0, min_ns = 0, bytes = 0, flops = 0, roofline_ns = 0;
  bool memory_bound = true;
  DLDataType dl_dtype{};
};
std::vector<SummaryRow> summarize(const Recorder& r, const Roofline& roof);  // by total time, descending

// Fusion candidates. A run is adjacent calls, each memory-bound with the same leading dimension of its
// first output (the tokens) as the first, each after the first reading (byte ranges overlap) an output of
// an earlier call of the run. Fusing a run keeps each intermediate it passes along in registers: the
// intermediate's write and one read are saved, 2 x its bytes. Runs with the same label sequence (layer
// numbers dropped) are one candidate.
struct FusionRun {
  std::vector<uint32_t> calls;  // indices into Recorder::calls()
  double bytes_avoided = 0;
};
std::vector<FusionRun> find_fusion_runs(const Recorder& r, const Roofline& roof);

struct FusionCandidate {
  std::string sequence;  // label keys joined by " -> "
  std::string ops;       // op names joined by " -> "
  uint64_t occurrences = 0;
  size_t length = 0;     // calls per run
  double run_ns = 0;     // measured time of those calls, all occurrences
  double bytes_avoided = 0, saving_ns = 0;  // all occurrences; saving = bytes / read bandwidth
};
std::vector<FusionCandidate> fusion_candidates(const Recorder& r, const Roofline& roof);  // by saving, descending

// The files. Each throws opdev::Error(INVALID_ARGUMENT) naming the path when it cannot be written.
void write_trace(const Recorder& r, const Roofline& roof, const std::string& path);
void write_summary_csv(const std::vector<SummaryRow>& rows, const std::string& path);
void write_fusion_csv(const std::vector<FusionCandidate>& cands, double total_op_ns, const std::string& path);
void write_text(const std::string& text, const std::string& path);

// The text report: totals, roofline, top `top` rows by op and dtype, by label key, and fusion candidates.
std::string format_report(const Recorder& r, const Roofline& roof, int top);

}  // namespace opdev::profile
