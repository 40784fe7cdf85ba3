// Safetensors files, validated as strictly as the reference loader (huggingface/safetensors): an 8-byte
// little-endian header length N (<= 100 MB), N bytes of UTF-8 JSON (an object of tensors plus an optional
// "__metadata__" string map), then the data. Every tensor: dtype from the closed set, shape of
// non-negative dims, data_offsets [begin, end] relative to the data start with end - begin = numel *
// dtype size (all products overflow-checked); offsets are contiguous from 0 without gaps or overlaps;
// the file is exactly 8 + N + the end of the last tensor. Any violation throws ModelError naming the
// file and the tensor.
//
// Stricter than the reference in two ways, both signs of a corrupt or hand-edited header: a repeated
// JSON key (a tensor name, a "__metadata__" key, or a field of one entry) is an error (serde would keep
// the last), and an entry key other than dtype / shape / data_offsets is an error (serde ignores it).
// The header is parsed as a stream (no JSON tree), so memory stays proportional to the tensors found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/error.h"

namespace opdev::model {

enum class StDtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

const char* st_dtype_name(StDtype t);  // "BF16", ...
size_t st_dtype_size(StDtype t);       // bytes per element
// "BF16" -> StDtype::BF16; false for a name outside the closed set.
bool st_dtype_from_name(const std::string& name, StDtype* out);

struct StTensor {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  // Into the mapped file. Aligned to the element size only when the writer padded the header (the
  // reference writer and SafetensorsWriter pad to 8 bytes); the format does not promise it, so read
  // through memcpy or check the alignment before casting.
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  size_t offset = 0;  // data_offsets[0]: where the bytes start, relative to the end of the header
};

// Parses and validates a whole safetensors image in memory. `what` names it in messages (the path).
// Tensors point into `data` and come in the order of their data (data_offsets ascending).
// Exposed for the fuzzer and for in-memory use.
void parse_safetensors(const uint8_t* data, size_t size, const std::string& what, std::vector<StTensor>* tensors,
                       std::map<std::string, std::string>* metadata);

// A memory-mapped (read-only, private), validated safetensors file. Opening reads the header only; the
// tensor bytes are paged in when first touched.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
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
// to a multiple of 8 bytes as the reference writer does). Tensors are either given as bytes or produced
// by a callback at write time, so a large file can be streamed without holding all of it in memory.
class SafetensorsWriter {
 public:
  // Fills exactly `nbytes` bytes at `dst` with the tensor's data (called once, during write()).
  using FillFn = std::function<void(uint8_t* dst, size_t nbytes)>;
  // (bytes written so far, total bytes of the file)
  using WriteProgressFn = std::function<void(uint64_t done, uint64_t total)>;

  // Throw ModelError on a repeated name, a negative dim, an overflowing size, or (first form) bytes of
  // the wrong length.
  void add(const std::string& name, StDtype dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  void add(const std::string& name, StDtype dtype, std::vector<int64_t> shape, FillFn fill);
  void set_metadata(const std::string& key, const std::string& value);
  uint64_t data_bytes() const { return data_bytes_; }  // sum of the tensor sizes so far
  // Throws ModelError on I/O failure. The file is flushed to disk (fsync) before write() returns.
  void write(const std::string& path, const WriteProgressFn& progress = nullptr) const;

 private:
  struct Entry {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
    size_t nbytes = 0;
    std::vector<uint8_t> bytes;  // empty when `fill` produces them
    FillFn fill;
  };
  size_t checked_nbytes(const std::string& name, StDtype dtype, const std::vector<int64_t>& shape) const;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> names_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_bytes_ = 0;
};

}  // namespace opdev::model
