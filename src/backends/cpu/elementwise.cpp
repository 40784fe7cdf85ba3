// cpu: add, cast, copy. All three share one iteration scheme: the views' dimensions are collapsed (size-1
// dimensions dropped, dimensions merged where every view is compact across them), so contiguous tensors
// become one long row; work items are (row, chunk of the innermost dimension) pairs split across threads.
// The innermost loop is vectorised when the output and the inputs have stride 1 there (inputs of add may
// also broadcast with stride 0); other layouts (transposes) take a scalar loop.
#include <cstring>

#include "backends/cpu/cpu_common.h"

OPDEV_CPU_NAMESPACE_BEGIN

namespace {

constexpr int kMaxViews = 3;

// Common iteration space of up to three views of the same shape (view 0 is the output).
struct Layout {
  int nviews = 0;
  int nd = 0;
  int64_t shape[OPDEV_MAX_DIMS] = {};
  int64_t stride[kMaxViews][OPDEV_MAX_DIMS] = {};

  Layout(std::initializer_list<const TensorView*> views) {
    nviews = int(views.size());
    const TensorView& v0 = **views.begin();
    for (int d = 0; d < v0.ndim; ++d) {
      if (v0.shape[d] == 1) continue;
      shape[nd] = v0.shape[d];
      int k = 0;
      for (const TensorView* v : views) stride[k++][nd] = v->strides[d];
      ++nd;
    }
    // Merge dimension d into d + 1 when every view steps across it as one compact block.
    int m = 0;
    for (int d = 0; d < nd; ++d) {
      if (m > 0) {
        bool merge = true;
        for (int k = 0; k < nviews; ++k) merge = merge && stride[k][m - 1] == stride[k][d] * shape[d];
        if (merge) {
          shape[m - 1] *= shape[d];
          for (int k = 0; k < nviews; ++k) stride[k][m - 1] = stride[k][d];
          continue;
        }
      }
      shape[m] = shape[d];
      for (int k = 0; k < nviews; ++k) stride[k][m] = stride[k][d];
      ++m;
    }
    nd = m;
    if (nd == 0) {  // a single element
      nd = 1;
      shape[0] = 1;
      for (int k = 0; k < nviews; ++k) stride[k][0] = 1;
    }
  }
  int64_t inner() const { return shape[nd - 1]; }
  int64_t rows() const {
    int64_t r = 1;
    for (int d = 0; d < nd - 1; ++d) r *= shape[d];
    return r;
  }
  // Element offsets of row `row` (flat over the outer dimensions) in each view.
  void row_offsets(int64_t row, int64_t* off) const {
    for (int k = 0; k < nviews; ++k) off[k] = 0;
    for (int d = nd - 2; d >= 0; --d) {
      const int64_t i = row % shape[d];
      row /= shape[d];
      for (int k = 0; k < nviews; ++k) off[k] += i * stride[k][d];
    }
  }
};

// Calls f(off[], begin, n) for runs of the innermost dimension, split across threads: off[] are the
// views' element offsets of the run's first element, n its length.
template <class F>
void for_each_run(ExecContext& ex, const Layout& L, F&& f) {
  constexpr int64_t kChunk = 16384;  // elements per work item along the innermost dimension
  const int64_t inner = L.inner(), nchunks = (inner + kChunk - 1) / kChunk, items = L.rows() * nchunks;
  const int64_t per_item = inner < kChunk ? inner : kChunk;
  parallel_for(ex, items, 1 + 65536 / per_item, [&](int64_t i0, int64_t i1) {
    int64_t off[kMaxViews];
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i / nchunks, begin = (i % nchunks) * kChunk;
      const int64_t n = inner - begin < kChunk ? inner - begin : kChunk;
      L.row_offsets(row, off);
      for (int k = 0; k < L.nviews; ++k) off[k] += begin * L.stride[k][L.nd - 1];
      f(off, n);
    }
  });
}

bool is_cpu_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

// out[i] = round_TO(float(a[i]) + float(b[i])); strides in elements (0 broadcasts an input).
template <class TO, class TA, class TB>
void add_run(TO* o, int64_t so, const TA* x, int64_t sx, const TB* y, int64_t sy, int64_t n) {
  if (so == 1 && (sx == 0 || sx == 1) && (sy == 0 || sy == 1)) {
    const vf bx = vset(to_f32(x[0])), by = vset(to_f32(y[0]));
    int64_t i = 0;
    for (; i + kW <= n; i += kW) vstore(o + i, (sx ? vload(x + i) : bx) + (sy ? vload(y + i) : by));
    if (i < n) {
      const int r = int(n - i);
      vstore_n(o + i, (sx ? vload_n(x + i, r) : bx) + (sy ? vload_n(y + i, r) : by), r);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) o[i * so] = from_f32<TO>(to_f32(x[i * sx]) + to_f32(y[i * sy]));
}

template <class TO, class TI>
void cast_run(TO* o, int64_t so, const TI* x, int64_t sx, int64_t n) {
  if (so == 1 && sx == 1) {
    int64_t i = 0;
    for (; i + kW <= n; i += kW) vstore(o + i, vload(x + i));
    if (i < n) vstore_n(o + i, vload_n(x + i, int(n - i)), int(n - i));
    return;
  }
  for (int64_t i = 0; i < n; ++i) o[i * so] = from_f32<TO>(to_f32(x[i * sx]));
}

template <class U>
void copy_run(U* o, int64_t so, const U* x, int64_t sx, int64_t n) {
  if (so == 1 && sx == 1) {
    std::memcpy(static_cast<void*>(o), static_cast<const void*>(x), size_t(n) * sizeof(U));
    return;
  }
  for (int64_t i = 0; i < n; ++i) o[i * so] = x[i * sx];
}

template <class U>
void copy_as(ExecContext& ex, const copy_args& a) {
  const Layout L({&a.out, &a.x});
  U* o = a.out.ptr<U>();
  const U* x = a.x.ptr<const U>();
  const int64_t so = L.stride[0][L.nd - 1], sx = L.stride[1][L.nd - 1];
  for_each_run(ex, L, [&](const int64_t* off, int64_t n) { copy_run(o + off[0], so, x + off[1], sx, n); });
}

}  // namespace

opdev_status add(ExecContext& ex, const add_args& a) {
  for (const TensorView* v : {&a.out, &a.a, &a.b})
    if (!is_cpu_float(v->dtype))
      fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cpu: ", v->name, ": expected dtype float32 | bfloat16 | float16, got ", dtype_name(v->dtype));
  const Layout L({&a.out, &a.a, &a.b});
  const int64_t so = L.stride[0][L.nd - 1], sa = L.stride[1][L.nd - 1], sb = L.stride[2][L.nd - 1];
  dispatch_float(a.out.dtype, [&](auto to) {
    dispatch_float(a.a.dtype, [&](auto ta) {
      dispatch_float(a.b.dtype, [&](auto tb) {
        using TO = typename decltype(to)::type;
        using TA = typename decltype(ta)::type;
        using TB = typename decltype(tb)::type;
        TO* o = a.out.ptr<TO>();
        const TA* x = a.a.ptr<const TA>();
        const TB* y = a.b.ptr<const TB>();
        for_each_run(ex, L, [&](const int64_t* off, int64_t n) { add_run(o + off[0], so, x + off[1], sa, y + off[2], sb, n); });
      });
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status cast(ExecContext& ex, const cast_args& a) {
  for (const TensorView* v : {&a.out, &a.x})
    if (!is_cpu_float(v->dtype))
      fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cpu: ", v->name, ": expected dtype float32 | bfloat16 | float16, got ", dtype_name(v->dtype));
  const Layout L({&a.out, &a.x});
  const int64_t so = L.stride[0][L.nd - 1], sx = L.stride[1][L.nd - 1];
  dispatch_float(a.out.dtype, [&](auto to) {
    dispatch_float(a.x.dtype, [&](auto ti) {
      using TO = typename decltype(to)::type;
      using TI = typename decltype(ti)::type;
      TO* o = a.out.ptr<TO>();
      const TI* x = a.x.ptr<const TI>();
      for_each_run(ex, L, [&](const int64_t* off, int64_t n) { cast_run(o + off[0], so, x + off[1], sx, n); });
    });
  });
  return OPDEV_STATUS_SUCCESS;
}

opdev_status copy(ExecContext& ex, const copy_args& a) {
  // Exact for every dtype: elements move as raw bits of their size.
  switch (a.x.itemsize()) {
    case 1: copy_as<uint8_t>(ex, a); break;
    case 2: copy_as<uint16_t>(ex, a); break;
    case 4: copy_as<uint32_t>(ex, a); break;
    case 8: copy_as<uint64_t>(ex, a); break;
    default: fail(OPDEV_STATUS_UNSUPPORTED_DTYPE, "cpu: copy of dtype ", dtype_name(a.x.dtype), " is not implemented");
  }
  return OPDEV_STATUS_SUCCESS;
}

OPDEV_CPU_NAMESPACE_END
