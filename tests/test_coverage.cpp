// Coverage: every op of the one list (include/opdev/ops.def) has a ref and a cpu implementation that
// runs, numeric conformance cases and bad-argument cases. Fails when an op is added without them.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "conformance.h"

namespace cf = opdev::conformance;

namespace {

class Coverage : public ::testing::TestWithParam<int> {};

TEST_P(Coverage, OpHasCasesAndRunsOnRefAndCpu) {
  const opdev_op op = opdev_op(GetParam());
  const std::string name = opdev_op_name(op);
  const cf::Registry& reg = cf::registry();
  int numeric = 0, small = 0, errors = 0;
  for (const cf::Case& c : reg.cases)
    if (c.op == name) {
      ++numeric;
      if (!c.large) ++small;
    }
  for (const cf::ErrorCase& e : reg.errors)
    if (e.op == name) ++errors;
  EXPECT_GE(numeric, 3) << name << " needs numeric conformance cases";
  EXPECT_GE(small, 1) << name << " needs a case that runs in --quick mode";
  EXPECT_GE(errors, 3) << name << " needs bad-argument cases";
  const DLDataType dtypes[] = {opdev::kFloat32, opdev::kBFloat16, opdev::kFloat16};
  for (const char* backend : {"ref", "cpu"}) {
    opdev::Context ctx(backend);
    for (DLDataType d : dtypes) {
      const bool table_f32_only = op == OPDEV_OP_ROPE_CACHE;
      if (table_f32_only && !opdev::same_dtype(d, opdev::kFloat32)) continue;
      EXPECT_TRUE(opdev_supports(ctx, op, d)) << backend << " lacks " << name << " for " << opdev::dtype_str(d);
    }
    // The op's first quick case passes on this backend (a stub that returns "not implemented" fails).
    cf::Options o;
    o.backend = backend;
    o.ops = {name};
    o.quick = true;
    o.errors = false;
    o.dtypes = {opdev::kFloat32};
    for (const cf::Case& c : reg.cases)
      if (c.op == name && !c.large) {
        o.filter = c.name;
        break;
      }
    const cf::Summary s = cf::run(o);
    EXPECT_GE(s.passed, 1) << name << " on " << backend;
    EXPECT_EQ(s.failed, 0) << name << " on " << backend << ": " << (s.results.empty() ? "" : s.results[0].detail);
  }
}

// The cases' tolerance terms are the contract's (contract_tolerance, which `opdev replay` applies to recorded
// calls): the same mag inputs and rtol, and the same rounding counts (a case may name an in-place output
// by its aliased in/out).
TEST(Coverage, CaseTolerancesAreTheContracts) {
  for (const cf::Case& c : cf::registry().cases) {
    const cf::Tolerance t = cf::contract_tolerance(c.op);
    EXPECT_EQ(c.tol.mag_inputs, t.mag_inputs) << c.op << " / " << c.name;
    EXPECT_EQ(c.tol.mag_rtol, t.mag_rtol) << c.op << " / " << c.name;
    std::multiset<int> a, b;
    for (const auto& [n, k] : c.tol.roundings) a.insert(k);
    for (const auto& [n, k] : t.roundings) b.insert(k);
    EXPECT_EQ(a, b) << c.op << " / " << c.name;
    EXPECT_EQ(c.tol.exact, t.exact) << c.op << " / " << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllOps, Coverage, ::testing::Range(0, int(OPDEV_OP_COUNT)),
                         [](const ::testing::TestParamInfo<int>& p) { return std::string(opdev_op_name(opdev_op(p.param))); });

}  // namespace
