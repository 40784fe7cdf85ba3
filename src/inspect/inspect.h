// Precision debugging on the profiler hook (opdev_context_set_profiler): what `opdev compare`, `--dump` and
// `opdev replay` are made of, as a library for the tools and the tests.
//
//   signatures  every op's arguments by name and role, and the generic invoker (op, named tensors, named
//               scalars) -> the C call
//   host copies a DLTensor view on any device -> a compact host copy in its own dtype (opdev_memcpy), and
//               back to a device
//   metrics     NMSE, max abs / max rel error, NaN / inf counts of one tensor against a reference
//   hooks       one profiler per context that fans out to recorders: full calls (inputs before the op,
//               outputs after it) for dumps and tests, outputs as float64 for compare, the perturbation
//   dumps       one directory per call (entry.json + .npy per tensor) and index.json; loading an entry back
//   compare     pairing two runs call by call and the per-op tolerance rule
//
// Nothing here aborts: bad input throws InspectError (or model::ModelError from the .npy layer) with a
// message that names the file, entry, op or argument.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "opdev/opdev.hpp"

namespace opdev::inspect {

class InspectError : public std::runtime_error {
 public:
  explicit InspectError(const std::string& m) : std::runtime_error(m) {}
};

// ---- op signatures and the invoker ------------------------------------------------------------------

enum class Role { In, Out, InOut };
const char* role_name(Role r);  // "in", "out", "inout"

struct OpSignature {
  opdev_op op = OPDEV_OP_COUNT;
  const char* name = "";
  std::vector<std::string> tensors;  // signature order (outputs first), as the hook names them
  std::vector<Role> roles;           // per tensor
  std::vector<std::string> scalars;  // signature order (rope_cache's scaling flattened as "scaling.<field>")
  std::vector<std::string> fixed_float32;  // float tensors that are float32 whatever the activation dtype
  int num_outputs() const;          // tensors[0 .. num_outputs) are written
};
// The signature of op; throws InspectError for a value outside ops.def.
const OpSignature& op_signature(opdev_op op);
// The op named `name` (canonical, as in ops.def); throws InspectError naming the known ops otherwise.
opdev_op op_from_name(const std::string& name);

// Calls op on ctx with the named arguments: tensors not in the map are passed as NULL (optional ones);
// every scalar must be given. Throws InspectError for a name the op does not have or a missing scalar;
// returns the op's status otherwise (opdev_last_error() has its message).
opdev_status invoke(opdev_context* ctx, opdev_op op, const std::map<std::string, const DLTensor*>& tensors,
                    const std::map<std::string, double>& scalars);

// ---- host copies ------------------------------------------------------------------------------------

// A compact C-order copy of a tensor in its own dtype.
struct HostTensor {
  DLDataType dtype{};
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  int64_t numel() const;
};

bool is_float(DLDataType t);    // float16 / bfloat16 / float32 / float64
bool is_integer(DLDataType t);  // int / uint of any width
// "float32", "bfloat16", ... and back (throws InspectError for an unknown name).
std::string dtype_name(DLDataType t);
DLDataType dtype_from_name(const std::string& name);
std::string shape_str(const std::vector<int64_t>& s);  // "[7, 256]"

// Copies the elements of a view (any strides, any device of ctx) to the host.
HostTensor download(opdev_context* ctx, const DLTensor* t);
// Element values as float64 (integers exactly up to 2^53).
std::vector<double> to_double(const HostTensor& h);
// Values re-encoded in another dtype (round to nearest even).
HostTensor convert(const HostTensor& h, DLDataType to);
// Multiplies the float elements of a view in place by `factor` (round trip through the host).
void scale_in_place(opdev_context* ctx, const DLTensor* t, double factor);
// Rows of a paged cache [num_blocks, block_size, ...] at the non-negative slots of slot_mapping (int32 or
// int64 [T]), in token order: [written tokens, ...].
HostTensor gather_slots(opdev_context* ctx, const DLTensor* cache, const DLTensor* slot_mapping);

// A compact tensor on a context's device holding a host tensor's values.
class DeviceTensor {
 public:
  DeviceTensor(opdev_context* ctx, const HostTensor& h);
  ~DeviceTensor();
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
  const DLTensor* get() const { return ref_.get(); }
  HostTensor download() const;

 private:
  opdev_context* ctx_;
  void* data_ = nullptr;
  TensorRef ref_;
};

// ---- metrics ----------------------------------------------------------------------------------------

// Denominator floor of the relative error: |a - b| / max(|b|, kRelFloorFraction * rms(b)), so that elements
// near zero are measured against a thousandth of the tensor's typical magnitude rather than blowing up.
inline constexpr double kRelFloorFraction = 1e-3;

struct Metrics {
  int64_t n = 0;
  double nmse = 0;            // sum (a - b)^2 / sum b^2 over elements finite on both sides; 0/0 = 0, x/0 = inf
  double max_abs = 0, max_rel = 0;
  int64_t nan_a = 0, inf_a = 0, nan_b = 0, inf_b = 0;
  int64_t nonfinite_mismatch = 0;  // elements where a and b are not both the same non-finite value or both finite
  int64_t mismatches = 0;          // elements with a != b (exactly; NaN == NaN)
};
// Metrics of `a` against the reference `b` (same size; throws InspectError otherwise).
Metrics metrics(const std::vector<double>& a, const std::vector<double>& b);

// ---- hooks ------------------------------------------------------------------------------------------

// One recorded tensor of a call: its value before the op (inputs, in/outs) and after it (outputs, in/outs).
struct CallTensor {
  std::string name;
  Role role = Role::In;
  bool absent = false;  // NULL argument
  HostTensor pre, post;
};
struct FullCall {
  uint64_t index = 0;       // sequence number of the call since the hook was installed (graph order)
  uint64_t call_index = 0;  // the context's call counter (opdev_op_info::call_index)
  opdev_op op = OPDEV_OP_COUNT;
  std::string label, backend;
  std::vector<CallTensor> tensors;                        // signature order
  std::vector<std::pair<std::string, double>> scalars;  // signature order
};

// One output of a call as float64, for compare.
struct CapturedOutput {
  std::string name;  // "out", or "key_cache[slots]" for the slots reshape_and_cache wrote
  DLDataType dtype{};
  std::vector<int64_t> shape;
  std::vector<double> values;
};
struct CapturedCall {
  uint64_t index = 0;
  opdev_op op = OPDEV_OP_COUNT;
  std::string label;
  std::vector<CapturedOutput> outputs;
};

// What a hook does at each call. Exceptions are caught by Hooks (they never cross the C ABI).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void begin(opdev_context* ctx, const opdev_op_info& info, uint64_t index) {}
  virtual void end(opdev_context* ctx, const opdev_op_info& info, uint64_t index, opdev_status status) {}
};

// Installs one profiler on a context and calls the observers in order (op_end in the same order, so a
// perturbation added first is seen by the recorders after it). The first exception an observer throws
// stops all observers; check() rethrows it as InspectError. Removes the profiler when destroyed.
class Hooks {
 public:
  explicit Hooks(opdev_context* ctx);
  ~Hooks();
  Hooks(const Hooks&) = delete;
  Hooks& operator=(const Hooks&) = delete;
  void add(Observer* o) { observers_.push_back(o); }
  void check() const;  // throws the first error an observer raised
  uint64_t calls() const { return next_; }

 private:
  static void on_begin(void* user, const opdev_op_info* info);
  static void on_end(void* user, const opdev_op_info* info, opdev_status status);
  opdev_context* ctx_;
  std::vector<Observer*> observers_;
  uint64_t next_ = 0;
  std::string error_;
};

// Records every call in full (inputs in begin, outputs in end) in memory, for calls whose label contains
// `filter` (empty: all). `sink` (if set) receives each finished call instead of it being kept.
class FullRecorder : public Observer {
 public:
  explicit FullRecorder(std::string filter = "", std::function<void(FullCall&&)> sink = nullptr)
      : filter_(std::move(filter)), sink_(std::move(sink)) {}
  void begin(opdev_context* ctx, const opdev_op_info& info, uint64_t index) override;
  void end(opdev_context* ctx, const opdev_op_info& info, uint64_t index, opdev_status status) override;
  std::vector<FullCall>& calls() { return calls_; }

 private:
  std::string filter_;
  std::function<void(FullCall&&)> sink_;
  bool active_ = false;
  FullCall cur_;
  std::vector<FullCall> calls_;
};

// Records every call's outputs as float64 (reshape_and_cache: only the slots it wrote), for compare.
// Stops after max_calls calls (0: no limit).
class OutputRecorder : public Observer {
 public:
  explicit OutputRecorder(uint64_t max_calls = 0) : max_(max_calls) {}
  void end(opdev_context* ctx, const opdev_op_info& info, uint64_t index, opdev_status status) override;
  std::vector<CapturedCall>& calls() { return calls_; }

 private:
  uint64_t max_;
  std::vector<CapturedCall> calls_;
};

// Multiplies the float outputs of the calls labelled exactly `label` by (1 + rel), in place, after the op
// ran: an injected error in one op that every later op sees (a testing and debugging aid).
class Perturber : public Observer {
 public:
  Perturber(std::string label, double rel) : label_(std::move(label)), rel_(rel) {}
  void end(opdev_context* ctx, const opdev_op_info& info, uint64_t index, opdev_status status) override;
  int applied() const { return applied_; }

 private:
  std::string label_;
  double rel_;
  int applied_ = 0;
};

// ---- dumps ------------------------------------------------------------------------------------------

// Writes each recorded call to DIR/NNNNN-<label>/ (entry.json and one .npy per tensor: <name>.npy, or for
// in/outs <name>.in.npy before and <name>.out.npy after) and, on finish(), DIR/index.json with every
// entry. bfloat16 is stored as '<u2' (its bits; the dtype is in the json), float16 as '<f2'.
class Dumper : public Observer {
 public:
  Dumper(std::string dir, std::string filter);
  void begin(opdev_context* ctx, const opdev_op_info& info, uint64_t index) override { rec_.begin(ctx, info, index); }
  void end(opdev_context* ctx, const opdev_op_info& info, uint64_t index, opdev_status status) override {
    rec_.end(ctx, info, index, status);
  }
  void finish();  // writes index.json
  size_t entries() const { return index_.size(); }
  const std::string& dir() const { return dir_; }

 private:
  void write(FullCall&& c);
  std::string dir_;
  FullRecorder rec_;
  std::vector<std::string> index_;  // entry json texts
};

// The directory name of an entry: "%05d-<label>" (label characters outside [A-Za-z0-9._-] become '_'; the
// op name when the label is empty).
std::string entry_dir_name(uint64_t index, const std::string& label, opdev_op op);

struct EntryTensor {
  std::string name;
  Role role = Role::In;
  std::string file, file_out;  // relative to the entry directory; file_out only for in/outs
  DLDataType dtype{};
  std::vector<int64_t> shape;
};
struct Entry {
  std::string dir;  // the entry directory
  uint64_t index = 0, call_index = 0;
  opdev_op op = OPDEV_OP_COUNT;
  std::string op_name, label, backend;
  std::vector<EntryTensor> tensors;
  std::vector<std::pair<std::string, double>> scalars;
};
// Reads DIR/entry.json; checks the op exists, every tensor name belongs to it, roles and dtypes are known
// and every scalar is present. Throws InspectError naming the file and the field.
Entry load_entry(const std::string& dir);
// Loads a tensor's value before the op (`after` false: file) or after it (file_out for in/outs, file for
// outputs), checking the .npy's element type and shape against entry.json.
HostTensor load_tensor(const Entry& e, const EntryTensor& t, bool after);
// Writes a host tensor as .npy in its own dtype (bfloat16 as '<u2').
void save_tensor(const std::string& path, const HostTensor& h);

// ---- compare ----------------------------------------------------------------------------------------

// The NMSE bound at an op's output for a pair of compute dtypes: the less precise side decides
// (bfloat16 > float16 > float32). See the comment in compare.cpp and docs/ARCHITECTURE.md.
double nmse_tolerance(DLDataType a, DLDataType b);

struct OutputResult {
  std::string name;
  DLDataType dtype_a{}, dtype_b{};
  std::vector<int64_t> shape;
  Metrics m;
  bool exact = false;     // integer output: compared exactly
  bool exceeds = false;
};
struct CallResult {
  uint64_t index = 0;
  opdev_op op = OPDEV_OP_COUNT;
  std::string label;
  int step = 0;  // forward number (0 = prefill)
  std::vector<OutputResult> outputs;
  double worst_nmse = 0;
  bool exceeds = false;
};
// Pairs the calls of A and B by order and computes each output's metrics against B (the reference).
// Throws InspectError if the graphs differ (count, op or label of a call; output names or shapes).
// `steps` gives the forward number of each call index (optional, for the report).
std::vector<CallResult> compare_calls(const std::vector<CapturedCall>& a, const std::vector<CapturedCall>& b, double tol,
                                      const std::vector<int>& step_of_call = {});

// The row a label belongs to in the per-layer table: "layers.N" for "layers.N.<...>", else the label.
std::string layer_of(const std::string& label);

}  // namespace opdev::inspect
