#!/usr/bin/env python3
"""PyTorch peers of the opdev op benchmarks, on the same card, for the same shapes.

Reads the case list that `opdev bench --list --csv LIST.csv` writes (one row per case and dtype: op, model,
tokens, shape, dtype, device_only, tensors, params), builds the PyTorch equivalent of each case with
tensors of the same shapes and dtypes on the GPU, times it with CUDA events after a warm-up, and writes a
CSV with the same key columns (op, model, tokens, shape, dtype) so bench/gpu_report.py can join it with
opdev's own bench CSV:

    op,model,tokens,shape,dtype,torch_us,peer,primary,note

One case can have several peers (primary = 1 is the one the ratio is taken against; e.g. grouped_matmul:
the per-expert F.linear loop, plus torch._grouped_mm where this PyTorch has it). A peer that PyTorch
cannot run at that shape is a row with an empty torch_us and the error in `note`; no peer at all for an
op (grouped_matmul_w8a8) is a row with peer "none".

The peers (eager PyTorch, what a model written in PyTorch runs):
  linear            F.linear(x, w) (= torch.matmul(x, w.T), cuBLAS); as an extra, the same with bf16 / f16
                    split-K reductions disallowed (opdev's float32 accumulation contract)
  linear_w8a8       torch._int_mm(x, w.T) + the float32 scale epilogue (where _int_mm takes the shape)
  quantize_int8     amax / 127, divide, round, clamp, to int8 (composed)
  grouped_matmul    per-expert F.linear loop over the expert row ranges (out=); torch._grouped_mm as an extra
  rms_norm          Hugging Face Qwen3RMSNorm (float32 variance, rsqrt, weight); F.rms_norm as an extra
  add_rms_norm      residual add then the same norm (vLLM's forward_native, out of place)
  silu_and_mul      F.silu(x[:, :d]) * x[:, d:]
  rope              NeoX rotation of q and k with cos/sin gathered by position (vLLM's forward_native)
  rope_cache        the cos | sin table from inv_freq (composed)
  add, cast, copy   torch.add(out=), x.to(float32), out.copy_(strided view)
  embedding         F.embedding
  reshape_and_cache index_copy_ of k and v rows into the flattened paged caches
  paged_attention   F.scaled_dot_product_attention over a contiguous cache: decode [B, Hq, 1, D] against
                    [B, Hk, kv, D] (enable_gqa), prefill causal [1, Hq, T, D] (the closest peer: torch has no
                    paged attention); prefill also under each SDPA backend (flash, cuDNN, efficient) as extras
  moe_gating_topk   softmax + topk (+ renormalise); DeepSeek's grouped sigmoid composed
  moe_permute       stable argsort of the expert ids, gather of the rows, scatter_add_ counts + cumsum for the
                    offsets (bincount would synchronise with the host)
  moe_unpermute     index_copy_ back to token order, weighted sum over the k rows
  sample            greedy: argmax; top-k / top-p: topk or sort, softmax, cumsum mask, exponential race
                    (multinomial-free, as vLLM samples)

Usage: torch_peers.py --cases LIST.csv --out TORCH.csv [--dtypes bfloat16,float32] [--min-time 0.05]
                      [--budget SECONDS] [--ops linear,rms_norm] [--device cuda]
Exit status: 0 written (peers that failed are rows with a note); 3 PyTorch with CUDA is not available here
(the CSV then has its header only and the reason is printed); 2 usage errors.
"""

import argparse
import contextlib
import csv
import importlib
import math
import statistics
import sys
import time

COLUMNS = ["op", "model", "tokens", "shape", "dtype", "torch_us", "peer", "primary", "note"]


# ---- the case list -------------------------------------------------------------------------------------


class Tensor:
    """One tensor of a case, from the list CSV: name:role:dtype:shape:pad:alias."""

    def __init__(self, item):
        parts = item.split(":")
        if len(parts) != 6:
            raise ValueError("bad tensor item %r (expected name:role:dtype:shape:pad:alias)" % item)
        self.name, self.role, self.dtype = parts[0], parts[1], parts[2]
        self.shape = [int(d) for d in parts[3].split("x")] if parts[3] else []
        self.pad = int(parts[4]) if parts[4] else 0
        self.alias = parts[5]


class Case:
    def __init__(self, row):
        self.op = row["op"]
        self.model = row["model"]
        self.tokens = int(row["tokens"])
        self.shape = row["shape"]
        self.dtype = row["dtype"]
        self.device_only = row.get("device_only", "0") == "1"
        self.tensors = {}
        for item in filter(None, row.get("tensors", "").split(";")):
            t = Tensor(item)
            self.tensors[t.name] = t
        self.params = {}
        for item in filter(None, row.get("params", "").split(";")):
            key, _, value = item.partition("=")
            self.params[key] = value

    def key(self):
        return (self.op, self.model, str(self.tokens), self.shape, self.dtype)

    def shape_of(self, name):
        return self.tensors[name].shape

    def param(self, name, default=None, kind=float):
        if name not in self.params:
            if default is None:
                raise KeyError("case %s %s has no parameter %r" % (self.op, self.shape, name))
            return default
        return kind(self.params[name])


def read_cases(path):
    with open(path, newline="") as f:
        return [Case(row) for row in csv.DictReader(f)]


# ---- peers ---------------------------------------------------------------------------------------------


class Peers:
    """Builds, for one case, a list of (peer name, callable) on the device; every callable is one call."""

    def __init__(self, torch, device):
        self.torch = torch
        self.F = torch.nn.functional
        self.device = device
        self.dtypes = {
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
            "int8": torch.int8,
            "int32": torch.int32,
            "int64": torch.int64,
        }

    # -- tensors --

    def dt(self, case, name=None):
        """The torch dtype of a tensor of the case (the case's dtype for activation tensors)."""
        if name is None or self.tensor_dtype(case, name) == "act":
            return self.dtypes[case.dtype]
        return self.dtypes[self.tensor_dtype(case, name)]

    @staticmethod
    def tensor_dtype(case, name):
        return case.tensors[name].dtype

    def randn(self, shape, dtype, scale=1.0):
        t = self.torch.randn(*shape, device=self.device, dtype=self.torch.float32) * scale
        return t.to(dtype)

    def make(self, case, name, scale=1.0):
        """A random tensor of the case's shape and dtype; a strided view (rows of pad extra elements) where
        the case makes one (the q / k heads of the fused qkv rows)."""
        t = case.tensors[name]
        dtype = self.dt(case, name)
        if dtype in (self.torch.int8,):
            return self.torch.randint(-127, 128, t.shape, device=self.device, dtype=dtype)
        if t.pad > 0 and len(t.shape) >= 2:
            inner = 1
            for d in t.shape[1:]:
                inner *= d
            base = self.randn([t.shape[0], inner + t.pad], dtype, scale)
            return base[:, :inner].view(t.shape)
        return self.randn(t.shape, dtype, scale)

    def ints(self, lo, hi, shape, dtype=None):
        return self.torch.randint(lo, hi, shape, device=self.device, dtype=dtype or self.torch.int64)

    # -- dispatch --

    def build(self, case):
        fn = getattr(self, "peer_" + case.op, None)
        if fn is None:
            return []
        return fn(case)

    # -- matmul --

    def fp32_reductions(self):
        """A context in which cuBLAS may not reduce split-K partial sums in bf16 / f16 (PyTorch allows it by
        default; opdev's contract does not)."""
        m = self.torch.backends.cuda.matmul

        @contextlib.contextmanager
        def ctx():
            old = (m.allow_bf16_reduced_precision_reduction, m.allow_fp16_reduced_precision_reduction)
            m.allow_bf16_reduced_precision_reduction = False
            m.allow_fp16_reduced_precision_reduction = False
            try:
                yield
            finally:
                m.allow_bf16_reduced_precision_reduction, m.allow_fp16_reduced_precision_reduction = old

        return ctx

    def peer_linear(self, case):
        x, w = self.make(case, "x"), self.make(case, "weight", 0.05)
        run = lambda: self.F.linear(x, w)  # noqa: E731
        return [("F.linear", run), ("F.linear, float32 split-K reductions (opdev's contract)", run, self.fp32_reductions())]

    def peer_linear_w8a8(self, case):
        torch = self.torch
        x, w = self.make(case, "x"), self.make(case, "weight")
        xs = torch.rand(case.shape_of("x_scale"), device=self.device) * 0.03
        ws = torch.rand(case.shape_of("weight_scale"), device=self.device) * 0.03
        out_dtype = self.dt(case)
        wt = w.t()

        def run():
            acc = torch._int_mm(x, wt)
            return (acc.float() * ws.unsqueeze(0) * xs.unsqueeze(1)).to(out_dtype)

        return [("torch._int_mm + scales", run)]

    def peer_quantize_int8(self, case):
        torch = self.torch
        x = self.make(case, "x")

        def run():
            xf = x.float()
            scale = xf.abs().amax(-1, keepdim=True) / 127.0
            q = (xf / scale.clamp_min(1e-30)).round().clamp(-127, 127).to(torch.int8)
            return q, scale

        return [("composed amax/round/clamp", run)]

    def offsets_of(self, case):
        counts = [int(c) for c in case.params["counts"].split(",")]
        offsets = [0]
        for c in counts:
            offsets.append(offsets[-1] + c)
        return counts, offsets

    def peer_grouped_matmul(self, case):
        torch = self.torch
        x, w = self.make(case, "x"), self.make(case, "weight", 0.05)
        counts, offsets = self.offsets_of(case)
        rows, n = case.shape_of("out")
        out = torch.empty(rows, n, device=self.device, dtype=self.dt(case))
        ranges = [(e, offsets[e], offsets[e + 1]) for e in range(len(counts)) if counts[e] > 0]

        def loop():
            for e, a, b in ranges:
                torch.matmul(x[a:b], w[e].t(), out=out[a:b])
            return out

        peers = [("per-expert F.linear loop", loop)]
        if hasattr(torch, "_grouped_mm"):
            offs = torch.tensor(offsets[1:], device=self.device, dtype=torch.int32)
            wt = w.transpose(-2, -1)
            peers.append(("torch._grouped_mm", lambda: torch._grouped_mm(x, wt, offs=offs)))
        return peers

    def peer_grouped_matmul_w8a8(self, case):
        return []  # PyTorch has no grouped int8 GEMM; a per-expert torch._int_mm loop needs > 16 rows per expert

    # -- norms, activation, rope --

    def rms(self, x, w, eps):
        xf = x.float()
        var = xf.pow(2).mean(-1, keepdim=True)
        return w * (xf * self.torch.rsqrt(var + eps)).to(x.dtype)

    def peer_rms_norm(self, case):
        eps = case.param("eps", 1e-6)
        xname = "x" if "x" in case.tensors else "q"
        x, w = self.make(case, xname), self.make(case, "weight")
        peers = [("composed (HF Qwen3RMSNorm)", lambda: self.rms(x, w, eps))]
        if hasattr(self.F, "rms_norm"):
            peers.append(("F.rms_norm", lambda: self.F.rms_norm(x, (x.shape[-1],), w, eps)))
        return peers

    def peer_add_rms_norm(self, case):
        eps = case.param("eps", 1e-6)
        x, r, w = self.make(case, "x"), self.make(case, "residual"), self.make(case, "weight")

        def run():
            s = x.float() + r.float()
            res = s.to(x.dtype)
            var = s.pow(2).mean(-1, keepdim=True)
            return (s * self.torch.rsqrt(var + eps)).to(x.dtype) * w, res

        return [("composed (vLLM forward_native)", run)]

    def peer_silu_and_mul(self, case):
        x = self.make(case, "x", 2.0)
        d = case.shape_of("out")[-1]
        return [("F.silu(x[:, :d]) * x[:, d:]", lambda: self.F.silu(x[:, :d]) * x[:, d:])]

    def peer_rope(self, case):
        torch = self.torch
        q, k = self.make(case, "q"), self.make(case, "k")
        positions_total, dim = case.shape_of("cos_sin_cache")
        cache = self.randn([positions_total, dim], torch.float32)
        pos = self.ints(0, positions_total, case.shape_of("positions"))

        def rotate(x, cos, sin):
            x1, x2 = x.chunk(2, dim=-1)
            return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

        def run():
            cs = cache.index_select(0, pos)
            cos, sin = cs.chunk(2, dim=-1)
            cos = cos.unsqueeze(-2).to(q.dtype)
            sin = sin.unsqueeze(-2).to(q.dtype)
            return rotate(q, cos, sin), rotate(k, cos, sin)

        return [("composed NeoX (vLLM forward_native)", run)]

    def peer_rope_cache(self, case):
        torch = self.torch
        positions, dim = case.shape_of("cos_sin_cache")
        theta = case.param("theta", 1e6)

        def run():
            inv = 1.0 / (theta ** (torch.arange(0, dim, 2, device=self.device, dtype=torch.float32) / dim))
            freqs = torch.outer(torch.arange(positions, device=self.device, dtype=torch.float32), inv)
            return torch.cat((freqs.cos(), freqs.sin()), dim=-1)

        return [("composed cos|sin table", run)]

    # -- elementwise, embedding, cache --

    def peer_add(self, case):
        a, b = self.make(case, "a"), self.make(case, "b")
        out = self.torch.empty_like(a)
        return [("torch.add(out=)", lambda: self.torch.add(a, b, out=out))]

    def peer_cast(self, case):
        x = self.make(case, "x")
        to = self.dt(case, "out")
        return [("x.to(dtype)", lambda: x.to(to))]

    def peer_copy(self, case):
        x = self.make(case, "x")
        out = self.torch.empty(case.shape_of("out"), device=self.device, dtype=self.dt(case, "out"))
        return [("out.copy_(x)", lambda: out.copy_(x))]

    def peer_embedding(self, case):
        table = self.make(case, "table")
        ids = self.ints(0, case.shape_of("table")[0], case.shape_of("ids"))
        return [("F.embedding", lambda: self.F.embedding(ids, table))]

    def peer_reshape_and_cache(self, case):
        torch = self.torch
        kc, vc = self.make(case, "key_cache"), self.make(case, "value_cache")
        key, value = self.make(case, "key"), self.make(case, "value")
        blocks, bs, hk, d = case.shape_of("key_cache")
        t = case.shape_of("key")[0]
        slots = torch.randperm(blocks * bs, device=self.device)[:t]
        kf, vf = kc.view(-1, hk, d), vc.view(-1, hk, d)

        def run():
            kf.index_copy_(0, slots, key)
            vf.index_copy_(0, slots, value)

        return [("index_copy_ into the flat caches", run)]

    # -- attention --

    def peer_paged_attention(self, case):
        torch = self.torch
        b, q_len, kv = int(case.param("B")), int(case.param("q")), int(case.param("kv"))
        hq, hk, d = int(case.param("Hq")), int(case.param("Hk")), int(case.param("D"))
        dtype = self.dt(case)
        q = self.randn([b, hq, q_len, d], dtype)
        k = self.randn([b, hk, kv, d], dtype)
        v = self.randn([b, hk, kv, d], dtype)
        causal = q_len > 1
        sdpa = self.F.scaled_dot_product_attention
        try:
            sdpa(q, k, v, is_causal=causal, enable_gqa=True)
            run, name = (lambda: sdpa(q, k, v, is_causal=causal, enable_gqa=True)), "F.sdpa (enable_gqa, contiguous cache)"
        except TypeError:
            # An older PyTorch without enable_gqa: repeat the kv heads once, outside the timed call.
            kr, vr = k.repeat_interleave(hq // hk, dim=1), v.repeat_interleave(hq // hk, dim=1)
            run, name = (lambda: sdpa(q, kr, vr, is_causal=causal)), "F.sdpa (kv heads repeated, contiguous cache)"
        peers = [(name, run)]
        # Prefill: SDPA's backends one by one as extra peers (the primary is PyTorch's own choice).
        attention = self.sdpa_backends()
        if causal and attention is not None:
            for backend in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION"):
                kind = getattr(attention.SDPBackend, backend, None)
                if kind is not None:
                    peers.append(("%s, backend %s" % (name, backend), run, lambda kind=kind: attention.sdpa_kernel(kind)))
        return peers

    def sdpa_backends(self):
        """torch.nn.attention (sdpa_kernel, SDPBackend; PyTorch 2.3 and later), or None."""
        try:
            mod = importlib.import_module("torch.nn.attention")
        except Exception:  # not there, or torch is a stand-in without submodules
            mod = getattr(getattr(self.torch, "nn", None), "attention", None)
        return mod if mod is not None and hasattr(mod, "sdpa_kernel") and hasattr(mod, "SDPBackend") else None

    # -- MoE --

    def peer_moe_gating_topk(self, case):
        torch = self.torch
        logits = self.make(case, "logits", 2.0)
        k = int(case.param("k"))
        if case.params.get("scoring", "softmax") == "softmax":

            def run():
                p = torch.softmax(logits.float(), dim=-1)
                w, ids = torch.topk(p, k, dim=-1)
                return w / w.sum(-1, keepdim=True), ids.to(torch.int32)

            return [("softmax + topk", run)]
        n_group, topk_group = int(case.param("n_group")), int(case.param("topk_group"))
        scale = case.param("scale", 1.0)
        tokens, experts = case.shape_of("logits")
        bias = torch.rand(experts, device=self.device) * 2 - 1

        def grouped():
            s = logits.float().sigmoid()
            sc = s + bias
            group = sc.view(tokens, n_group, -1).topk(2, dim=-1).values.sum(-1)
            gi = group.topk(topk_group, dim=-1).indices
            mask = torch.zeros_like(group).scatter_(1, gi, 1.0)
            mask = mask.unsqueeze(-1).expand(tokens, n_group, experts // n_group).reshape(tokens, experts)
            ids = sc.masked_fill(mask == 0, float("-inf")).topk(k, dim=-1).indices
            w = s.gather(1, ids)
            return w / w.sum(-1, keepdim=True) * scale, ids.to(torch.int32)

        return [("grouped sigmoid composed (DeepSeek-V3)", grouped)]

    def peer_moe_permute(self, case):
        torch = self.torch
        x = self.make(case, "x")
        tokens, k = case.shape_of("topk_ids")
        experts = int(case.param("E"))
        ids = torch.stack([torch.randperm(experts, device=self.device)[:k] for _ in range(min(tokens, 64))])
        ids = ids.repeat((tokens + ids.shape[0] - 1) // ids.shape[0], 1)[:tokens].contiguous()

        def run():
            flat = ids.view(-1)
            order = torch.argsort(flat, stable=True)
            permuted = x.index_select(0, order // k)
            # scatter_add_, not bincount: bincount on CUDA reads min / max back to the host (two syncs).
            counts = torch.zeros(experts, device=self.device, dtype=torch.int64).scatter_add_(0, flat.long(), ones)
            offsets = torch.zeros(experts + 1, device=self.device, dtype=torch.int64)
            offsets[1:] = torch.cumsum(counts, 0)
            return permuted, offsets, order.to(torch.int32)

        ones = torch.ones(tokens * k, device=self.device, dtype=torch.int64)
        return [("stable argsort + gather + scatter_add_ counts", run)]

    def peer_moe_unpermute(self, case):
        torch = self.torch
        py = self.make(case, "permuted_y")
        w = torch.rand(case.shape_of("topk_weights"), device=self.device)
        tokens, k = case.shape_of("topk_weights")
        rows = torch.randperm(tokens * k, device=self.device)
        hidden = case.shape_of("out")[-1]

        def run():
            y = torch.empty_like(py).index_copy_(0, rows, py)
            return (y.view(tokens, k, hidden).float() * w.unsqueeze(-1)).sum(1).to(py.dtype)

        return [("index_copy_ + weighted sum", run)]

    # -- sampling --

    def peer_sample(self, case):
        torch = self.torch
        logits = self.make(case, "logits", 3.0)
        temperature = case.param("temperature", 0.0)
        top_k = int(case.param("top_k", 0))
        top_p = case.param("top_p", 1.0)
        if temperature == 0:
            return [("argmax", lambda: torch.argmax(logits, dim=-1))]

        def race(p):  # multinomial-free: argmax of p / Exp(1)
            return (p / torch.empty_like(p).exponential_()).argmax(dim=-1, keepdim=True)

        def masked(p):
            if top_p >= 1:
                return p
            cum = p.cumsum(-1)
            return p.masked_fill(cum - p > top_p, 0.0)

        if top_k > 0:

            def run_topk():
                v, i = torch.topk(logits.float() / temperature, top_k, dim=-1)
                return i.gather(-1, race(masked(torch.softmax(v, -1))))

            return [("topk + softmax + top-p mask + exponential race", run_topk)]

        def run_sort():
            v, i = torch.sort(logits.float() / temperature, dim=-1, descending=True)
            return i.gather(-1, race(masked(torch.softmax(v, -1))))

        return [("sort + softmax + top-p mask + exponential race", run_sort)]


# ---- timing --------------------------------------------------------------------------------------------


def time_us(torch, fn, min_time):
    """Median microseconds per call, measured as opdev's bench measures a device (bench/runner.cpp): a batch
    of calls queued back to back and one torch.cuda.synchronize, timed by the host clock; batches double
    until one takes 1 ms (those ramp batches are not kept), repeated until min_time has passed and 5
    batches were kept."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    batch = 1
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1e3
        if ms < 1.0 and batch < (1 << 20):
            batch *= 2
            continue
        times.append(ms * 1e3 / batch)
        if (time.perf_counter() - t_start > min_time and len(times) >= 5) or len(times) > 10000:
            break
    return statistics.median(times)


# ---- main ----------------------------------------------------------------------------------------------


def import_torch(device):
    """torch, or (None, reason)."""
    try:
        import torch  # noqa: PLC0415
    except Exception as e:  # ImportError, or a broken installation
        return None, "PyTorch is not importable: %s" % e
    if device.startswith("cuda") and not torch.cuda.is_available():
        return None, "PyTorch %s sees no CUDA device (torch.cuda.is_available() is False)" % torch.__version__
    return torch, ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", required=True, help="opdev bench --list --csv output")
    ap.add_argument("--out", required=True, help="CSV to write")
    ap.add_argument("--dtypes", default="bfloat16", help="comma-separated: float32, bfloat16, float16 (default bfloat16)")
    ap.add_argument("--ops", default="", help="only these ops (comma-separated)")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds per measurement")
    ap.add_argument("--budget", type=float, default=0, help="stop starting new cases after this many seconds (0: no limit)")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args(argv)

    dtypes = set(filter(None, args.dtypes.split(",")))
    ops = set(filter(None, args.ops.split(",")))
    cases = [c for c in read_cases(args.cases) if c.dtype in dtypes and (not ops or c.op in ops)]

    out = open(args.out, "w", newline="")
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    out.flush()

    torch, why = import_torch(args.device)
    if torch is None:
        print("torch_peers: %s; no peers measured" % why, file=sys.stderr)
        out.close()
        return 3
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print("torch_peers: PyTorch %s on %s, %d cases" % (torch.__version__, device_name, len(cases)), file=sys.stderr)
    torch.manual_seed(0)
    peers = Peers(torch, args.device)
    started = time.perf_counter()
    done = 0
    for i, case in enumerate(cases):
        key = list(case.key())
        if args.budget and time.perf_counter() - started > args.budget:
            print("\ntorch_peers: budget of %.0f s spent; %d of %d cases not measured" % (args.budget, len(cases) - i, len(cases)),
                  file=sys.stderr)
            break
        try:
            built = peers.build(case)
        except Exception as e:  # a shape or dtype this PyTorch refuses
            writer.writerow(key + ["", "build", 1, "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")])
            continue
        if not built:
            writer.writerow(key + ["", "none", 1, "no PyTorch peer for this op"])
        for j, peer in enumerate(built):
            name, fn = peer[0], peer[1]
            try:
                with (peer[2]() if len(peer) > 2 else contextlib.nullcontext()):  # a setting the peer runs under
                    us = time_us(torch, fn, args.min_time)
                writer.writerow(key + ["%.3f" % us, name, 1 if j == 0 else 0, ""])
            except Exception as e:
                msg = str(e).splitlines()[0] if str(e) else ""
                writer.writerow(key + ["", name, 1 if j == 0 else 0, "%s: %s" % (type(e).__name__, msg[:200])])
        del built
        done += 1
        out.flush()
        print("\r[%d/%d] %-18s %-14s %-9s" % (i + 1, len(cases), case.op, case.model, case.dtype), end="", file=sys.stderr)
        if done % 16 == 0 and args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    print("", file=sys.stderr)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
