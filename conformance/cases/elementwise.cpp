// Conformance cases of add, cast and copy: ranks 0..8, odd sizes, row-padded views, transposed and
// permuted views (built inside the call from the materialised buffers, so ref and the backend see the
// same logical tensors), stride-0 broadcast inputs, in-place add, every dtype pair of cast and every
// dtype triple of add, and copies of integer and float64 tensors.
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

std::string shape_name(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

std::vector<int64_t> strides_of(const DLTensor* t) {
  std::vector<int64_t> st(size_t(t->ndim));
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; --d) {
    st[size_t(d)] = t->strides ? t->strides[d] : s;
    s *= t->shape[d];
  }
  return st;
}

// The same memory as t with another shape and strides (elements).
TensorRef view(const DLTensor* t, std::vector<int64_t> shape, std::vector<int64_t> strides) {
  return TensorRef(t->data, t->dtype, std::move(shape), std::move(strides), t->device, t->byte_offset);
}

// t with its dimensions reordered: dimension d of the result is dimension perm[d] of t.
TensorRef permuted(const DLTensor* t, const std::vector<int>& perm) {
  const std::vector<int64_t> st = strides_of(t);
  std::vector<int64_t> shape, strides;
  for (int p : perm) {
    shape.push_back(t->shape[p]);
    strides.push_back(st[size_t(p)]);
  }
  return view(t, shape, strides);
}

// t ([n] or [1]) broadcast to `shape` along the dimensions whose `strides` entry is 0.
TensorRef broadcast(const DLTensor* t, std::vector<int64_t> shape, std::vector<int64_t> strides) { return view(t, shape, strides); }

// Values with specials: NaN, +-inf, float16 overflow and underflow, bfloat16/float32 subnormals.
Generator special_values() {
  return [](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    const double specials[] = {NAN, INFINITY, -INFINITY, 65504, 65520, 1e5, -7e4, 6e-8, 1e-8, -3e-5, 1e-39, 0.0, -0.0, 1.0 / 3};
    for (size_t i = 0; i < v.size(); ++i) v[i] = i < std::size(specials) ? specials[i] : 4 * r.normal();
  };
}

using DTypes = std::vector<DLDataType>;  // empty: the dtype under test

// Applies a fixed dtype (if any) to a spec.
TensorSpec& typed(TensorSpec& s, const DTypes& dt, size_t i) {
  if (!dt.empty()) s.dtype(dt[i]);
  return s;
}

// ---- add ----

void add_case(const std::string& what, std::vector<int64_t> shape, int64_t pad = 0, const DTypes& dt = {}) {
  Case c;
  c.op = "add";
  c.name = what + " " + shape_name(shape) + (pad ? " strided" : "");
  if (!dt.empty()) c.name += std::string(" out ") + dtype_str(dt[0]) + " a " + dtype_str(dt[1]) + " b " + dtype_str(dt[2]);
  if (!dt.empty()) c.dtypes = {dt[1]};
  typed(c.input("a", shape), dt, 1).normal(0, 1).strided(pad);
  typed(c.input("b", shape), dt, 2).normal(0, 3).strided(pad ? pad + 2 : 0);
  typed(c.output("out", shape), dt, 0).strided(pad ? pad + 1 : 0);
  c.call = [](Call& k) { return opdev_add(k.ctx, k["out"], k["a"], k["b"]); };
  add(std::move(c));
}

void add_in_place(const std::string& alias, std::vector<int64_t> shape, int64_t pad) {
  Case c;
  c.op = "add";
  c.name = "in place out=" + alias + " " + shape_name(shape) + (pad ? " strided" : "");
  const std::string other = alias == "a" ? "b" : "a";
  c.inout(alias, shape).normal(0, 1).strided(pad);
  c.input(other, shape).normal(0, 1);
  c.output("out", shape).alias_of = alias;
  c.call = [](Call& k) { return opdev_add(k.ctx, k["out"], k["a"], k["b"]); };
  add(std::move(c));
}

// a[M, N] + b broadcast: "row" b[N], "column" b[M], "scalar" b[1].
void add_broadcast(const std::string& kind, int64_t M, int64_t N, const DTypes& dt = {}) {
  Case c;
  c.op = "add";
  c.name = "broadcast " + kind + " [" + std::to_string(M) + "," + std::to_string(N) + "]";
  if (!dt.empty()) {
    c.name += std::string(" out ") + dtype_str(dt[0]) + " a " + dtype_str(dt[1]) + " b " + dtype_str(dt[2]);
    c.dtypes = {dt[1]};
  }
  typed(c.input("a", {M, N}), dt, 1).normal(0, 1).strided(3);
  const int64_t nb = kind == "row" ? N : kind == "column" ? M : 1;
  typed(c.input("b", {nb}), dt, 2).normal(0, 1);
  typed(c.output("out", {M, N}), dt, 0);
  const std::vector<int64_t> st = kind == "row" ? std::vector<int64_t>{0, 1} : kind == "column" ? std::vector<int64_t>{1, 0}
                                                                                                 : std::vector<int64_t>{0, 0};
  c.call = [M, N, st](Call& k) {
    TensorRef b = broadcast(k["b"], {M, N}, st);
    return opdev_add(k.ctx, k["out"], k["a"], b);
  };
  add(std::move(c));
}

// Transposed operands: "a" reads a[N, M] transposed; "out" writes out[N, M] transposed; "all" both and
// b broadcast as a column.
void add_transposed(const std::string& which, int64_t M, int64_t N) {
  Case c;
  c.op = "add";
  c.name = "transposed " + which + " [" + std::to_string(M) + "," + std::to_string(N) + "]";
  const bool ta = which != "out", to = which != "a";
  c.input("a", ta ? std::vector<int64_t>{N, M} : std::vector<int64_t>{M, N}).normal(0, 1).strided(ta ? 5 : 0);
  c.input("b", {M, N}).normal(0, 1);
  c.output("out", to ? std::vector<int64_t>{N, M} : std::vector<int64_t>{M, N}).strided(to ? 2 : 0);
  c.call = [ta, to](Call& k) {
    TensorRef a = ta ? permuted(k["a"], {1, 0}) : view(k["a"], {k["a"]->shape[0], k["a"]->shape[1]}, strides_of(k["a"]));
    TensorRef o = to ? permuted(k["out"], {1, 0}) : view(k["out"], {k["out"]->shape[0], k["out"]->shape[1]}, strides_of(k["out"]));
    return opdev_add(k.ctx, o, a, k["b"]);
  };
  add(std::move(c));
}

// ---- cast ----

void cast_case(const std::string& what, std::vector<int64_t> shape, const DTypes& dt, int64_t pad = 0, Generator gen = {}) {
  Case c;
  c.op = "cast";
  c.name = what + " " + shape_name(shape) + (pad ? " strided" : "");
  if (!dt.empty()) {
    c.name += std::string(" ") + dtype_str(dt[1]) + " -> " + dtype_str(dt[0]);
    c.dtypes = {dt[1]};
  }
  TensorSpec& x = typed(c.input("x", shape), dt, 1).normal(0, 3).strided(pad);
  if (gen) x.values(std::move(gen));
  typed(c.output("out", shape), dt, 0).strided(pad ? pad + 4 : 0);
  c.call = [](Call& k) { return opdev_cast(k.ctx, k["out"], k["x"]); };
  add(std::move(c));
}

// x[A, B, C] read through a permutation into out (the permuted shape), or out written through one.
void cast_permuted(const std::vector<int64_t>& shape, const std::vector<int>& perm, bool permute_out, const DTypes& dt) {
  Case c;
  c.op = "cast";
  std::vector<int64_t> pshape;
  for (int p : perm) pshape.push_back(shape[size_t(p)]);
  c.name = std::string("permuted ") + (permute_out ? "out " : "x ") + shape_name(shape) + " " + dtype_str(dt[1]) + " -> " +
           dtype_str(dt[0]);
  c.dtypes = {dt[1]};
  // Reading: x has `shape`, the call sees it permuted, out has the permuted shape. Writing: the reverse.
  typed(c.input("x", permute_out ? pshape : shape), dt, 1).normal(0, 3).strided(3);
  typed(c.output("out", permute_out ? shape : pshape), dt, 0).strided(permute_out ? 1 : 0);
  c.call = [perm, permute_out](Call& k) {
    if (!permute_out) {
      TensorRef x = permuted(k["x"], perm);
      return opdev_cast(k.ctx, k["out"], x);
    }
    TensorRef o = permuted(k["out"], perm);
    return opdev_cast(k.ctx, o, k["x"]);
  };
  add(std::move(c));
}

// ---- copy ----

void copy_case(const std::string& what, std::vector<int64_t> shape, int64_t pad = 0, const DTypes& dt = {}, Generator gen = {}) {
  Case c;
  c.op = "copy";
  c.name = what + " " + shape_name(shape) + (pad ? " strided" : "");
  if (!dt.empty()) {
    c.name += std::string(" ") + dtype_str(dt[0]);
    c.dtypes = {dt[0]};
  }
  TensorSpec& x = typed(c.input("x", shape), dt, 0).normal(0, 3).strided(pad);
  if (gen) x.values(std::move(gen));
  typed(c.output("out", shape), dt, 0).strided(pad ? pad + 2 : 0);
  c.call = [](Call& k) { return opdev_copy(k.ctx, k["out"], k["x"]); };
  add(std::move(c));
}

void copy_permuted(const std::vector<int64_t>& shape, const std::vector<int>& perm, bool permute_out, const DTypes& dt = {},
                   Generator gen = {}) {
  Case c;
  c.op = "copy";
  std::vector<int64_t> pshape;
  for (int p : perm) pshape.push_back(shape[size_t(p)]);
  c.name = std::string("permuted ") + (permute_out ? "out " : "x ") + shape_name(shape);
  if (!dt.empty()) {
    c.name += std::string(" ") + dtype_str(dt[0]);
    c.dtypes = {dt[0]};
  }
  TensorSpec& x = typed(c.input("x", permute_out ? pshape : shape), dt, 0).normal(0, 3).strided(2);
  if (gen) x.values(std::move(gen));
  typed(c.output("out", permute_out ? shape : pshape), dt, 0).strided(permute_out ? 3 : 0);
  c.call = [perm, permute_out](Call& k) {
    if (!permute_out) {
      TensorRef x = permuted(k["x"], perm);
      return opdev_copy(k.ctx, k["out"], x);
    }
    TensorRef o = permuted(k["out"], perm);
    return opdev_copy(k.ctx, o, k["x"]);
  };
  add(std::move(c));
}

Generator integers_in(double lo, double hi) {
  return [lo, hi](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = std::floor(lo + (hi - lo) * r.uniform());
    if (v.size() >= 2) {
      v[0] = lo;
      v[1] = hi - 1;
    }
  };
}

const DTypes kFloats = {kFloat32, kBFloat16, kFloat16};

}  // namespace

void register_elementwise() {
  // ---- add ----
  for (const std::vector<int64_t>& s : std::vector<std::vector<int64_t>>{
           {}, {1}, {7}, {5125}, {7, 769}, {33, 33}, {2, 3, 33}, {2, 3, 5, 17}, {2, 1, 2, 1, 3, 1, 2, 5}})
    add_case("odd", s);
  add_case("zero tokens", {0, 1024});
  add_case("odd", {7, 769}, 3);
  add_case("odd", {2, 3, 33}, 5);
  add_in_place("a", {7, 769}, 0);
  add_in_place("b", {7, 769}, 0);
  add_in_place("a", {33, 1024}, 9);
  for (const char* k : {"row", "column", "scalar"}) add_broadcast(k, 33, 769);
  add_broadcast("row", 7, 40000);
  for (const char* w : {"a", "out", "all"}) add_transposed(w, 33, 65);
  // Residual adds of Qwen3-0.6B (hidden 1024) and Qwen3-30B-A3B (hidden 2048); DeepSeek-V3 7168.
  for (int64_t T : {1, 4, 16, 512}) {
    add_case("qwen3-0.6b", {T, 1024});
    add_case("qwen3-30b-a3b", {T, 2048});
  }
  add_case("deepseek-v3", {4, 7168});
  {
    Case c;
    c.op = "add";
    c.name = "NaN and inf";
    c.input("a", {64}).values(special_values());
    c.input("b", {64}).normal(0, 1);
    c.output("out", {64});
    c.call = [](Call& k) { return opdev_add(k.ctx, k["out"], k["a"], k["b"]); };
    add(std::move(c));
  }
  // Every (out, a, b) dtype triple.
  for (DLDataType o : kFloats)
    for (DLDataType a : kFloats)
      for (DLDataType b : kFloats) add_case("mixed", {33, 65}, 0, {o, a, b});
  add_broadcast("row", 33, 769, {kBFloat16, kFloat32, kFloat16});
  add_broadcast("column", 33, 769, {kFloat32, kFloat16, kBFloat16});

  // ---- cast ----
  for (DLDataType o : kFloats)
    for (DLDataType x : kFloats) {
      cast_case("pair", {33, 769}, {o, x});
      cast_case("pair", {7, 769}, {o, x}, 6);
      cast_case("specials", {64}, {o, x}, 0, special_values());
    }
  // The dtype under test to float32, any rank.
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{}, {5125}, {7, 33}, {2, 3, 5, 17}}) {
    Case c;
    c.op = "cast";
    c.name = "to float32 " + shape_name(shape);
    c.input("x", shape).normal(0, 3).strided(2);
    c.output("out", shape).dtype(kFloat32);
    c.call = [](Call& k) { return opdev_cast(k.ctx, k["out"], k["x"]); };
    add(std::move(c));
  }
  cast_case("zero tokens", {0, 1024}, {kBFloat16, kFloat32});
  cast_permuted({33, 65}, {1, 0}, false, {kBFloat16, kFloat32});
  cast_permuted({33, 65}, {1, 0}, true, {kFloat16, kBFloat16});
  cast_permuted({5, 7, 9}, {2, 0, 1}, false, {kFloat32, kFloat16});
  for (int64_t T : {1, 16, 512}) cast_case("qwen3-0.6b", {T, 1024}, {kBFloat16, kFloat32});
  {
    Case c;
    c.op = "cast";
    c.name = "broadcast x [33,769] float32 -> bfloat16";
    c.dtypes = {kFloat32};
    c.input("x", {769}).dtype(kFloat32).normal(0, 3);
    c.output("out", {33, 769}).dtype(kBFloat16);
    c.call = [](Call& k) {
      TensorRef x = broadcast(k["x"], {33, 769}, {0, 1});
      return opdev_cast(k.ctx, k["out"], x);
    };
    add(std::move(c));
  }

  // ---- copy ----
  for (const std::vector<int64_t>& s : std::vector<std::vector<int64_t>>{
           {}, {1}, {7}, {5125}, {7, 769}, {33, 33}, {2, 3, 33}, {2, 3, 5, 17}, {2, 1, 2, 1, 3, 1, 2, 5}})
    copy_case("odd", s);
  copy_case("zero tokens", {0, 1024});
  copy_case("odd", {7, 769}, 5);
  copy_case("odd", {2, 3, 5, 17}, 1);
  copy_permuted({33, 65}, {1, 0}, false);
  copy_permuted({33, 65}, {1, 0}, true);
  copy_permuted({4, 5, 6, 7}, {3, 1, 0, 2}, false);
  copy_permuted({4, 5, 6, 7}, {0, 2, 1, 3}, true);
  // Making Qwen3 q heads contiguous: [T, 16, 128] of the fused qkv rows (4096 wide).
  for (int64_t T : {1, 16, 512}) copy_case("qwen3-0.6b q of qkv", {T, 16, 128}, 4096 - 16 * 128);
  {
    Case c;
    c.op = "copy";
    c.name = "broadcast x [33,769]";
    c.input("x", {769}).normal(0, 1);
    c.output("out", {33, 769});
    c.call = [](Call& k) {
      TensorRef x = broadcast(k["x"], {33, 769}, {0, 1});
      return opdev_copy(k.ctx, k["out"], x);
    };
    add(std::move(c));
  }
  copy_case("specials", {64}, 0, {}, special_values());
  // Integer and float64 tensors (exact for int; integers stay below 2^53 so the harness holds them).
  const double big = 9007199254740992.0;  // 2^53
  copy_case("exact", {33, 769}, 0, {kInt32}, integers_in(-2147483648.0, 2147483648.0));
  copy_case("exact", {7, 33}, 3, {kInt32}, integers_in(-2147483648.0, 2147483648.0));
  copy_case("exact", {33, 769}, 0, {kInt64}, integers_in(-big, big));
  copy_case("exact", {7, 33}, 3, {kInt64}, integers_in(-big, big));
  copy_case("exact", {7, 769}, 2, {kInt8}, integers_in(-128, 128));
  copy_case("exact", {7, 769}, 0, {kUInt8}, integers_in(0, 256));
  copy_case("exact", {7, 769}, 4, {kFloat64}, special_values());
  copy_permuted({33, 65}, {1, 0}, false, {kInt64}, integers_in(-big, big));
  copy_permuted({4, 5, 6, 7}, {3, 1, 0, 2}, true, {kInt32}, integers_in(-1000, 1000));
  copy_permuted({9, 31}, {1, 0}, true, {kFloat64}, special_values());

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, DT = OPDEV_STATUS_UNSUPPORTED_DTYPE;
  add_error("add", "NULL context", INV, "ctx: expected a context, got NULL",
            [](E& e) { return opdev_add(nullptr, e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("add", "NULL b", INV, "b: expected a tensor, got NULL",
            [](E& e) { return opdev_add(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), nullptr); });
  add_error("add", "NULL out", INV, "out: expected a tensor, got NULL",
            [](E& e) { return opdev_add(e.ctx(), nullptr, e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("add", "rank above 8", INV, "a: rank 9 is outside [0, 8]", [](E& e) {
    std::vector<int64_t> s(9, 1);
    return opdev_add(e.ctx(), e.tensor({1}, e.act), e.tensor(s, e.act), e.tensor({1}, e.act));
  });
  add_error("add", "b shape differs", INV, "b: expected shape [2, 8] (the shape of a), got [2, 7]",
            [](E& e) { return opdev_add(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({2, 7}, e.act)); });
  add_error("add", "b rank differs", INV, "b: expected shape [2, 8] (the shape of a), got [16]",
            [](E& e) { return opdev_add(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.tensor({16}, e.act)); });
  add_error("add", "out shape differs", INV, "out: expected shape [2, 8] (the shape of a), got [8, 2]",
            [](E& e) { return opdev_add(e.ctx(), e.tensor({8, 2}, e.act), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("add", "integer a", DT, "a: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [](E& e) { return opdev_add(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, kInt32), e.tensor({2, 8}, e.act)); });
  add_error("add", "integer out", DT, "out: expected dtype float32 | bfloat16 | float16 | float64, got int64",
            [](E& e) { return opdev_add(e.ctx(), e.tensor({2, 8}, kInt64), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("add", "out partially overlaps a", INV, "out: must be exactly a (in place) or not overlap it", [](E& e) {
    const DLTensor* buf = e.tensor({3, 8}, e.act);
    return opdev_add(e.ctx(), e.view_of(buf, {2, 8}, 4), e.view_of(buf, {2, 8}, 0), e.tensor({2, 8}, e.act));
  });
  add_error("add", "out is b transposed", INV, "out: must be exactly b (in place) or not overlap it", [](E& e) {
    const DLTensor* b = e.tensor({4, 4}, e.act);
    return opdev_add(e.ctx(), e.view_of(b, {4, 4}, 0, {1, 4}), e.tensor({4, 4}, e.act), b);
  });
  add_error("add", "in place with another dtype", INV, "out: must be exactly a (in place) or not overlap it", [](E& e) {
    const DLTensor* a = e.tensor({2, 8}, kFloat32);
    TensorRef o(a->data, kBFloat16, {2, 8}, {}, a->device, a->byte_offset);
    return opdev_add(e.ctx(), o, a, e.tensor({2, 8}, kFloat32));
  });
  add_error("add", "output with stride 0", INV, "out: output view addresses the same element more than once",
            [](E& e) { return opdev_add(e.ctx(), e.strided({2, 8}, {8, 0}, e.act), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("add", "NULL data", INV, "a: data is NULL but the tensor has 16 elements",
            [](E& e) { return opdev_add(e.ctx(), e.tensor({2, 8}, e.act), e.null_data({2, 8}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("add", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "b: the element count of shape", [](E& e) {
    const int64_t big = int64_t(1) << 40;
    return opdev_add(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({2, 8}, e.act), e.huge({big, big, 8}, e.act));
  });

  add_error("cast", "NULL x", INV, "x: expected a tensor, got NULL", [](E& e) { return opdev_cast(e.ctx(), e.tensor({2, 8}, e.act), nullptr); });
  add_error("cast", "shape differs", INV, "out: expected shape [2, 8] (the shape of x), got [2, 9]",
            [](E& e) { return opdev_cast(e.ctx(), e.tensor({2, 9}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("cast", "integer x", DT, "x: expected dtype float32 | bfloat16 | float16 | float64, got int32",
            [](E& e) { return opdev_cast(e.ctx(), e.tensor({2, 8}, kFloat32), e.tensor({2, 8}, kInt32)); });
  add_error("cast", "integer out", DT, "out: expected dtype float32 | bfloat16 | float16 | float64, got uint8",
            [](E& e) { return opdev_cast(e.ctx(), e.tensor({2, 8}, kUInt8), e.tensor({2, 8}, e.act)); });
  add_error("cast", "in place", INV, "out: must not overlap x (forbidden aliasing)", [](E& e) {
    const DLTensor* x = e.tensor({2, 8}, e.act);
    return opdev_cast(e.ctx(), x, x);
  });
  add_error("cast", "output with stride 0", INV, "out: output view addresses the same element more than once",
            [](E& e) { return opdev_cast(e.ctx(), e.strided({2, 8}, {0, 1}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("cast", "output with interleaved strides", INV, "out: output view addresses the same element more than once",
            [](E& e) { return opdev_cast(e.ctx(), e.strided({4, 4}, {2, 1}, kFloat32), e.tensor({4, 4}, e.act)); });
  add_error("cast", "NULL data", INV, "out: data is NULL but the tensor has 16 elements",
            [](E& e) { return opdev_cast(e.ctx(), e.null_data({2, 8}, kFloat32), e.tensor({2, 8}, e.act)); });
  add_error("cast", "byte extent overflows", OPDEV_STATUS_SIZE_OVERFLOW, "x: the byte extent",
            [](E& e) { return opdev_cast(e.ctx(), e.tensor({2, 8}, kFloat32), e.huge({int64_t(1) << 59, 8}, e.act)); });

  add_error("copy", "NULL out", INV, "out: expected a tensor, got NULL", [](E& e) { return opdev_copy(e.ctx(), nullptr, e.tensor({2, 8}, e.act)); });
  add_error("copy", "shape differs", INV, "out: expected shape [2, 8] (the shape of x), got [16]",
            [](E& e) { return opdev_copy(e.ctx(), e.tensor({16}, e.act), e.tensor({2, 8}, e.act)); });
  add_error("copy", "dtypes differ", DT, "out: expected dtype int32 (the dtype of x), got float32",
            [](E& e) { return opdev_copy(e.ctx(), e.tensor({2, 8}, kFloat32), e.tensor({2, 8}, kInt32)); });
  add_error("copy", "out is x", INV, "out: must not overlap x (forbidden aliasing)", [](E& e) {
    const DLTensor* x = e.tensor({2, 8}, kInt64);
    return opdev_copy(e.ctx(), x, x);
  });
  add_error("copy", "out overlaps x shifted", INV, "out: must not overlap x (forbidden aliasing)", [](E& e) {
    const DLTensor* buf = e.tensor({3, 8}, e.act);
    return opdev_copy(e.ctx(), e.view_of(buf, {2, 8}, 8), e.view_of(buf, {2, 8}, 0));
  });
  add_error("copy", "output with stride 0", INV, "out: output view addresses the same element more than once",
            [](E& e) { return opdev_copy(e.ctx(), e.strided({2, 8}, {8, 0}, kInt8), e.tensor({2, 8}, kInt8)); });
  add_error("copy", "NULL data", INV, "x: data is NULL but the tensor has 16 elements",
            [](E& e) { return opdev_copy(e.ctx(), e.tensor({2, 8}, e.act), e.null_data({2, 8}, e.act)); });
  add_error("copy", "negative stride", INV, "x: stride 1 is negative (-1)",
            [](E& e) { return opdev_copy(e.ctx(), e.tensor({2, 8}, e.act), e.strided({2, 8}, {8, -1}, e.act)); });
  add_error("copy", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "out: the element count of shape", [](E& e) {
    const int64_t big = int64_t(1) << 40;
    return opdev_copy(e.ctx(), e.huge({big, big, 8}, e.act), e.tensor({2, 8}, e.act));
  });
}

}  // namespace opdev::conformance
