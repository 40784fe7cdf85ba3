// Conformance cases of the embedding family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_embedding() {}

}  // namespace opdev::conformance
