// libFuzzer target: ModelConfig::parse and GenerationConfig::parse on arbitrary text. Each must return a
// config or throw ModelError; a parsed model config must survive to_json() and parse back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    opdev::model::ModelConfig c = opdev::model::ModelConfig::parse(text, "config.json");
    for (int64_t l = 0; l < c.num_hidden_layers && l < 64; ++l) (void)c.is_moe_layer(l);
    opdev::model::ModelConfig back = opdev::model::ModelConfig::parse(c.to_json(), "to_json");
    if (back.hidden_size != c.hidden_size || back.head_dim != c.head_dim || back.num_experts != c.num_experts ||
        back.mlp_only_layers != c.mlp_only_layers || back.rope_scaling.has_value() != c.rope_scaling.has_value())
      std::abort();
  } catch (const opdev::model::ModelError&) {
  }
  try {
    (void)opdev::model::GenerationConfig::parse(text, "generation_config.json");
  } catch (const opdev::model::ModelError&) {
  }
  return 0;
}
