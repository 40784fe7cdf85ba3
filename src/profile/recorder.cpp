#include "profile/recorder.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/context.h"
#include "core/error.h"

namespace opdev::profile {

namespace {

int64_t os_thread_id() {
  thread_local const int64_t tid = int64_t(::syscall(SYS_gettid));
  return tid;
}

}  // namespace

Recorder::Recorder() : start_(std::chrono::steady_clock::now()) {
  // Room for 64K calls before the first reallocation (a 28-layer model's ~150 decode steps). Large
  // reservations are only address space until recording touches them.
  calls_.reserve(size_t(1) << 16);
  tensors_.reserve(size_t(1) << 18);
  dims_.reserve(size_t(1) << 19);
  threads_.reserve(4);
  labels_.emplace_back();  // id 0: no label
  label_ids_.emplace(std::string_view(labels_.front()), 0);
}

Recorder::~Recorder() { detach(); }

void Recorder::attach(opdev_context* ctx) {
  OPDEV_ASSERT(!ctx_ && !ctx->recorder);
  ctx_ = ctx;
  ctx->recorder = this;
  backend_ = ctx->backend->name;
  describe_ = ctx->backend->describe ? ctx->backend->describe(ctx->state) : "";
  sync_device_ = ctx->device.device_type != kDLCPU;
  refresh_profiler(ctx);
}

void Recorder::detach() {
  if (!ctx_) return;
  threads_at_detach_ = ctx_->num_threads;
  ctx_->recorder = nullptr;
  refresh_profiler(ctx_);
  ctx_ = nullptr;
}

int Recorder::num_threads() const { return ctx_ ? ctx_->num_threads : threads_at_detach_; }

int64_t Recorder::span_ns() const {
  if (calls_.empty()) return 0;
  int64_t end = 0;
  for (const CallRecord& c : calls_) end = std::max(end, c.end_ns);
  return end - calls_.front().begin_ns;
}

void Recorder::on_begin(void* user, const opdev_op_info* info) {
  auto* r = static_cast<Recorder*>(user);
  opdev_context* ctx = r->ctx_;
  if (ctx->has_user_profiler && ctx->user_profiler.op_begin) ctx->user_profiler.op_begin(ctx->user_profiler.user, info);
  r->pending_begin_ns_ = r->now_ns();  // last: the user's hook is not timed
}

void Recorder::on_end(void* user, const opdev_op_info* info, opdev_status status) {
  auto* r = static_cast<Recorder*>(user);
  opdev_context* ctx = r->ctx_;
  // A device backend queues work: wait for it, so that the time is the op's. The backend's synchronize
  // is called directly (not opdev_synchronize, which would clear the call's error message). CUDA events
  // recorded around the op are the better way, without the stall; they come with the CUDA backend.
  if (r->sync_device_ && ctx->backend->synchronize) ctx->backend->synchronize(ctx->state);
  const int64_t end = r->now_ns();  // first: recording is not timed
  r->push(*info, r->pending_begin_ns_, end, status);
  if (ctx->has_user_profiler && ctx->user_profiler.op_end) ctx->user_profiler.op_end(ctx->user_profiler.user, info, status);
}

uint32_t Recorder::intern_label(const char* label) {
  if (!label || !*label) return 0;
  const std::string_view s(label);
  if (labels_[last_label_] == s) return last_label_;
  auto it = label_ids_.find(s);
  if (it == label_ids_.end()) {
    labels_.emplace_back(s);
    it = label_ids_.emplace(std::string_view(labels_.back()), uint32_t(labels_.size() - 1)).first;
  }
  last_label_ = it->second;
  return it->second;
}

uint32_t Recorder::current_thread() {
  const int64_t tid = os_thread_id();
  if (!threads_.empty() && threads_[last_thread_].os_tid == tid) return last_thread_;
  for (size_t i = 0; i < threads_.size(); ++i)
    if (threads_[i].os_tid == tid) return last_thread_ = uint32_t(i);
  char name[64] = "";
  if (pthread_getname_np(pthread_self(), name, sizeof name) != 0) name[0] = 0;
  threads_.push_back(ThreadRecord{tid, name});
  return last_thread_ = uint32_t(threads_.size() - 1);
}

void Recorder::push(const opdev_op_info& info, int64_t begin_ns, int64_t end_ns, opdev_status status) {
  CallRecord c;
  c.call_index = info.call_index;
  c.begin_ns = begin_ns;
  c.end_ns = end_ns;
  c.bytes = info.bytes;
  c.flops = info.flops;
  c.label = intern_label(info.label);
  c.thread = current_thread();
  c.first_tensor = uint32_t(tensors_.size());
  c.op = info.op;
  c.status = status;
  c.backend = info.backend;
  c.dtype = info.dtype;
  for (int i = 0; i < info.num_tensors; ++i) {
    const DLTensor* t = info.tensors[i];
    if (!t) continue;  // an absent optional argument
    TensorRecord r;
    r.name = info.tensor_names[i];
    r.ndim = uint8_t(t->ndim);
    r.dtype = t->dtype;
    r.output = i < info.num_outputs;
    r.dims = uint32_t(dims_.size());
    // Validated by the front-end: rank <= 8, sizes and strides >= 0, extents do not overflow.
    const size_t item = (size_t(t->dtype.bits) * t->dtype.lanes + 7) / 8;
    int64_t numel = 1, extent = 0, compact = 1;
    for (int d = t->ndim - 1; d >= 0; --d) {
      const int64_t n = t->shape[d];
      const int64_t stride = t->strides ? t->strides[d] : compact;
      numel *= n;
      if (n > 0) extent += (n - 1) * stride;
      compact *= n;
    }
    for (int d = 0; d < t->ndim; ++d) dims_.push_back(t->shape[d]);
    r.lo = uintptr_t(t->data) + uintptr_t(t->byte_offset);
    r.hi = numel > 0 ? r.lo + uintptr_t(extent + 1) * item : r.lo;
    r.nbytes = double(numel) * double(item);
    tensors_.push_back(r);
    ++c.num_tensors;
  }
  calls_.push_back(c);
}

}  // namespace opdev::profile
