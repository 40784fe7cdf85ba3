// Dumps of op calls: DIR/NNNNN-<label>/{entry.json, <tensor>.npy ...} and DIR/index.json, and loading an
// entry back for `opdev replay`.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "inspect/inspect.h"
#include "model/error.h"
#include "model/npy.h"

namespace opdev::inspect {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// The .npy element type that stores a dtype losslessly: bfloat16 has no numpy type, so its bits go as '<u2'
// (the dtype in entry.json says how to read them).
std::string npy_descr(DLDataType t) {
  if (same_dtype(t, kFloat32)) return "<f4";
  if (same_dtype(t, kFloat64)) return "<f8";
  if (same_dtype(t, kFloat16)) return "<f2";
  if (same_dtype(t, kBFloat16)) return "<u2";
  if (same_dtype(t, kInt32)) return "<i4";
  if (same_dtype(t, kInt64)) return "<i8";
  if (same_dtype(t, kInt8)) return "|i1";
  if (same_dtype(t, kUInt8)) return "|u1";
  throw InspectError("no .npy type for dtype " + dtype_name(t));
}

ojson scalar_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double scalar_value(const ojson& j, const std::string& where) {
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "nan") return NAN;
    if (s == "inf") return INFINITY;
    if (s == "-inf") return -INFINITY;
  }
  throw InspectError(where + ": expected a number (or \"nan\", \"inf\", \"-inf\"), got " + j.dump());
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  if (!f.flush()) throw InspectError("cannot write " + p.string());
}

}  // namespace

std::string entry_dir_name(uint64_t index, const std::string& label, opdev_op op) {
  std::string l = label.empty() ? std::string(opdev_op_name(op) ? opdev_op_name(op) : "op") : label;
  for (char& ch : l)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
      ch = '_';
  if (l.size() > 120) l.resize(120);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05llu-", static_cast<unsigned long long>(index));
  return buf + l;
}

void save_tensor(const std::string& path, const HostTensor& h) {
  try {
    model::write_npy(path, npy_descr(h.dtype), h.shape, h.bytes.data(), h.bytes.size());
  } catch (const model::ModelError& e) {
    throw InspectError(e.what());
  }
}

// ---- Dumper ----

Dumper::Dumper(std::string dir, std::string filter)
    : dir_(std::move(dir)), rec_(std::move(filter), [this](FullCall&& c) { write(std::move(c)); }) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) throw InspectError("cannot create the dump directory " + dir_ + ": " + ec.message());
  if (fs::exists(fs::path(dir_) / "index.json"))
    throw InspectError(dir_ + " already holds a dump (index.json); choose an empty directory");
}

void Dumper::write(FullCall&& c) {
  const std::string name = entry_dir_name(c.index, c.label, c.op);
  const fs::path d = fs::path(dir_) / name;
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) throw InspectError("cannot create " + d.string() + ": " + ec.message());
  ojson e;
  e["index"] = c.index;
  e["call_index"] = c.call_index;
  e["op"] = opdev_op_name(c.op);
  e["label"] = c.label;
  e["backend"] = c.backend;
  ojson ts = ojson::array();
  for (const CallTensor& t : c.tensors) {
    ojson j;
    j["name"] = t.name;
    j["role"] = role_name(t.role);
    if (t.absent) {
      j["absent"] = true;
      ts.push_back(j);
      continue;
    }
    const HostTensor& v = t.role == Role::Out ? t.post : t.pre;
    if (t.role == Role::InOut) {
      j["file"] = t.name + ".in.npy";
      j["file_out"] = t.name + ".out.npy";
      save_tensor((d / (t.name + ".in.npy")).string(), t.pre);
      save_tensor((d / (t.name + ".out.npy")).string(), t.post);
    } else {
      j["file"] = t.name + ".npy";
      save_tensor((d / (t.name + ".npy")).string(), v);
    }
    j["dtype"] = dtype_name(v.dtype);
    j["shape"] = v.shape;
    ts.push_back(j);
  }
  e["tensors"] = ts;
  ojson sc = ojson::object();
  for (const auto& [n, v] : c.scalars) sc[n] = scalar_json(v);
  e["scalars"] = sc;
  write_text(d / "entry.json", e.dump(2) + "\n");
  ojson idx = e;
  idx["dir"] = name;
  index_.push_back(idx.dump());
}

void Dumper::finish() {
  std::string s = "{\n  \"format\": \"opdev-dump\",\n  \"version\": 1,\n  \"entries\": [";
  for (size_t i = 0; i < index_.size(); ++i) s += std::string(i ? ",\n    " : "\n    ") + index_[i];
  s += index_.empty() ? "]\n}\n" : "\n  ]\n}\n";
  write_text(fs::path(dir_) / "index.json", s);
}

// ---- loading ----

Entry load_entry(const std::string& dir) {
  const fs::path p = fs::path(dir) / "entry.json";
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    if (fs::exists(fs::path(dir) / "index.json"))
      throw InspectError(dir + " is a dump directory (index.json); replay takes one entry directory of it, e.g. " + dir + "/00000-embedding");
    throw InspectError("cannot read " + p.string() + " (an entry directory of a dump made with --dump)");
  }
  std::stringstream ss;
  ss << f.rdbuf();
  ojson j;
  try {
    j = ojson::parse(ss.str());
  } catch (const std::exception& e) {
    throw InspectError(p.string() + ": not valid JSON: " + e.what());
  }
  const std::string w = p.string();
  auto field = [&](const ojson& o, const char* k, const std::string& where) -> const ojson& {
    if (!o.is_object() || !o.contains(k)) throw InspectError(where + ": missing field '" + k + "'");
    return o.at(k);
  };
  Entry e;
  e.dir = dir;
  try {
    e.op_name = field(j, "op", w).get<std::string>();
    e.op = op_from_name(e.op_name);
    e.label = j.value("label", "");
    e.backend = field(j, "backend", w).get<std::string>();
    e.index = j.value("index", uint64_t(0));
    e.call_index = j.value("call_index", uint64_t(0));
  } catch (const InspectError& x) {
    throw InspectError(w + ": " + x.what());
  } catch (const std::exception& x) {
    throw InspectError(w + ": " + x.what());
  }
  const OpSignature& sig = op_signature(e.op);
  const ojson& ts = field(j, "tensors", w);
  if (!ts.is_array()) throw InspectError(w + ": 'tensors' must be an array");
  for (const ojson& t : ts) {
    EntryTensor et;
    try {
      et.name = field(t, "name", w + " tensors").get<std::string>();
      const std::string where = w + " tensor '" + et.name + "'";
      size_t k = 0;
      while (k < sig.tensors.size() && sig.tensors[k] != et.name) ++k;
      if (k == sig.tensors.size()) throw InspectError(where + ": " + e.op_name + " has no such tensor argument");
      et.role = sig.roles[k];
      const std::string role = field(t, "role", where).get<std::string>();
      if (role != role_name(et.role))
        throw InspectError(where + ": role '" + role + "', but it is '" + role_name(et.role) + "' in " + e.op_name);
      if (t.value("absent", false)) continue;
      et.file = field(t, "file", where).get<std::string>();
      if (et.role == Role::InOut) et.file_out = field(t, "file_out", where).get<std::string>();
      et.dtype = dtype_from_name(field(t, "dtype", where).get<std::string>());
      et.shape = field(t, "shape", where).get<std::vector<int64_t>>();
      for (int64_t d : et.shape)
        if (d < 0) throw InspectError(where + ": negative dimension in shape");
    } catch (const InspectError&) {
      throw;
    } catch (const std::exception& x) {
      throw InspectError(w + ": tensor '" + et.name + "': " + x.what());
    }
    e.tensors.push_back(std::move(et));
  }
  const ojson& sc = field(j, "scalars", w);
  if (!sc.is_object()) throw InspectError(w + ": 'scalars' must be an object");
  for (const std::string& n : sig.scalars) {
    if (!sc.contains(n)) throw InspectError(w + ": scalar '" + n + "' of " + e.op_name + " is missing");
    e.scalars.emplace_back(n, scalar_value(sc.at(n), w + " scalar '" + n + "'"));
  }
  for (auto it = sc.begin(); it != sc.end(); ++it) {
    bool known = false;
    for (const std::string& n : sig.scalars) known = known || n == it.key();
    if (!known) throw InspectError(w + ": " + e.op_name + " has no scalar '" + it.key() + "'");
  }
  return e;
}

HostTensor load_tensor(const Entry& e, const EntryTensor& t, bool after) {
  const std::string file = after && t.role == Role::InOut ? t.file_out : t.file;
  const std::string path = (fs::path(e.dir) / file).string();
  model::NpyArray a;
  try {
    a = model::read_npy(path);
  } catch (const model::ModelError& x) {
    throw InspectError(x.what());
  }
  const std::string want = npy_descr(t.dtype);
  if (a.descr != want)
    throw InspectError(path + ": element type '" + a.descr + "', but entry.json says " + dtype_name(t.dtype) + " (stored as '" + want +
                       "')");
  if (a.shape != t.shape)
    throw InspectError(path + ": shape " + shape_str(a.shape) + ", but entry.json says " + shape_str(t.shape));
  HostTensor h;
  h.dtype = t.dtype;
  h.shape = a.shape;
  h.bytes = std::move(a.bytes);
  return h;
}

}  // namespace opdev::inspect
