#include "model/device.h"

#include "model/error.h"

namespace opdev::model {

DeviceBuffer::DeviceBuffer(opdev_context* ctx, size_t nbytes, const std::string& what) : ctx_(ctx), size_(nbytes) {
  opdev_status s = opdev_malloc(ctx, nbytes, &data_);
  if (s != OPDEV_STATUS_SUCCESS)
    throw ModelError("cannot allocate " + std::to_string(nbytes >> 20) + " MiB for " + what + " on the " +
                     opdev_context_backend(ctx) + " device: " + opdev_last_error());
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ctx_ = o.ctx_;
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (data_) opdev_free(ctx_, data_);
  data_ = nullptr;
  size_ = 0;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Tensor::Tensor(opdev_context* ctx, DLDataType dt, std::vector<int64_t> shp, const std::string& what) : dtype(dt), shape(std::move(shp)) {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0 || (s > 0 && n > INT64_MAX / s)) throw ModelError("tensor " + what + ": shape overflows");
    n *= s;
  }
  const int64_t item = int64_t(dtype_bytes(dtype));
  if (n > INT64_MAX / item) throw ModelError("tensor " + what + ": size overflows");
  buf = DeviceBuffer(ctx, size_t(n * item), what);
  ref = TensorRef(buf.data(), dtype, shape, {}, opdev_context_device(ctx));
}

TensorRef Tensor::rows(int64_t row0, int64_t nrows) const {
  if (!defined() || row0 < 0 || nrows < 0 || row0 + nrows > shape[0])
    throw ModelError("internal error: rows [" + std::to_string(row0) + ", " + std::to_string(row0 + nrows) + ") of a tensor with " +
                     (defined() ? std::to_string(shape[0]) : std::string("no")) + " rows");
  std::vector<int64_t> s = shape;
  int64_t row_elems = 1;
  for (size_t d = 1; d < shape.size(); ++d) row_elems *= shape[d];
  s[0] = nrows;
  return TensorRef(buf.data(), dtype, s, {}, ref.get()->device, uint64_t(row0 * row_elems) * dtype_bytes(dtype));
}

TensorRef Tensor::reshaped(std::vector<int64_t> new_shape) const {
  return TensorRef(buf.data(), dtype, std::move(new_shape), {}, ref.get()->device);
}

void upload(opdev_context* ctx, const Tensor& dst, const void* src, size_t nbytes) {
  check(opdev_memcpy(ctx, dst.buf.data(), src, nbytes, OPDEV_MEMCPY_HOST_TO_DEVICE));
}

void download(opdev_context* ctx, void* dst, const Tensor& src, size_t nbytes) {
  check(opdev_memcpy(ctx, dst, src.buf.data(), nbytes, OPDEV_MEMCPY_DEVICE_TO_HOST));
}

}  // namespace opdev::model
