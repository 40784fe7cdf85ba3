// Benchmarks of the moe family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_moe() {}

}  // namespace opdev::bench
