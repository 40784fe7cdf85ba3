#!/usr/bin/env bash
# The test command of the README (and of CI): installs dependencies, builds, and runs every test:
# unit tests, the C-ABI test, the conformance suite (cpu at every ISA, ref), the install test; then the
# same unit and conformance tests (quick cases) under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

echo "== release build"
scripts/build.sh release
echo "== tests (release)"
(cd build && ctest --output-on-failure -j 1)

if [ "${OPDEV_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== sanitizer build (address, undefined)"
  scripts/build.sh asan
  echo "== tests (address, undefined sanitizers)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure -j 1 -L "unit|conformance")
fi
echo "== all tests passed"
