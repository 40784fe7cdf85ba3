#include "model/npy.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "model/error.h"

namespace opdev::model {

namespace {
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
}  // namespace

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
    n *= shape[i];
  }
  dict += "), }";
  // magic (6) + version (2) + header length (2) + dict + padding + '\n' is a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) throw ModelError("cannot write " + path + ": " + std::strerror(errno));
  const unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(dict.size() & 0xFF), uint8_t(dict.size() >> 8)};
  bool ok = std::fwrite(head, 1, 10, f.get()) == 10 && std::fwrite(dict.data(), 1, dict.size(), f.get()) == dict.size() &&
            std::fwrite(data, sizeof(float), size_t(n), f.get()) == size_t(n);
  if (!ok || std::fflush(f.get()) != 0) throw ModelError("writing " + path + " failed: " + std::strerror(errno));
}

std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw ModelError("cannot read " + path + ": " + std::strerror(errno));
  unsigned char head[10];
  if (std::fread(head, 1, 10, f.get()) != 10 || std::memcmp(head, "\x93NUMPY", 6) != 0 || head[6] != 1)
    throw ModelError(path + ": not a version 1 .npy file");
  const size_t hl = size_t(head[8]) | (size_t(head[9]) << 8);
  std::string dict(hl, '\0');
  if (std::fread(&dict[0], 1, hl, f.get()) != hl) throw ModelError(path + ": truncated header");
  if (dict.find("'descr': '<f4'") == std::string::npos || dict.find("'fortran_order': False") == std::string::npos)
    throw ModelError(path + ": expected little-endian float32 in C order");
  const size_t a = dict.find('('), b = dict.find(')');
  if (a == std::string::npos || b == std::string::npos || b < a) throw ModelError(path + ": no shape");
  shape->clear();
  int64_t n = 1;
  for (size_t i = a + 1; i < b;) {
    while (i < b && (dict[i] == ' ' || dict[i] == ',')) ++i;
    if (i >= b) break;
    size_t j = i;
    while (j < b && dict[j] >= '0' && dict[j] <= '9') ++j;
    if (j == i || j - i > 12) throw ModelError(path + ": bad shape");
    const int64_t d = std::stoll(dict.substr(i, j - i));
    if (d > 0 && n > (int64_t(1) << 40) / d) throw ModelError(path + ": shape too large");
    shape->push_back(d);
    n *= d;
    i = j;
  }
  std::vector<float> v(static_cast<size_t>(n));
  if (std::fread(v.data(), sizeof(float), size_t(n), f.get()) != size_t(n)) throw ModelError(path + ": truncated data");
  return v;
}

}  // namespace opdev::model
