// Benchmarks of the elementwise family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_elementwise() {}

}  // namespace opdev::bench
