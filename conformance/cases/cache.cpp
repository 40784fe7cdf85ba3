// Conformance cases of the cache family (not written yet).
#include "conformance.h"

namespace opdev::conformance {

void register_cache() {}

}  // namespace opdev::conformance
