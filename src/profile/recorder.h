// The profiler's recorder: installed as a context's profiler hook (beside the user's hook, which it calls),
// it appends one CallRecord per op call. Recording is cheap: fixed-size records in preallocated vectors,
// tensor metadata copied as numbers, labels interned (a hash lookup, no allocation once seen), two clock
// reads; all formatting happens when the profile is written (report.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "opdev/opdev.h"

namespace opdev::profile {

// One tensor argument of a call (absent optional arguments are not recorded).
struct TensorRecord {
  uintptr_t lo = 0, hi = 0;  // bytes [lo, hi) the view can touch (lo == hi when empty)
  const char* name = "";     // argument name: a static string of the op front-end
  uint32_t dims = 0;         // offset of its shape in Recorder::dims()
  uint8_t ndim = 0;
  DLDataType dtype{};
  bool output = false;       // written by the call (in-place arguments included)
  double nbytes = 0;         // elements x item size
};

struct CallRecord {
  uint64_t call_index = 0;
  int64_t begin_ns = 0, end_ns = 0;  // steady clock, relative to the recorder's start
  double bytes = 0, flops = 0;       // the op's cost formula
  uint32_t label = 0;                // index into labels() (0 = no label)
  uint32_t thread = 0;               // index into threads()
  uint32_t first_tensor = 0;         // tensors()[first_tensor, first_tensor + num_tensors)
  uint16_t num_tensors = 0;
  opdev_op op = OPDEV_OP_COUNT;
  opdev_status status = OPDEV_STATUS_SUCCESS;
  const char* backend = "";          // static name from the backend table
  DLDataType dtype{};                // activation dtype
};

struct ThreadRecord {
  int64_t os_tid = 0;  // gettid()
  std::string name;    // pthread name at first sight
};

class Recorder {
 public:
  Recorder();
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Installs the recorder on ctx (which must not have one) / removes it. The context's own hook keeps
  // being called. detach() is also called by opdev_context_destroy.
  void attach(opdev_context* ctx);
  void detach();
  opdev_context* context() const { return ctx_; }
  // The hook that context.cpp installs while attached.
  opdev_profiler hook() { return opdev_profiler{this, &Recorder::on_begin, &Recorder::on_end}; }

  const std::vector<CallRecord>& calls() const { return calls_; }
  const std::vector<TensorRecord>& tensors() const { return tensors_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  const std::string& label(uint32_t id) const { return labels_[id]; }
  const std::vector<ThreadRecord>& threads() const { return threads_; }

  // What the report needs to know about the context (kept after it is destroyed).
  const std::string& backend_name() const { return backend_; }
  const std::string& backend_describe() const { return describe_; }
  bool device() const { return sync_device_; }  // a device backend (not host memory)
  int num_threads() const;
  // Wall time from the first op's start to the last op's end, in nanoseconds.
  int64_t span_ns() const;

 private:
  static void on_begin(void* user, const opdev_op_info* info);
  static void on_end(void* user, const opdev_op_info* info, opdev_status status);
  int64_t now_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
  }
  void push(const opdev_op_info& info, int64_t begin_ns, int64_t end_ns, opdev_status status);
  uint32_t intern_label(const char* label);
  uint32_t current_thread();

  opdev_context* ctx_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  int64_t pending_begin_ns_ = 0;  // op_begin's time, consumed by op_end
  bool sync_device_ = false;      // device backend: synchronize before taking the end time
  std::string backend_, describe_;
  int threads_at_detach_ = 1;

  std::vector<CallRecord> calls_;
  std::vector<TensorRecord> tensors_;
  std::vector<int64_t> dims_;
  std::deque<std::string> labels_;  // stable addresses: label_ids_ keys point into it
  std::unordered_map<std::string_view, uint32_t> label_ids_;
  uint32_t last_label_ = 0;
  std::vector<ThreadRecord> threads_;
  uint32_t last_thread_ = 0;
};

}  // namespace opdev::profile
