#!/usr/bin/env python3
"""Tests of the GPU check's Python parts, on a machine without a GPU or PyTorch:

- bench/gpu_report.py: the report from synthetic result files (the join of opdev's bench CSV with the
  PyTorch peers, the status of each target, failures, missing inputs), and the .npy logits comparison with
  and without numpy;
- bench/torch_peers.py: the case list parser, and every peer built and timed once against a stand-in
  `torch` (unittest.mock) so that each code path runs; the exit status and header-only CSV when PyTorch is
  absent. With OPDEV_CLI set (ctest does), the case list is the real one (`opdev bench --list --csv`,
  device-only cases included), so a new bench case without a peer path that runs shows up here.

Run: python3 tests/test_gpu_scripts.py [-v]
"""

import csv
import importlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(os.path.dirname(HERE), "bench")
sys.path.insert(0, BENCH)

import gpu_report  # noqa: E402
import torch_peers  # noqa: E402

BENCH_HEADER = ("op,model,tokens,shape,dtype,time_us,gbps,gflops,frac_bw,frac_peak,roofline_frac,read_gbps,peak_gflops,"
                "bw_kind,bf16_gflops,device_only,error")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_npy(path, rows):
    """A C-order <f4 .npy file (version 1.0) of a list of rows."""
    n, v = len(rows), len(rows[0])
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, v)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        for r in rows:
            f.write(struct.pack("<%df" % v, *r))


class Report(unittest.TestCase):
    def make_work(self, tmp):
        write(os.path.join(tmp, "stages.tsv"), "build\tok\t120\t\nconformance\tfailed\t80\tconformance: 10 passed, 2 failed, 1 skipped\n"
              "bench\tok\t60\t8 rows, 1 failed cases\ntorch\tok\t40\t7 peer rows\nmodels\tok\t90\t\n")
        write(os.path.join(tmp, "env.txt"), "gpu: NVIDIA H100 80GB HBM3\n")
        write(os.path.join(tmp, "conformance.txt"), "op dtype passed\nconformance: 10 passed, 2 failed, 1 skipped\n")
        write(os.path.join(tmp, "conformance_failures.txt"), "FAIL   rms_norm  bfloat16  x  -- 'out': 3 of 10 elements out of tolerance\n")
        rows = [
            # memory-bound large cases (>= 100 MB moved): one at 85%, one at 60% of the copy bandwidth; a
            # 64 MB one at 50% and moe_gating_topk (not judged) at 20% do not count
            'rms_norm,qwen3-30b-a3b,16384,"x[16384,2048]",bfloat16,60.0,2550,0,0.85,0,0.85,3000,790000,copy,790000,1,',
            'add,qwen3-30b-a3b,16384,"a, b, out[16384,2048]",bfloat16,70.0,1800,0,0.60,0,0.60,3000,790000,copy,790000,1,',
            'rms_norm,qwen3-0.6b,16384,"x[16384,1024]",bfloat16,43.0,1500,0,0.50,0,0.50,3000,790000,copy,790000,1,',
            'moe_gating_topk,deepseek-v3,4096,"logits[4096,256] k=8",bfloat16,4.0,600,0,0.20,0,0.20,3000,790000,copy,790000,1,',
            # linear: one within 10% of torch, one 30% slower
            'linear,qwen3-0.6b,512,"qkv_proj [512,1024]x[4096,1024]^T",bfloat16,10.5,900,400000,0.3,0.5,0.5,3000,790000,copy,790000,0,',
            'linear,qwen3-0.6b,1,"o_proj [1,2048]x[1024,2048]^T",bfloat16,13.0,320,320,0.1,0,0.1,3000,790000,copy,790000,0,',
            # a launch-bound linear (torch < 10 us): reported, not judged
            'linear,qwen3-0.6b,1,"router [1,2048]x[128,2048]^T",bfloat16,8.0,70,70,0.02,0,0.02,3000,790000,copy,790000,0,',
            # attention: prefill 8k faster than torch, decode 32k at 82% of the copy bandwidth
            'paged_attention,qwen3-0.6b,8192,"prefill B=1 q=8192 kv=8192",bfloat16,900,10,500000,0,0.6,0.6,3000,790000,copy,790000,1,',
            'paged_attention,qwen3-0.6b,1,"decode B=1 q=1 kv=32768",bfloat16,55,2460,600,0.82,0,0.82,3000,790000,copy,790000,1,',
            # grouped_matmul faster than the loop
            'grouped_matmul,qwen3-30b-a3b,512,"moe gate_up R=4096 w[32,1536,2048] E=32 top-8",bfloat16,60,400,300000,0.1,0.4,0.4,3000,790000,copy,790000,0,',
            # a failed case
            'sample,qwen3-0.6b,1,"logits[1,151936] greedy",bfloat16,,,,,,,3000,,copy,790000,0,"OPDEV_STATUS_UNSUPPORTED: cuda: sample: not implemented"',
        ]
        write(os.path.join(tmp, "bench.csv"), BENCH_HEADER + "\n" + "\n".join(rows) + "\n")
        write(os.path.join(tmp, "bench.txt"), "backend cuda (NVIDIA H100); measured before / after the cases: copy 2900 / 3000 GB/s\n"
              "roofline: copy 3000 GB/s ...\nop model shape\n")
        torch_rows = [
            ["linear", "qwen3-0.6b", "512", "qkv_proj [512,1024]x[4096,1024]^T", "bfloat16", "10.0", "F.linear", "1", ""],
            ["linear", "qwen3-0.6b", "1", "o_proj [1,2048]x[1024,2048]^T", "bfloat16", "10.0", "F.linear", "1", ""],
            ["linear", "qwen3-0.6b", "1", "router [1,2048]x[128,2048]^T", "bfloat16", "4.0", "F.linear", "1", ""],
            ["paged_attention", "qwen3-0.6b", "8192", "prefill B=1 q=8192 kv=8192", "bfloat16", "1000", "F.sdpa", "1", ""],
            ["grouped_matmul", "qwen3-30b-a3b", "512", "moe gate_up R=4096 w[32,1536,2048] E=32 top-8", "bfloat16", "150",
             "per-expert F.linear loop", "1", ""],
            ["grouped_matmul", "qwen3-30b-a3b", "512", "moe gate_up R=4096 w[32,1536,2048] E=32 top-8", "bfloat16", "",
             "torch._grouped_mm", "0", "RuntimeError: not supported"],
            ["rms_norm", "qwen3-30b-a3b", "16384", "x[16384,2048]", "bfloat16", "90", "composed (HF Qwen3RMSNorm)", "1", ""],
        ]
        with open(os.path.join(tmp, "torch.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(torch_peers.COLUMNS)
            w.writerows(torch_rows)
        write(os.path.join(tmp, "bench_attn_p_split.csv"), BENCH_HEADER + "\n" +
              'paged_attention,qwen3-0.6b,8192,"prefill B=1 q=8192 kv=8192",bfloat16,1350,10,330000,0,0.4,0.4,3000,790000,copy,790000,1,\n')
        write(os.path.join(tmp, "conformance_attn_p_split.txt"), "op dtype passed\nconformance: 30 passed, 0 failed, 0 skipped\n")
        write(os.path.join(tmp, "gemm_peers.csv"), "shape,opdev_us,cublas_loop_us\nR=4096,60,150\n")
        write(os.path.join(tmp, "models.jsonl"), json.dumps({"model": "qwen3-0.6b", "a": "cuda:bfloat16", "b": "cpu:float32",
                                                            "positions": 48, "nmse": 4e-4, "top1": 0.94, "max_abs": 0.3,
                                                            "nonfinite": 0}) + "\n")
        write(os.path.join(tmp, "model_qwen3-0.6b.txt"),
              "model qwen3-0.6b\n$ opdev bench-model ...\n"
              "| model | dtype | backend | pp512 tok/s | tg64 tok/s | weights read per token | copy GB/s | floor tok/s | tg / floor |\n"
              "|---|---|---|--:|--:|--:|--:|--:|--:|\n"
              "| /tmp/w/models/qwen3-0.6b | bfloat16 | cuda | 20000.0 | 1500.0 | 1192 MB | 3000 | 2516.8 | 60% |\n")

    def test_report_targets_and_tables(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.make_work(tmp)
            out = os.path.join(tmp, "report.md")
            self.assertEqual(gpu_report.main(["report", tmp, out]), 0)
            with open(out) as f:
                text = f.read()
            targets = {r[0]: r[1] for r in gpu_report.target_rows(gpu_report.Data(tmp))}
        self.assertEqual(targets["conformance: cuda against ref, same cases as cpu"], "not met")
        self.assertEqual(targets["memory-bound ops >= 80% of copy bandwidth at large sizes"], "not met")
        self.assertEqual(targets["linear within 10% of torch.matmul"], "not met")
        self.assertEqual(targets["prefill attention (head_dim 128, causal, 8k tokens) >= torch SDPA"], "met")
        self.assertEqual(targets["decode attention at long context (32k) >= 80% of copy bandwidth"], "met")
        self.assertEqual(targets["grouped_matmul faster than a per-expert cuBLAS loop (Qwen3-30B-A3B shapes)"], "met")
        self.assertEqual(targets["decode of the Qwen3-0.6B-shaped model at batch 1 >= 70% of the floor"], "not met")
        # The op table joins the peers: rms_norm 90 us in torch vs 60 us in opdev is 1.50x.
        self.assertIn("1.50x", text)
        self.assertIn("1 of 2 shapes (torch >= 10 us) within 10%", text)
        self.assertIn("1 launch-bound shapes (torch < 10 us), not judged: median 2.00", text)
        # Without opdev_cuda_gemm_peers' columns the grouped target falls back to the PyTorch loop, and says so.
        self.assertIn("PyTorch per-expert F.linear loop (bench cases, E=32", text)
        self.assertIn("FAILED: OPDEV_STATUS_UNSUPPORTED", text)
        self.assertIn("torch._grouped_mm", text)  # the extra peer that could not run is listed
        self.assertIn("1 of 2 cases moving >= 100 MB at or above 80%", text)
        self.assertIn("FAIL   rms_norm", text)
        self.assertIn("cublas_loop_us", text)
        self.assertIn("| qwen3-0.6b | cuda:bfloat16 | cpu:float32 | 48 | 0.0004 | 94% |", text)
        self.assertIn("roofline: copy 3000 GB/s", text)
        # The attention P modes side by side: 1350 us split against 900 us rounded; the split suite's summary.
        self.assertIn("| qwen3-0.6b | prefill B=1 q=8192 kv=8192 | bfloat16 | 900 | 1350 | 1.50x |", text)
        self.assertIn("exact P (OPDEV_CUDA_ATTN_P=split): conformance: 30 passed, 0 failed", text)

    def test_grouped_target_from_the_gemm_peers(self):
        """opdev_cuda_gemm_peers' rows (E = 128, a C++ cublasGemmEx loop) decide the grouped_matmul target when
        they are there: one shape slower than the loop is "not met", whatever the PyTorch loop says."""
        header = ("device,deterministic,shape,E,topk,N,K,T,R,active_experts,opdev_us,opdev_tflops,opdev_gbps,grouped_us,"
                  "grouped_tflops,loop_us,loop_tflops,speedup_vs_grouped,speedup_vs_loop,check_err,check_ok\n")
        rows = ['"H100",0,gate_up,128,8,1536,2048,1,8,8,20,0.1,500,25,0.1,60,0.1,1.25,3.0,1e-3,1\n',
                '"H100",0,gate_up,128,8,1536,2048,4096,32768,128,900,200,700,1000,180,850,210,1.11,0.94,1e-3,1\n']
        name = "grouped_matmul faster than a per-expert cuBLAS loop (Qwen3-30B-A3B shapes)"
        with tempfile.TemporaryDirectory() as tmp:
            self.make_work(tmp)
            write(os.path.join(tmp, "gemm_peers.csv"), header + "".join(rows))
            got = {r[0]: r for r in gpu_report.target_rows(gpu_report.Data(tmp))}[name]
            self.assertEqual(got[1], "not met")
            self.assertIn("1 of 2 shapes faster than the per-expert cublasGemmEx loop", got[2])
            self.assertIn("worst 0.94x (gate_up T=4096)", got[2])
            self.assertIn("cublasGemmGroupedBatchedEx: median 1.18x", got[2])
            write(os.path.join(tmp, "gemm_peers.csv"), header + rows[0])
            self.assertEqual({r[0]: r for r in gpu_report.target_rows(gpu_report.Data(tmp))}[name][1], "met")

    def test_report_with_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "report.md")
            self.assertEqual(gpu_report.main(["report", tmp, out]), 0)
            with open(out) as f:
                text = f.read()
        self.assertIn("(no stage ran)", text)
        self.assertIn("| conformance: cuda against ref, same cases as cpu | not run |", text)
        self.assertIn("no data", text)

    def test_report_skipped_conformance(self):
        with tempfile.TemporaryDirectory() as tmp:
            write(os.path.join(tmp, "stages.tsv"), "conformance\tskipped\t0\tconformance cuda: skipped: no GPU (cudaErrorNoDevice)\n")
            write(os.path.join(tmp, "conformance.txt"), "conformance cuda: skipped: no GPU (cudaErrorNoDevice: no CUDA-capable device)\n")
            rows = gpu_report.target_rows(gpu_report.Data(tmp))
        self.assertEqual(rows[0][1], "skipped")
        self.assertIn("no GPU", rows[0][2])

    def test_npy_compare(self):
        with tempfile.TemporaryDirectory() as tmp:
            a, b = os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy")
            write_npy(b, [[1.0, 2.0, 3.0], [3.0, 1.0, 0.5]])
            write_npy(a, [[1.0, 2.0, 3.5], [1.0, 3.0, 0.5]])
            want_nmse = (0.25 + 4.0 + 4.0) / (1 + 4 + 9 + 9 + 1 + 0.25)
            results = [gpu_report.npy_compare(a, b)]
            with mock.patch.dict(sys.modules, {"numpy": None}):  # the pure-Python path
                results.append(gpu_report.npy_compare(a, b))
        for r in results:
            self.assertAlmostEqual(r["nmse"], want_nmse, places=6)
            self.assertEqual(r["top1"], 0.5)
            self.assertAlmostEqual(r["max_abs"], 2.0, places=6)
            self.assertEqual(r["positions"], 2)
            self.assertEqual(r["nonfinite"], 0)


COMPARE_FLIP = """row                    ops  over  worst NMSE at                                         max abs    NaN/inf A  NaN/inf B
layers.0                48     4  inf        mlp.moe_gating_topk:topk_ids (ids differ)  2.30e+01   0          0
lm_head                  3     0  6.86e-04   out                                        3.50e-01   0          0

first op call over tolerance (graph order): call 11 (prefill): layers.0.mlp.moe_gating_topk (moe_gating_topk)
  output 'topk_weights' [9, 8] float32 vs float32: NMSE 7.91e-05, max abs 6.80e-03, max rel 4.26e-02, NaN/inf A 0/0 B 0/0
  output 'topk_ids' [9, 8] int32 vs int32: 2 of 72 elements differ (integer, compared exactly), NaN/inf A 0/0 B 0/0  <- over
  the routing differs: if the router logits (the call before) are within tolerance, this is a near-tie that

  74 of 588 op calls are over tolerance (errors propagate: later ones may only inherit this one)
"""


class GpuCheckShell(unittest.TestCase):
    def routing_flip_only(self, text):
        """Exit status of gpu-check.sh's routing_flip_only on an `opdev compare` output."""
        script = os.path.join(os.path.dirname(HERE), "scripts", "gpu-check.sh")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "compare.txt")
            write(path, text)
            cmd = "source <(sed -n '/^routing_flip_only()/,/^}/p' \"$1\") && routing_flip_only \"$2\""
            return subprocess.run(["bash", "-c", cmd, "_", script, path]).returncode

    def test_routing_flip_only(self):
        # A near-tie flip whose logits stay within tolerance is not a failure...
        self.assertEqual(self.routing_flip_only(COMPARE_FLIP), 0)
        # ...but logits over tolerance, gating weights over tolerance, or another first op are.
        self.assertNotEqual(self.routing_flip_only(COMPARE_FLIP.replace("lm_head                  3     0", "lm_head                  3     1")), 0)
        self.assertNotEqual(self.routing_flip_only(COMPARE_FLIP.replace("NaN/inf A 0/0 B 0/0\n  output 'topk_ids'",
                                                                        "NaN/inf A 0/0 B 0/0  <- over\n  output 'topk_ids'")), 0)
        self.assertNotEqual(self.routing_flip_only(COMPARE_FLIP.replace("(moe_gating_topk)", "(linear)")), 0)
        self.assertNotEqual(self.routing_flip_only(""), 0)


class FakeTensor(mock.MagicMock):
    """A stand-in for torch tensors and modules: every attribute, call and operator gives another one
    (comparisons too, which MagicMock leaves unimplemented), and unpacking gives two (values, indices =
    torch.topk(...); x1, x2 = x.chunk(2))."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("__lt__", "__gt__", "__le__", "__ge__"):
            setattr(self, name, lambda self_, other: FakeTensor())
        self.__iter__ = lambda self_: iter([FakeTensor(), FakeTensor()])


def fake_torch():
    t = FakeTensor(name="torch")
    t.__version__ = "0.0-fake"
    t.cuda.is_available.return_value = True
    t.cuda.get_device_name.return_value = "Fake GPU"
    return t


def case_list(tmp):
    """The real case list when OPDEV_CLI is set, else a small one."""
    path = os.path.join(tmp, "cases.csv")
    cli = os.environ.get("OPDEV_CLI")
    if cli:
        subprocess.run([cli, "bench", "--list", "--backend", "cuda", "--csv", path], check=True, stdout=subprocess.DEVNULL)
        return path
    write(path, "op,model,tokens,shape,dtype,device_only,tensors,params\n"
          'linear,m,1,"p",bfloat16,0,"x:in:act:1x8:0:;weight:in:act:4x8:0:;bias:absent:act::0:;out:out:act:1x4:0:",""\n'
          'rms_norm,m,1,"q",bfloat16,0,"q:inout:act:1x2x4:8:;out:out:act:1x2x4:0:q;weight:in:act:4:0:","eps=1e-6"\n'
          'paged_attention,m,1,"decode",float32,1,"out:out:act:1x2x4:0:","B=1;q=1;kv=64;Hq=2;Hk=1;D=4;block=16;causal=1"\n'
          'sample,m,1,"s",float16,0,"logits:in:act:1x10:0:","temperature=0.7;top_k=0;top_p=0.9"\n')
    return path


class TorchPeers(unittest.TestCase):
    def test_parse(self):
        with tempfile.TemporaryDirectory() as tmp:
            cases = torch_peers.read_cases(case_list(tmp))
        self.assertGreater(len(cases), 3)
        by_op = {}
        for c in cases:
            by_op.setdefault(c.op, c)
        q = [c for c in cases if c.op == "rms_norm" and "q" in c.tensors][0]
        self.assertEqual(q.tensors["q"].role, "inout")
        self.assertGreater(q.tensors["q"].pad, 0)
        self.assertEqual(q.tensors["out"].alias, "q")
        att = by_op["paged_attention"]
        self.assertEqual(att.param("D", kind=int), att.tensors["out"].shape[-1])
        if os.environ.get("OPDEV_CLI"):
            # The targets need these device-only cases.
            shapes = {(c.op, c.shape) for c in cases}
            self.assertIn(("paged_attention", "prefill B=1 q=8192 kv=8192"), shapes)
            self.assertIn(("paged_attention", "decode B=1 q=1 kv=32768"), shapes)
            self.assertTrue(any(c.device_only and c.op == "rms_norm" for c in cases))
            self.assertTrue(all("counts" in c.params for c in cases if c.op == "grouped_matmul"))

    def test_every_peer_runs_against_a_stand_in(self):
        with tempfile.TemporaryDirectory() as tmp:
            cases_path = case_list(tmp)
            out = os.path.join(tmp, "torch.csv")
            with mock.patch.dict(sys.modules, {"torch": fake_torch()}), mock.patch("sys.stderr", io.StringIO()):
                # Every dtype of the small list; bfloat16 of the real one (the same code paths, 3x faster).
                dtypes = "bfloat16" if os.environ.get("OPDEV_CLI") else "float32,bfloat16,float16"
                rc = torch_peers.main(["--cases", cases_path, "--out", out, "--dtypes", dtypes, "--min-time", "0"])
            self.assertEqual(rc, 0)
            with open(out) as f:
                rows = list(csv.DictReader(f))
            cases = [c for c in torch_peers.read_cases(cases_path) if c.dtype in dtypes.split(",")]
        self.assertEqual(len({tuple(r[k] for k in ("op", "model", "tokens", "shape", "dtype")) for r in rows}), len(cases))
        errors = [r for r in rows if r["note"] and r["peer"] != "none"]
        self.assertEqual(errors, [], "peers that raised against the stand-in: %s" % errors[:5])
        no_peer = {r["op"] for r in rows if r["peer"] == "none"}
        self.assertLessEqual(no_peer, {"grouped_matmul_w8a8"})
        for r in rows:
            if r["peer"] != "none":
                self.assertGreater(float(r["torch_us"]), 0)
        # The extra peers that run under a setting: linear with float32 split-K reductions, prefill attention
        # under each SDPA backend (prefill cases are in the real list only).
        peers = {(r["op"], r["peer"], r["primary"]) for r in rows}
        self.assertIn(("linear", "F.linear, float32 split-K reductions (opdev's contract)", "0"), peers)
        if os.environ.get("OPDEV_CLI"):
            for backend in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION"):
                self.assertTrue(any(op == "paged_attention" and p.endswith("backend " + backend) and pr == "0" for op, p, pr in peers),
                                backend)

    def test_without_torch(self):
        with tempfile.TemporaryDirectory() as tmp:
            cases_path = case_list(tmp)
            out = os.path.join(tmp, "torch.csv")
            err = io.StringIO()
            with mock.patch.dict(sys.modules, {"torch": None}), mock.patch("sys.stderr", err):
                rc = torch_peers.main(["--cases", cases_path, "--out", out])
            self.assertEqual(rc, 3)
            with open(out) as f:
                self.assertEqual(f.read().strip(), ",".join(torch_peers.COLUMNS))
        self.assertIn("PyTorch is not importable", err.getvalue())


if __name__ == "__main__":
    importlib.invalidate_caches()
    unittest.main()
