#!/usr/bin/env python3
"""The report of scripts/gpu-check.sh: joins opdev's op benchmark CSV (`opdev bench --backend cuda --csv`),
the PyTorch peers CSV (bench/torch_peers.py), the GEMM peers CSV (opdev_cuda_gemm_peers --csv) and the
model checks into one markdown report, with a summary against each target of the CUDA issue. Python 3
standard library only (numpy is used by `npy-compare` when present, for speed).

    gpu_report.py report WORK_DIR OUT.md     the report from the files gpu-check.sh leaves in WORK_DIR
    gpu_report.py npy-compare A.npy B.npy    logits A against reference B: one JSON line (nmse, top1, ...)

Files read from WORK_DIR (each optional; a missing one is reported as such):
    stages.tsv        stage <TAB> status <TAB> seconds <TAB> note   (one line per stage run)
    env.txt           machine, driver, toolkit, PyTorch, commit (free text)
    conformance.txt   stdout of `opdev check --backend cuda`; conformance_failures.txt its FAIL lines
    conformance_attn_p_split.txt   stdout of the paged_attention suite with OPDEV_CUDA_ATTN_P=split
    bench.csv         opdev bench CSV;  bench.txt its stdout (the roofline header lines)
    bench_attn_p_split.csv   opdev bench CSV of paged_attention with OPDEV_CUDA_ATTN_P=split (exact P)
    torch.csv         bench/torch_peers.py output
    gemm_peers.csv    opdev_cuda_gemm_peers --csv output (any columns; rendered as is); gemm_peers.txt its stdout
    models.jsonl      one JSON object per logits comparison (npy-compare output plus model / a / b)
    model_*.txt       outputs of the model stage (bench-model tables, compare summaries), embedded
"""

import csv
import glob
import json
import math
import os
import statistics
import struct
import sys

# Ops whose roofline is memory: the "fraction of copy bandwidth" target applies to them (the list).
# moe_gating_topk and sample are memory-roofline ops too, but they move a few MB at most: launch and top-k
# work bound them, so they are not judged against the copy bandwidth.
MEMORY_BOUND = {
    "rms_norm", "add_rms_norm", "silu_and_mul", "rope", "add", "cast", "copy", "embedding", "reshape_and_cache",
    "moe_permute", "moe_unpermute", "quantize_int8",
}
# "Large sizes": a case must move at least this many bytes (twice the 50 MB L2 of an H100 / H200), so that
# the cache cannot serve it.
LARGE_BYTES = 100e6
# linear is judged against torch on shapes where torch's time is at least this (below it, both sides' times
# are mostly launch and API overhead, not the GEMM).
LINEAR_MIN_US = 10.0
PRIMARY_DTYPE = "bfloat16"


# ---- small helpers -------------------------------------------------------------------------------------


def fnum(s):
    """float(s), or None for an empty / bad field."""
    try:
        v = float(s)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


def read_csv(path):
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_text(path):
    if not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        return f.read()


def pct(x):
    return "-" if x is None else "%.0f%%" % (100 * x)


def num(x, digits=3):
    if x is None:
        return "-"
    if x == 0:
        return "0"
    return "%.*g" % (digits, x)


def md_escape(s):
    return str(s).replace("|", "\\|")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    return "\n".join(out)


def key_of(row):
    return (row.get("op", ""), row.get("model", ""), str(row.get("tokens", "")), row.get("shape", ""), row.get("dtype", ""))


# ---- .npy logits comparison ----------------------------------------------------------------------------


def read_npy_f32(path):
    """(shape, flat list or numpy array) of a C-order little-endian float32 .npy file."""
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ValueError("%s is not a .npy file" % path)
        major = f.read(2)[0]
        hlen = struct.unpack("<H", f.read(2))[0] if major == 1 else struct.unpack("<I", f.read(4))[0]
        import ast  # noqa: PLC0415

        header = ast.literal_eval(f.read(hlen).decode("latin1"))
        if header.get("descr") != "<f4" or header.get("fortran_order"):
            raise ValueError("%s: expected C-order <f4, got %s" % (path, header))
        shape = tuple(header["shape"])
        data = f.read()
    try:
        import numpy  # noqa: PLC0415

        return shape, numpy.frombuffer(data, dtype="<f4").reshape(shape).astype("float64")
    except ImportError:
        from array import array  # noqa: PLC0415

        a = array("f")
        a.frombytes(data)
        if sys.byteorder != "little":
            a.byteswap()
        return shape, a


def npy_compare(path_a, path_b):
    """NMSE of A against B over every element, argmax agreement per row, max |A - B|, non-finite counts."""
    sa, a = read_npy_f32(path_a)
    sb, b = read_npy_f32(path_b)
    if sa != sb:
        raise ValueError("shapes differ: %s %s vs %s %s" % (path_a, sa, path_b, sb))
    rows, cols = (sa[0], sa[1]) if len(sa) == 2 else (1, sa[0])
    try:
        import numpy as np  # noqa: PLC0415

        a2, b2 = np.asarray(a).reshape(rows, cols), np.asarray(b).reshape(rows, cols)
        fin = np.isfinite(a2) & np.isfinite(b2)
        d = np.where(fin, a2 - b2, 0.0)
        se, sr = float((d * d).sum()), float((np.where(fin, b2, 0.0) ** 2).sum())
        top1 = int((np.argmax(np.where(np.isfinite(a2), a2, -np.inf), 1) == np.argmax(b2, 1)).sum())
        max_abs = float(np.abs(d).max()) if d.size else 0.0
        nonfinite = int((~np.isfinite(a2)).sum())
    except ImportError:
        se = sr = max_abs = 0.0
        top1 = nonfinite = 0
        for r in range(rows):
            ra, rb = a[r * cols:(r + 1) * cols], b[r * cols:(r + 1) * cols]
            best_a = best_b = 0
            for j in range(cols):
                x, y = ra[j], rb[j]
                if not (math.isfinite(x) and math.isfinite(y)):
                    nonfinite += not math.isfinite(x)
                    continue
                diff = x - y
                se += diff * diff
                sr += y * y
                if abs(diff) > max_abs:
                    max_abs = abs(diff)
                if x > ra[best_a]:
                    best_a = j
                if y > rb[best_b]:
                    best_b = j
            top1 += best_a == best_b
    return {
        "positions": rows,
        "vocab": cols,
        "nmse": se / sr if sr > 0 else (0.0 if se == 0 else float("inf")),
        "top1": top1 / rows if rows else 1.0,
        "max_abs": max_abs,
        "nonfinite": nonfinite,
    }


# ---- the report ----------------------------------------------------------------------------------------


class Data:
    def __init__(self, work):
        self.work = work
        self.stages = []
        text = read_text(os.path.join(work, "stages.tsv")) or ""
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                self.stages.append((parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
        self.env = read_text(os.path.join(work, "env.txt"))
        self.conformance = read_text(os.path.join(work, "conformance.txt"))
        self.conformance_failures = read_text(os.path.join(work, "conformance_failures.txt"))
        self.bench = read_csv(os.path.join(work, "bench.csv"))
        self.bench_txt = read_text(os.path.join(work, "bench.txt"))
        self.conformance_split = read_text(os.path.join(work, "conformance_attn_p_split.txt"))
        self.bench_split = read_csv(os.path.join(work, "bench_attn_p_split.csv"))
        self.torch = read_csv(os.path.join(work, "torch.csv"))
        self.gemm_peers = read_csv(os.path.join(work, "gemm_peers.csv"))
        self.gemm_peers_txt = read_text(os.path.join(work, "gemm_peers.txt"))
        self.models = []
        for line in (read_text(os.path.join(work, "models.jsonl")) or "").splitlines():
            try:
                self.models.append(json.loads(line))
            except ValueError:
                pass
        self.model_texts = sorted(glob.glob(os.path.join(work, "model_*.txt")))
        # torch peers by case key: primary first
        self.peers = {}
        for r in self.torch or []:
            self.peers.setdefault(key_of(r), []).append(r)
        for k in self.peers:
            self.peers[k].sort(key=lambda r: r.get("primary") != "1")

    def primary_peer(self, row):
        for p in self.peers.get(key_of(row), []):
            if p.get("primary") == "1":
                return p
        return None

    def peer_named(self, row, name):
        for p in self.peers.get(key_of(row), []):
            if p.get("peer") == name:
                return p
        return None

    def bench_ok(self):
        return [r for r in (self.bench or []) if not r.get("error") and fnum(r.get("time_us"))]

    def stage(self, name):
        for s in reversed(self.stages):
            if s[0] == name:
                return s
        return None


def roofline_lines(d):
    lines = []
    for line in (d.bench_txt or "").splitlines():
        if line.startswith("backend ") or line.startswith("roofline:"):
            lines.append(line)
    return lines


def conformance_summary(d):
    """(status, one line) from the conformance stage and its output."""
    st = d.stage("conformance")
    text = d.conformance or ""
    last = ""
    for line in text.splitlines():
        if line.startswith("conformance"):
            last = line.strip()
    if st is None:
        return "not run", "the conformance stage was not run"
    if "skipped: no GPU" in text:
        return "skipped", last
    if st[1] == "ok":
        return "met", last
    return "not met", last or ("stage %s" % st[1])


def target_rows(d):
    """The summary against the issue's targets: (target, status, evidence)."""
    out = []
    ok = d.bench_ok()
    if not d.bench:
        why = "no op benchmark results (bench stage %s)" % (d.stage("bench")[1] if d.stage("bench") else "not run")
    else:
        why = ""
    cs, cline = conformance_summary(d)
    out.append(("conformance: cuda against ref, same cases as cpu", cs, cline))

    def prim(rows):
        p = [r for r in rows if r["dtype"] == PRIMARY_DTYPE]
        return p or rows

    # memory-bound ops at large sizes
    def moved(r):
        g, t = fnum(r.get("gbps")), fnum(r.get("time_us"))
        return g * t * 1e3 if g and t else 0.0

    big = prim([r for r in ok if r["op"] in MEMORY_BOUND and moved(r) >= LARGE_BYTES])
    if big:
        fr = [(fnum(r["frac_bw"]) or 0, r) for r in big]
        below = [x for x in fr if x[0] < 0.8]
        worst = min(fr, key=lambda x: x[0])
        status = "met" if not below else "not met"
        out.append(("memory-bound ops >= 80% of copy bandwidth at large sizes", status,
                    "%d of %d cases moving >= 100 MB at or above 80%%; median %s, worst %s (%s %s)" %
                    (len(fr) - len(below), len(fr), pct(statistics.median(x[0] for x in fr)), pct(worst[0]), worst[1]["op"],
                     worst[1]["shape"])))
    else:
        out.append(("memory-bound ops >= 80% of copy bandwidth at large sizes", "no data", why or "no large memory-bound case ran"))

    # linear vs torch: judged where torch takes >= LINEAR_MIN_US; the launch-bound shapes are reported apart
    lin, small = [], []
    for r in prim([r for r in ok if r["op"] == "linear"]):
        p = d.primary_peer(r)
        t = fnum(p.get("torch_us")) if p else None
        if t:
            (lin if t >= LINEAR_MIN_US else small).append((fnum(r["time_us"]) / t, r))
    if lin:
        over = [x for x in lin if x[0] > 1.10]
        worst = max(lin, key=lambda x: x[0])
        ev = ("%d of %d shapes (torch >= %g us) within 10%%; opdev / torch time: median %.2f, worst %.2f (%s %s)" %
              (len(lin) - len(over), len(lin), LINEAR_MIN_US, statistics.median(x[0] for x in lin), worst[0], worst[1]["model"],
               worst[1]["shape"]))
        if small:
            ev += "; %d launch-bound shapes (torch < %g us), not judged: median %.2f, worst %.2f" % (
                len(small), LINEAR_MIN_US, statistics.median(x[0] for x in small), max(x[0] for x in small))
        out.append(("linear within 10% of torch.matmul", "met" if not over else "not met", ev))
    elif small:
        out.append(("linear within 10% of torch.matmul", "no data",
                    "only launch-bound shapes (torch < %g us): opdev / torch median %.2f" % (LINEAR_MIN_US, statistics.median(x[0] for x in small))))
    else:
        out.append(("linear within 10% of torch.matmul", "no data", why or "no linear case with a PyTorch peer"))

    # prefill attention 8k
    pre = []
    for r in prim([r for r in ok if r["op"] == "paged_attention" and "prefill" in r["shape"] and "q=8192" in r["shape"]]):
        p = d.primary_peer(r)
        t = fnum(p.get("torch_us")) if p else None
        if t:
            pre.append((t / fnum(r["time_us"]), r))
    if pre:
        below = [x for x in pre if x[0] < 1.0]
        out.append(("prefill attention (head_dim 128, causal, 8k tokens) >= torch SDPA", "met" if not below else "not met",
                    "; ".join("%s: %.2fx torch's speed (%s us vs %s us)" % (r["model"], s, r["time_us"], d.primary_peer(r)["torch_us"])
                              for s, r in pre)))
    else:
        out.append(("prefill attention (head_dim 128, causal, 8k tokens) >= torch SDPA", "no data",
                    why or "no 8k prefill case with a PyTorch peer"))

    # decode attention long context
    dec = prim([r for r in ok if r["op"] == "paged_attention" and "decode" in r["shape"] and "kv=32768" in r["shape"]])
    if dec:
        fr = [(fnum(r["frac_bw"]) or 0, r) for r in dec]
        below = [x for x in fr if x[0] < 0.8]
        out.append(("decode attention at long context (32k) >= 80% of copy bandwidth", "met" if not below else "not met",
                    "; ".join("%s %s: %s" % (r["model"], r["shape"], pct(f)) for f, r in fr)))
    else:
        out.append(("decode attention at long context (32k) >= 80% of copy bandwidth", "no data", why or "no 32k decode case ran"))

    # grouped_matmul vs per-expert loop: the C++ peers (opdev_cuda_gemm_peers: E = 128, the model's shapes,
    # one cublasGemmEx per expert with no Python in the loop) when they ran; else the PyTorch loop of the
    # bench cases (E = 32; its per-expert Python dispatch flatters opdev).
    cpp = [(fnum(r.get("speedup_vs_loop")), r) for r in d.gemm_peers or []]
    cpp = [(s, r) for s, r in cpp if s is not None and s > 0]
    gm = []
    for r in [] if cpp else prim([r for r in ok if r["op"] == "grouped_matmul" and r["model"] == "qwen3-30b-a3b"]):
        p = d.peer_named(r, "per-expert F.linear loop")
        t = fnum(p.get("torch_us")) if p else None
        if t:
            gm.append((t / fnum(r["time_us"]), r))
    if cpp:
        slower = [x for x in cpp if x[0] <= 1.0]
        worst = min(cpp, key=lambda x: x[0])
        grouped = [fnum(r.get("speedup_vs_grouped")) for _, r in cpp]
        grouped = [g for g in grouped if g is not None and g > 0]
        ev = ("opdev_cuda_gemm_peers (E=128, top-8): %d of %d shapes faster than the per-expert cublasGemmEx loop; speedup median "
              "%.2fx, worst %.2fx (%s T=%s)" % (len(cpp) - len(slower), len(cpp), statistics.median(x[0] for x in cpp), worst[0],
                                                worst[1].get("shape", "?"), worst[1].get("T", "?")))
        if grouped:
            ev += "; against cublasGemmGroupedBatchedEx: median %.2fx, worst %.2fx" % (statistics.median(grouped), min(grouped))
        bad = [r for _, r in cpp if r.get("check_ok") == "0"]
        if bad:
            ev += "; %d shapes FAILED the output check" % len(bad)
        out.append(("grouped_matmul faster than a per-expert cuBLAS loop (Qwen3-30B-A3B shapes)",
                    "met" if not slower and not bad else "not met", ev))
    elif gm:
        slower = [x for x in gm if x[0] <= 1.0]
        worst = min(gm, key=lambda x: x[0])
        ev = ("PyTorch per-expert F.linear loop (bench cases, E=32; opdev_cuda_gemm_peers did not run): %d of %d shapes faster; "
              "speedup median %.2fx, worst %.2fx (%s)" % (len(gm) - len(slower), len(gm), statistics.median(x[0] for x in gm), worst[0],
                                                          worst[1]["shape"]))
        if d.gemm_peers:
            ev += "; see also the GEMM peers table"
        out.append(("grouped_matmul faster than a per-expert cuBLAS loop (Qwen3-30B-A3B shapes)", "met" if not slower else "not met", ev))
    else:
        out.append(("grouped_matmul faster than a per-expert cuBLAS loop (Qwen3-30B-A3B shapes)", "no data",
                    (why or "no grouped_matmul case with the loop peer") + ("; see the GEMM peers table" if d.gemm_peers else "")))

    # model decode vs floor
    floor = bench_model_rows(d)
    dense = [r for r in floor if "0.6b" in r.get("model", "") and r.get("dtype") == PRIMARY_DTYPE]
    if dense:
        r = dense[0]
        frac = fnum(r.get("tg / floor", "").rstrip("%"))
        frac = frac / 100 if frac is not None else None
        status = "no data" if frac is None else ("met" if frac >= 0.7 else "not met")
        out.append(("decode of the Qwen3-0.6B-shaped model at batch 1 >= 70% of the floor", status,
                    "tg %s tok/s, floor %s tok/s (%s)" % (r.get("tg tok/s", "?"), r.get("floor tok/s", "?"), pct(frac))))
    else:
        out.append(("decode of the Qwen3-0.6B-shaped model at batch 1 >= 70% of the floor", "no data",
                    "no bench-model result for the qwen3-0.6b model (models stage %s)" %
                    (d.stage("models")[1] if d.stage("models") else "not run")))
    return out


def bench_model_rows(d):
    """Rows of the bench-model markdown tables in model_*.txt, as dicts (column names normalised: "pp512
    tok/s" -> "pp tok/s")."""
    rows = []
    for path in d.model_texts:
        header = None
        for line in (read_text(path) or "").splitlines():
            if not line.startswith("|"):
                header = None if not line.strip() else header
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = []
                for c in cells:
                    c2 = c
                    if c.startswith("pp") and c.endswith("tok/s"):
                        c2 = "pp tok/s"
                    elif c.startswith("tg") and c.endswith("tok/s"):
                        c2 = "tg tok/s"
                    header.append(c2)
                continue
            if set("".join(cells)) <= set("-: "):
                continue
            if "floor tok/s" in header and len(cells) == len(header):
                rows.append(dict(zip(header, cells)))
    return rows


def attn_p_table(d):
    """paged_attention with P rounded (the default, bench.csv) against exact P (OPDEV_CUDA_ATTN_P=split,
    bench_attn_p_split.csv), per case that both ran."""
    split = {key_of(r): r for r in d.bench_split or [] if not r.get("error") and fnum(r.get("time_us"))}
    rows = []
    for r in d.bench_ok():
        s = split.get(key_of(r))
        if r["op"] != "paged_attention" or not s:
            continue
        t_r, t_s = fnum(r["time_us"]), fnum(s["time_us"])
        rows.append([r["model"], r["shape"], r["dtype"], num(t_r, 4), num(t_s, 4), "%.2fx" % (t_s / t_r)])
    if not rows:
        return ""
    return table(["model", "shape", "dtype", "P rounded us", "P split us", "split / rounded"], rows)


def op_table(d):
    rows = []
    for r in d.bench or []:
        p = d.primary_peer(r)
        t_opdev = fnum(r.get("time_us"))
        t_torch = fnum(p.get("torch_us")) if p else None
        gbps, gflops = fnum(r.get("gbps")), fnum(r.get("gflops"))
        bf16 = fnum(r.get("bf16_gflops"))
        if r.get("error"):
            rows.append([r["op"], r["model"], r["tokens"], r["shape"], r["dtype"], "FAILED: " + r["error"][:120], "", "", "", "", "", "", ""])
            continue
        speed = "-" if not (t_opdev and t_torch) else "%.2fx" % (t_torch / t_opdev)
        rows.append([
            r["op"], r["model"], r["tokens"], r["shape"] + (" (large)" if r.get("device_only") == "1" else ""), r["dtype"],
            num(t_opdev, 4), num(gbps), num(gflops / 1e3 if gflops else None), pct(fnum(r.get("frac_bw"))),
            pct(gflops / bf16 if gflops and bf16 else None), num(t_torch, 4), (p or {}).get("peer", "-") if p else "-", speed,
        ])
    return table(["op", "model", "T", "shape", "dtype", "opdev us", "GB/s", "TFLOP/s", "% copy bw", "% cuBLAS bf16", "torch us",
                  "torch peer", "speed vs torch"], rows)


def extra_peers_table(d):
    rows = []
    for k, plist in sorted(d.peers.items()):
        for p in plist:
            if p.get("primary") != "1" or not fnum(p.get("torch_us")):
                rows.append([k[0], k[1], k[3], k[4], p.get("peer", ""), num(fnum(p.get("torch_us")), 4), p.get("note", "")[:160]])
    if not rows:
        return ""
    return table(["op", "model", "shape", "dtype", "peer", "torch us", "note"], rows)


def condensed(text, limit=12000):
    """A model stage's output without the per-layer rows of `opdev compare` that have no op over tolerance
    (the summary, the first op over tolerance and every row with one are kept), cut to `limit` characters."""
    keep = []
    for line in text.strip().splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[0].startswith("layers.") and cells[1].isdigit() and cells[2] == "0":
            continue
        keep.append(line)
    out = "\n".join(keep)
    return out if len(out) <= limit else out[:limit] + "\n(... cut; the whole output is in logs.tar.gz)"


def render(d):
    out = ["# opdev GPU check", ""]
    if d.env:
        out += ["```", d.env.strip(), "```", ""]
    out += ["## Stages", ""]
    if d.stages:
        out.append(table(["stage", "status", "seconds", "note"], [list(s) for s in d.stages]))
    else:
        out.append("(no stage ran)")
    out += ["", "## Summary against the targets of the issue", "",
            "Benchmarks, not tests: each line says where the target stands in this run.", ""]
    out.append(table(["target", "status", "evidence"], target_rows(d)))
    out.append("")
    rl = roofline_lines(d)
    out += ["## Roofline measured in this run", ""]
    out += ["```"] + rl + ["```"] if rl else ["(no op benchmark output)"]
    out += ["", "## Conformance", ""]
    if d.conformance:
        lines = d.conformance.strip().splitlines()
        keep = [l for l in lines if not l.startswith("ok ")]
        out += ["```"] + keep[-400:] + ["```"]
        fails = (d.conformance_failures or "").strip().splitlines()
        if fails:
            out += ["", "Failing cases (%d; the first 60):" % len(fails), "", "```"] + [l[:300] for l in fails[:60]] + ["```"]
    else:
        out.append("(not run)")
    if d.conformance_split:
        last = [l for l in d.conformance_split.strip().splitlines() if l.startswith("conformance")]
        out += ["", "paged_attention with exact P (OPDEV_CUDA_ATTN_P=split): " + (last[-1] if last else "(no summary line)")]
    out += ["", "## Operators", ""]
    if d.bench:
        out += ["Time per call (median); GB/s and TFLOP/s from the op's cost formula; % copy bw = GB/s / the copy bandwidth; "
                "% cuBLAS bf16 = FLOP/s / the cuBLAS bfloat16 GEMM rate (both measured in this run); speed vs torch = torch time / "
                "opdev time (above 1: opdev is faster). (large): a device-only case.", ""]
        out.append(op_table(d))
        extra = extra_peers_table(d)
        if extra:
            out += ["", "Other PyTorch peers, and peers that could not run:", "", extra]
        ap = attn_p_table(d)
        if ap:
            out += ["", "paged_attention with P rounded to the dtype before P·V (the default) and with exact P "
                    "(OPDEV_CUDA_ATTN_P=split: 3 bf16 / 2 f16 terms); decode rows run the CUDA-core kernel, which "
                    "does not depend on the mode:", "", ap]
    else:
        out.append("(no op benchmark results)")
    out += ["", "## GEMM peers (opdev_cuda_gemm_peers)", ""]
    if d.gemm_peers_txt:
        out += ["```", d.gemm_peers_txt.strip()[-8000:], "```", ""]
    if d.gemm_peers:
        cols = list(d.gemm_peers[0].keys())
        out.append(table(cols, [[r.get(c, "") for c in cols] for r in d.gemm_peers]))
    elif not d.gemm_peers_txt:
        out.append("(not built or not run)")
    out += ["", "## Models", ""]
    if d.models:
        out.append(table(["model", "A", "B (reference)", "positions", "logits NMSE", "top-1 agreement", "max abs", "non-finite in A"],
                         [[m.get("model", ""), m.get("a", ""), m.get("b", ""), m.get("positions", ""), num(m.get("nmse")),
                           pct(m.get("top1")), num(m.get("max_abs")), m.get("nonfinite", "")] for m in d.models]))
        out.append("")
    for path in d.model_texts:
        out += ["### " + os.path.basename(path)[6:-4], "", "```", condensed(read_text(path) or ""), "```", ""]
    if not d.models and not d.model_texts:
        out.append("(no model results)")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) >= 3 and argv[0] == "report":
        d = Data(argv[1])
        text = render(d)
        tmp = argv[2] + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, argv[2])
        return 0
    if len(argv) >= 3 and argv[0] == "npy-compare":
        r = npy_compare(argv[1], argv[2])
        extra = {}
        for item in argv[3:]:
            k, _, v = item.partition("=")
            extra[k] = v
        extra.update(r)
        print(json.dumps(extra))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
