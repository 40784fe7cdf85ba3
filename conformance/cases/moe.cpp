// Conformance cases of the moe family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_moe() {}

}  // namespace opdev::conformance
