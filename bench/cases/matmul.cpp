// Benchmarks of the matmul family (not written yet).
#include "bench.h"

namespace opdev::bench {

void register_matmul() {}

}  // namespace opdev::bench
