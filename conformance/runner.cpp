// Runs conformance cases: materialises tensors on the backend under test with guard bytes, runs the ref
// backend on float64 copies of the same values, compares, and tabulates.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "conformance.h"

namespace opdev::conformance {

// ---- registry ----

Registry& registry() {
  static Registry r;
  static bool built = false;
  if (!built) {
    built = true;
#define OPDEV_CONFORMANCE_FAMILY(family) register_##family();
#include "cases/families.def"
#undef OPDEV_CONFORMANCE_FAMILY
  }
  return r;
}

void add(Case c) { registry().cases.push_back(std::move(c)); }
void add_error(ErrorCase e) { registry().errors.push_back(std::move(e)); }
void add_error(std::string op, std::string name, opdev_status expected, std::string message,
               std::function<opdev_status(ErrorEnv&)> call, bool host_index_check) {
  add_error(ErrorCase{std::move(op), std::move(name), expected, std::move(message), host_index_check, std::move(call)});
}

TensorSpec& Case::input(const std::string& n, std::vector<int64_t> shape) {
  tensors.push_back(TensorSpec{});
  tensors.back().name = n;
  tensors.back().role = Role::Input;
  tensors.back().shape = std::move(shape);
  return tensors.back();
}
TensorSpec& Case::output(const std::string& n, std::vector<int64_t> shape) {
  TensorSpec& t = input(n, std::move(shape));
  t.role = Role::Output;
  return t;
}
TensorSpec& Case::inout(const std::string& n, std::vector<int64_t> shape) {
  TensorSpec& t = input(n, std::move(shape));
  t.role = Role::InOut;
  return t;
}
TensorSpec& Case::absent(const std::string& n) {
  TensorSpec& t = input(n, {});
  t.absent = true;
  return t;
}
Case& Case::mag(std::vector<std::string> inputs, double rtol_all) {
  tol.mag_inputs = std::move(inputs);
  tol.mag_rtol = {{"*", rtol_all}};
  return *this;
}
Case& Case::mag(std::vector<std::string> inputs, std::map<std::string, double> rtol_by_dtype) {
  tol.mag_inputs = std::move(inputs);
  tol.mag_rtol = std::move(rtol_by_dtype);
  return *this;
}

const DLTensor* Call::operator[](const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw std::runtime_error("case bug: the call asks for unknown tensor '" + name + "'");
  return it->second;
}

// ---- tensors on a context ----

namespace {

constexpr size_t kGuard = 64;        // guard bytes before and after each buffer
constexpr uint8_t kPattern = 0xA5;   // guard/initial byte

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

uint64_t hash_str(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// One tensor materialised on a context: a device buffer, its host staging copy and the view.
struct Buffer {
  opdev_context* ctx = nullptr;
  void* dev = nullptr;
  size_t bytes = 0;
  std::vector<uint8_t> host;  // what was uploaded
  DLDataType dtype{};
  std::vector<int64_t> shape, strides;
  std::vector<int64_t> offsets;  // element offset of each logical element (row-major), from the view start
  TensorRef ref;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (dev) opdev_free(ctx, dev);
  }
};

std::vector<int64_t> layout_strides(const std::vector<int64_t>& shape, int64_t row_pad) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    st[d] = s;
    s *= shape[d];
  }
  if (row_pad > 0 && shape.size() >= 2) st[0] = st[0] + row_pad;
  return st;
}

// Allocates `shape` in `dtype` with the given strides, fills everything with the pattern, writes
// `values` (if any) at the view's elements and uploads.
void materialise(Buffer& b, opdev_context* ctx, DLDataType dtype, const std::vector<int64_t>& shape,
                 const std::vector<int64_t>& strides, const std::vector<double>* values) {
  b.ctx = ctx;
  b.dtype = dtype;
  b.shape = shape;
  b.strides = strides;
  const size_t item = dtype_bytes(dtype);
  const int64_t n = numel_of(shape);
  int64_t extent = 0;
  if (n > 0) {
    for (size_t d = 0; d < shape.size(); ++d) extent += (shape[d] - 1) * strides[d];
    extent += 1;
  }
  b.bytes = size_t(extent) * item + 2 * kGuard;
  b.host.assign(b.bytes, kPattern);
  b.offsets.resize(size_t(n));
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < shape.size(); ++d) off += idx[d] * strides[d];
    b.offsets[size_t(i)] = off;
    if (values) encode((*values)[size_t(i)], dtype, b.host.data() + kGuard + size_t(off) * item);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  check(opdev_malloc(ctx, b.bytes, &b.dev));
  check(opdev_memcpy(ctx, b.dev, b.host.data(), b.bytes, OPDEV_MEMCPY_HOST_TO_DEVICE));
  b.ref = TensorRef(static_cast<uint8_t*>(b.dev) + kGuard, dtype, shape, strides, opdev_context_device(ctx));
}

std::vector<uint8_t> download(const Buffer& b) {
  std::vector<uint8_t> h(b.bytes);
  check(opdev_memcpy(b.ctx, h.data(), b.dev, b.bytes, OPDEV_MEMCPY_DEVICE_TO_HOST));
  return h;
}

std::vector<double> read_values(const Buffer& b, const std::vector<uint8_t>& h) {
  const size_t item = dtype_bytes(b.dtype);
  std::vector<double> v(b.offsets.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = decode(b.dtype, h.data() + kGuard + size_t(b.offsets[i]) * item);
  return v;
}

// Bytes outside the view's elements that changed (guards and gaps between strided rows).
int64_t changed_outside_view(const Buffer& b, const std::vector<uint8_t>& h) {
  const size_t item = dtype_bytes(b.dtype);
  std::vector<bool> inside(b.bytes, false);
  for (int64_t off : b.offsets)
    for (size_t k = 0; k < item; ++k) inside[kGuard + size_t(off) * item + k] = true;
  int64_t changed = 0;
  for (size_t i = 0; i < b.bytes; ++i)
    if (!inside[i] && h[i] != kPattern) ++changed;
  return changed;
}

bool is_integer(DLDataType t) { return t.code == kDLInt || t.code == kDLUInt; }

}  // namespace

struct Materialised {
  std::map<std::string, std::unique_ptr<Buffer>> bufs;
  Call call;
};

namespace {

// Builds the tensors of `c` on ctx. `act` is the activation dtype; `strided` applies the specs' row
// padding (the ref side runs compact). `abs_inputs` replaces those inputs' values by absolute values.
void build(Materialised& m, const Case& c, opdev_context* ctx, DLDataType act, bool strided,
           const std::map<std::string, std::vector<double>>& values, const std::set<std::string>& abs_inputs) {
  m.call.ctx = ctx;
  m.call.dtype = act;
  for (const TensorSpec& t : c.tensors) {
    if (t.absent) {
      m.call.tensors[t.name] = nullptr;
      continue;
    }
    if (!t.alias_of.empty()) continue;
    auto b = std::make_unique<Buffer>();
    const DLDataType dt = t.activation ? act : t.fixed;
    const std::vector<double>* vals = nullptr;
    std::vector<double> absv;
    auto it = values.find(t.name);
    if (it != values.end()) {
      vals = &it->second;
      if (abs_inputs.count(t.name)) {
        absv = it->second;
        for (double& x : absv) x = std::fabs(x);
        vals = &absv;
      }
    }
    materialise(*b, ctx, dt, t.shape, layout_strides(t.shape, strided ? t.row_pad : 0), vals);
    m.call.tensors[t.name] = b->ref.get();
    m.bufs[t.name] = std::move(b);
  }
  for (const TensorSpec& t : c.tensors)
    if (!t.alias_of.empty()) {
      auto it = m.bufs.find(t.alias_of);
      if (it == m.bufs.end()) throw std::runtime_error("case bug: '" + t.name + "' aliases unknown tensor '" + t.alias_of + "'");
      m.call.tensors[t.name] = it->second->ref.get();
    }
}

std::string fmt_double(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

// Logical input values of a case, rounded to each tensor's dtype so that ref sees the same inputs.
std::map<std::string, std::vector<double>> generate_values(const Case& c, DLDataType dtype) {
  const uint64_t seed = c.seed ? c.seed : hash_str(c.op + "/" + c.name);
  std::map<std::string, std::vector<double>> values;
  for (const TensorSpec& t : c.tensors) {
    if (t.absent || !t.alias_of.empty() || t.role == Role::Output) continue;
    std::vector<double> v(size_t(numel_of(t.shape)), 0.0);
    if (t.gen) t.gen(v, hash_str(t.name, seed));
    if (v.size() != size_t(numel_of(t.shape)))
      throw std::runtime_error("case bug: generator of '" + t.name + "' produced " + std::to_string(v.size()) + " values");
    const DLDataType dt = t.activation ? dtype : t.fixed;
    uint8_t tmp[8];
    for (double& x : v) {
      encode(x, dt, tmp);
      x = decode(dt, tmp);
    }
    values[t.name] = std::move(v);
  }
  return values;
}

Result run_numeric(const Case& c, DLDataType dtype, opdev_context* target, opdev_context* ref) {
  Result r;
  r.op = c.op;
  r.name = c.name;
  r.dtype = dtype_str(dtype);
  const opdev_op op = opdev_op_from_name(c.op.c_str());
  if (op == OPDEV_OP_COUNT) {
    r.detail = "case bug: unknown op " + c.op;
    return r;
  }
  if (!opdev_supports(target, op, dtype)) {
    r.skipped = true;
    r.detail = std::string("backend does not support ") + dtype_str(dtype);
    return r;
  }
  std::map<std::string, std::vector<double>> values;
  try {
    values = generate_values(c, dtype);
  } catch (const std::exception& e) {
    r.detail = e.what();
    return r;
  }

  // Reference: float64 for activation tensors, compact layout.
  Materialised mref;
  build(mref, c, ref, kFloat64, false, values, {});
  opdev_status s = c.call(mref.call);
  if (s != OPDEV_STATUS_SUCCESS) {
    r.detail = std::string("ref failed: ") + opdev_status_string(s) + ": " + opdev_last_error();
    return r;
  }
  std::map<std::string, std::vector<double>> expect, mag;
  for (const TensorSpec& t : c.tensors)
    if ((t.role == Role::Output || t.role == Role::InOut) && !t.absent && t.alias_of.empty()) {
      const Buffer& b = *mref.bufs[t.name];
      expect[t.name] = read_values(b, download(b));
    }
  const double mag_rtol = c.tol.mag_rtol_for(dtype);
  if (!c.tol.mag_inputs.empty() && mag_rtol > 0) {
    Materialised mmag;
    std::set<std::string> abs_set(c.tol.mag_inputs.begin(), c.tol.mag_inputs.end());
    build(mmag, c, ref, kFloat64, false, values, abs_set);
    s = c.call(mmag.call);
    if (s != OPDEV_STATUS_SUCCESS) {
      r.detail = std::string("ref (magnitudes) failed: ") + opdev_status_string(s) + ": " + opdev_last_error();
      return r;
    }
    for (auto& [name, v] : expect) {
      const Buffer& b = *mmag.bufs[name];
      mag[name] = read_values(b, download(b));
    }
  }

  // Backend under test: the dtype under test, strided layouts, guard bytes.
  Materialised mt;
  build(mt, c, target, dtype, true, values, {});
  auto t0 = std::chrono::steady_clock::now();
  s = c.call(mt.call);
  check(opdev_synchronize(target));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (s != OPDEV_STATUS_SUCCESS) {
    r.detail = std::string(opdev_status_string(s)) + ": " + opdev_last_error();
    return r;
  }
  std::string problems;
  for (const TensorSpec& t : c.tensors) {
    if (t.absent || !t.alias_of.empty()) continue;
    const Buffer& b = *mt.bufs[t.name];
    const std::vector<uint8_t> h = download(b);
    if (t.role == Role::Input) {
      if (h != b.host) problems += "input '" + t.name + "' was modified; ";
      continue;
    }
    const int64_t outside = changed_outside_view(b, h);
    if (outside) problems += "'" + t.name + "' wrote " + std::to_string(outside) + " bytes outside its view; ";
    const std::vector<double> got = read_values(b, h);
    auto mit = mag.find(t.name);
    static const std::vector<double> none;
    auto rit = c.tol.roundings.find(t.name);
    const int nround = rit == c.tol.roundings.end() ? 0 : rit->second;
    const CompareStats st =
        compare(got, expect[t.name], mit == mag.end() ? none : mit->second, b.dtype, mag_rtol, nround,
                is_integer(b.dtype) || c.tol.exact.count(t.name) != 0);
    r.max_err_ratio = std::max(r.max_err_ratio, st.max_ratio);
    r.nmse = std::max(r.nmse, st.nmse);
    if (st.bad) problems += "'" + t.name + "': " + std::to_string(st.bad) + " of " + std::to_string(got.size()) + " elements out of tolerance, first " + st.first_bad_detail + "; ";
  }
  r.passed = problems.empty();
  r.detail = problems;
  return r;
}

Result run_error(const ErrorCase& e, opdev_context* target) {
  Result r;
  r.op = e.op;
  r.name = "error: " + e.name;
  r.dtype = "-";
  if (e.host_index_check && opdev_context_device(target).device_type != kDLCPU) {
    r.skipped = true;
    r.detail = "index data lives on the device; its range is enforced by the kernels";
    return r;
  }
  ErrorEnv env(target);
  const opdev_op op = opdev_op_from_name(e.op.c_str());
  env.act = kFloat32;
  for (DLDataType d : {kFloat32, kBFloat16, kFloat16})
    if (op != OPDEV_OP_COUNT && opdev_supports(target, op, d)) {
      env.act = d;
      break;
    }
  opdev_status s;
  try {
    s = e.call(env);
  } catch (const std::exception& ex) {
    r.detail = std::string("case threw: ") + ex.what();
    return r;
  }
  const std::string msg = opdev_last_error();
  if (s != e.expected) {
    r.detail = std::string("expected ") + opdev_status_string(e.expected) + ", got " + opdev_status_string(s) + " (\"" + msg + "\")";
    return r;
  }
  if (msg.find(e.message) == std::string::npos) {
    r.detail = "message \"" + msg + "\" lacks \"" + e.message + "\"";
    return r;
  }
  const std::string prefix = "opdev_" + e.op + ": ";
  if (msg.compare(0, prefix.size(), prefix) != 0) {
    r.detail = "message \"" + msg + "\" does not start with \"" + prefix + "\"";
    return r;
  }
  r.passed = true;
  return r;
}

bool selected(const std::vector<std::string>& ops, const std::string& op) {
  return ops.empty() || std::find(ops.begin(), ops.end(), op) != ops.end();
}

}  // namespace

// ---- instances (benchmarks) ----

Instance::Instance(const Case& c, opdev_context* ctx, DLDataType act) : case_(&c), m_(std::make_unique<Materialised>()) {
  build(*m_, c, ctx, act, true, generate_values(c, act), {});
}
Instance::~Instance() = default;
opdev_status Instance::run() { return case_->call(m_->call); }

// ---- error env ----

ErrorEnv::~ErrorEnv() {
  for (void* p : buffers_) opdev_free(ctx_, p);
}

void* ErrorEnv::alloc(size_t nbytes) {
  void* p = nullptr;
  check(opdev_malloc(ctx_, nbytes ? nbytes : 1, &p));
  std::vector<uint8_t> zero(nbytes ? nbytes : 1, 0);
  check(opdev_memcpy(ctx_, p, zero.data(), zero.size(), OPDEV_MEMCPY_HOST_TO_DEVICE));
  buffers_.push_back(p);
  return p;
}

const DLTensor* ErrorEnv::tensor(std::vector<int64_t> shape, DLDataType dtype, std::vector<double> values) {
  const int64_t n = numel_of(shape);
  const size_t item = dtype_bytes(dtype);
  void* p = alloc(size_t(n) * item);
  if (!values.empty()) {
    std::vector<uint8_t> h(size_t(n) * item, 0);
    for (int64_t i = 0; i < n; ++i) encode(values[size_t(i) % values.size()], dtype, h.data() + size_t(i) * item);
    check(opdev_memcpy(ctx_, p, h.data(), h.size(), OPDEV_MEMCPY_HOST_TO_DEVICE));
  }
  refs_.push_back(std::make_unique<TensorRef>(p, dtype, std::move(shape), std::vector<int64_t>{}, opdev_context_device(ctx_)));
  return refs_.back()->get();
}

const DLTensor* ErrorEnv::strided(std::vector<int64_t> shape, std::vector<int64_t> strides, DLDataType dtype) {
  int64_t extent = 1;
  for (size_t d = 0; d < shape.size(); ++d) extent += (shape[d] - 1) * strides[d];
  void* p = alloc(size_t(extent) * dtype_bytes(dtype));
  refs_.push_back(std::make_unique<TensorRef>(p, dtype, std::move(shape), std::move(strides), opdev_context_device(ctx_)));
  return refs_.back()->get();
}

const DLTensor* ErrorEnv::view_of(const DLTensor* base, std::vector<int64_t> shape, int64_t elem_offset, std::vector<int64_t> strides) {
  refs_.push_back(std::make_unique<TensorRef>(base->data, base->dtype, std::move(shape), std::move(strides), base->device,
                                              base->byte_offset + uint64_t(elem_offset) * dtype_bytes(base->dtype)));
  return refs_.back()->get();
}

const DLTensor* ErrorEnv::view_as(const DLTensor* base, DLDataType dtype, std::vector<int64_t> shape, int64_t byte_offset) {
  refs_.push_back(std::make_unique<TensorRef>(base->data, dtype, std::move(shape), std::vector<int64_t>{}, base->device,
                                              base->byte_offset + uint64_t(byte_offset)));
  return refs_.back()->get();
}

const DLTensor* ErrorEnv::huge(std::vector<int64_t> shape, DLDataType dtype) {
  void* p = alloc(64);
  refs_.push_back(std::make_unique<TensorRef>(p, dtype, std::move(shape), std::vector<int64_t>{}, opdev_context_device(ctx_)));
  return refs_.back()->get();
}

const DLTensor* ErrorEnv::null_data(std::vector<int64_t> shape, DLDataType dtype) {
  refs_.push_back(std::make_unique<TensorRef>(nullptr, dtype, std::move(shape), std::vector<int64_t>{}, opdev_context_device(ctx_)));
  return refs_.back()->get();
}

// ---- running ----

Summary run(const Options& o) {
  Summary sum;
  Context target(o.backend.c_str(), o.num_threads);
  Context ref("ref", 1);
  const Registry& reg = registry();
  auto record = [&](Result r) {
    if (r.skipped) ++sum.skipped;
    else if (r.passed) ++sum.passed;
    else ++sum.failed;
    if (o.verbose || (!r.passed && !r.skipped))
      std::fprintf(stderr, "%-6s %-18s %-9s %s%s%s\n", r.skipped ? "SKIP" : r.passed ? "ok" : "FAIL", r.op.c_str(), r.dtype.c_str(),
                   r.name.c_str(), r.detail.empty() ? "" : "  -- ", r.detail.c_str());
    sum.results.push_back(std::move(r));
  };
  if (o.numeric) {
    size_t total = 0, done = 0;
    for (const Case& c : reg.cases)
      if (selected(o.ops, c.op) && !(o.quick && c.large) && c.name.find(o.filter) != std::string::npos) ++total;
    for (const Case& c : reg.cases) {
      if (!selected(o.ops, c.op) || (o.quick && c.large) || c.name.find(o.filter) == std::string::npos) continue;
      ++done;
      const std::vector<DLDataType>& dts = c.dtypes;
      for (DLDataType d : dts) {
        if (!o.dtypes.empty() &&
            std::none_of(o.dtypes.begin(), o.dtypes.end(), [&](DLDataType x) { return same_dtype(x, d); }))
          continue;
        Result r;
        try {
          r = run_numeric(c, d, target, ref);
        } catch (const std::exception& e) {
          r.op = c.op;
          r.name = c.name;
          r.dtype = dtype_str(d);
          r.detail = std::string("harness error: ") + e.what();
        }
        record(std::move(r));
      }
      if (!o.verbose && (done % 25 == 0 || done == total))
        std::fprintf(stderr, "\rconformance %s: %zu/%zu cases", o.backend.c_str(), done, total);
    }
    if (!o.verbose && total) std::fprintf(stderr, "\n");
  }
  if (o.errors)
    for (const ErrorCase& e : reg.errors)
      if (selected(o.ops, e.op) && e.name.find(o.filter) != std::string::npos) record(run_error(e, target));
  return sum;
}

void print_summary(const Summary& s, const Options& o, FILE* out) {
  struct Row {
    int passed = 0, failed = 0, skipped = 0;
    double worst = 0, nmse = 0, seconds = 0;
  };
  std::map<std::pair<std::string, std::string>, Row> rows;  // (op, dtype or "errors")
  std::vector<std::string> order;
  for (const Result& r : s.results) {
    const std::string key2 = r.dtype == "-" ? "bad-args" : r.dtype;
    if (std::find(order.begin(), order.end(), r.op) == order.end()) order.push_back(r.op);
    Row& row = rows[{r.op, key2}];
    if (r.skipped) ++row.skipped;
    else if (r.passed) ++row.passed;
    else ++row.failed;
    row.worst = std::max(row.worst, r.max_err_ratio);
    row.nmse = std::max(row.nmse, r.nmse);
    row.seconds += r.seconds;
  }
  std::fprintf(out, "\nconformance of backend '%s' against ref (float64)\n", o.backend.c_str());
  std::fprintf(out, "%-18s %-9s %7s %7s %8s %10s %10s %9s\n", "op", "dtype", "passed", "failed", "skipped", "worst err", "worst nmse",
               "time (s)");
  for (const std::string& op : order) {
    // Activation dtypes first, then any other dtype a case used (copy of int64, ...), then bad-args.
    std::vector<std::string> dts = {"float32", "bfloat16", "float16"};
    for (const auto& [key, row] : rows)
      if (key.first == op && std::find(dts.begin(), dts.end(), key.second) == dts.end() && key.second != "bad-args")
        dts.push_back(key.second);
    dts.push_back("bad-args");
    for (const std::string& dt : dts) {
      auto it = rows.find({op, dt});
      if (it == rows.end()) continue;
      const Row& r = it->second;
      const bool numeric = dt != "bad-args";
      std::fprintf(out, "%-18s %-9s %7d %7d %8d %10s %10s %9s\n", op.c_str(), dt.c_str(), r.passed, r.failed, r.skipped,
                   numeric ? fmt_double(r.worst).c_str() : "-", numeric ? fmt_double(r.nmse).c_str() : "-",
                   numeric ? fmt_double(r.seconds).c_str() : "-");
    }
  }
  std::fprintf(out, "(worst err: largest |got - ref| / bound over all elements; <= 1 passes)\n");
  std::fprintf(out, "conformance: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped);
}

}  // namespace opdev::conformance
