// Replaying one dumped op call: rebuild it from the entry's files, run it on a reference backend (ref runs it
// in float64, as the conformance suite does) and on another backend in the recorded dtypes, and check the
// recorded outputs against the reference with the op's conformance tolerance.
#include <cmath>
#include <set>

#include "conformance.h"
#include "inspect/replay.h"

namespace opdev::inspect {

namespace {

// Runs the entry's call on ctx. oracle: float tensors (except the ones the op fixes to float32) become
// float64. abs_inputs: these inputs take their absolute values (the conformance `mag` run).
std::map<std::string, HostTensor> run_call(const Entry& e, const std::map<std::string, HostTensor>& pre, opdev_context* ctx, bool oracle,
                                           const std::set<std::string>& abs_inputs) {
  const OpSignature& sig = op_signature(e.op);
  std::vector<std::unique_ptr<DeviceTensor>> keep;
  std::map<std::string, const DLTensor*> args;
  for (const EntryTensor& t : e.tensors) {
    HostTensor h;
    if (t.role == Role::Out) {
      h.dtype = t.dtype;
      h.shape = t.shape;
      h.bytes.assign(size_t(h.numel()) * dtype_bytes(t.dtype), 0);
    } else {
      h = pre.at(t.name);
    }
    bool fixed = false;
    for (const auto& n : sig.fixed_float32) fixed = fixed || n == t.name;
    if (oracle && is_float(h.dtype) && !fixed) h = convert(h, kFloat64);
    if (abs_inputs.count(t.name)) {  // float or integer (int8 operands; encode saturates |-128| to 127)
      std::vector<double> v = to_double(h);
      for (double& x : v) x = std::fabs(x);
      for (size_t i = 0; i < v.size(); ++i) conformance::encode(v[i], h.dtype, h.bytes.data() + i * dtype_bytes(h.dtype));
    }
    keep.push_back(std::make_unique<DeviceTensor>(ctx, h));
    args[t.name] = keep.back()->get();
  }
  std::map<std::string, double> scalars(e.scalars.begin(), e.scalars.end());
  const opdev_status s = invoke(ctx, e.op, args, scalars);
  if (s != OPDEV_STATUS_SUCCESS)
    throw InspectError(std::string(opdev_context_backend(ctx)) + " failed to run " + e.op_name + ": " + opdev_status_string(s) + ": " +
                       opdev_last_error());
  const opdev_status sy = opdev_synchronize(ctx);
  if (sy != OPDEV_STATUS_SUCCESS) throw InspectError(std::string("synchronize failed: ") + opdev_last_error());
  std::map<std::string, HostTensor> out;
  size_t k = 0;
  for (const EntryTensor& t : e.tensors) {
    if (t.role != Role::In) out[t.name] = keep[k]->download();
    ++k;
  }
  return out;
}

opdev::Context make_context(const std::string& backend, int threads) {
  if (!opdev_backend_available(backend.c_str())) {
    std::string names;
    for (int i = 0; i < opdev_backend_count(); ++i)
      if (opdev_backend_available(opdev_backend_name(i))) names += std::string(names.empty() ? "" : ", ") + opdev_backend_name(i);
    throw InspectError("backend '" + backend + "' is not available here (available: " + names + ")");
  }
  return opdev::Context(backend.c_str(), threads);
}

}  // namespace

ReplayResult replay(const Entry& e, const ReplayOptions& o) {
  ReplayResult r;
  const std::string ref_backend = o.reference.empty() ? "ref" : o.reference;
  const std::string against = o.against.empty() ? e.backend : o.against;
  const bool oracle = ref_backend == "ref";
  r.reference = ref_backend + (oracle ? " (float64)" : "");
  r.against = against;

  std::map<std::string, HostTensor> pre, recorded;
  for (const EntryTensor& t : e.tensors) {
    if (t.role != Role::Out) pre[t.name] = load_tensor(e, t, false);
    if (t.role != Role::In) recorded[t.name] = load_tensor(e, t, true);
  }
  if (recorded.empty()) throw InspectError(e.dir + ": the entry has no outputs to check");

  const conformance::Tolerance tol = conformance::contract_tolerance(e.op_name);
  opdev::Context ref_ctx = make_context(ref_backend, o.threads);
  const auto ref_out = run_call(e, pre, ref_ctx, oracle, {});
  std::map<std::string, HostTensor> mag_out;
  DLDataType act{};
  for (const EntryTensor& t : e.tensors)
    if (is_float(t.dtype) && act.bits == 0) act = t.dtype;
  const double mag_rtol = tol.mag_rtol_for(act);
  if (!tol.mag_inputs.empty() && mag_rtol > 0)
    mag_out = run_call(e, pre, ref_ctx, oracle, std::set<std::string>(tol.mag_inputs.begin(), tol.mag_inputs.end()));
  std::map<std::string, HostTensor> against_out;
  if (against != "none") {
    opdev::Context actx = make_context(against, o.threads);
    against_out = run_call(e, pre, actx, false, {});
  }

  r.ok = true;
  for (const EntryTensor& t : e.tensors) {
    if (t.role == Role::In) continue;
    ReplayOutput ro;
    ro.name = t.name;
    ro.dtype = t.dtype;
    ro.shape = t.shape;
    const std::vector<double> rec = to_double(recorded.at(t.name));
    const std::vector<double> ref = to_double(ref_out.at(t.name));
    ro.recorded_vs_ref = metrics(rec, ref);
    if (!against_out.empty()) {
      const HostTensor& a = against_out.at(t.name);
      const std::vector<double> av = to_double(a);
      ro.against_vs_recorded = metrics(av, rec);
      ro.against_vs_ref = metrics(av, ref);
      ro.against_bitwise = a.bytes == recorded.at(t.name).bytes;
      ro.has_against = true;
    }
    auto rit = tol.roundings.find(t.name);
    static const std::vector<double> none;
    std::vector<double> mag;
    if (mag_out.count(t.name)) mag = to_double(mag_out.at(t.name));
    const conformance::CompareStats st = conformance::compare(rec, ref, mag, t.dtype, mag_rtol, rit == tol.roundings.end() ? 0 : rit->second,
                                                              is_integer(t.dtype) || tol.exact.count(t.name) != 0);
    ro.bad = st.bad;
    ro.max_ratio = st.max_ratio;
    ro.first_bad = st.first_bad_detail;
    ro.passes = st.bad == 0;
    r.ok = r.ok && ro.passes;
    r.outputs.push_back(std::move(ro));
  }
  return r;
}

}  // namespace opdev::inspect
