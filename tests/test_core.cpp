// Core internals: dtype conversions (exhaustively against independent double arithmetic), tensor views,
// overlap detection, checked arithmetic, the caching allocator.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/allocator.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/half.h"
#include "core/overflow.h"
#include "core/tensor.h"

namespace {

using namespace opdev;

double f16_value(uint16_t h) {  // independent decode: sign * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? std::ldexp(m / 1024.0, -14) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1.0 + m / 1024.0, e - 15);
  return s ? -v : v;
}

TEST(Half, Float16DecodeIsExactForAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = f16_value(uint16_t(h));
    const float got = f16_to_f32(uint16_t(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << h;
    } else {
      ASSERT_EQ(double(got), want) << std::hex << h;
      if (std::signbit(want)) {
        EXPECT_TRUE(std::signbit(got));
      }
      EXPECT_EQ(f32_to_f16(got), uint16_t(h)) << "round trip " << std::hex << h;
    }
  }
}

// f32 -> f16: the result is the nearest f16 (ties to even mantissa), checked against neighbours.
TEST(Half, Float16EncodeRoundsToNearestEven) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 400000; ++i) {
    uint32_t u = any(rng);
    // Bias towards the f16 range: exponents 100..150 most of the time.
    if (i % 4) u = (u & 0x807FFFFFu) | ((100u + (u >> 23) % 50u) << 23);
    float f;
    std::memcpy(&f, &u, 4);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_value(f32_to_f16(f))));
      continue;
    }
    const uint16_t h = f32_to_f16(f);
    const double v = f16_value(h), x = f;
    if (std::isinf(v)) {
      EXPECT_GE(std::fabs(x), 65520.0) << x;
      continue;
    }
    const uint16_t mag = h & 0x7FFF;
    for (int d : {-1, 1}) {
      if ((mag == 0 && d < 0) || mag + d >= 0x7C00) continue;
      const double n = f16_value(uint16_t((h & 0x8000) | (mag + d)));
      const double dv = std::fabs(v - x), dn = std::fabs(n - x);
      ASSERT_LE(dv, dn) << "f32 " << x << " -> " << std::hex << h;
      if (dv == dn) {
        ASSERT_EQ(h & 1, 0) << "tie not to even: " << x;
      }
    }
  }
}

TEST(Half, BFloat16KnownValuesAndRounding) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7F7FFFFFu)), 0x7F80);  // max float rounds to inf
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x00010000u)), 0x0001);  // subnormal kept
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f32_from_bits(0x7F800001u)))));  // payload in low bits stays NaN
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(f32_to_bf16(f), uint16_t(h));
    }
  }
}

TEST(Overflow, CheckedArithmetic) {
  int64_t r;
  EXPECT_TRUE(checked_mul(int64_t(1) << 31, int64_t(1) << 31, &r));
  EXPECT_FALSE(checked_mul(int64_t(1) << 32, int64_t(1) << 31, &r));
  EXPECT_FALSE(checked_add(INT64_MAX, int64_t(1), &r));
  size_t s;
  EXPECT_FALSE(checked_mul(SIZE_MAX / 2, size_t(3), &s));
}

DLTensor dl(void* data, DLDataType t, std::vector<int64_t>& shape, std::vector<int64_t>* strides = nullptr) {
  DLTensor x{};
  x.data = data;
  x.device = {kDLCPU, 0};
  x.ndim = int(shape.size());
  x.dtype = t;
  x.shape = shape.data();
  x.strides = strides ? strides->data() : nullptr;
  return x;
}

const DLDataType F32{kDLFloat, 32, 1};
const DLDevice CPU{kDLCPU, 0};

TEST(TensorView, ResolvesStridesAndExtent) {
  float buf[64];
  std::vector<int64_t> shape{3, 4}, strides{10, 1};
  DLTensor t = dl(buf, F32, shape, &strides);
  t.byte_offset = 8;
  TensorView v = make_view("x", &t, CPU, false);
  EXPECT_EQ(v.data, reinterpret_cast<char*>(buf) + 8);
  EXPECT_EQ(v.numel, 12);
  EXPECT_EQ(v.byte_hi - v.byte_lo, (2 * 10 + 3 + 1) * 4u);
  EXPECT_FALSE(v.contiguous());
  EXPECT_TRUE(v.inner_contiguous());
  std::vector<int64_t> compact{3, 4};
  DLTensor c = dl(buf, F32, compact);
  TensorView cv = make_view("x", &c, CPU, false);
  EXPECT_TRUE(cv.contiguous());
  EXPECT_EQ(cv.strides[0], 4);
}

TEST(TensorView, RejectsBadTensorsWithNamedMessages) {
  float buf[4];
  auto expect_fail = [&](DLTensor t, opdev_status st, const std::string& msg) {
    try {
      make_view("x", &t, CPU, false);
      ADD_FAILURE() << "no error for " << msg;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), st);
      EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << e.what();
    }
  };
  std::vector<int64_t> neg{2, -1};
  expect_fail(dl(buf, F32, neg), OPDEV_STATUS_INVALID_ARGUMENT, "x: dimension 1 has negative size -1");
  std::vector<int64_t> huge{int64_t(1) << 62, 4};
  expect_fail(dl(buf, F32, huge), OPDEV_STATUS_SIZE_OVERFLOW, "x: the element count");
  std::vector<int64_t> big{int64_t(1) << 61};
  expect_fail(dl(buf, F32, big), OPDEV_STATUS_SIZE_OVERFLOW, "x: the byte extent");
  std::vector<int64_t> s2{2}, negstride{-1};
  expect_fail(dl(buf, F32, s2, &negstride), OPDEV_STATUS_INVALID_ARGUMENT, "x: stride 0 is negative");
  std::vector<int64_t> ok{2};
  expect_fail(dl(nullptr, F32, ok), OPDEV_STATUS_INVALID_ARGUMENT, "x: data is NULL but the tensor has 2 elements");
  DLTensor wrongdev = dl(buf, F32, ok);
  wrongdev.device = {kDLCUDA, 1};
  expect_fail(wrongdev, OPDEV_STATUS_INVALID_ARGUMENT, "x: expected a tensor on cpu:0 (the context's device), got cuda:1");
  DLTensor rank9 = dl(buf, F32, ok);
  rank9.ndim = 9;
  expect_fail(rank9, OPDEV_STATUS_INVALID_ARGUMENT, "x: rank 9 is outside [0, 8]");
  DLTensor pointer_overflow = dl(buf, F32, ok);
  pointer_overflow.byte_offset = UINT64_MAX - 4;
  expect_fail(pointer_overflow, OPDEV_STATUS_SIZE_OVERFLOW, "overflows the address space");
  // Empty tensors may have NULL data.
  std::vector<int64_t> empty{0, 5};
  DLTensor e = dl(nullptr, F32, empty);
  EXPECT_EQ(make_view("x", &e, CPU, false).numel, 0);
  EXPECT_FALSE(make_view("k", nullptr, CPU, true).present);
}

TensorView view(float* base, std::vector<int64_t> shape, std::vector<int64_t> strides, int64_t off = 0) {
  static std::vector<std::vector<int64_t>> keep;  // DLTensor needs stable arrays during make_view only
  DLTensor t = dl(base + off, F32, shape, &strides);
  return make_view("v", &t, CPU, false);
}

TEST(Overlap, FusedQkvViewsAreDisjoint) {
  // qkv rows of (16 + 8 + 8) * 128 floats; q = heads 0..15, k = 16..23, v = 24..31.
  static float buf[4 * 4096];
  const int64_t S = 4096;
  TensorView q = view(buf, {4, 16, 128}, {S, 128, 1}, 0);
  TensorView k = view(buf, {4, 8, 128}, {S, 128, 1}, 16 * 128);
  TensorView v = view(buf, {4, 8, 128}, {S, 128, 1}, 24 * 128);
  EXPECT_FALSE(may_overlap(q, k));
  EXPECT_FALSE(may_overlap(k, v));
  EXPECT_FALSE(may_overlap(q, v));
  // k shifted by one element into q's last head: overlap.
  TensorView k_bad = view(buf, {4, 8, 128}, {S, 128, 1}, 16 * 128 - 1);
  EXPECT_TRUE(may_overlap(q, k_bad));
  // Row 1 of q against a single block that sits in row 0's k part: disjoint; in row 1's q part: overlap.
  TensorView blk0 = view(buf, {128}, {1}, 16 * 128);
  TensorView blk1 = view(buf, {128}, {1}, S + 5);
  EXPECT_FALSE(may_overlap(q, blk0));
  EXPECT_TRUE(may_overlap(q, blk1));
}

TEST(Overlap, ByteRangesAndSelfOverlap) {
  static float buf[256];
  TensorView a = view(buf, {8, 8}, {8, 1}, 0), b = view(buf, {8, 8}, {8, 1}, 64), c = view(buf, {8, 8}, {8, 1}, 63);
  EXPECT_FALSE(may_overlap(a, b));
  EXPECT_TRUE(may_overlap(a, c));
  EXPECT_TRUE(same_view(a, view(buf, {8, 8}, {8, 1}, 0)));
  EXPECT_FALSE(same_view(a, b));
  EXPECT_TRUE(self_overlapping(view(buf, {4, 8}, {0, 1})));    // broadcast rows
  EXPECT_TRUE(self_overlapping(view(buf, {4, 8}, {4, 1})));    // rows overlap
  EXPECT_FALSE(self_overlapping(view(buf, {4, 8}, {9, 1})));   // padded rows
  EXPECT_FALSE(self_overlapping(view(buf, {8, 4}, {1, 8})));   // transposed
  EXPECT_FALSE(self_overlapping(view(buf, {1, 8}, {0, 1})));   // size-1 dims ignore strides
}

TEST(Allocator, CachesAndReusesBlocks) {
  const Backend* cpu = find_backend("cpu");
  ASSERT_NE(cpu, nullptr);
  CachingAllocator a(cpu, nullptr);
  void* p = a.alloc(1000, 64);
  ASSERT_NE(p, nullptr);
  a.free(p);
  EXPECT_EQ(a.cached_bytes(), 1024u);
  void* q = a.alloc(700, 64);  // same 512-byte-rounded class within a quarter: reused
  EXPECT_EQ(q, p);
  void* r = a.alloc(100, 64);  // much smaller: a fresh block
  EXPECT_NE(r, p);
  a.free(q);
  a.free(r);
  a.release_cached();
  EXPECT_EQ(a.cached_bytes(), 0u);
  EXPECT_EQ(a.alloc(1, 512), nullptr);  // alignment above 256 is refused
  EXPECT_THROW(a.free(&r), Error);
  // Sizes whose rounding would wrap around are refused, not turned into small blocks.
  EXPECT_EQ(a.alloc(SIZE_MAX, 64), nullptr);
  EXPECT_EQ(a.alloc(SIZE_MAX - 100, 64), nullptr);
  EXPECT_EQ(host_raw_alloc(nullptr, SIZE_MAX), nullptr);
  EXPECT_EQ(host_raw_alloc(nullptr, SIZE_MAX - 200), nullptr);
}

// The VmFlags line of the /proc/self/smaps mapping that contains p ("" if none is found).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = a >= lo && a < hi;  // a mapping header: "lo-hi perms offset dev inode path"
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line + " ";
  }
  return "";
}

TEST(Allocator, HostBlocksOf2MiBAreHugePageAlignedAndAdvised) {
  void* big = host_raw_alloc(nullptr, 3 * kHostHugePage + 100);
  void* small = host_raw_alloc(nullptr, 1000);
  ASSERT_NE(big, nullptr);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % (host_huge_pages() ? kHostHugePage : 256), 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 256, 0u);
  std::memset(big, 1, 3 * kHostHugePage + 100);  // the whole rounded-up request is usable
  const std::string flags = vm_flags_of(big);
  host_raw_free(nullptr, big);
  host_raw_free(nullptr, small);
#if defined(__linux__)
  if (!host_huge_pages()) GTEST_SKIP() << "OPDEV_HUGE_PAGES=0 is set: no advice to check";
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) GTEST_SKIP() << "this kernel has no transparent huge pages";
  ASSERT_FALSE(flags.empty()) << "no /proc/self/smaps mapping holds the block";
  EXPECT_NE(flags.find(" hg "), std::string::npos) << "MADV_HUGEPAGE not set on the block's mapping: " << flags;
#else
  GTEST_SKIP() << "huge-page advice is Linux-only";
#endif
}

TEST(Allocator, ScratchArenaGrowsThenSettlesInOneChunk) {
  const Backend* cpu = find_backend("cpu");
  CachingAllocator a(cpu, nullptr);
  opdev_allocator c = a.as_c();
  ScratchArena arena;
  arena.bind(&c);
  void* x = arena.get(1000, 64);
  void* y = arena.get(5000, 64);  // does not fit the first chunk: a second one
  EXPECT_NE(x, y);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(y) % 64, 0u);
  arena.reset();  // next op gets one chunk that holds both
  void* z = arena.get(1000, 64);
  void* w = arena.get(5000, 64);
  EXPECT_EQ(static_cast<char*>(w) - static_cast<char*>(z) >= 1000, true);
  arena.reset();
  arena.release();
  EXPECT_THROW(arena.get(10, 3), Error);
}

}  // namespace
