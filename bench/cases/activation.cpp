// Benchmarks of the activation family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_activation() {}

}  // namespace opdev::bench
