// The conformance harness's own machinery must be able to fail: the comparator and the encodings.
// Expected bit patterns are IEEE 754 facts, not computed by opdev.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "conformance.h"

namespace cf = opdev::conformance;

namespace {

uint16_t bits16(double v, DLDataType t) {
  uint16_t b;
  cf::encode(v, t, &b);
  return b;
}

TEST(Harness, EncodesKnownBitPatterns) {
  EXPECT_EQ(bits16(1.0, opdev::kBFloat16), 0x3F80);
  EXPECT_EQ(bits16(-2.0, opdev::kBFloat16), 0xC000);
  EXPECT_EQ(bits16(1.0, opdev::kFloat16), 0x3C00);
  EXPECT_EQ(bits16(65504.0, opdev::kFloat16), 0x7BFF);
  EXPECT_EQ(bits16(65520.0, opdev::kFloat16), 0x7C00);     // rounds to inf
  EXPECT_EQ(bits16(65519.99, opdev::kFloat16), 0x7BFF);
  EXPECT_EQ(bits16(std::ldexp(1.0, -24), opdev::kFloat16), 0x0001);  // smallest subnormal
  EXPECT_EQ(bits16(std::ldexp(1.0, -25), opdev::kFloat16), 0x0000);  // tie to even (zero)
  EXPECT_EQ(bits16(1.0 + std::ldexp(1.0, -11), opdev::kFloat16), 0x3C00);  // tie to even
  EXPECT_EQ(bits16(1.0 + 3 * std::ldexp(1.0, -11), opdev::kFloat16), 0x3C02);
  EXPECT_EQ(bits16(1.0 + std::ldexp(1.0, -8), opdev::kBFloat16), 0x3F80);   // tie to even
  EXPECT_EQ(bits16(1.0 + 3 * std::ldexp(1.0, -8), opdev::kBFloat16), 0x3F82);
  EXPECT_EQ(bits16(INFINITY, opdev::kBFloat16), 0x7F80);
  EXPECT_TRUE(std::isnan(cf::decode(opdev::kFloat16, "\x00\x7e")));
  EXPECT_EQ(cf::decode(opdev::kFloat16, "\x01\x00"), std::ldexp(1.0, -24));
  EXPECT_EQ(cf::decode(opdev::kBFloat16, "\x80\x3f"), 1.0);
}

TEST(Harness, ComparatorBound) {
  const std::vector<double> none;
  // float32: bound = 1e-5 + 1.3e-6 * |ref|.
  auto st = cf::compare({1.0 + 1.12e-5}, {1.0}, none, opdev::kFloat32, 0, 0, false);
  EXPECT_EQ(st.bad, 0);
  EXPECT_LT(st.max_ratio, 1.0);
  EXPECT_GT(st.max_ratio, 0.99);
  st = cf::compare({1.0 + 1.14e-5}, {1.0}, none, opdev::kFloat32, 0, 0, false);
  EXPECT_EQ(st.bad, 1);
  // bfloat16 rtol 1.6e-2; float16 1e-3.
  EXPECT_EQ(cf::compare({101.5}, {100.0}, none, opdev::kBFloat16, 0, 0, false).bad, 0);
  EXPECT_EQ(cf::compare({101.7}, {100.0}, none, opdev::kBFloat16, 0, 0, false).bad, 1);
  EXPECT_EQ(cf::compare({100.09}, {100.0}, none, opdev::kFloat16, 0, 0, false).bad, 0);
  EXPECT_EQ(cf::compare({100.2}, {100.0}, none, opdev::kFloat16, 0, 0, false).bad, 1);
  // The mag term widens the bound only where the reduction's magnitude is large.
  EXPECT_EQ(cf::compare({1e-4}, {0.0}, {100.0}, opdev::kFloat32, 1.3e-6, 0, false).bad, 0);
  EXPECT_EQ(cf::compare({1e-3}, {0.0}, {100.0}, opdev::kFloat32, 1.3e-6, 0, false).bad, 1);
  // One contract rounding in float16 adds 2^-11 to rtol.
  EXPECT_EQ(cf::compare({100.14}, {100.0}, none, opdev::kFloat16, 0, 1, false).bad, 0);
  EXPECT_EQ(cf::compare({100.14}, {100.0}, none, opdev::kFloat16, 0, 0, false).bad, 1);
}

TEST(Harness, NaNNeverPassesAgainstANumber) {
  const std::vector<double> none;
  EXPECT_EQ(cf::compare({NAN}, {1.0}, none, opdev::kFloat32, 0, 0, false).bad, 1);
  EXPECT_EQ(cf::compare({1.0}, {NAN}, none, opdev::kFloat32, 0, 0, false).bad, 1);
  EXPECT_EQ(cf::compare({NAN}, {NAN}, none, opdev::kFloat32, 0, 0, false).bad, 0);
  EXPECT_EQ(cf::compare({INFINITY}, {INFINITY}, none, opdev::kFloat32, 0, 0, false).bad, 0);
  EXPECT_EQ(cf::compare({-INFINITY}, {INFINITY}, none, opdev::kFloat32, 0, 0, false).bad, 1);
  EXPECT_EQ(cf::compare({1e38}, {INFINITY}, none, opdev::kFloat32, 0, 0, false).bad, 1);
  EXPECT_EQ(cf::compare({NAN}, {1.0}, {1e300}, opdev::kBFloat16, 1.0, 3, false).bad, 1);
}

TEST(Harness, IntegerOutputsAreExact) {
  const std::vector<double> none;
  EXPECT_EQ(cf::compare({3, 4, 5}, {3, 4, 5}, none, opdev::kInt32, 0, 0, true).bad, 0);
  auto st = cf::compare({3, 4, 6}, {3, 4, 5}, none, opdev::kInt32, 0, 0, true);
  EXPECT_EQ(st.bad, 1);
  EXPECT_EQ(st.first_bad, 2);
}

// A deliberately wrong "backend result" must fail a real case: run rms_norm on cpu with an epsilon the
// case does not use, through the public run() API, and see the failure counted.
TEST(Harness, SuiteDetectsAWrongKernelResult) {
  cf::Case c;
  c.op = "rms_norm";
  c.name = "harness self-test";
  c.input("x", {3, 16}).normal(0, 1);
  c.input("weight", {16}).uniform(0.5, 1.5);
  c.output("out", {3, 16});
  // The backend side gets eps = 1, the ref side eps = 1e-6: a real numerical difference.
  c.call = [](cf::Call& k) {
    const double eps = opdev::same_dtype(k.dtype, opdev::kFloat64) ? 1e-6 : 1.0;
    return opdev_rms_norm(k.ctx, k["out"], k["x"], k["weight"], eps);
  };
  cf::Registry& reg = cf::registry();
  const size_t before = reg.cases.size();
  reg.cases.push_back(c);
  cf::Options o;
  o.backend = "cpu";
  o.filter = "harness self-test";
  o.errors = false;
  const cf::Summary s = cf::run(o);
  reg.cases.resize(before);
  EXPECT_EQ(s.passed, 0);
  EXPECT_EQ(s.failed, 3);  // float32, bfloat16, float16
}

// An out-of-view write must be reported even when every element is right.
TEST(Harness, SuiteDetectsWritesOutsideTheView) {
  cf::Case c;
  c.op = "rms_norm";
  c.name = "harness guard self-test";
  c.dtypes = {opdev::kFloat32};
  c.input("x", {2, 8}).normal(0, 1);
  c.input("weight", {8}).uniform(0.5, 1.5);
  c.output("out", {2, 8}).strided(4);
  c.call = [](cf::Call& k) {
    opdev_status s = opdev_rms_norm(k.ctx, k["out"], k["x"], k["weight"], 1e-6);
    if (!opdev::same_dtype(k.dtype, opdev::kFloat64)) {
      const DLTensor* o = k["out"];
      float* p = static_cast<float*>(o->data);
      p[8] = 42.0f;  // inside the row gap of the strided output
    }
    return s;
  };
  cf::Registry& reg = cf::registry();
  const size_t before = reg.cases.size();
  reg.cases.push_back(c);
  cf::Options o;
  o.filter = "harness guard self-test";
  o.errors = false;
  const cf::Summary s = cf::run(o);
  reg.cases.resize(before);
  ASSERT_EQ(s.results.size(), 1u);
  EXPECT_FALSE(s.results[0].passed);
  EXPECT_NE(s.results[0].detail.find("outside its view"), std::string::npos) << s.results[0].detail;
}

}  // namespace
