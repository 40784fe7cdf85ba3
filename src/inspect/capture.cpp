// The profiler hook of the precision tools: one opdev_profiler per context fanning out to observers that
// record whole calls, record outputs for compare, or perturb outputs.
#include <cstddef>

#include "inspect/inspect.h"

namespace opdev::inspect {

namespace {

// The hook's 0.2 fields (num_outputs, scalars, label, call_index) must be there.
void require_full_info(const opdev_op_info& info) {
  if (info.struct_size < offsetof(opdev_op_info, call_index) + sizeof(info.call_index))
    throw InspectError("the loaded libopdev reports op calls without outputs, scalars and labels (opdev_op_info of " +
                       std::to_string(info.struct_size) + " bytes); the precision tools need opdev 0.2 or later");
}

}  // namespace

// ---- Hooks ----

Hooks::Hooks(opdev_context* ctx) : ctx_(ctx) {
  opdev_profiler p{};
  p.user = this;
  p.op_begin = &Hooks::on_begin;
  p.op_end = &Hooks::on_end;
  const opdev_status s = opdev_context_set_profiler(ctx, &p);
  if (s != OPDEV_STATUS_SUCCESS) throw InspectError(std::string("cannot install the profiler hook: ") + opdev_last_error());
}

Hooks::~Hooks() { opdev_context_set_profiler(ctx_, nullptr); }

void Hooks::check() const {
  if (!error_.empty()) throw InspectError(error_);
}

void Hooks::on_begin(void* user, const opdev_op_info* info) {
  Hooks* h = static_cast<Hooks*>(user);
  if (!h->error_.empty()) return;
  try {
    require_full_info(*info);
    for (Observer* o : h->observers_) o->begin(h->ctx_, *info, h->next_);
  } catch (const std::exception& e) {
    h->error_ = std::string("at op call ") + std::to_string(h->next_) + " (" + opdev_op_name(info->op) + "): " + e.what();
  } catch (...) {
    h->error_ = "at op call " + std::to_string(h->next_) + ": unknown error";
  }
}

void Hooks::on_end(void* user, const opdev_op_info* info, opdev_status status) {
  Hooks* h = static_cast<Hooks*>(user);
  const uint64_t index = h->next_++;
  if (!h->error_.empty()) return;
  try {
    for (Observer* o : h->observers_) o->end(h->ctx_, *info, index, status);
  } catch (const std::exception& e) {
    h->error_ = std::string("at op call ") + std::to_string(index) + " (" + opdev_op_name(info->op) + "): " + e.what();
  } catch (...) {
    h->error_ = "at op call " + std::to_string(index) + ": unknown error";
  }
}

// ---- FullRecorder ----

void FullRecorder::begin(opdev_context* ctx, const opdev_op_info& info, uint64_t index) {
  active_ = false;
  const std::string label = info.label ? info.label : "";
  if (!filter_.empty() && label.find(filter_) == std::string::npos) return;
  const OpSignature& sig = op_signature(info.op);
  if (info.num_tensors != int(sig.tensors.size()) || info.num_scalars != int(sig.scalars.size()))
    throw InspectError(std::string(sig.name) + ": the hook reports " + std::to_string(info.num_tensors) + " tensors and " +
                       std::to_string(info.num_scalars) + " scalars, src/inspect's signature has " + std::to_string(sig.tensors.size()) +
                       " and " + std::to_string(sig.scalars.size()));
  FullCall c;
  c.index = index;
  c.call_index = info.call_index;
  c.op = info.op;
  c.label = label;
  c.backend = info.backend ? info.backend : "";
  for (int i = 0; i < info.num_tensors; ++i) {
    if (sig.tensors[size_t(i)] != info.tensor_names[i])
      throw InspectError(std::string(sig.name) + ": the hook names tensor " + std::to_string(i) + " '" + info.tensor_names[i] +
                         "', src/inspect's signature '" + sig.tensors[size_t(i)] + "'");
    CallTensor t;
    t.name = info.tensor_names[i];
    t.role = sig.roles[size_t(i)];
    const DLTensor* d = info.tensors[i];
    t.absent = d == nullptr;
    if (d && t.role != Role::Out) t.pre = download(ctx, d);
    c.tensors.push_back(std::move(t));
  }
  for (int i = 0; i < info.num_scalars; ++i) {
    if (sig.scalars[size_t(i)] != info.scalars[i].name)
      throw InspectError(std::string(sig.name) + ": the hook names scalar " + std::to_string(i) + " '" + info.scalars[i].name +
                         "', src/inspect's signature '" + sig.scalars[size_t(i)] + "'");
    c.scalars.emplace_back(info.scalars[i].name, info.scalars[i].value);
  }
  cur_ = std::move(c);
  active_ = true;
}

void FullRecorder::end(opdev_context* ctx, const opdev_op_info& info, uint64_t index, opdev_status status) {
  if (!active_) return;
  active_ = false;
  if (status != OPDEV_STATUS_SUCCESS || index != cur_.index) return;
  for (int i = 0; i < info.num_tensors; ++i) {
    CallTensor& t = cur_.tensors[size_t(i)];
    if (!t.absent && t.role != Role::In) t.post = download(ctx, info.tensors[i]);
  }
  if (sink_) sink_(std::move(cur_));
  else calls_.push_back(std::move(cur_));
  cur_ = FullCall{};
}

// ---- OutputRecorder ----

void OutputRecorder::end(opdev_context* ctx, const opdev_op_info& info, uint64_t index, opdev_status status) {
  if (status != OPDEV_STATUS_SUCCESS) return;
  if (max_ && calls_.size() >= max_) return;
  CapturedCall c;
  c.index = index;
  c.op = info.op;
  c.label = info.label ? info.label : "";
  for (int i = 0; i < info.num_outputs && i < info.num_tensors; ++i) {
    const DLTensor* t = info.tensors[i];
    if (!t) continue;
    CapturedOutput o;
    o.name = info.tensor_names[i];
    HostTensor h;
    if (info.op == OPDEV_OP_RESHAPE_AND_CACHE) {
      // Only what this call wrote: the cache rows at its slots (the rest is earlier tokens or unused memory).
      if (info.num_tensors < 5 || !info.tensors[4]) throw InspectError("reshape_and_cache without slot_mapping");
      h = gather_slots(ctx, t, info.tensors[4]);
      o.name += "[slots]";
    } else {
      h = download(ctx, t);
    }
    o.dtype = h.dtype;
    o.shape = h.shape;
    o.values = to_double(h);
    c.outputs.push_back(std::move(o));
  }
  calls_.push_back(std::move(c));
}

// ---- Perturber ----

void Perturber::end(opdev_context* ctx, const opdev_op_info& info, uint64_t, opdev_status status) {
  if (status != OPDEV_STATUS_SUCCESS || !info.label || label_ != info.label) return;
  for (int i = 0; i < info.num_outputs && i < info.num_tensors; ++i)
    if (info.tensors[i] && is_float(info.tensors[i]->dtype)) scale_in_place(ctx, info.tensors[i], 1.0 + rel_);
  ++applied_;
}

}  // namespace opdev::inspect
