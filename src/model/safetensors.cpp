// Safetensors parsing, validation, memory mapping and writing. The header is read with a SAX handler
// (nlohmann::json::sax_parse) that accepts exactly the reference layout and stops at the first
// deviation with a message naming the tensor and the field; no JSON tree is built, so a hostile 100 MB
// header costs at most a few times its size in memory and nothing is nested deeper than the format
// allows. This file links only nlohmann_json (the fuzzer builds it alone).
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

namespace opdev::model {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100000000;  // the reference's MAX_HEADER_SIZE

struct DtypeInfo {
  StDtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {StDtype::BOOL, "BOOL", 1},       {StDtype::U8, "U8", 1},   {StDtype::I8, "I8", 1},
    {StDtype::F8_E5M2, "F8_E5M2", 1}, {StDtype::F8_E4M3, "F8_E4M3", 1},
    {StDtype::I16, "I16", 2},         {StDtype::U16, "U16", 2}, {StDtype::F16, "F16", 2},
    {StDtype::BF16, "BF16", 2},       {StDtype::I32, "I32", 4}, {StDtype::U32, "U32", 4},
    {StDtype::F32, "F32", 4},         {StDtype::F64, "F64", 8}, {StDtype::I64, "I64", 8},
    {StDtype::U64, "U64", 8},
};

std::string dtype_list() {
  std::string s;
  for (const auto& d : kDtypes) s += std::string(s.empty() ? "" : ", ") + d.name;
  return s;
}

std::string shape_str(const std::vector<uint64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

// Returns the offset of the first byte that is not part of a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are ill-formed, as Rust's str::from_utf8 says), or
// `size` when all of it is valid.
size_t utf8_invalid_at(const uint8_t* s, size_t size) {
  size_t i = 0;
  while (i < size) {
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlongs
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      return i;
    }
    if (size - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return size;
}

// One header entry as read, before the checks that need all of them.
struct RawEntry {
  std::string name;
  StDtype dtype = StDtype::U8;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  std::vector<uint64_t> shape, offsets;
};

// Accepts: { "__metadata__": null | {str: str, ...}, name: {"dtype": str, "shape": [uint...],
// "data_offsets": [uint, uint]}, ... } and nothing else. Returns false (stops the parse) at the first
// deviation, leaving the message in `error`.
class HeaderSax {
 public:
  using json = nlohmann::json;
  std::vector<RawEntry> entries;
  std::map<std::string, std::string> metadata;
  std::string error;

  bool null() { return scalar("null"); }
  bool boolean(bool) { return scalar("a boolean"); }
  bool number_integer(json::number_integer_t v) {
    if (state_ == State::Shape || state_ == State::Offsets) {
      if (v >= 0) return push_uint(uint64_t(v));  // "-0"
      return fail("tensor '" + entry().name + "': " + field_ + " holds the negative number " + std::to_string(v) +
                  " (" + expect_array() + ")");
    }
    return scalar("a number");
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (state_ == State::Shape || state_ == State::Offsets) return push_uint(v);
    return scalar("a number");
  }
  bool number_float(json::number_float_t, const std::string& text) {
    if (state_ == State::Shape || state_ == State::Offsets)
      return fail("tensor '" + entry().name + "': " + field_ + " holds " + text +
                  ", which is not an integer that fits in 64 bits (" + expect_array() + ")");
    return scalar("a number");
  }
  bool string(std::string& s) {
    if (state_ == State::Meta) {
      metadata[key_] = s;
      return true;
    }
    if (state_ == State::Entry && field_ == "dtype") {
      RawEntry& e = entry();
      if (!st_dtype_from_name(s, &e.dtype))
        return fail("tensor '" + e.name + "': unknown dtype '" + s + "' (one of " + dtype_list() + ")");
      e.has_dtype = true;
      return true;
    }
    return scalar("a string");
  }
  bool binary(json::binary_t&) { return scalar("binary data"); }

  bool start_object(std::size_t) {
    switch (state_) {
      case State::Top:
        state_ = State::Root;
        return true;
      case State::Root:
        if (key_ == "__metadata__") {
          state_ = State::Meta;
        } else {
          entries.emplace_back();
          entries.back().name = key_;
          fields_.clear();
          state_ = State::Entry;
        }
        return true;
      default:
        return scalar("an object");
    }
  }
  bool key(std::string& k) {
    switch (state_) {
      case State::Root:
        if (!root_keys_.insert(k).second)
          return fail(k == "__metadata__" ? std::string("'__metadata__' appears twice in the header")
                                          : "tensor '" + k + "' appears twice in the header");
        key_ = k;
        return true;
      case State::Meta:
        if (metadata.count(k)) return fail("__metadata__: key '" + k + "' appears twice");
        key_ = k;
        return true;
      case State::Entry:
        if (k != "dtype" && k != "shape" && k != "data_offsets")
          return fail("tensor '" + entry().name + "': unknown field '" + k +
                      "' (an entry holds only dtype, shape and data_offsets)");
        if (!fields_.insert(k).second) return fail("tensor '" + entry().name + "': field '" + k + "' appears twice");
        field_ = k;
        return true;
      default:
        return fail("unexpected object key");  // unreachable: keys only come inside objects
    }
  }
  bool end_object() {
    switch (state_) {
      case State::Root:
        state_ = State::Done;
        return true;
      case State::Meta:
        state_ = State::Root;
        return true;
      case State::Entry: {
        const RawEntry& e = entry();
        const char* missing = !e.has_dtype ? "dtype" : !e.has_shape ? "shape" : !e.has_offsets ? "data_offsets" : nullptr;
        if (missing) return fail("tensor '" + e.name + "': missing field '" + missing + "'");
        state_ = State::Root;
        return true;
      }
      default:
        return fail("unexpected end of object");
    }
  }
  bool start_array(std::size_t) {
    if (state_ == State::Entry && (field_ == "shape" || field_ == "data_offsets")) {
      state_ = field_ == "shape" ? State::Shape : State::Offsets;
      (field_ == "shape" ? entry().has_shape : entry().has_offsets) = true;
      return true;
    }
    return scalar("an array");
  }
  bool end_array() {
    if (state_ == State::Offsets && entry().offsets.size() != 2)
      return fail("tensor '" + entry().name + "': data_offsets must hold exactly 2 integers [begin, end], got " +
                  std::to_string(entry().offsets.size()));
    state_ = State::Entry;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error.empty()) {
      std::string m = ex.what();
      size_t p = m.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] " tag
      error = "header is not valid JSON: " + (p == std::string::npos ? m : m.substr(p + 2));
    }
    return false;
  }

 private:
  enum class State { Top, Root, Meta, Entry, Shape, Offsets, Done };
  State state_ = State::Top;
  std::string key_, field_;
  std::set<std::string> root_keys_, fields_;

  RawEntry& entry() { return entries.back(); }
  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }
  std::string expect_array() const {
    return field_ == "shape" ? "shape is an array of non-negative integers"
                             : "data_offsets is [begin, end], two non-negative integers";
  }
  bool push_uint(uint64_t v) {
    RawEntry& e = entry();
    if (state_ == State::Offsets) {
      if (e.offsets.size() == 2)
        return fail("tensor '" + e.name + "': data_offsets must hold exactly 2 integers [begin, end], got more");
      e.offsets.push_back(v);
    } else {
      e.shape.push_back(v);
    }
    return true;
  }
  // A value of the wrong kind (`what`) where the state expects something else.
  bool scalar(const std::string& what) {
    switch (state_) {
      case State::Top:
        return fail("header is not a JSON object (it is " + what + ")");
      case State::Root:
        if (key_ == "__metadata__" && what == "null") return true;  // Option<HashMap>: null is None
        if (key_ == "__metadata__") return fail("__metadata__ must be an object of strings, got " + what);
        return fail("tensor '" + key_ + "': entry must be an object {dtype, shape, data_offsets}, got " + what);
      case State::Meta:
        return fail("__metadata__: value of '" + key_ + "' must be a string, got " + what);
      case State::Entry:
        if (field_ == "dtype") return fail("tensor '" + entry().name + "': dtype must be a string, got " + what);
        return fail("tensor '" + entry().name + "': " + field_ + " must be an array (" + expect_array() + "), got " +
                    what);
      case State::Shape:
      case State::Offsets:
        return fail("tensor '" + entry().name + "': " + field_ + " holds " + what + " (" + expect_array() + ")");
      case State::Done:
        break;
    }
    return fail("unexpected " + what + " after the header object");
  }
};

}  // namespace

const char* st_dtype_name(StDtype t) {
  for (const auto& d : kDtypes)
    if (d.dtype == t) return d.name;
  return "?";
}

size_t st_dtype_size(StDtype t) {
  for (const auto& d : kDtypes)
    if (d.dtype == t) return d.size;
  return 0;
}

bool st_dtype_from_name(const std::string& name, StDtype* out) {
  for (const auto& d : kDtypes)
    if (name == d.name) {
      *out = d.dtype;
      return true;
    }
  return false;
}

void parse_safetensors(const uint8_t* data, size_t size, const std::string& what, std::vector<StTensor>* tensors,
                       std::map<std::string, std::string>* metadata) {
  auto fail = [&](const std::string& m) -> void { throw ModelError(what + ": " + m); };
  if (size < 8)
    fail("file is " + std::to_string(size) + " bytes, too short to hold the 8-byte header length of a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little-endian
  if (n > kMaxHeaderBytes)
    fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
         " bytes (not a safetensors file, or a corrupt one)");
  if (n > size - 8)
    fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
         " bytes): the file is truncated or not a safetensors file");
  const uint8_t* header = data + 8;
  size_t bad = utf8_invalid_at(header, size_t(n));
  if (bad != n) fail("header is not valid UTF-8 (byte " + std::to_string(bad) + " of the header)");

  // nlohmann's lexer takes a NUL byte for the end of the input (and would ignore what follows); JSON
  // never holds a raw NUL, so it is an error here, as it is for serde.
  if (const void* nul = std::memchr(header, 0, size_t(n)))
    fail("header is not valid JSON: NUL byte at offset " +
         std::to_string(static_cast<const uint8_t*>(nul) - header) + " of the header");

  HeaderSax sax;
  const char* first = reinterpret_cast<const char*>(header);
  bool ok = nlohmann::json::sax_parse(first, first + n, &sax, nlohmann::json::input_format_t::json, true);
  if (!sax.error.empty()) fail(sax.error);
  if (!ok) fail("header is not valid JSON");

  // Checks per entry, then contiguity in data order (sorted by [begin, end], as the reference does).
  std::vector<RawEntry>& raw = sax.entries;
  for (const RawEntry& e : raw) {
    std::string where = "tensor '" + e.name + "': ";
    uint64_t numel = 1;
    for (uint64_t d : e.shape) {
      // Left to right like the reference's try_fold, so [2^62, 2^62, 0] is an overflow, not a 0.
      if (d > uint64_t(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(numel, d, &numel))
        fail(where + "shape " + shape_str(e.shape) + " has more elements than fit in 64 bits");
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, uint64_t(st_dtype_size(e.dtype)), &nbytes) ||
        nbytes > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(where + "shape " + shape_str(e.shape) + " of " + st_dtype_name(e.dtype) +
           " is more bytes than fit in 64 bits");
    uint64_t b = e.offsets[0], en = e.offsets[1];
    if (b > en)
      fail(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] end before they begin");
    if (en - b != nbytes)
      fail(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] hold " +
           std::to_string(en - b) + " bytes but shape " + shape_str(e.shape) + " of " + st_dtype_name(e.dtype) +
           " needs " + std::to_string(nbytes));
  }
  std::vector<size_t> order(raw.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return raw[a].offsets < raw[b].offsets; });

  const uint64_t data_size = uint64_t(size) - 8 - n;
  uint64_t end = 0;
  const RawEntry* prev = nullptr;
  for (size_t i : order) {
    const RawEntry& e = raw[i];
    uint64_t b = e.offsets[0], en = e.offsets[1];
    std::string range = "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "]";
    if (b != end) {
      if (!prev) fail("tensor '" + e.name + "': " + range + " do not start at 0: the first tensor's data must begin at offset 0");
      std::string prev_range = "[" + std::to_string(prev->offsets[0]) + ", " + std::to_string(prev->offsets[1]) + "]";
      if (b > end)
        fail("tensor '" + e.name + "': " + range + " leave a gap of " + std::to_string(b - end) +
             " bytes after tensor '" + prev->name + "' " + prev_range);
      fail("tensor '" + e.name + "': " + range + " overlap tensor '" + prev->name + "' " + prev_range);
    }
    if (en > data_size)
      fail("tensor '" + e.name + "': " + range + " run past the end of the data (" + std::to_string(data_size) +
           " bytes after the header): the file is truncated");
    end = en;
    prev = &e;
  }
  if (end != data_size)
    fail(std::to_string(data_size - end) + " trailing bytes after the last tensor's data (the file should be 8 + " +
         std::to_string(n) + " + " + std::to_string(end) + " = " + std::to_string(8 + n + end) + " bytes, it is " +
         std::to_string(size) + ")");

  if (tensors) {
    tensors->clear();
    tensors->reserve(raw.size());
    for (size_t i : order) {
      RawEntry& e = raw[i];
      StTensor t;
      t.name = std::move(e.name);
      t.dtype = e.dtype;
      t.shape.assign(e.shape.begin(), e.shape.end());
      t.offset = size_t(e.offsets[0]);
      t.nbytes = size_t(e.offsets[1] - e.offsets[0]);
      t.data = data + 8 + n + t.offset;
      tensors->push_back(std::move(t));
    }
  }
  if (metadata) *metadata = std::move(sax.metadata);
}

// ---- SafetensorsFile ----

namespace {
std::string errno_text(int err) { return std::generic_category().message(err); }
}  // namespace

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw ModelError(path + ": cannot open: " + errno_text(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw ModelError(path + ": cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelError(path + ": not a regular file" + (S_ISDIR(st.st_mode) ? " (it is a directory)" : ""));
  }
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  size_t size = size_t(st.st_size);
  if (size > 0) {
    // Private and read-only: pages come from the page cache on first touch, nothing is read now.
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw ModelError(path + ": cannot map " + std::to_string(size) + " bytes: " + errno_text(err));
    }
    f->map_ = map;
    f->size_ = size;
  }
  ::close(fd);  // the mapping keeps the file
  static const uint8_t kEmpty[1] = {0};
  parse_safetensors(f->map_ ? static_cast<const uint8_t*>(f->map_) : kEmpty, size, path, &f->tensors_, &f->metadata_);
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

const StTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ---- SafetensorsWriter ----

size_t SafetensorsWriter::checked_nbytes(const std::string& name, StDtype dtype,
                                         const std::vector<int64_t>& shape) const {
  if (names_.count(name)) throw ModelError("SafetensorsWriter: tensor '" + name + "' added twice");
  if (name == "__metadata__") throw ModelError("SafetensorsWriter: '__metadata__' is not a tensor name");
  uint64_t n = st_dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) throw ModelError("SafetensorsWriter: tensor '" + name + "': negative dimension " + std::to_string(d));
    if (__builtin_mul_overflow(n, uint64_t(d), &n))
      throw ModelError("SafetensorsWriter: tensor '" + name + "': size overflows");
  }
  uint64_t total;
  if (__builtin_add_overflow(data_bytes_, n, &total) || total > uint64_t(std::numeric_limits<int64_t>::max()))
    throw ModelError("SafetensorsWriter: tensor '" + name + "': file size overflows");
  return size_t(n);
}

void SafetensorsWriter::add(const std::string& name, StDtype dtype, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes) {
  size_t n = checked_nbytes(name, dtype, shape);
  if (bytes.size() != n)
    throw ModelError("SafetensorsWriter: tensor '" + name + "': " + std::to_string(bytes.size()) +
                     " bytes given, its shape and dtype need " + std::to_string(n));
  names_[name] = entries_.size();
  entries_.push_back(Entry{name, dtype, std::move(shape), n, std::move(bytes), nullptr});
  data_bytes_ += n;
}

void SafetensorsWriter::add(const std::string& name, StDtype dtype, std::vector<int64_t> shape, FillFn fill) {
  size_t n = checked_nbytes(name, dtype, shape);
  if (!fill) throw ModelError("SafetensorsWriter: tensor '" + name + "': no fill function");
  names_[name] = entries_.size();
  entries_.push_back(Entry{name, dtype, std::move(shape), n, {}, std::move(fill)});
  data_bytes_ += n;
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

namespace {

std::string json_string(const std::string& s, const std::string& what) {
  try {
    return nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception&) {
    throw ModelError("SafetensorsWriter: " + what + " is not valid UTF-8");
  }
}

class FdWriter {
 public:
  explicit FdWriter(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      int err = errno;
      throw ModelError(path + ": cannot create: " + errno_text(err));
    }
  }
  ~FdWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t(1) << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int err = w < 0 ? errno : EIO;
        throw ModelError(path_ + ": write failed: " + errno_text(err));
      }
      p += w;
      n -= size_t(w);
    }
  }
  void close() {
    int err = 0;
    if (::fsync(fd_) != 0) err = errno;
    if (::close(fd_) != 0 && !err) err = errno;
    fd_ = -1;
    if (err) throw ModelError(path_ + ": write failed: " + errno_text(err));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

void SafetensorsWriter::write(const std::string& path, const WriteProgressFn& progress) const {
  std::string h = "{";
  if (!metadata_.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& kv : metadata_) {
      h += (first ? "" : ",") + json_string(kv.first, "metadata key") + ":" + json_string(kv.second, "metadata value");
      first = false;
    }
    h += "}";
  }
  uint64_t offset = 0;
  for (const Entry& e : entries_) {
    if (h.size() > 1) h += ",";
    h += json_string(e.name, "tensor name '" + e.name + "'") + ":{\"dtype\":\"" + st_dtype_name(e.dtype) + "\",\"shape\":[";
    for (size_t i = 0; i < e.shape.size(); ++i) h += (i ? "," : "") + std::to_string(e.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + e.nbytes) + "]}";
    offset += e.nbytes;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  if (h.size() > kMaxHeaderBytes)
    throw ModelError(path + ": header of " + std::to_string(h.size()) + " bytes exceeds the safetensors limit");

  const uint64_t total = 8 + h.size() + data_bytes_;
  FdWriter out(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
  out.write(len, 8);
  out.write(reinterpret_cast<const uint8_t*>(h.data()), h.size());
  uint64_t done = 8 + h.size();
  if (progress) progress(done, total);
  std::vector<uint8_t> buf;
  for (const Entry& e : entries_) {
    if (e.fill) {
      buf.assign(e.nbytes, 0);  // one tensor at a time
      e.fill(buf.data(), e.nbytes);
      out.write(buf.data(), e.nbytes);
    } else {
      out.write(e.bytes.data(), e.nbytes);
    }
    done += e.nbytes;
    if (progress) progress(done, total);
  }
  out.close();
}

}  // namespace opdev::model
