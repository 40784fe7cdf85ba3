#!/usr/bin/env python3
"""Joins the results of scripts/bench-vs-llamacpp.sh into one markdown table (stdlib only).

Input: results.csv with rows engine,variant,weights,threads,pp,tg,read_gbps,floor_tps,llama_commit[,round].
With several rounds (the script alternates the engines round by round), each engine / model / weight type
/ thread count keeps its best pp and its best tg, and opdev's floor the one of the best read bandwidth.
Pairs each opdev weight type with its llama.cpp counterpart (bf16 with BF16 and with F16, int8 with Q8_0)
and prints pp512 / tg64 of both engines, the ratios opdev / llama.cpp, and tg as a fraction of the decode
floor. opdev's floor comes from its own run (weight bytes per token / read bandwidth measured in that run);
llama.cpp's floor uses the bandwidth of the opdev run at the same thread count and the same weights at the
GGUF type's size (BF16 / F16: 16 bits per weight, Q8_0: 8.5 bits per weight, all tensors quantised).
"""
import csv
import sys

BITS = {"BF16": 16.0, "F16": 16.0, "Q8_0": 8.5}
PAIRS = [("bf16", "BF16"), ("bf16", "F16"), ("int8", "Q8_0")]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt(x, spec="{:.1f}"):
    return "-" if x is None else spec.format(x)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def best_rounds(rows, engine):
    """(variant, threads, weights) -> one row: the best pp, the best tg, the largest bandwidth and floor."""
    out = {}
    for r in rows:
        if r["engine"] != engine:
            continue
        k = (r["variant"], r["threads"], r["weights"])
        if k not in out:
            out[k] = dict(r)
            continue
        b = out[k]
        for f in ("pp", "tg", "read_gbps", "floor_tps"):
            x, y = num(r[f]), num(b[f])
            if x is not None and (y is None or x > y):
                b[f] = r[f]
    return out


def main(path):
    rows = list(csv.DictReader(open(path)))
    opdev = best_rounds(rows, "opdev")
    llama = best_rounds(rows, "llama.cpp")
    rounds = len({r.get("round") or "1" for r in rows})
    commits = sorted({r["llama_commit"] for r in rows if r["engine"] == "llama.cpp" and r["llama_commit"]})
    out = []
    out.append("| model | threads | opdev | llama.cpp | opdev pp512 | llama pp512 | pp ratio | opdev tg64 | llama tg64 "
               "| tg ratio | opdev tg/floor | llama tg/floor | read GB/s |")
    out.append("|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    keys = sorted({(v, t) for (v, t, _) in opdev}, key=lambda k: (k[0], int(k[1])))
    for v, t in keys:
        bf16 = opdev.get((v, t, "bf16"))
        bf16_floor = num(bf16["floor_tps"]) if bf16 else None
        for ow, lw in PAIRS:
            o = opdev.get((v, t, ow))
            if o is None:
                continue
            l = llama.get((v, t, lw))
            if l is None and (ow, lw) != ("bf16", "BF16") and (ow, lw) != ("int8", "Q8_0"):
                continue  # the F16 row only when llama.cpp ran it
            opp, otg, ofl = num(o["pp"]), num(o["tg"]), num(o["floor_tps"])
            lpp = num(l["pp"]) if l else None
            ltg = num(l["tg"]) if l else None
            lfl = bf16_floor * 16.0 / BITS[lw] if (l and bf16_floor) else None
            out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                v, t, ow, lw if l else "(not run)", fmt(opp), fmt(lpp), fmt(ratio(opp, lpp), "{:.2f}x"),
                fmt(otg), fmt(ltg), fmt(ratio(otg, ltg), "{:.2f}x"),
                fmt(ratio(otg, ofl) and 100 * ratio(otg, ofl), "{:.0f}%"),
                fmt(ratio(ltg, lfl) and 100 * ratio(ltg, lfl), "{:.0f}%"), o["read_gbps"] or "-"))
    print("\n".join(out))
    print("\nbest of {} round(s) per cell".format(rounds))
    if commits:
        print("llama.cpp: " + "; ".join(commits))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: vs_llamacpp_table.py results.csv")
    main(sys.argv[1])
