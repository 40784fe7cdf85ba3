// Thin C++ layer over the C interface: dtype constants, a throwing status check, an RAII context and a
// DLTensor that owns its shape and strides. Header-only; everything goes through opdev.h.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "opdev/opdev.h"

namespace opdev {

inline constexpr DLDataType kFloat32{kDLFloat, 32, 1};
inline constexpr DLDataType kBFloat16{kDLBfloat, 16, 1};
inline constexpr DLDataType kFloat16{kDLFloat, 16, 1};
inline constexpr DLDataType kFloat64{kDLFloat, 64, 1};
inline constexpr DLDataType kInt8{kDLInt, 8, 1};
inline constexpr DLDataType kInt32{kDLInt, 32, 1};
inline constexpr DLDataType kInt64{kDLInt, 64, 1};
inline constexpr DLDataType kUInt8{kDLUInt, 8, 1};

inline bool same_dtype(DLDataType a, DLDataType b) { return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes; }
inline size_t dtype_bytes(DLDataType t) { return (size_t(t.bits) * t.lanes + 7) / 8; }
inline const char* dtype_str(DLDataType t) {
  if (same_dtype(t, kFloat32)) return "float32";
  if (same_dtype(t, kBFloat16)) return "bfloat16";
  if (same_dtype(t, kFloat16)) return "float16";
  if (same_dtype(t, kFloat64)) return "float64";
  if (same_dtype(t, kInt8)) return "int8";
  if (same_dtype(t, kInt32)) return "int32";
  if (same_dtype(t, kInt64)) return "int64";
  if (same_dtype(t, kUInt8)) return "uint8";
  return "unknown";
}

// A failed opdev call: the status and opdev_last_error() at the time.
class StatusError : public std::runtime_error {
 public:
  StatusError(opdev_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  opdev_status status() const { return status_; }

 private:
  opdev_status status_;
};

inline void check(opdev_status s) {
  if (s != OPDEV_STATUS_SUCCESS) throw StatusError(s, std::string(opdev_status_string(s)) + ": " + opdev_last_error());
}

// Owns an opdev_context.
class Context {
 public:
  Context() = default;
  explicit Context(const char* backend, int num_threads = 0, bool deterministic = false) {
    opdev_context_options o;
    opdev_context_options_init(&o);
    o.num_threads = num_threads;
    o.deterministic = deterministic ? 1 : 0;
    opdev_context* c = nullptr;
    check(opdev_context_create(backend, &o, &c));
    ctx_.reset(c);
  }
  opdev_context* get() const { return ctx_.get(); }
  operator opdev_context*() const { return ctx_.get(); }
  DLDevice device() const { return opdev_context_device(ctx_.get()); }
  const char* backend() const { return opdev_context_backend(ctx_.get()); }

 private:
  struct Deleter {
    void operator()(opdev_context* c) const { opdev_context_destroy(c); }
  };
  std::unique_ptr<opdev_context, Deleter> ctx_;
};

// A DLTensor view that owns its shape and strides arrays (not the data).
class TensorRef {
 public:
  TensorRef() = default;
  TensorRef(void* data, DLDataType dtype, std::vector<int64_t> shape, std::vector<int64_t> strides = {},
            DLDevice device = DLDevice{kDLCPU, 0}, uint64_t byte_offset = 0)
      : shape_(std::move(shape)), strides_(std::move(strides)) {
    t_.data = data;
    t_.device = device;
    t_.ndim = int(shape_.size());
    t_.dtype = dtype;
    t_.shape = shape_.data();
    t_.strides = strides_.empty() ? nullptr : strides_.data();
    t_.byte_offset = byte_offset;
  }
  TensorRef(const TensorRef& o) : TensorRef(o.t_.data, o.t_.dtype, o.shape_, o.strides_, o.t_.device, o.t_.byte_offset) {}
  TensorRef& operator=(const TensorRef& o) {
    TensorRef tmp(o);
    std::swap(shape_, tmp.shape_);
    std::swap(strides_, tmp.strides_);
    t_ = tmp.t_;
    t_.shape = shape_.data();
    t_.strides = strides_.empty() ? nullptr : strides_.data();
    return *this;
  }
  const DLTensor* get() const { return &t_; }
  operator const DLTensor*() const { return &t_; }
  DLTensor* mutable_tensor() { return &t_; }
  const std::vector<int64_t>& shape() const { return shape_; }

 private:
  std::vector<int64_t> shape_, strides_;
  DLTensor t_{};
};

}  // namespace opdev
