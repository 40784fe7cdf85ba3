#!/usr/bin/python3
"""Logits parity of `opdev logits` against the independent numpy reference (tests/model/reference).

For each synthetic checkpoint of the test matrix (make_synthetic.VARIANTS): write it to a temporary
directory, draw 7-13 seeded random token ids, compute the float64 reference logits, run

    <opdev> logits --model DIR --ids a,b,c --out OUT.npy --backend cpu --dtype float32|bfloat16

load OUT.npy ([n, V] float32, row i = logits after position i) and check
    float32:  max |out - ref| <= 1e-4     * max |ref|   (the issue's bound)
    bfloat16: max |out - ref| <= BF16_RTOL * max |ref|   (derived in reference/README.md; --derive-bf16)

MoE variants: a bf16 runtime may legitimately route a token to a different expert where two router
logits are within bf16 noise of each other, which moves that position and every later one by O(1). Ids
are therefore drawn token by token and a candidate token is redrawn while any of its routing decisions in
the float64 reference has a margin (k-th minus (k+1)-th router logit) below ROUTER_MARGIN, twice the
largest margin drift measured between float64 and the bf16 emulations. The same ids serve both dtypes.

Usage:
    logits_parity.py [OPDEV_BIN]        binary from argv, else $OPDEV_BIN
    logits_parity.py --self-check       the driver end to end with the reference's own float32 and bf16
                                        emulation as the candidate (plus a negative control)
    logits_parity.py --derive-bf16      measure the spread behind BF16_RTOL and ROUTER_MARGIN
Exit status: 0 all pass, 1 a check failed, 2 the candidate could not be run (missing binary or command),
77 with --skip-if-missing when the binary has no `logits` command (ctest SKIP_RETURN_CODE).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import make_synthetic as ms  # noqa: E402
import qwen3_ref as ref  # noqa: E402

F32_RTOL = 1e-4
BF16_RTOL = 0.1        # ~2x the largest spread of the bf16 emulations (reference/README.md, --derive-bf16)
ROUTER_MARGIN = 0.4    # 2x the largest router-margin drift of the bf16 emulations
MIN_IDS, MAX_IDS = 7, 13
TOLERANCES = {"float32": F32_RTOL, "bfloat16": BF16_RTOL}


class SetupError(Exception):
    pass


def draw_ids(model, seed, margin=ROUTER_MARGIN):
    """7-13 seeded random ids; for MoE models every routing decision keeps a margin >= `margin`.
    Adding a token never changes the routing of earlier positions (causality), so tokens are drawn one
    at a time and a rejected candidate is simply redrawn."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(MIN_IDS, MAX_IDS + 1))
    ids = []
    for _ in range(400 * n):
        if len(ids) == n:
            break
        t = int(rng.integers(0, model.cfg.vocab_size))
        if model.cfg.num_experts > 0:
            trace = {}
            model.forward(ids + [t], trace)
            if trace and min(g[-1] for g in trace["router_gap"]) < margin:
                continue
        ids.append(t)
    if len(ids) != n:
        raise RuntimeError(f"could not draw ids with router margin {margin}")
    return ids


def min_router_margin(model, ids):
    trace = {}
    model.forward(ids, trace)
    return min(float(g.min()) for g in trace["router_gap"]) if trace else float("inf")


class OpdevCandidate:
    def __init__(self, binary):
        self.binary = binary
        self.name = f"opdev logits ({binary})"

    def probe(self):
        """Raises SetupError (missing=True when the binary lacks the command) unless usable."""
        if not self.binary:
            raise SetupError("no opdev binary: pass its path as the first argument or set OPDEV_BIN "
                             "(or run --self-check to exercise the driver without it)")
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise SetupError(f"opdev binary {self.binary!r} does not exist or is not executable "
                             "(build it: ninja -C build opdev_cli)")
        try:
            r = subprocess.run([self.binary, "--help"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SetupError(f"cannot run {self.binary} --help: {e}") from None
        listed = any(line.split()[:1] == ["logits"] for line in r.stdout.splitlines())
        if not listed:
            e = SetupError(f"{self.binary} has no `logits` command (its --help lists no 'logits' "
                           "subcommand); the model runtime's `opdev logits` is needed for this test")
            e.missing = True
            raise e

    def command(self, model_dir, ids, out, dtype):
        return [self.binary, "logits", "--model", model_dir, "--ids", ",".join(map(str, ids)), "--out", out,
                "--backend", "cpu", "--dtype", dtype]


class ReferenceCandidate:
    """The reference's own float32 mode and bf16 emulation, through its CLI: checks the driver."""
    name = "qwen3_ref.py (self-check)"

    def probe(self):
        pass

    def command(self, model_dir, ids, out, dtype):
        return [sys.executable, os.path.join(HERE, "reference", "qwen3_ref.py"), "--model", model_dir,
                "--ids", ",".join(map(str, ids)), "--out", out, "--dtype", dtype]


def run_candidate(cand, model_dir, ids, dtype, tmp):
    out = os.path.join(tmp, f"out_{dtype}.npy")
    if os.path.exists(out):
        os.remove(out)
    cmd = cand.command(model_dir, ids, out, dtype)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SetupError(f"cannot run {' '.join(cmd)}: {e}") from None
    if r.returncode != 0 or not os.path.exists(out):
        tail = (r.stderr or r.stdout).strip()[-2000:]
        raise SetupError(f"{' '.join(cmd)}\n  exited with {r.returncode} and "
                         f"{'wrote' if os.path.exists(out) else 'did not write'} {out}:\n  {tail}")
    try:
        return np.load(out)
    except (ValueError, OSError) as e:
        raise SetupError(f"{out}: not a readable .npy file: {e}") from None


def compare(refl, out, rtol):
    """(passed, max |delta|, max |ref|, ratio, problem or '')"""
    mref = float(np.abs(refl).max())
    if out.shape != refl.shape:
        return False, float("nan"), mref, float("nan"), f"shape {out.shape}, expected {refl.shape}"
    if out.dtype != np.float32:
        return False, float("nan"), mref, float("nan"), f"dtype {out.dtype}, expected float32"
    if not np.all(np.isfinite(out)):
        return False, float("nan"), mref, float("nan"), "non-finite values"
    d = float(np.abs(out.astype(np.float64) - refl).max())
    return d <= rtol * mref, d, mref, d / mref, ""


def variant_seed(name):
    return zlib.crc32(("ids/" + name).encode("utf-8"))


def run_matrix(cand, variants, dtypes, keep=None):
    rows = []
    setup_errors = []
    with tempfile.TemporaryDirectory(prefix="opdev-parity-") as tmp:
        base = keep or tmp
        for v in variants:
            d = os.path.join(base, v)
            ms.make(d, v)
            model = ref.Model(d, "float64")
            ids = draw_ids(model, variant_seed(v))
            refl = model.forward(ids)
            margin = min_router_margin(model, ids)
            for dt in dtypes:
                try:
                    out = run_candidate(cand, d, ids, dt, tmp)
                except SetupError as e:
                    setup_errors.append(str(e))
                    rows.append((v, dt, len(ids), margin, False, float("nan"), float(np.abs(refl).max()),
                                 float("nan"), TOLERANCES[dt], "could not run"))
                    continue
                ok, dmax, mref, ratio, problem = compare(refl, out, TOLERANCES[dt])
                rows.append((v, dt, len(ids), margin, ok, dmax, mref, ratio, TOLERANCES[dt], problem))
    return rows, setup_errors


def print_table(rows, title):
    print(title)
    print(f"{'variant':28s} {'dtype':9s} {'n':>3s} {'router margin':>13s} {'max|d|':>10s} {'max|ref|':>9s} "
          f"{'ratio':>10s} {'bound':>7s}  result")
    for v, dt, n, margin, ok, dmax, mref, ratio, tol, problem in rows:
        m = "-" if margin == float("inf") else f"{margin:.3f}"
        print(f"{v:28s} {dt:9s} {n:3d} {m:>13s} {dmax:10.3e} {mref:9.4f} {ratio:10.3e} {tol:7.0e}  "
              f"{'pass' if ok else 'FAIL'}{(' (' + problem + ')') if problem else ''}")


def negative_control():
    """The comparison must reject an output off by 2 x the bound in one element, a wrong shape and a
    non-float32 array."""
    rng = np.random.default_rng(0)
    refl = rng.standard_normal((7, 50))
    bad = refl.astype(np.float32)
    bad[3, 17] += 2 * F32_RTOL * np.abs(refl).max()
    checks = [not compare(refl, bad, F32_RTOL)[0], compare(refl, refl.astype(np.float32), F32_RTOL)[0],
              not compare(refl, refl[:6].astype(np.float32), F32_RTOL)[0], not compare(refl, refl, F32_RTOL)[0]]
    return all(checks)


def derive_bf16(variants, draws):
    """Spread of the bf16 emulations (opdev rounding points, and HF's eager bf16 path) against float64."""
    print(f"bf16 spread over {draws} id draws per variant; ratio = max|d| / max|ref|")
    print(f"{'variant':28s} {'emulation':12s} {'max ratio':>10s} {'p50':>10s} {'margin drift':>13s}")
    worst, worst_drift = 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            d = os.path.join(tmp, v)
            ms.make(d, v)
            m64 = ref.Model(d, "float64")
            for mode in ("bfloat16", "bfloat16_hf"):
                mb = ref.Model(d, mode)
                ratios, drift = [], 0.0
                for s in range(draws):
                    ids = draw_ids(m64, variant_seed(v) + 1000 + s)
                    t64, tb = {}, {}
                    a, b = m64.forward(ids, t64), mb.forward(ids, tb)
                    ratios.append(np.abs(a - b).max() / np.abs(a).max())
                    for g64, gb, s64, sb in zip(t64.get("router_gap", []), tb.get("router_gap", []),
                                                t64.get("selected", []), tb.get("selected", [])):
                        if not np.array_equal(np.sort(s64, axis=1), np.sort(sb, axis=1)):
                            drift = float("inf")  # a flipped decision despite the margin
                        else:
                            drift = max(drift, float(np.abs(g64 - gb).max()))
                worst, worst_drift = max(worst, max(ratios)), max(worst_drift, drift)
                dr = f"{drift:.3f}" if m64.cfg.num_experts else "-"
                print(f"{v:28s} {mode:12s} {max(ratios):10.3e} {np.median(ratios):10.3e} {dr:>13s}")
    print(f"largest ratio {worst:.3e} -> BF16_RTOL = {BF16_RTOL} ({BF16_RTOL / worst:.1f}x); "
          f"largest margin drift {worst_drift:.3f} -> ROUTER_MARGIN = {ROUTER_MARGIN}")
    ok = worst * 1.5 <= BF16_RTOL and worst_drift * 1.5 <= ROUTER_MARGIN
    print("constants " + ("keep a >= 1.5x safety factor" if ok else "are TOO TIGHT for this spread"))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="Logits parity of opdev logits against the numpy reference.")
    ap.add_argument("opdev", nargs="?", default=os.environ.get("OPDEV_BIN"), help="opdev binary ($OPDEV_BIN)")
    ap.add_argument("--self-check", action="store_true", help="use the reference's float32/bf16 modes")
    ap.add_argument("--derive-bf16", action="store_true", help="measure the bf16 spread behind BF16_RTOL")
    ap.add_argument("--draws", type=int, default=40, help="id draws per variant for --derive-bf16")
    ap.add_argument("--variants", default=",".join(ms.VARIANTS), help="comma-separated subset")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--keep", metavar="DIR", help="write the checkpoints here and keep them")
    ap.add_argument("--skip-if-missing", action="store_true",
                    help="exit 77 (skipped) when the binary has no `logits` command")
    a = ap.parse_args(argv)
    variants = [v for v in a.variants.split(",") if v]
    for v in variants:
        if v not in ms.VARIANTS:
            ap.error(f"unknown variant {v!r} (known: {', '.join(ms.VARIANTS)})")
    dtypes = [t for t in a.dtypes.split(",") if t]
    for t in dtypes:
        if t not in TOLERANCES:
            ap.error(f"unknown dtype {t!r} (float32, bfloat16)")
    if a.derive_bf16:
        return derive_bf16(variants, a.draws)

    cand = ReferenceCandidate() if a.self_check else OpdevCandidate(a.opdev)
    try:
        cand.probe()
    except SetupError as e:
        print(f"logits_parity: {e}", file=sys.stderr)
        return 77 if (a.skip_if_missing and getattr(e, "missing", False)) else 2
    t0 = time.time()
    rows, setup_errors = run_matrix(cand, variants, dtypes, a.keep)
    print_table(rows, f"candidate: {cand.name}")
    failed = [r for r in rows if not r[4]]
    ok = not failed
    if a.self_check:
        nc = negative_control()
        print(f"negative control (an element off by 2x the bound, a wrong shape, a float64 array): "
              f"{'rejected' if nc else 'NOT REJECTED'}")
        ok = ok and nc
    for e in setup_errors:
        print(f"logits_parity: {e}", file=sys.stderr)
    print(f"{len(rows) - len(failed)}/{len(rows)} checks passed in {time.time() - t0:.1f} s")
    if setup_errors:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
