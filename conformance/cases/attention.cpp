// Conformance cases of the attention family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_attention() {}

}  // namespace opdev::conformance
