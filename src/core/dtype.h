// Internal dtype enum and its mapping to DLPack. The C ABI speaks DLDataType; everything inside speaks
// DType so that a switch over it is exhaustive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "opdev/opdev.h"

namespace opdev {

enum class DType : uint8_t { F32, BF16, F16, F64, I8, I32, I64, U8, Unknown };

constexpr int kNumDTypes = static_cast<int>(DType::Unknown);

// Unknown for anything opdev does not handle (vector lanes, complex, float8...).
DType dtype_from_dl(DLDataType t);
DLDataType dtype_to_dl(DType t);
const char* dtype_name(DType t);          // "float32", "bfloat16", ...
std::string dl_dtype_name(DLDataType t);  // also names dtypes opdev does not know ("float8", "int16x4")
DType dtype_from_name(const std::string& name);  // accepts "float32"/"f32"/"fp32" etc.; Unknown otherwise

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::F64: return 8;
    case DType::I8: return 1;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
    case DType::Unknown: return 0;
  }
  return 0;
}

constexpr bool is_float(DType t) {
  return t == DType::F32 || t == DType::BF16 || t == DType::F16 || t == DType::F64;
}
// The activation dtypes of docs/OPS.md (float64 is the ref backend's extra).
constexpr bool is_activation(DType t) { return is_float(t); }
constexpr bool is_index(DType t) { return t == DType::I32 || t == DType::I64; }

}  // namespace opdev
