// Conformance cases of the matmul family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_matmul() {}

}  // namespace opdev::conformance
