// Conformance cases of the activation family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_activation() {}

}  // namespace opdev::conformance
