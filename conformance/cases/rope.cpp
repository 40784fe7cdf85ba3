// Conformance cases of the rope family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_rope() {}

}  // namespace opdev::conformance
