#!/usr/bin/env bash
# Builds the libFuzzer targets of the checkpoint parsers with clang (fuzz/, OPDEV_FUZZ=ON) in build-fuzz/
# and runs each for OPDEV_FUZZ_SECONDS (default 60) seconds from its seed corpus (fuzz/corpus/<target>,
# read-only; new inputs go to build-fuzz/corpus/<target>). Exits non-zero on any crash, sanitizer report,
# leak or timeout; the reproducer is left in build-fuzz/ (crash-*, leak-*, timeout-*).
#   scripts/fuzz.sh                 both targets
#   scripts/fuzz.sh fuzz_config     one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${OPDEV_FUZZ_SECONDS:-60}
cc=${CC:-clang-14}
cxx=${CXX:-clang++-14}
for tool in "$cc" "$cxx"; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (install clang-14, or set CC/CXX to a clang)" >&2; exit 1; }
done
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_config)

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_CXX_COMPILER="$cxx" -DOPDEV_FUZZ=ON -DOPDEV_BUILD_TESTS=OFF -DOPDEV_BUILD_TOOLS=OFF >/dev/null
ninja -C build-fuzz "${targets[@]}"

declare -A max_len=([fuzz_safetensors]=4096 [fuzz_config]=4096)
declare -A dict=([fuzz_safetensors]=fuzz/safetensors.dict [fuzz_config]=fuzz/config.dict)
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "fuzz.sh: $t for ${seconds}s" >&2
  # Run from build-fuzz so that reproducers land there.
  (cd build-fuzz && "./fuzz/$t" "corpus/$t" "../fuzz/corpus/$t" -dict="../${dict[$t]}" -max_len="${max_len[$t]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
done
echo "fuzz.sh: clean (${targets[*]}, ${seconds}s each)" >&2
