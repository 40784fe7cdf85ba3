// Benchmarks of the cache family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_cache() {}

}  // namespace opdev::bench
