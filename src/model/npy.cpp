#include "model/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "model/error.h"

namespace opdev::model {

namespace {
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// The value of 'key' in a numpy header dict: the text from after "'key':" to the next ',' or '}' at
// depth 0 (a shape tuple is kept whole), trimmed.
std::string dict_value(const std::string& dict, const std::string& key) {
  const std::string k = "'" + key + "':";
  size_t p = dict.find(k);
  if (p == std::string::npos) return "";
  p += k.size();
  int depth = 0;
  size_t e = p;
  for (; e < dict.size(); ++e) {
    const char ch = dict[e];
    if (ch == '(') ++depth;
    else if (ch == ')') --depth;
    else if ((ch == ',' || ch == '}') && depth == 0) break;
  }
  std::string v = dict.substr(p, e - p);
  while (!v.empty() && v.front() == ' ') v.erase(v.begin());
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}
}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t npy_item_bytes(const std::string& d) {
  if (d == "<f2" || d == "<u2" || d == "<i2") return 2;
  if (d == "<f4" || d == "<i4" || d == "<u4") return 4;
  if (d == "<f8" || d == "<i8" || d == "<u8") return 8;
  if (d == "|i1" || d == "|u1" || d == "|b1") return 1;
  return 0;
}

void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape, const void* data,
               size_t nbytes) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
    n *= shape[i];
  }
  dict += "), }";
  const size_t item = npy_item_bytes(descr);
  if (item == 0 || size_t(n) * item != nbytes)
    throw ModelError("cannot write " + path + ": " + std::to_string(nbytes) + " bytes are not " + std::to_string(n) + " elements of '" +
                     descr + "'");
  // magic (6) + version (2) + header length (2) + dict + padding + '\n' is a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 0xFFFF) throw ModelError("cannot write " + path + ": header too long");
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) throw ModelError("cannot write " + path + ": " + std::strerror(errno));
  const unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(dict.size() & 0xFF), uint8_t(dict.size() >> 8)};
  bool ok = std::fwrite(head, 1, 10, f.get()) == 10 && std::fwrite(dict.data(), 1, dict.size(), f.get()) == dict.size() &&
            (nbytes == 0 || std::fwrite(data, 1, nbytes, f.get()) == nbytes);
  if (!ok || std::fflush(f.get()) != 0) throw ModelError("writing " + path + " failed: " + std::strerror(errno));
}

NpyArray read_npy(const std::string& path) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw ModelError("cannot read " + path + ": " + std::strerror(errno));
  unsigned char head[10];
  if (std::fread(head, 1, 10, f.get()) != 10 || std::memcmp(head, "\x93NUMPY", 6) != 0 || head[6] != 1)
    throw ModelError(path + ": not a version 1 .npy file");
  const size_t hl = size_t(head[8]) | (size_t(head[9]) << 8);
  std::string dict(hl, '\0');
  if (std::fread(&dict[0], 1, hl, f.get()) != hl) throw ModelError(path + ": truncated header");
  NpyArray a;
  std::string descr = dict_value(dict, "descr");
  if (descr.size() < 2 || descr.front() != '\'' || descr.back() != '\'') throw ModelError(path + ": no 'descr' in the header");
  a.descr = descr.substr(1, descr.size() - 2);
  if (npy_item_bytes(a.descr) == 0)
    throw ModelError(path + ": element type '" + a.descr + "' is not one of <f2 <f4 <f8 <u2 <i2 <i4 <i8 |i1 |u1 (little-endian)");
  if (dict_value(dict, "fortran_order") != "False") throw ModelError(path + ": expected C order (fortran_order False)");
  const std::string sh = dict_value(dict, "shape");
  if (sh.size() < 2 || sh.front() != '(' || sh.back() != ')') throw ModelError(path + ": no shape");
  int64_t n = 1;
  for (size_t i = 1; i + 1 < sh.size();) {
    while (i + 1 < sh.size() && (sh[i] == ' ' || sh[i] == ',')) ++i;
    if (i + 1 >= sh.size()) break;
    size_t j = i;
    while (j + 1 < sh.size() && sh[j] >= '0' && sh[j] <= '9') ++j;
    if (j == i || j - i > 12) throw ModelError(path + ": bad shape " + sh);
    const int64_t d = std::stoll(sh.substr(i, j - i));
    if (d > 0 && n > (int64_t(1) << 40) / d) throw ModelError(path + ": shape too large");
    a.shape.push_back(d);
    n *= d;
    i = j;
  }
  const size_t nbytes = size_t(n) * npy_item_bytes(a.descr);
  a.bytes.resize(nbytes);
  if (nbytes && std::fread(a.bytes.data(), 1, nbytes, f.get()) != nbytes) throw ModelError(path + ": truncated data");
  return a;
}

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  write_npy(path, "<f4", shape, data, size_t(n) * sizeof(float));
}

std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape) {
  NpyArray a = read_npy(path);
  if (a.descr != "<f4") throw ModelError(path + ": expected little-endian float32 in C order, got '" + a.descr + "'");
  *shape = a.shape;
  std::vector<float> v(a.bytes.size() / sizeof(float));
  if (!a.bytes.empty()) std::memcpy(v.data(), a.bytes.data(), a.bytes.size());
  return v;
}

}  // namespace opdev::model
