// `opdev replay` as a library call: one dumped op call re-run on a reference backend and another backend.
#pragma once

#include <string>
#include <vector>

#include "inspect/inspect.h"

namespace opdev::inspect {

struct ReplayOptions {
  std::string reference = "ref";  // the reference backend; "ref" runs the call in float64 (the oracle)
  std::string against;            // another backend, run in the recorded dtypes; "" = the entry's own, "none" = skip
  int threads = 0;
};

struct ReplayOutput {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  Metrics recorded_vs_ref, against_vs_recorded, against_vs_ref;
  bool has_against = false, against_bitwise = false;
  // The recorded output against the reference with the op's conformance tolerance
  // (conformance::contract_tolerance and the output dtype's rtol/atol).
  int64_t bad = 0;      // elements out of tolerance
  double max_ratio = 0;  // worst |err| / bound
  std::string first_bad;
  bool passes = true;
};

struct ReplayResult {
  std::string reference, against;  // what ran, e.g. "ref (float64)", "cpu"
  std::vector<ReplayOutput> outputs;
  bool ok = true;  // every recorded output within tolerance of the reference
};

// Throws InspectError on bad entries (missing files, wrong element types or shapes) or failed runs.
ReplayResult replay(const Entry& e, const ReplayOptions& o);

}  // namespace opdev::inspect
