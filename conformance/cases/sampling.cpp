// Conformance cases of the sampling family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_sampling() {}

}  // namespace opdev::conformance
