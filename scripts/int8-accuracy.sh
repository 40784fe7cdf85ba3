#!/usr/bin/env bash
# Logits error of int8 (W8A8) weights against bf16 weights (issue #5 item 4):
#
#   scripts/int8-accuracy.sh [--positions N] [--models "DIR ..."]
#
# For each model (default: the synthetic Qwen3-0.6B-shaped and reduced-MoE checkpoints that
# `opdev make-model` writes into .cache/models), runs `opdev logits` over the same N token ids (default
# 320, fixed pseudo-random ids) on the cpu backend in bfloat16: with the checkpoint's bf16 weights, with
# --weights int8 (the projections and the lm_head quantised at load; the embedding gather and norms stay
# bf16) and with --weights int8-proj (the lm_head stays bf16 too). Prints, per int8 format, NMSE =
# sum (int8 - bf16)^2 / sum bf16^2 over all positions and the top-1 agreement (fraction of positions
# whose argmax is the same), with numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
positions=320
models=""
while [ $# -gt 0 ]; do
  case "$1" in
    --positions) positions=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "int8-accuracy: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
opdev=build/tools/opdev
[ -x "$opdev" ] || scripts/build.sh release
if [ -z "$models" ]; then
  scripts/fetch-tokenizer.sh >/dev/null
  for preset in qwen3-0.6b qwen3-moe-small; do
    d=.cache/models/$preset
    [ -f "$d/config.json" ] || "$opdev" make-model --preset "$preset" --out "$d"
    models="$models $d"
  done
fi
ids=$("$py" -c "print(','.join(str((i * 7919 + 13) % 150000) for i in range($positions)))")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| model | --weights | positions | NMSE (int8 vs bf16 weights) | top-1 agreement |"
echo "|---|---|--:|--:|--:|"
for m in $models; do
  "$opdev" logits -m "$m" --dtype bfloat16 --ids "$ids" -o "$tmp/bf16.npy" -q
  for w in int8 int8-proj; do
    "$opdev" logits -m "$m" --dtype bfloat16 --weights "$w" --ids "$ids" -o "$tmp/int8.npy" -q
    "$py" - "$m" "$w" "$tmp/bf16.npy" "$tmp/int8.npy" <<'EOF'
import sys
import numpy as np
ref = np.load(sys.argv[3]).astype(np.float64)
q = np.load(sys.argv[4]).astype(np.float64)
nmse = float(((q - ref) ** 2).sum() / (ref ** 2).sum())
top1 = float((q.argmax(axis=1) == ref.argmax(axis=1)).mean())
print(f"| {sys.argv[1]} | {sys.argv[2]} | {ref.shape[0]} | {nmse:.2e} | {100 * top1:.1f}% |")
EOF
  done
done
