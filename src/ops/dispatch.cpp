#include "ops/dispatch.h"

namespace opdev {

std::string supported_dtypes(const Backend& be, opdev_op op) {
  std::string s;
  for (DType d : {DType::F32, DType::BF16, DType::F16, DType::F64})
    if (be.supports(op, d)) s += cat(s.empty() ? "" : ", ", dtype_name(d));
  return s.empty() ? "none" : s;
}

}  // namespace opdev
