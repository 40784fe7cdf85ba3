// Profiler internals: label keys, the roofline formulas, the cost estimates for index data on a device, the
// in-place rule of the fusion finder, the quick machine measurement.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "opdev/opdev.hpp"
#include "ops/cost_bounds.h"
#include "profile/machine.h"
#include "profile/recorder.h"
#include "profile/report.h"

namespace {

using namespace opdev::profile;
using opdev::kBFloat16;
using opdev::kFloat32;
using opdev::kInt32;
using opdev::TensorRef;

TEST(ProfileInternal, LabelKeyDropsTheLayerNumber) {
  EXPECT_EQ(label_key("layers.3.self_attn.qkv_proj", OPDEV_OP_LINEAR), "self_attn.qkv_proj");
  EXPECT_EQ(label_key("layers.12.input_layernorm", OPDEV_OP_RMS_NORM), "input_layernorm");
  EXPECT_EQ(label_key("model.layers.0.mlp", OPDEV_OP_LINEAR), "model.mlp");
  EXPECT_EQ(label_key("mlp.experts.5.down", OPDEV_OP_GROUPED_MATMUL), "mlp.experts.down");
  EXPECT_EQ(label_key("lm_head", OPDEV_OP_LINEAR), "lm_head");
  EXPECT_EQ(label_key("", OPDEV_OP_RMS_NORM), "(rms_norm)");
  EXPECT_EQ(label_key("7", OPDEV_OP_ADD), "7");  // nothing but a number: kept
}

TEST(ProfileInternal, RooflineFormulas) {
  Roofline roof;
  roof.machine.read_gbps = 10;     // 10 bytes per ns
  roof.machine.f32_gflops = 100;   // 100 flops per ns: balance 10 flops per byte
  roof.machine.bf16_gflops = 400;  // balance 40
  CallRecord c;
  c.dtype = kFloat32;
  c.bytes = 100;
  c.flops = 500;  // intensity 5
  EXPECT_TRUE(roof.memory_bound(c));
  EXPECT_DOUBLE_EQ(roof.roofline_ns(c), 10.0);  // max(100 / 10, 500 / 100)
  c.flops = 2000;  // intensity 20
  EXPECT_FALSE(roof.memory_bound(c));
  EXPECT_DOUBLE_EQ(roof.roofline_ns(c), 20.0);
  c.dtype = kBFloat16;  // its own peak
  EXPECT_TRUE(roof.memory_bound(c));
  EXPECT_DOUBLE_EQ(roof.roofline_ns(c), 10.0);  // max(10, 2000 / 400)
  c.flops = 0;  // a copy: memory-bound, the roofline is the bytes
  EXPECT_TRUE(roof.memory_bound(c));
  EXPECT_DOUBLE_EQ(roof.roofline_ns(c), 10.0);
  // A CPU whose bf16 dot product is slower than its float32 FMA (Intel: the bf16 products then run on FMA):
  // bfloat16 is bounded by the float32 peak.
  roof.machine.bf16_gflops = 50;
  c.flops = 2000;
  EXPECT_DOUBLE_EQ(roof.roofline_ns(c), 20.0);  // max(10, 2000 / 100), not 2000 / 50
}

// The estimates a device backend's cost formulas use (src/ops/cost_bounds.h) against a direct count of the
// pairs (row i of a sequence with q rows and kv keys sees min(kv, max(0, kv - q + i + 1)) keys when causal).
TEST(ProfileInternal, CostBoundsForDeviceIndexData) {
  auto count = [](int64_t B, int64_t q, int64_t kv, bool causal) {
    double pairs = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < q; ++i) pairs += causal ? double(std::min(kv, std::max<int64_t>(0, kv - q + i + 1))) : double(kv);
    return pairs;
  };
  struct Shape {
    int64_t B, q, kv;
  };
  for (const Shape& s : {Shape{1, 8192, 8192}, Shape{1, 512, 512}, Shape{4, 1, 4096}, Shape{3, 7, 100}, Shape{2, 300, 17},
                         Shape{5, 1, 1}, Shape{1, 64, 0}})
    for (bool causal : {false, true})
      EXPECT_EQ(opdev::uniform_attention_pairs(s.B, s.B * s.q, double(s.kv), causal), count(s.B, s.q, s.kv, causal))
          << "B " << s.B << " q " << s.q << " kv " << s.kv << " causal " << causal;
  EXPECT_EQ(opdev::uniform_attention_pairs(0, 0, 128.0, true), 0.0);
  EXPECT_EQ(opdev::expert_weight_share_bound(32, 8), 0.25);    // decode, top-8 of 32: 8 experts at most
  EXPECT_EQ(opdev::expert_weight_share_bound(128, 4096), 1.0);  // prefill: every expert
  EXPECT_EQ(opdev::expert_weight_share_bound(8, 0), 0.0);
}

// q_norm writes q in place, rope reads and writes q and k in place (in/out arguments): one run, whose
// intermediate is q (written by rms_norm, read by rope). Without a roofline (a device context without
// figures) the run is still found (memory-bound by intensity) and the reports print "-" for the roof.
TEST(ProfileInternal, FusionRunThroughInPlaceArguments) {
  opdev::Context ctx("cpu", 1);
  const int64_t T = 3, Hq = 2, Hk = 1, D = 8, QKV = (Hq + 2 * Hk) * D, P = 16;
  std::vector<float> qkv(size_t(T * QKV), 0.5f), w(D, 1.0f), cs(size_t(P * D), 0.0f);
  std::vector<int32_t> pos{0, 1, 2};
  TensorRef q(qkv.data(), kFloat32, {T, Hq, D}, {QKV, D, 1});
  TensorRef k(qkv.data(), kFloat32, {T, Hk, D}, {QKV, D, 1}, DLDevice{kDLCPU, 0}, uint64_t(Hq * D * 4));
  TensorRef tw(w.data(), kFloat32, {D}), tcs(cs.data(), kFloat32, {P, D}), tpos(pos.data(), kInt32, {T});
  Recorder r;
  r.attach(ctx);
  opdev::check(opdev_rms_norm(ctx, q, q, tw, 1e-6));
  opdev::check(opdev_rope(ctx, q, k, tpos, tcs, 1));
  r.detach();
  opdev::check(opdev_rms_norm(ctx, q, q, tw, 1e-6));  // not recorded
  ASSERT_EQ(r.calls().size(), 2u);
  Roofline roof;
  roof.machine.read_gbps = 1;
  roof.machine.f32_gflops = 1e6;
  const std::vector<FusionRun> runs = find_fusion_runs(r, roof);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].calls, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(runs[0].bytes_avoided, 2.0 * double(T * Hq * D * 4));
  EXPECT_EQ(shape_signature(r, r.calls()[1]), "q[3,2,8] k[3,1,8] positions[3]:int32 cos_sin_cache[16,8]");

  Roofline none;
  none.absent = true;
  EXPECT_EQ(none.roofline_ns(r.calls()[0]), 0.0);
  EXPECT_TRUE(none.memory_bound(r.calls()[0]));
  CallRecord dense;  // 64 FLOP per byte: above the balance assumed without a roofline
  dense.bytes = 1e6;
  dense.flops = 6.4e7;
  EXPECT_FALSE(none.memory_bound(dense));
  ASSERT_EQ(find_fusion_runs(r, none).size(), 1u);
  for (const SummaryRow& g : summarize(r, none)) EXPECT_LT(g.roofline_ns, 0) << g.op;
  const std::string text = format_report(r, none, 15);
  EXPECT_NE(text.find("roofline: none (a device context"), std::string::npos) << text;
  EXPECT_EQ(text.find("measured on this host"), std::string::npos) << text;
  EXPECT_NE(text.find("rms_norm           float32          1"), std::string::npos) << text;
  EXPECT_NE(text.find("    -\n"), std::string::npos) << text;  // the roof column
}

TEST(ProfileInternal, QuickMachineMeasurement) {
  const Machine m = measure_machine(1, Effort::Quick);
  EXPECT_EQ(m.threads, 1);
  EXPECT_GT(m.read_gbps, 0.1);
  EXPECT_GT(m.f32_gflops, 0.1);
  EXPECT_GE(m.bf16_gflops, 0.0);
  EXPECT_EQ(m.peak_gflops(kFloat32), m.f32_gflops);
  EXPECT_EQ(m.peak_gflops(kBFloat16), std::max(m.bf16_gflops, m.f32_gflops));
}

}  // namespace
