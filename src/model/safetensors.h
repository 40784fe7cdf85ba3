// Safetensors files, validated as strictly as the reference loader (huggingface/safetensors): an 8-byte
// little-endian header length N (<= 100 MB), N bytes of UTF-8 JSON (an object of tensors plus an optional
// "__metadata__" string map), then the data. Every tensor: dtype from the closed set, shape of
// non-negative dims, data_offsets [begin, end] relative to the data start with end - begin = numel *
// dtype size (all products overflow-checked); offsets are contiguous from 0 without gaps or overlaps;
// the file is exactly 8 + N + the end of the last tensor. Any violation throws ModelError naming the
// file and the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/error.h"

namespace opdev::model {

enum class StDtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

const char* st_dtype_name(StDtype t);  // "BF16", ...
size_t st_dtype_size(StDtype t);       // bytes per element

struct StTensor {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapped file
  size_t nbytes = 0;
};

// Parses and validates a whole safetensors image in memory. `what` names it in messages (the path).
// Tensors point into `data`. Exposed for the fuzzer and for in-memory use.
void parse_safetensors(const uint8_t* data, size_t size, const std::string& what, std::vector<StTensor>* tensors,
                       std::map<std::string, std::string>* metadata);

// A memory-mapped, validated safetensors file.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<StTensor>& tensors() const { return tensors_; }
  const StTensor* find(const std::string& name) const;  // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::vector<StTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file (tensors in the order added, offsets contiguous, header padded with spaces
// to a multiple of 8 bytes as the reference writer does).
class SafetensorsWriter {
 public:
  void add(const std::string& name, StDtype dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  void set_metadata(const std::string& key, const std::string& value);
  void write(const std::string& path) const;  // throws ModelError on I/O failure

 private:
  struct Entry {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace opdev::model
