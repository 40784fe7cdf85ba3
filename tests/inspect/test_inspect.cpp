// The pieces of src/inspect with hand-computed expectations: metrics, the tolerance rule, pairing two runs
// (graphs that differ), host copies of strided views, .npy round trips of every dtype, dumps and the clear
// errors of bad entries.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "inspect/inspect.h"
#include "inspect/replay.h"
#include "model/npy.h"

namespace ins = opdev::inspect;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

fs::path temp_dir(const std::string& tag) {
  fs::path p = fs::temp_directory_path() / ("opdev-inspect-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(Metrics, HandComputed) {
  const ins::Metrics m = ins::metrics({1, 2, 3}, {1, 2, 4});
  EXPECT_EQ(m.n, 3);
  EXPECT_DOUBLE_EQ(m.nmse, 1.0 / 21.0);  // (3-4)^2 / (1 + 4 + 16)
  EXPECT_DOUBLE_EQ(m.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(m.max_rel, 0.25);
  EXPECT_EQ(m.mismatches, 1);
  EXPECT_EQ(m.nonfinite_mismatch, 0);
}

TEST(Metrics, RelativeErrorFloorAndNonFinite) {
  // b = {0, 100}: rms(b) = sqrt(5000) = 70.71; the floor for element 0 is 1e-3 * 70.71.
  const ins::Metrics m = ins::metrics({0.01, 100}, {0, 100});
  EXPECT_NEAR(m.max_rel, 0.01 / (1e-3 * std::sqrt(5000.0)), 1e-12);
  const ins::Metrics n = ins::metrics({NAN, INFINITY, 1, NAN}, {NAN, 1, INFINITY, 2});
  EXPECT_EQ(n.nan_a, 2);
  EXPECT_EQ(n.inf_a, 1);
  EXPECT_EQ(n.nan_b, 1);
  EXPECT_EQ(n.inf_b, 1);
  EXPECT_EQ(n.nonfinite_mismatch, 3);  // NaN vs NaN agrees; inf vs 1, 1 vs inf, NaN vs 2 do not
  EXPECT_EQ(ins::metrics({0, 0}, {0, 0}).nmse, 0.0);
  EXPECT_TRUE(std::isinf(ins::metrics({1, 0}, {0, 0}).nmse));
  EXPECT_NE(error_of([] { ins::metrics({1}, {1, 2}); }).find("1 values against 2"), std::string::npos);
}

TEST(Tolerance, LessPreciseSideDecides) {
  using opdev::kBFloat16, opdev::kFloat16, opdev::kFloat32;
  EXPECT_EQ(ins::nmse_tolerance(kFloat32, kFloat32), 1e-8);
  EXPECT_EQ(ins::nmse_tolerance(kFloat16, kFloat32), 5e-4);
  EXPECT_EQ(ins::nmse_tolerance(kFloat32, kFloat16), 5e-4);
  EXPECT_EQ(ins::nmse_tolerance(kBFloat16, kFloat32), 3e-2);
  EXPECT_EQ(ins::nmse_tolerance(kFloat16, kBFloat16), 3e-2);
  // A 1% error in one op (NMSE 1e-4) is over the float32 bound and under the half-precision ones.
  EXPECT_GT(1e-4, ins::nmse_tolerance(kFloat32, kFloat32));
}

TEST(Layers, FromLabels) {
  EXPECT_EQ(ins::layer_of("layers.3.self_attn.qkv_proj"), "layers.3");
  EXPECT_EQ(ins::layer_of("layers.12"), "layers.12");
  EXPECT_EQ(ins::layer_of("lm_head"), "lm_head");
  EXPECT_EQ(ins::layer_of("layers.x.y"), "layers.x.y");
  EXPECT_EQ(ins::layer_of(""), "");
}

ins::CapturedCall call(uint64_t i, opdev_op op, const std::string& label, std::vector<double> v) {
  ins::CapturedCall c;
  c.index = i;
  c.op = op;
  c.label = label;
  ins::CapturedOutput o;
  o.name = "out";
  o.dtype = opdev::kFloat32;
  o.shape = {int64_t(v.size())};
  o.values = std::move(v);
  c.outputs.push_back(o);
  return c;
}

TEST(CompareCalls, FirstExceedingCallAndIntegers) {
  std::vector<ins::CapturedCall> a = {call(0, OPDEV_OP_EMBEDDING, "embedding", {1, 2}), call(1, OPDEV_OP_LINEAR, "layers.0.x", {1, 2.1}),
                                      call(2, OPDEV_OP_LINEAR, "lm_head", {1, 3})};
  std::vector<ins::CapturedCall> b = {call(0, OPDEV_OP_EMBEDDING, "embedding", {1, 2}), call(1, OPDEV_OP_LINEAR, "layers.0.x", {1, 2}),
                                      call(2, OPDEV_OP_LINEAR, "lm_head", {1, 2})};
  const auto r = ins::compare_calls(a, b, 0.01);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_FALSE(r[0].exceeds);
  EXPECT_FALSE(r[1].exceeds);  // 0.01 / 5 = 0.002 <= 0.01
  EXPECT_NEAR(r[1].worst_nmse, 0.002, 1e-12);
  EXPECT_TRUE(r[2].exceeds);   // 1 / 5 = 0.2
  // Integer outputs are exact: one differing id exceeds whatever the bound.
  ins::CapturedCall ia = call(0, OPDEV_OP_MOE_GATING_TOPK, "layers.0.mlp.moe_gating_topk", {3, 1});
  ins::CapturedCall ib = ia;
  ia.outputs[0].dtype = ib.outputs[0].dtype = opdev::kInt32;
  ib.outputs[0].values = {3, 2};
  const auto ri = ins::compare_calls({ia}, {ib}, 1e9);
  EXPECT_TRUE(ri[0].exceeds);
  EXPECT_TRUE(ri[0].outputs[0].exact);
}

TEST(CompareCalls, GraphsThatDifferAreAClearError) {
  std::vector<ins::CapturedCall> a = {call(0, OPDEV_OP_EMBEDDING, "embedding", {1}), call(1, OPDEV_OP_LINEAR, "layers.0.mlp.down_proj", {1})};
  std::vector<ins::CapturedCall> b = {call(0, OPDEV_OP_EMBEDDING, "embedding", {1}), call(1, OPDEV_OP_LINEAR, "layers.0.mlp.gate_up_proj", {1})};
  const std::string e = error_of([&] { ins::compare_calls(a, b, 1); });
  EXPECT_NE(e.find("the graphs differ at op call 1"), std::string::npos) << e;
  EXPECT_NE(e.find("A ran linear at 'layers.0.mlp.down_proj', B ran linear at 'layers.0.mlp.gate_up_proj'"), std::string::npos) << e;
  b[1] = call(1, OPDEV_OP_SILU_AND_MUL, "layers.0.mlp.down_proj", {1});
  EXPECT_NE(error_of([&] { ins::compare_calls(a, b, 1); }).find("B ran silu_and_mul"), std::string::npos);
  b.pop_back();
  const std::string c = error_of([&] { ins::compare_calls(a, b, 1); });
  EXPECT_NE(c.find("A ran 2 op calls, B 1"), std::string::npos) << c;
  EXPECT_NE(c.find("exists only in A"), std::string::npos) << c;
  b.push_back(call(1, OPDEV_OP_LINEAR, "layers.0.mlp.down_proj", {1, 2}));
  EXPECT_NE(error_of([&] { ins::compare_calls(a, b, 1); }).find("A's output 'out' [1], B's 'out' [2]"), std::string::npos);
}

// A strided view on a context: the host copy holds its elements in row-major order; scaling touches only them.
TEST(HostCopies, StridedViewsAndScaling) {
  opdev::Context ctx("cpu");
  std::vector<float> buf(12);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = float(i);
  // [3, 2] view with row stride 4 starting at element 1: 1 2 / 5 6 / 9 10
  opdev::TensorRef v(buf.data(), opdev::kFloat32, {3, 2}, {4, 1}, DLDevice{kDLCPU, 0}, 4);
  const ins::HostTensor h = ins::download(ctx, v);
  EXPECT_EQ(h.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(ins::to_double(h), (std::vector<double>{1, 2, 5, 6, 9, 10}));
  ins::scale_in_place(ctx, v, 2.0);
  EXPECT_EQ(buf, (std::vector<float>{0, 2, 4, 3, 4, 10, 12, 7, 8, 18, 20, 11}));
  // Transposed: [2, 3] with strides {1, 4} over the same view.
  opdev::TensorRef t(buf.data(), opdev::kFloat32, {2, 3}, {1, 4}, DLDevice{kDLCPU, 0}, 4);
  EXPECT_EQ(ins::to_double(ins::download(ctx, t)), (std::vector<double>{2, 10, 18, 4, 12, 20}));
}

TEST(HostCopies, GatherSlots) {
  opdev::Context ctx("cpu");
  // cache [2 blocks, 2 slots, 1 head, 2 dims]: slot s holds {10 s, 10 s + 1}
  std::vector<float> cache(8);
  for (int s = 0; s < 4; ++s) cache[size_t(2 * s)] = float(10 * s), cache[size_t(2 * s + 1)] = float(10 * s + 1);
  std::vector<int64_t> slots = {3, -1, 0};
  opdev::TensorRef c(cache.data(), opdev::kFloat32, {2, 2, 1, 2});
  opdev::TensorRef sm(slots.data(), opdev::kInt64, {3});
  const ins::HostTensor g = ins::gather_slots(ctx, c, sm);
  EXPECT_EQ(g.shape, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(ins::to_double(g), (std::vector<double>{30, 31, 0, 1}));
}

TEST(Npy, RoundTripEveryDtypeLosslessly) {
  const fs::path d = temp_dir("npy");
  for (DLDataType t : {opdev::kFloat32, opdev::kBFloat16, opdev::kFloat16, opdev::kFloat64, opdev::kInt32, opdev::kInt64, opdev::kInt8,
                       opdev::kUInt8}) {
    ins::HostTensor h;
    h.dtype = t;
    h.shape = {2, 3};
    h.bytes.resize(6 * opdev::dtype_bytes(t));
    for (size_t i = 0; i < h.bytes.size(); ++i) h.bytes[i] = uint8_t(37 * i + 11);
    const std::string p = (d / (ins::dtype_name(t) + ".npy")).string();
    ins::save_tensor(p, h);
    const opdev::model::NpyArray a = opdev::model::read_npy(p);
    EXPECT_EQ(a.shape, h.shape);
    EXPECT_EQ(a.bytes, h.bytes) << ins::dtype_name(t);
  }
  // bfloat16 goes as its bits ('<u2'), float16 as numpy's '<f2'.
  EXPECT_EQ(opdev::model::read_npy((d / "bfloat16.npy").string()).descr, "<u2");
  EXPECT_EQ(opdev::model::read_npy((d / "float16.npy").string()).descr, "<f2");
  EXPECT_NE(error_of([&] { opdev::model::read_npy((d / "missing.npy").string()); }).find("cannot read"), std::string::npos);
  std::ofstream((d / "junk.npy").string()) << "not an npy file";
  EXPECT_NE(error_of([&] { opdev::model::read_npy((d / "junk.npy").string()); }).find("not a version 1 .npy file"), std::string::npos);
  fs::remove_all(d);
}

// A real call dumped, loaded back and replayed; then the entry's files broken in the ways a user could.
TEST(Dump, EntryRoundTripAndBadEntries) {
  const fs::path d = temp_dir("dump");
  opdev::Context ctx("cpu");
  std::vector<float> x = {1, -2, 3, 0.5f, 4, -1}, w = {1, 2, 0.5f}, out(6);
  opdev::TensorRef xt(x.data(), opdev::kFloat32, {2, 3}), wt(w.data(), opdev::kFloat32, {3}), ot(out.data(), opdev::kFloat32, {2, 3});
  {
    ins::Hooks hooks(ctx);
    ins::Dumper dumper((d / "dump").string(), "");
    hooks.add(&dumper);
    opdev_context_set_label(ctx, "layers.0.input_layernorm");
    ASSERT_EQ(opdev_rms_norm(ctx, ot, xt, wt, 1e-6), OPDEV_STATUS_SUCCESS);
    opdev_context_set_label(ctx, nullptr);
    hooks.check();
    dumper.finish();
    EXPECT_EQ(dumper.entries(), 1u);
  }
  const fs::path e = d / "dump" / "00000-layers.0.input_layernorm";
  ASSERT_TRUE(fs::exists(e / "entry.json"));
  ASSERT_TRUE(fs::exists(d / "dump" / "index.json"));
  const ins::Entry entry = ins::load_entry(e.string());
  EXPECT_EQ(entry.op, OPDEV_OP_RMS_NORM);
  EXPECT_EQ(entry.label, "layers.0.input_layernorm");
  ASSERT_EQ(entry.scalars.size(), 1u);
  EXPECT_EQ(entry.scalars[0].second, 1e-6);
  const ins::HostTensor xo = ins::load_tensor(entry, entry.tensors[1], false);
  EXPECT_EQ(ins::to_double(xo), (std::vector<double>{1, -2, 3, 0.5, 4, -1}));
  ins::ReplayResult r = ins::replay(entry, {});
  EXPECT_TRUE(r.ok);
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_TRUE(r.outputs[0].against_bitwise);

  // The whole dump directory instead of an entry.
  EXPECT_NE(error_of([&] { ins::load_entry((d / "dump").string()); }).find("is a dump directory"), std::string::npos);
  // A wrong element type in a tensor file.
  const std::string xfile = (e / "x.npy").string();
  std::vector<double> xd = {1, 2, 3, 4, 5, 6};
  opdev::model::write_npy(xfile, "<f8", {2, 3}, xd.data(), xd.size() * 8);
  std::string m = error_of([&] { ins::load_tensor(entry, entry.tensors[1], false); });
  EXPECT_NE(m.find("x.npy: element type '<f8', but entry.json says float32"), std::string::npos) << m;
  // A wrong shape.
  opdev::model::write_npy_f32(xfile, x.data(), {3, 2});
  m = error_of([&] { ins::load_tensor(entry, entry.tensors[1], false); });
  EXPECT_NE(m.find("shape [3, 2], but entry.json says [2, 3]"), std::string::npos) << m;
  // A missing file.
  fs::remove(xfile);
  EXPECT_NE(error_of([&] { ins::replay(entry, {}); }).find("cannot read"), std::string::npos);
  // Unknown op, unknown tensor, missing scalar.
  auto rewrite = [&](const std::string& from, const std::string& to) {
    std::ifstream f(e / "entry.json");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t p = s.find(from);
    ASSERT_NE(p, std::string::npos) << from;
    s.replace(p, from.size(), to);
    std::ofstream(e / "entry.json") << s;
  };
  rewrite("\"rms_norm\"", "\"rms_nrom\"");
  m = error_of([&] { ins::load_entry(e.string()); });
  EXPECT_NE(m.find("unknown op 'rms_nrom'"), std::string::npos) << m;
  rewrite("\"rms_nrom\"", "\"rms_norm\"");
  rewrite("\"weight\"", "\"gamma\"");
  m = error_of([&] { ins::load_entry(e.string()); });
  EXPECT_NE(m.find("tensor 'gamma': rms_norm has no such tensor argument"), std::string::npos) << m;
  rewrite("\"gamma\"", "\"weight\"");
  rewrite("\"eps\"", "\"epsilon\"");
  m = error_of([&] { ins::load_entry(e.string()); });
  EXPECT_NE(m.find("scalar 'eps' of rms_norm is missing"), std::string::npos) << m;
  fs::remove_all(d);
}

}  // namespace
