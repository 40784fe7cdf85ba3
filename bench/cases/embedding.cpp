// Benchmarks of the embedding family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_embedding() {}

}  // namespace opdev::bench
