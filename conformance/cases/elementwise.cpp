// Conformance cases of the elementwise family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_elementwise() {}

}  // namespace opdev::conformance
