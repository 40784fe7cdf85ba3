// Host copies of tensor views on any device (through opdev_memcpy), conversions to float64, in-place
// scaling for the perturbation, the cache slots reshape_and_cache wrote, and device tensors from host data.
#include <cmath>
#include <cstring>

#include "conformance.h"  // encode / decode: the suite's own dtype conversions (round to nearest even)
#include "inspect/inspect.h"

namespace opdev::inspect {

namespace {

// Byte range [lo, hi) of a view relative to its first element's address, and the element offsets in
// row-major order.
struct Extent {
  int64_t lo = 0, hi = 0;
  std::vector<int64_t> offsets;  // byte offset of each element from base + lo
};

Extent extent_of(const DLTensor* t) {
  Extent e;
  const int nd = t->ndim;
  const int64_t item = int64_t(dtype_bytes(t->dtype));
  int64_t n = 1;
  for (int d = 0; d < nd; ++d) n *= t->shape[d];
  if (n == 0) return e;
  std::vector<int64_t> st(static_cast<size_t>(nd));
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; --d) {
    st[size_t(d)] = t->strides ? t->strides[d] : s;
    s *= t->shape[d];
  }
  for (int d = 0; d < nd; ++d) {
    const int64_t span = (t->shape[d] - 1) * st[size_t(d)] * item;
    if (span < 0) e.lo += span;
    else e.hi += span;
  }
  e.hi += item;
  e.offsets.resize(size_t(n));
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  int64_t off = -e.lo;
  for (int64_t i = 0; i < n; ++i) {
    e.offsets[size_t(i)] = off;
    for (int d = nd - 1; d >= 0; --d) {
      off += st[size_t(d)] * item;
      if (++idx[size_t(d)] < t->shape[d]) break;
      off -= st[size_t(d)] * item * t->shape[d];
      idx[size_t(d)] = 0;
    }
  }
  return e;
}

uint8_t* base_of(const DLTensor* t) { return static_cast<uint8_t*>(t->data) + t->byte_offset; }

void memcpy_checked(opdev_context* ctx, void* dst, const void* src, size_t n, opdev_memcpy_kind kind) {
  if (n == 0) return;
  const opdev_status s = opdev_memcpy(ctx, dst, src, n, kind);
  if (s != OPDEV_STATUS_SUCCESS)
    throw InspectError(std::string("opdev_memcpy of ") + std::to_string(n) + " bytes failed: " + opdev_status_string(s) + ": " +
                       opdev_last_error());
}

}  // namespace

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool is_float(DLDataType t) { return t.lanes == 1 && (t.code == kDLFloat || t.code == kDLBfloat); }
bool is_integer(DLDataType t) { return t.lanes == 1 && (t.code == kDLInt || t.code == kDLUInt); }

std::string dtype_name(DLDataType t) {
  const std::string n = dtype_str(t);
  if (n != "unknown") return n;
  return "dtype(code " + std::to_string(t.code) + ", bits " + std::to_string(t.bits) + ", lanes " + std::to_string(t.lanes) + ")";
}

DLDataType dtype_from_name(const std::string& name) {
  for (DLDataType t : {kFloat32, kBFloat16, kFloat16, kFloat64, kInt8, kInt32, kInt64, kUInt8})
    if (name == dtype_str(t)) return t;
  throw InspectError("unknown dtype '" + name + "' (float32, bfloat16, float16, float64, int8, int32, int64, uint8)");
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

HostTensor download(opdev_context* ctx, const DLTensor* t) {
  HostTensor h;
  h.dtype = t->dtype;
  h.shape.assign(t->shape, t->shape + t->ndim);
  const size_t item = dtype_bytes(t->dtype);
  const Extent e = extent_of(t);
  h.bytes.resize(e.offsets.size() * item);
  if (e.offsets.empty()) return h;
  std::vector<uint8_t> raw(size_t(e.hi - e.lo));
  memcpy_checked(ctx, raw.data(), base_of(t) + e.lo, raw.size(), OPDEV_MEMCPY_DEVICE_TO_HOST);
  bool compact = true;
  for (size_t i = 0; i < e.offsets.size() && compact; ++i) compact = e.offsets[i] == int64_t(i * item);
  if (compact && raw.size() == h.bytes.size()) {
    h.bytes = std::move(raw);
    return h;
  }
  for (size_t i = 0; i < e.offsets.size(); ++i) std::memcpy(h.bytes.data() + i * item, raw.data() + e.offsets[i], item);
  return h;
}

std::vector<double> to_double(const HostTensor& h) {
  const size_t item = dtype_bytes(h.dtype);
  const size_t n = item ? h.bytes.size() / item : 0;
  std::vector<double> v(n);
  if (same_dtype(h.dtype, kFloat32)) {
    for (size_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, h.bytes.data() + i * 4, 4);
      v[i] = f;
    }
    return v;
  }
  for (size_t i = 0; i < n; ++i) v[i] = conformance::decode(h.dtype, h.bytes.data() + i * item);
  return v;
}

HostTensor convert(const HostTensor& h, DLDataType to) {
  HostTensor r;
  r.dtype = to;
  r.shape = h.shape;
  if (same_dtype(h.dtype, to)) {
    r.bytes = h.bytes;
    return r;
  }
  const std::vector<double> v = to_double(h);
  const size_t item = dtype_bytes(to);
  r.bytes.resize(v.size() * item);
  for (size_t i = 0; i < v.size(); ++i) conformance::encode(v[i], to, r.bytes.data() + i * item);
  return r;
}

void scale_in_place(opdev_context* ctx, const DLTensor* t, double factor) {
  if (!is_float(t->dtype)) return;
  const Extent e = extent_of(t);
  if (e.offsets.empty()) return;
  std::vector<uint8_t> raw(size_t(e.hi - e.lo));
  memcpy_checked(ctx, raw.data(), base_of(t) + e.lo, raw.size(), OPDEV_MEMCPY_DEVICE_TO_HOST);
  for (int64_t off : e.offsets) {
    uint8_t* p = raw.data() + off;
    conformance::encode(conformance::decode(t->dtype, p) * factor, t->dtype, p);
  }
  memcpy_checked(ctx, base_of(t) + e.lo, raw.data(), raw.size(), OPDEV_MEMCPY_HOST_TO_DEVICE);
}

HostTensor gather_slots(opdev_context* ctx, const DLTensor* cache, const DLTensor* slot_mapping) {
  if (cache->ndim < 2) throw InspectError("gather_slots: the cache has rank " + std::to_string(cache->ndim) + ", expected >= 2");
  const std::vector<double> slots = to_double(download(ctx, slot_mapping));
  const int64_t bs = cache->shape[1], nb = cache->shape[0];
  const HostTensor whole = download(ctx, cache);
  int64_t row = 1;
  for (int d = 2; d < cache->ndim; ++d) row *= cache->shape[d];
  const size_t row_bytes = size_t(row) * dtype_bytes(cache->dtype);
  HostTensor h;
  h.dtype = cache->dtype;
  h.shape.push_back(0);
  for (int d = 2; d < cache->ndim; ++d) h.shape.push_back(cache->shape[d]);
  for (double s : slots) {
    if (s < 0) continue;
    if (s >= double(nb * bs)) throw InspectError("gather_slots: slot " + std::to_string(int64_t(s)) + " is outside the cache");
    const size_t at = size_t(s) * row_bytes;
    h.bytes.insert(h.bytes.end(), whole.bytes.begin() + std::ptrdiff_t(at), whole.bytes.begin() + std::ptrdiff_t(at + row_bytes));
    ++h.shape[0];
  }
  return h;
}

DeviceTensor::DeviceTensor(opdev_context* ctx, const HostTensor& h) : ctx_(ctx) {
  const size_t n = h.bytes.size();
  if (n != size_t(h.numel()) * dtype_bytes(h.dtype))
    throw InspectError("a " + dtype_name(h.dtype) + " tensor of shape " + shape_str(h.shape) + " needs " +
                       std::to_string(size_t(h.numel()) * dtype_bytes(h.dtype)) + " bytes, got " + std::to_string(n));
  if (n) {
    const opdev_status s = opdev_malloc(ctx, n, &data_);
    if (s != OPDEV_STATUS_SUCCESS)
      throw InspectError("cannot allocate " + std::to_string(n) + " bytes on " + opdev_context_backend(ctx) + ": " + opdev_last_error());
    memcpy_checked(ctx, data_, h.bytes.data(), n, OPDEV_MEMCPY_HOST_TO_DEVICE);
  }
  ref_ = TensorRef(data_, h.dtype, h.shape, {}, opdev_context_device(ctx));
}

DeviceTensor::~DeviceTensor() {
  if (data_) opdev_free(ctx_, data_);
}

HostTensor DeviceTensor::download() const { return inspect::download(ctx_, ref_.get()); }

}  // namespace opdev::inspect
