// NumPy .npy files (format 1.0, little-endian, C order): what `opdev logits` writes, what the precision
// tools (`--dump`, `opdev replay`) write and read, and what the tests read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace opdev::model {

// An array as stored: the numpy type string ('<f4', '<u2', '<i8', '|u1', ...), the shape and the raw
// little-endian element bytes in C order.
struct NpyArray {
  std::string descr;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  int64_t numel() const;
};

// Bytes of one element of a numpy type string this module handles ('<f2' '<f4' '<f8' '<u2' '<i4' '<i8'
// '|i1' '|u1'); 0 for anything else.
size_t npy_item_bytes(const std::string& descr);

// Writes `nbytes` of element data (must equal numel * item size of descr). Throws ModelError.
void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape, const void* data,
               size_t nbytes);
// Reads any C-order .npy of a type npy_item_bytes knows; throws ModelError (with the path) on anything
// else: a missing file, another version, Fortran order, big-endian data, a short file.
NpyArray read_npy(const std::string& path);

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
// Reads a float32 C-order .npy; throws ModelError on anything else.
std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape);

}  // namespace opdev::model
