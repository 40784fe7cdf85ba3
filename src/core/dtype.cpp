#include "core/dtype.h"

#include "core/error.h"

namespace opdev {

DType dtype_from_dl(DLDataType t) {
  if (t.lanes != 1) return DType::Unknown;
  switch (t.code) {
    case kDLFloat:
      if (t.bits == 32) return DType::F32;
      if (t.bits == 16) return DType::F16;
      if (t.bits == 64) return DType::F64;
      break;
    case kDLBfloat:
      if (t.bits == 16) return DType::BF16;
      break;
    case kDLInt:
      if (t.bits == 8) return DType::I8;
      if (t.bits == 32) return DType::I32;
      if (t.bits == 64) return DType::I64;
      break;
    case kDLUInt:
      if (t.bits == 8) return DType::U8;
      break;
    default:
      break;
  }
  return DType::Unknown;
}

DLDataType dtype_to_dl(DType t) {
  switch (t) {
    case DType::F32: return DLDataType{kDLFloat, 32, 1};
    case DType::BF16: return DLDataType{kDLBfloat, 16, 1};
    case DType::F16: return DLDataType{kDLFloat, 16, 1};
    case DType::F64: return DLDataType{kDLFloat, 64, 1};
    case DType::I8: return DLDataType{kDLInt, 8, 1};
    case DType::I32: return DLDataType{kDLInt, 32, 1};
    case DType::I64: return DLDataType{kDLInt, 64, 1};
    case DType::U8: return DLDataType{kDLUInt, 8, 1};
    case DType::Unknown: break;
  }
  return DLDataType{kDLOpaqueHandle, 0, 0};
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
    case DType::F64: return "float64";
    case DType::I8: return "int8";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::U8: return "uint8";
    case DType::Unknown: break;
  }
  return "unknown";
}

std::string dl_dtype_name(DLDataType t) {
  DType d = dtype_from_dl(t);
  if (d != DType::Unknown) return dtype_name(d);
  const char* base = "code" ;
  switch (t.code) {
    case kDLInt: base = "int"; break;
    case kDLUInt: base = "uint"; break;
    case kDLFloat: base = "float"; break;
    case kDLBfloat: base = "bfloat"; break;
    case kDLComplex: base = "complex"; break;
    case kDLOpaqueHandle: base = "handle"; break;
    default: return cat("dtype(code=", int(t.code), ", bits=", int(t.bits), ", lanes=", t.lanes, ")");
  }
  std::string s = cat(base, int(t.bits));
  if (t.lanes != 1) s += cat("x", t.lanes);
  return s;
}

DType dtype_from_name(const std::string& n) {
  if (n == "float32" || n == "f32" || n == "fp32" || n == "float") return DType::F32;
  if (n == "bfloat16" || n == "bf16") return DType::BF16;
  if (n == "float16" || n == "f16" || n == "fp16" || n == "half") return DType::F16;
  if (n == "float64" || n == "f64" || n == "fp64" || n == "double") return DType::F64;
  if (n == "int8" || n == "i8") return DType::I8;
  if (n == "int32" || n == "i32") return DType::I32;
  if (n == "int64" || n == "i64") return DType::I64;
  if (n == "uint8" || n == "u8") return DType::U8;
  return DType::Unknown;
}

}  // namespace opdev
