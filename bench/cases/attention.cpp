// Benchmarks of the attention family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_attention() {}

}  // namespace opdev::bench
