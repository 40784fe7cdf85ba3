// Conformance cases of embedding: an exact row gather (ids cover both ends of the vocabulary).
#include <cmath>

#include "conformance.h"

namespace opdev::conformance {

namespace {

// ids[T] in [0, V): the first is 0, the last V - 1, the rest random (repeats included).
Generator ids_gen(int64_t V) {
  return [V](std::vector<double>& v, uint64_t seed) {
    Rng r(seed);
    for (double& x : v) x = double(r.next() % uint64_t(V));
    if (!v.empty()) {
      v.front() = 0;
      v.back() = double(V - 1);
    }
  };
}

void embedding_case(const std::string& what, int64_t T, int64_t V, int64_t H, DLDataType id_dtype = kInt32, int64_t pad = 0,
                    bool large = false) {
  Case c;
  c.op = "embedding";
  c.name = what + " T=" + std::to_string(T) + " V=" + std::to_string(V) + " H=" + std::to_string(H) +
           (same_dtype(id_dtype, kInt64) ? " int64 ids" : "") + (pad ? " strided" : "");
  c.large = large;
  c.input("table", {V, H}).normal(0, 1).strided(pad);
  c.input("ids", {T}).dtype(id_dtype).values(ids_gen(V));
  c.output("out", {T, H}).strided(pad ? pad + 7 : 0);
  c.call = [](Call& k) { return opdev_embedding(k.ctx, k["out"], k["table"], k["ids"]); };
  add(std::move(c));
}

}  // namespace

void register_embedding() {
  for (int64_t T : {1, 7, 33})
    for (int64_t H : {1, 7, 33, 769, 5125}) embedding_case("odd", T, 64, H);
  embedding_case("odd", 33, 1, 33);  // a one-row table: every id is 0
  embedding_case("odd", 33, 769, 7, kInt64);
  embedding_case("odd", 7, 64, 769, kInt32, 5);
  embedding_case("odd", 33, 64, 33, kInt64, 1);
  embedding_case("zero tokens", 0, 64, 1024);
  // Qwen3-0.6B (hidden 1024) and Qwen3-30B-A3B (hidden 2048) on a 4096-row slice of the vocabulary; the
  // full 151936-row table as a large case.
  for (int64_t T : {1, 4, 16}) {
    embedding_case("qwen3-0.6b", T, 4096, 1024);
    embedding_case("qwen3-30b-a3b", T, 4096, 2048, kInt64);
  }
  embedding_case("qwen3-0.6b", 16, 4096, 1024, kInt32, 128);
  embedding_case("qwen3-0.6b", 512, 4096, 1024, kInt32, 0, true);
  embedding_case("qwen3-30b-a3b", 512, 4096, 2048, kInt64, 0, true);
  embedding_case("qwen3-0.6b full vocabulary", 16, 151936, 1024, kInt32, 0, true);
  // DeepSeek-V3: hidden 7168.
  embedding_case("deepseek-v3", 4, 1024, 7168, kInt64);
  // NaN and inf rows are copied as they are.
  {
    Case c;
    c.op = "embedding";
    c.name = "NaN and inf in the table";
    c.input("table", {4, 9}).values([](std::vector<double>& v, uint64_t seed) {
      Rng r(seed);
      for (double& x : v) x = r.normal();
      v[9 + 2] = NAN;
      v[18 + 3] = INFINITY;
      v[27 + 4] = -INFINITY;
    });
    c.input("ids", {5}).dtype(kInt32).values({1, 2, 3, 0, 1});
    c.output("out", {5, 9});
    c.call = [](Call& k) { return opdev_embedding(k.ctx, k["out"], k["table"], k["ids"]); };
    add(std::move(c));
  }

  // ---- bad arguments ----
  using E = ErrorEnv;
  const opdev_status INV = OPDEV_STATUS_INVALID_ARGUMENT, OOR = OPDEV_STATUS_OUT_OF_RANGE;
  auto ids = [](E& e, std::vector<double> v, DLDataType t = kInt32) { return e.tensor({int64_t(v.size())}, t, v); };
  add_error("embedding", "NULL context", INV, "ctx: expected a context, got NULL", [ids](E& e) {
    return opdev_embedding(nullptr, e.tensor({2, 8}, e.act), e.tensor({16, 8}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "NULL table", INV, "table: expected a tensor, got NULL",
            [ids](E& e) { return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), nullptr, ids(e, {0, 1})); });
  add_error("embedding", "NULL ids", INV, "ids: expected a tensor, got NULL",
            [](E& e) { return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({16, 8}, e.act), nullptr); });
  add_error("embedding", "wrong rank of table", INV, "table: expected rank 2, got rank 1", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({16}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "wrong rank of ids", INV, "ids: expected rank 1, got rank 2", [](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({16, 8}, e.act), e.tensor({2, 1}, kInt32));
  });
  add_error("embedding", "out rows differ from ids", INV, "out: expected shape [2, 8], got [3, 8]", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({3, 8}, e.act), e.tensor({16, 8}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "out width differs from table", INV, "out: expected shape [2, 8], got [2, 9]", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({2, 9}, e.act), e.tensor({16, 8}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "integer table", OPDEV_STATUS_UNSUPPORTED_DTYPE,
            "table: expected dtype float32 | bfloat16 | float16 | float64, got int32", [ids](E& e) {
              return opdev_embedding(e.ctx(), e.tensor({2, 8}, kInt32), e.tensor({16, 8}, kInt32), ids(e, {0, 1}));
            });
  add_error("embedding", "float ids", OPDEV_STATUS_UNSUPPORTED_DTYPE, "ids: expected dtype int32 | int64, got float32", [](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({16, 8}, e.act), e.tensor({2}, kFloat32));
  });
  add_error("embedding", "out dtype differs from table", OPDEV_STATUS_UNSUPPORTED_DTYPE, "out: expected dtype", [ids](E& e) {
    DLDataType other = same_dtype(e.act, kFloat16) ? kBFloat16 : kFloat16;
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, other), e.tensor({16, 8}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "non-contiguous last dimension of table", INV,
            "table: expected the last dimension to be contiguous (stride 1), got stride 2", [ids](E& e) {
              return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.strided({16, 8}, {16, 2}, e.act), ids(e, {0, 1}));
            });
  add_error("embedding", "strided ids", INV, "ids: expected a contiguous tensor, got strides [2]", [](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({16, 8}, e.act), e.strided({2}, {2}, kInt32));
  });
  add_error("embedding", "out overlaps table", INV, "out: must not overlap table (forbidden aliasing)", [ids](E& e) {
    const DLTensor* t = e.tensor({16, 8}, e.act);
    return opdev_embedding(e.ctx(), e.view_of(t, {2, 8}, 8), t, ids(e, {0, 1}));
  });
  add_error("embedding", "out overlaps ids", INV, "out: must not overlap ids (forbidden aliasing)", [](E& e) {
    const DLTensor* o = e.tensor({2, 8}, e.act);
    TensorRef id(o->data, kInt32, {2}, {}, o->device, o->byte_offset);  // ids stored inside out's memory
    return opdev_embedding(e.ctx(), o, e.tensor({16, 8}, e.act), id);
  });
  add_error("embedding", "output with stride 0", INV, "out: output view addresses the same element more than once", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.strided({2, 8}, {0, 1}, e.act), e.tensor({16, 8}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "NULL data", INV, "table: data is NULL but the tensor has 128 elements", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.null_data({16, 8}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "size product overflows", OPDEV_STATUS_SIZE_OVERFLOW, "table: the element count of shape", [ids](E& e) {
    const int64_t big = int64_t(1) << 40;
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.huge({big, big}, e.act), ids(e, {0, 1}));
  });
  add_error("embedding", "id equal to V", OOR, "ids[2] = 16 is outside [0, 16) (the vocabulary size V = table.shape[0])", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({3, 8}, e.act), e.tensor({16, 8}, e.act), ids(e, {0, 15, 16}));
  }, true);
  add_error("embedding", "negative id", OOR, "ids[1] = -1 is outside [0, 16)", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({3, 8}, e.act), e.tensor({16, 8}, e.act), ids(e, {0, -1, 3}));
  }, true);
  add_error("embedding", "int64 id beyond int32", OOR, "ids[0] = 4294967296 is outside [0, 16)", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({2, 8}, e.act), e.tensor({16, 8}, e.act), ids(e, {4294967296.0, 1}, kInt64));
  }, true);
  add_error("embedding", "ids into an empty table", OOR, "ids[0] = 0 is outside [0, 0)", [ids](E& e) {
    return opdev_embedding(e.ctx(), e.tensor({1, 8}, e.act), e.tensor({0, 8}, e.act), ids(e, {0}));
  }, true);
}

}  // namespace opdev::conformance
