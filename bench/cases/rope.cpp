// Benchmarks of the rope family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_rope() {}

}  // namespace opdev::bench
