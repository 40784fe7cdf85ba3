#!/usr/bin/env python3
"""Tests of bench/vs_llamacpp_table.py (the table of scripts/bench-vs-llamacpp.sh) on synthetic results:
the best round per cell, the ratios and floor fractions (expected values worked out by hand here), the
rows for engines that did not run, and results files without the round column.

Run: python3 tests/test_bench_scripts.py [-v]
"""

import io
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))

import vs_llamacpp_table  # noqa: E402

HEADER = "engine,variant,weights,threads,pp,tg,read_gbps,floor_tps,llama_commit,round\n"


def table(text):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "results.csv")
        with open(path, "w") as f:
            f.write(text)
        out = io.StringIO()
        with redirect_stdout(out):
            vs_llamacpp_table.main(path)
        return out.getvalue()


def rows(out):
    """model, threads, opdev, llama -> the row's cells."""
    res = {}
    for line in out.splitlines():
        if not line.startswith("| ") or line.startswith("| model"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        res[tuple(cells[:4])] = cells
    return res


class VsLlamacppTable(unittest.TestCase):
    def test_best_round_per_cell_and_ratios(self):
        out = table(HEADER +
                    "opdev,dense,bf16,2,600,30,40,33.5,,1\n"
                    "opdev,dense,bf16,2,620,28,42,35.2,,2\n"
                    "llama.cpp,dense,BF16,2,180,20,,,commit abc (build 1),1\n"
                    "llama.cpp,dense,BF16,2,170,25,,,commit abc (build 1),2\n")
        r = rows(out)[("dense", "2", "bf16", "BF16")]
        # best pp 620 / 180, best tg 30 / 25; floor of the best bandwidth: 35.2 tok/s
        self.assertEqual(r[4:10], ["620.0", "180.0", "3.44x", "30.0", "25.0", "1.20x"])
        self.assertEqual(r[10], "85%")   # 30 / 35.2
        self.assertEqual(r[11], "71%")   # 25 / 35.2 (BF16: same bytes per weight)
        self.assertEqual(r[12], "42")
        self.assertIn("best of 2 round(s)", out)
        self.assertIn("commit abc (build 1)", out)

    def test_q8_floor_uses_its_bytes_and_missing_engines(self):
        out = table(HEADER +
                    "opdev,dense,bf16,1,300,20,40,34.0,,1\n"
                    "opdev,dense,int8,1,400,30,40,50.0,,1\n"
                    "llama.cpp,dense,Q8_0,1,100,34,,,commit abc (build 1),1\n")
        r = rows(out)
        q8 = r[("dense", "1", "int8", "Q8_0")]
        self.assertEqual(q8[9], "0.88x")        # 30 / 34
        self.assertEqual(q8[11], "53%")         # 34 / (34 * 16 / 8.5)
        self.assertIn(("dense", "1", "bf16", "(not run)"), r)  # BF16 always listed
        self.assertNotIn(("dense", "1", "bf16", "F16"), r)    # F16 only when it ran
        self.assertEqual(r[("dense", "1", "bf16", "(not run)")][5], "-")

    def test_results_without_rounds(self):
        out = table("engine,variant,weights,threads,pp,tg,read_gbps,floor_tps,llama_commit\n"
                    "opdev,moe,bf16,2,1000,50,40,60.0,\n")
        self.assertIn(("moe", "2", "bf16", "(not run)"), rows(out))
        self.assertIn("best of 1 round(s)", out)


if __name__ == "__main__":
    unittest.main()
