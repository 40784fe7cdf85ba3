// Benchmarks of the sampling family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_sampling() {}

}  // namespace opdev::bench
