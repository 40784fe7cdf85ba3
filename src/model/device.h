// Memory on a context's device and tensors over it: what the model runtime uses to hold weights, KV
// caches and activations. Everything goes through the C API (opdev_malloc / opdev_memcpy), so the same
// code serves host and device backends.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "opdev/opdev.hpp"

namespace opdev::model {

// Owns `nbytes` of device memory of a context.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(opdev_context* ctx, size_t nbytes, const std::string& what);
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  void reset();

 private:
  opdev_context* ctx_ = nullptr;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// A compact row-major tensor in its own device buffer.
struct Tensor {
  DeviceBuffer buf;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  TensorRef ref;  // the whole tensor

  Tensor() = default;
  Tensor(opdev_context* ctx, DLDataType dtype, std::vector<int64_t> shape, const std::string& what);
  bool defined() const { return !shape.empty(); }
  int64_t numel() const;
  size_t nbytes() const { return size_t(numel()) * dtype_bytes(dtype); }
  operator const DLTensor*() const { return ref.get(); }
  // A view of rows [row0, row0 + rows) of a tensor whose first dimension is rows (other dims kept).
  TensorRef rows(int64_t row0, int64_t nrows) const;
  // A view with another shape over the same compact memory (numel must match).
  TensorRef reshaped(std::vector<int64_t> new_shape) const;
};

// Copies host data into a device tensor / device data back to the host.
void upload(opdev_context* ctx, const Tensor& dst, const void* src, size_t nbytes);
void download(opdev_context* ctx, void* dst, const Tensor& src, size_t nbytes);

}  // namespace opdev::model
