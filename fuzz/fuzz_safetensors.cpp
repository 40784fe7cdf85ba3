// libFuzzer target: parse_safetensors on arbitrary bytes. Any input must either parse (and then every
// tensor lies inside the input, with a consistent size) or throw ModelError; anything else (a crash, a
// sanitizer report, another exception, a leak) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<opdev::model::StTensor> tensors;
  std::map<std::string, std::string> metadata;
  try {
    opdev::model::parse_safetensors(data, size, "fuzz.safetensors", &tensors, &metadata);
  } catch (const opdev::model::ModelError&) {
    return 0;
  }
  for (const auto& t : tensors) {
    size_t n = opdev::model::st_dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= size_t(d);  // validated: cannot overflow
    if (n != t.nbytes || t.data < data || t.data + t.nbytes > data + size) std::abort();
  }
  return 0;
}
