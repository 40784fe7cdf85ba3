#!/usr/bin/env bash
# The main job of the README: installs dependencies, builds, then runs the conformance suite and the
# operator benchmarks on the cpu backend (the model runtime will take this place when it lands).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
./build/tools/opdev check --backend cpu
./build/tools/opdev bench --backend cpu "$@"
