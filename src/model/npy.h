// NumPy .npy files (format 1.0, little-endian float32 / int32, C order): what `opdev logits` writes and
// the tests read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace opdev::model {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
// Reads a float32 C-order .npy; throws ModelError on anything else.
std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape);

}  // namespace opdev::model
