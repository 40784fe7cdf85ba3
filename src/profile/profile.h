// The profiler's C API object and what the context needs from it (OPDEV_PROFILE). Layout of the module:
//   machine.{h,cpp}   the roofline's read bandwidth and FMA peaks, measured on this host
//   recorder.{h,cpp}  the hook that records op calls
//   report.{h,cpp}    trace.json, op_summary.csv, fusion_candidates.csv and the text report
//   profile.cpp       the C API (opdev_profile_*) and OPDEV_PROFILE
#pragma once

#include <string>

#include "opdev/opdev.h"
#include "profile/recorder.h"

struct opdev_profile {
  opdev::profile::Recorder recorder;
  opdev_profile_options options{};
  std::string report;  // the text opdev_profile_report last returned
};

namespace opdev::profile {

// OPDEV_PROFILE=DIR: creates DIR/ctx-<n> and starts recording ctx (throws opdev::Error naming the path
// when the directory cannot be made). Does nothing when the variable is unset or empty.
void start_env_profile(opdev_context* ctx);
// Writes and frees the profile start_env_profile made, if any; failures are logged (destroy cannot fail).
void finish_env_profile(opdev_context* ctx) noexcept;

}  // namespace opdev::profile
