// The generic invoker covers every op of ops.def with the right argument order: real calls (the conformance
// suite's quick cases up to a size budget: strided views, in-place aliases, absent optional tensors, every
// scalar setting, every dtype they run in) are
// captured through the profiler hook, re-invoked from the captured tensors and scalars alone, and must give
// bitwise-identical outputs. An op without captured and re-invoked calls fails the test.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "conformance.h"
#include "inspect/inspect.h"

namespace cf = opdev::conformance;
namespace ins = opdev::inspect;

namespace {

int64_t case_elements(const cf::Case& c) {
  int64_t n = 0;
  for (const cf::TensorSpec& t : c.tensors) {
    int64_t k = 1;
    for (int64_t d : t.shape) k *= d;
    n += k;
  }
  return n;
}

// Re-invokes a recorded call on ctx from its pre-values (outputs start zeroed) and returns its outputs.
std::map<std::string, ins::HostTensor> reinvoke(opdev_context* ctx, const ins::FullCall& call) {
  std::vector<std::unique_ptr<ins::DeviceTensor>> keep;
  std::map<std::string, const DLTensor*> args;
  std::map<std::string, double> scalars(call.scalars.begin(), call.scalars.end());
  for (const ins::CallTensor& t : call.tensors) {
    if (t.absent) continue;
    ins::HostTensor h = t.role == ins::Role::Out ? t.post : t.pre;
    if (t.role == ins::Role::Out) std::fill(h.bytes.begin(), h.bytes.end(), uint8_t(0));
    keep.push_back(std::make_unique<ins::DeviceTensor>(ctx, h));
    args[t.name] = keep.back()->get();
  }
  const opdev_status s = ins::invoke(ctx, call.op, args, scalars);
  EXPECT_EQ(s, OPDEV_STATUS_SUCCESS) << opdev_op_name(call.op) << ": " << opdev_last_error();
  std::map<std::string, ins::HostTensor> out;
  size_t k = 0;
  for (const ins::CallTensor& t : call.tensors) {
    if (t.absent) continue;
    if (t.role != ins::Role::In) out[t.name] = keep[k]->download();
    ++k;
  }
  return out;
}

class Invoker : public ::testing::TestWithParam<const char*> {};

TEST_P(Invoker, EveryOpReinvokesBitwise) {
  const std::string backend = GetParam();
  opdev::Context ctx(backend.c_str(), 2);
  std::map<std::string, int> covered;
  for (int i = 0; i < OPDEV_OP_COUNT; ++i) covered[opdev_op_name(opdev_op(i))] = 0;

  // Per op, its smallest few quick cases.
  std::map<std::string, std::vector<const cf::Case*>> by_op;
  for (const cf::Case& c : cf::registry().cases)
    if (!c.large) by_op[c.op].push_back(&c);
  for (auto& [op, cases] : by_op) {
    std::stable_sort(cases.begin(), cases.end(), [](const cf::Case* a, const cf::Case* b) { return case_elements(*a) < case_elements(*b); });
    // Every quick case up to a size budget (always the smallest four): strided views, in-place aliases,
    // absent optional tensors and every scalar setting the suite has (e.g. non-causal attention).
    std::vector<const cf::Case*> pick;
    for (size_t i = 0; i < cases.size(); ++i)
      if (i < 4 || case_elements(*cases[i]) <= 1000000) pick.push_back(cases[i]);
    for (size_t ci = 0; ci < pick.size(); ++ci) {
      const cf::Case* c = pick[ci];
      for (DLDataType dt : c->dtypes) {
        // Every dtype for the smallest four cases on cpu; float32 otherwise (the argument order is the point).
        const bool all_dtypes = backend == "cpu" && ci < 4;
        if (!all_dtypes && !opdev::same_dtype(dt, opdev::kFloat32) && c->dtypes.size() > 1) continue;
        const opdev_op id = opdev_op_from_name(op.c_str());
        if (!opdev_supports(ctx, id, dt)) continue;
        SCOPED_TRACE(op + " / " + c->name + " / " + opdev::dtype_str(dt));
        std::vector<ins::FullCall> calls;
        {
          cf::Instance inst(*c, ctx, dt);
          ins::Hooks hooks(ctx);
          ins::FullRecorder rec;
          hooks.add(&rec);
          const opdev_status s = inst.run();
          ASSERT_EQ(s, OPDEV_STATUS_SUCCESS) << opdev_last_error();
          ASSERT_NO_THROW(hooks.check());
          calls = std::move(rec.calls());
        }
        if (calls.empty()) continue;  // an empty case (T = 0) does not reach the hook
        ASSERT_EQ(calls.size(), 1u);
        const ins::FullCall& call = calls[0];
        ASSERT_EQ(opdev_op_name(call.op), op);
        const auto got = reinvoke(ctx, call);
        for (const ins::CallTensor& t : call.tensors) {
          if (t.absent || t.role == ins::Role::In) continue;
          const ins::HostTensor& g = got.at(t.name);
          EXPECT_EQ(g.shape, t.post.shape) << t.name;
          EXPECT_TRUE(g.bytes == t.post.bytes) << "output '" << t.name << "' differs from the captured call's";
        }
        ++covered[op];
      }
    }
  }
  for (const auto& [op, n] : covered) EXPECT_GE(n, 1) << "op '" << op << "' of ops.def: no call captured and re-invoked on " << backend;
}

INSTANTIATE_TEST_SUITE_P(Backends, Invoker, ::testing::Values("cpu", "ref"));

// The signatures name what the front-ends report: checked call by call above (FullRecorder throws on a
// difference); here every op has one and roles are consistent with num_outputs.
TEST(Signatures, EveryOpHasOne) {
  for (int i = 0; i < OPDEV_OP_COUNT; ++i) {
    const ins::OpSignature& s = ins::op_signature(opdev_op(i));
    EXPECT_EQ(s.name, std::string(opdev_op_name(opdev_op(i))));
    ASSERT_EQ(s.tensors.size(), s.roles.size());
    for (size_t k = 0; k < s.roles.size(); ++k)
      EXPECT_EQ(s.roles[k] != ins::Role::In, int(k) < s.num_outputs()) << s.name << " tensor " << s.tensors[k] << ": outputs come first";
  }
  EXPECT_THROW(ins::op_signature(OPDEV_OP_COUNT), ins::InspectError);
}

TEST(Invoke, RejectsUnknownArgumentsAndMissingScalars) {
  opdev::Context ctx("ref");
  try {
    ins::invoke(ctx, OPDEV_OP_LINEAR, {{"input", nullptr}}, {});
    FAIL() << "no error";
  } catch (const ins::InspectError& e) {
    EXPECT_NE(std::string(e.what()).find("linear has no tensor argument 'input'"), std::string::npos) << e.what();
  }
  try {
    ins::invoke(ctx, OPDEV_OP_RMS_NORM, {}, {});
    FAIL() << "no error";
  } catch (const ins::InspectError& e) {
    EXPECT_NE(std::string(e.what()).find("rms_norm: scalar 'eps' is missing"), std::string::npos) << e.what();
  }
  try {
    ins::invoke(ctx, OPDEV_OP_ROPE, {}, {{"is_neox", 0.5}});
    FAIL() << "no error";
  } catch (const ins::InspectError& e) {
    EXPECT_NE(std::string(e.what()).find("'is_neox' must be an integer"), std::string::npos) << e.what();
  }
  // Missing tensors are NULL: the op's own validation answers.
  EXPECT_EQ(ins::invoke(ctx, OPDEV_OP_COPY, {}, {}), OPDEV_STATUS_INVALID_ARGUMENT);
}

}  // namespace
