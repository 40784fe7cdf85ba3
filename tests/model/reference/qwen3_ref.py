#!/usr/bin/python3
"""Reference forward pass of Hugging Face Qwen3ForCausalLM and Qwen3MoeForCausalLM in numpy.

Written from transformers' modeling_qwen3.py, modeling_qwen3_moe.py and modeling_rope_utils.py
(README.md maps every step to the HF code). It shares no code with opdev and is the oracle for the C++
runtime's logits.

Numerics (`dtype` argument / --dtype):
  float64   every value in float64, weights decoded exactly from BF16/F16/F32. The oracle.
  float32   the same code on float32 arrays (weights are exact in float32 too); quantifies how far a
            correct float32 implementation may drift from float64.
  bfloat16  emulation of a bf16 runtime: weights rounded to bf16, float32 arithmetic inside each op, and
            every op output rounded to bf16 at the points opdev's operators round (docs/OPS.md: linear,
            rms_norm (normalised value, then x weight), rope, attention output, silu_and_mul, residual
            adds, MoE combine, logits). Used to derive the tolerance of the bf16 parity check.
  bfloat16_hf  the same plus the extra roundings of transformers' bf16 eager path (see Numerics).
The rotary tables (inv_freq, cos, sin) are computed in float64 in every mode and then cast, like
opdev's rope_cache; HF computes them in float32, which only matters at very large positions.

CLI: qwen3_ref.py --model DIR --ids 1,2,3 --out logits.npy [--dtype float64|float32|bfloat16|bfloat16_hf]
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

ARCHS = {"Qwen3ForCausalLM": "qwen3", "Qwen3MoeForCausalLM": "qwen3_moe"}

# Defaults of transformers' Qwen3Config / Qwen3MoeConfig for fields a config.json may omit.
_DEFAULTS = {
    "qwen3": dict(vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=None, head_dim=128, hidden_act="silu",
                  max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=False,
                  rope_theta=10000.0, rope_scaling=None, attention_bias=False, use_sliding_window=False),
    "qwen3_moe": dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=24,
                      num_attention_heads=32, num_key_value_heads=4, head_dim=None, hidden_act="silu",
                      max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=False,
                      rope_theta=10000.0, rope_scaling=None, attention_bias=False, use_sliding_window=False,
                      decoder_sparse_step=1, moe_intermediate_size=768, num_experts_per_tok=8,
                      num_experts=128, norm_topk_prob=False, mlp_only_layers=None),
}


class Config:
    """The config.json fields the forward pass uses, with HF's defaults."""

    def __init__(self, d, path="config.json"):
        archs = d.get("architectures") or []
        arch = archs[0] if archs else None
        model_type = d.get("model_type") or (ARCHS.get(arch) if arch else None)
        if model_type not in _DEFAULTS:
            raise ValueError(f"{path}: model_type {model_type!r} / architectures {archs} not supported "
                             f"(supported: {', '.join(ARCHS)})")
        self.model_type = model_type
        self.architecture = arch or {v: k for k, v in ARCHS.items()}[model_type]
        c = dict(_DEFAULTS[model_type])
        c.update({k: v for k, v in d.items() if k in c and (v is not None or k == "rope_scaling")})
        self.vocab_size = int(c["vocab_size"])
        self.hidden_size = int(c["hidden_size"])
        self.intermediate_size = int(c["intermediate_size"])
        self.num_hidden_layers = int(c["num_hidden_layers"])
        self.num_attention_heads = int(c["num_attention_heads"])
        kv = c["num_key_value_heads"]
        self.num_key_value_heads = int(kv) if kv is not None else self.num_attention_heads
        # Qwen3Config defaults head_dim to 128; Qwen3MoeAttention uses
        # getattr(config, "head_dim", hidden_size // num_attention_heads).
        hd = c["head_dim"]
        self.head_dim = int(hd) if hd is not None else self.hidden_size // self.num_attention_heads
        self.max_position_embeddings = int(c["max_position_embeddings"])
        self.rms_norm_eps = float(c["rms_norm_eps"])
        self.tie_word_embeddings = bool(c["tie_word_embeddings"])
        self.rope_theta = float(c["rope_theta"])
        self.rope_scaling = c["rope_scaling"]
        if "rope_parameters" in d and "rope_scaling" not in d:
            rp = d["rope_parameters"] or {}
            self.rope_theta = float(rp.get("rope_theta", self.rope_theta))
            if rp.get("rope_type", "default") != "default":
                raise ValueError(f"{path}: transformers-v5 style rope_parameters with rope_type "
                                 f"{rp.get('rope_type')!r} not supported by the reference")
        self.attention_bias = bool(c["attention_bias"])
        if c["hidden_act"] != "silu":
            raise ValueError(f"{path}: hidden_act {c['hidden_act']!r} not supported (silu only)")
        if c["use_sliding_window"]:
            raise ValueError(f"{path}: use_sliding_window=true not supported by the reference")
        self.num_experts = int(c.get("num_experts", 0) or 0)
        self.num_experts_per_tok = int(c.get("num_experts_per_tok", 0) or 0)
        self.moe_intermediate_size = int(c.get("moe_intermediate_size", 0) or 0)
        self.decoder_sparse_step = int(c.get("decoder_sparse_step", 1) or 1)
        self.norm_topk_prob = bool(c.get("norm_topk_prob", False))
        self.mlp_only_layers = list(c.get("mlp_only_layers") or [])
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"{path}: num_attention_heads {self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads {self.num_key_value_heads}")

    @staticmethod
    def load(model_dir):
        path = os.path.join(model_dir, "config.json")
        with open(path) as f:
            return Config(json.load(f), path)

    def is_moe_layer(self, i):
        # Qwen3MoeDecoderLayer.__init__
        return (self.model_type == "qwen3_moe" and i not in self.mlp_only_layers and self.num_experts > 0
                and (i + 1) % self.decoder_sparse_step == 0)


# ---------------------------------------------------------------------------------------------------
# Rotary embedding: modeling_rope_utils.py (transformers 4.5x, config.rope_scaling)

def get_mscale(scale, mscale=1.0):
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def yarn_correction_range(beta_fast, beta_slow, dim, base, original_max_pos, truncate=True):
    """find_correction_range: the dims where the ramp runs, from numbers of rotations."""
    def correction_dim(num_rotations):
        return (dim * math.log(original_max_pos / (num_rotations * 2 * math.pi))) / (2 * math.log(base))
    low = correction_dim(beta_fast)
    high = correction_dim(beta_slow)
    if truncate:
        low = math.floor(low)
        high = math.ceil(high)
    return max(low, 0), min(high, dim - 1)


def yarn_ramp(low, high, n):
    """linear_ramp_factor: clamp((i - low) / (high - low), 0, 1), with high += 0.001 when low == high."""
    if low == high:
        high += 0.001
    return np.clip((np.arange(n, dtype=np.float64) - low) / (high - low), 0.0, 1.0)


def rope_parameters(cfg):
    """(inv_freq float64 [head_dim // 2], attention_factor) as HF's ROPE_INIT_FUNCTIONS compute them."""
    base = cfg.rope_theta
    dim = cfg.head_dim  # partial_rotary_factor is 1 for Qwen3
    pos_freqs = base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    inv_freq = 1.0 / pos_freqs
    rs = cfg.rope_scaling
    if not rs:
        return inv_freq, 1.0
    rope_type = rs.get("rope_type", rs.get("type"))
    if rope_type in (None, "default"):
        return inv_freq, 1.0
    if rope_type == "linear":
        return inv_freq / float(rs["factor"]), 1.0
    if rope_type != "yarn":
        raise ValueError(f"rope_scaling type {rope_type!r} not supported (default, linear, yarn)")
    factor = float(rs["factor"])
    attention_factor = rs.get("attention_factor")
    mscale = rs.get("mscale")
    mscale_all_dim = rs.get("mscale_all_dim")
    # transformers 4.5x: with original_max_position_embeddings given, the factor used everywhere is
    # max_position_embeddings / original_max_position_embeddings (the DeepSeek-V3 convention).
    if "original_max_position_embeddings" in rs:
        original_max_pos = rs["original_max_position_embeddings"]
        factor = cfg.max_position_embeddings / original_max_pos
    else:
        original_max_pos = cfg.max_position_embeddings
    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)
    beta_fast = rs.get("beta_fast") or 32
    beta_slow = rs.get("beta_slow") or 1
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (factor * pos_freqs)
    truncate = rs.get("truncate", True)
    low, high = yarn_correction_range(beta_fast, beta_slow, dim, base, original_max_pos, truncate)
    extrapolation_factor = 1.0 - yarn_ramp(low, high, dim // 2)
    inv_freq = (inv_freq_interpolation * (1 - extrapolation_factor)
                + inv_freq_extrapolation * extrapolation_factor)
    return inv_freq, float(attention_factor)


def rope_cos_sin(cfg, positions):
    """cos, sin [n, head_dim] float64: emb = cat(freqs, freqs), times attention_factor."""
    inv_freq, attention_factor = rope_parameters(cfg)
    freqs = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb) * attention_factor, np.sin(emb) * attention_factor


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rope(x, cos, sin):
    """apply_rotary_pos_emb for x [n, heads, head_dim], cos/sin [n, head_dim] (NeoX pairs (i, i + d/2))."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


# ---------------------------------------------------------------------------------------------------
# Numerics

class Numerics:
    """Array dtype and the rounding applied to op outputs (identity except in the bf16 emulations).

    `r` rounds where opdev's operators round in bf16; `rx` adds the extra roundings of transformers'
    own bf16 eager path (cos/sin tables, attention scores and probabilities, routing weights, each
    expert's weighted output and the running sum over experts): a second, equally legitimate placement
    used to check that the bf16 tolerance does not hinge on where exactly a runtime rounds."""

    MODES = ("float64", "float32", "bfloat16", "bfloat16_hf")

    def __init__(self, mode):
        if mode not in self.MODES:
            raise ValueError(f"dtype {mode!r}: expected one of {', '.join(self.MODES)}")
        self.mode = mode
        self.dtype = np.float64 if mode == "float64" else np.float32
        self.bf16 = mode.startswith("bfloat16")

    def r(self, x):
        x = np.asarray(x, dtype=self.dtype)
        return st.round_to_bf16(x) if self.bf16 else x

    def rx(self, x):
        x = np.asarray(x, dtype=self.dtype)
        return st.round_to_bf16(x) if self.mode == "bfloat16_hf" else x

    def weight(self, a):
        return self.r(a)  # bf16 emulation: weights stored as bf16 by the runtime


def rms_norm(x, w, eps, nm):
    """Qwen3RMSNorm: x * rsqrt(mean(x^2) + eps), rounded to the input dtype, then weight * that."""
    x = np.asarray(x, dtype=nm.dtype)
    var = np.mean(x * x, axis=-1, keepdims=True)
    normed = nm.r(x / np.sqrt(var + nm.dtype(eps)))
    return nm.r(w * normed)


def linear(x, w, b, nm):
    y = x @ w.T
    if b is not None:
        y = y + b
    return nm.r(y)


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def topk_desc(p, k):
    """Indices of the k largest values per row, largest first; ties go to the lower index."""
    order = np.argsort(-p, axis=-1, kind="stable")
    return order[..., :k]


def route(router_logits, k, norm_topk_prob):
    """Qwen3MoeSparseMoeBlock routing: softmax over experts, top-k, optional renormalisation.
    Returns (selected experts [n, k], their weights [n, k])."""
    probs = softmax(router_logits, axis=-1)
    sel = topk_desc(probs, k)
    weights = np.take_along_axis(probs, sel, axis=-1)
    if norm_topk_prob:
        weights = weights / np.sum(weights, axis=-1, keepdims=True)
    return sel, weights


# ---------------------------------------------------------------------------------------------------
# Model

class Model:
    def __init__(self, model_dir, dtype="float64"):
        self.cfg = Config.load(model_dir)
        self.nm = Numerics(dtype)
        self.ckpt = st.Checkpoint(model_dir)
        self._cache = {}

    def w(self, name, shape=None):
        if name not in self._cache:
            if shape is not None and name in self.ckpt:
                got = tuple(self.ckpt.where[name].shape(name))
                if got != tuple(shape):
                    raise ValueError(f"tensor '{name}' has shape {list(got)}, config.json implies {list(shape)}")
            self._cache[name] = self.nm.weight(self.ckpt.get(name, np.float64))
        return self._cache[name]

    def attention(self, i, x, cos, sin):
        cfg, nm = self.cfg, self.nm
        p = f"model.layers.{i}.self_attn."
        n = x.shape[0]
        hq, hk, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        H = cfg.hidden_size
        bias = (lambda nme, m: self.w(p + nme, (m,))) if cfg.attention_bias else (lambda nme, m: None)
        q = linear(x, self.w(p + "q_proj.weight", (hq * d, H)), bias("q_proj.bias", hq * d), nm).reshape(n, hq, d)
        k = linear(x, self.w(p + "k_proj.weight", (hk * d, H)), bias("k_proj.bias", hk * d), nm).reshape(n, hk, d)
        v = linear(x, self.w(p + "v_proj.weight", (hk * d, H)), bias("v_proj.bias", hk * d), nm).reshape(n, hk, d)
        q = rms_norm(q, self.w(p + "q_norm.weight", (d,)), cfg.rms_norm_eps, nm)
        k = rms_norm(k, self.w(p + "k_norm.weight", (d,)), cfg.rms_norm_eps, nm)
        q = nm.r(apply_rope(q, cos, sin))
        k = nm.r(apply_rope(k, cos, sin))
        # repeat_kv: query head h reads key/value head h // (hq / hk).
        rep = hq // hk
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        scores = nm.rx(nm.rx(np.einsum("ihd,jhd->hij", q, k)) * nm.dtype(d ** -0.5))
        mask = np.triu(np.ones((n, n), dtype=bool), k=1)
        scores = np.where(mask[None], -np.inf, scores)
        probs = nm.rx(softmax(scores, axis=-1))
        out = nm.r(np.einsum("hij,jhd->ihd", probs, v)).reshape(n, hq * d)
        return linear(out, self.w(p + "o_proj.weight", (H, hq * d)), bias("o_proj.bias", H), nm)

    def mlp(self, prefix, x, inter):
        nm, H = self.nm, self.cfg.hidden_size
        g = linear(x, self.w(prefix + "gate_proj.weight", (inter, H)), None, nm)
        u = linear(x, self.w(prefix + "up_proj.weight", (inter, H)), None, nm)
        return linear(nm.r(nm.r(silu(g)) * u), self.w(prefix + "down_proj.weight", (H, inter)), None, nm)

    def moe(self, i, x, trace):
        cfg, nm = self.cfg, self.nm
        p = f"model.layers.{i}.mlp."
        router_logits = linear(x, self.w(p + "gate.weight", (cfg.num_experts, cfg.hidden_size)), None, nm)
        k = cfg.num_experts_per_tok
        sel, weights = route(router_logits, k, cfg.norm_topk_prob)
        weights = nm.rx(weights)
        if trace is not None:
            srt = np.sort(router_logits, axis=-1)[:, ::-1]
            gap = srt[:, k - 1] - srt[:, k] if k < cfg.num_experts else np.full(len(x), np.inf)
            trace.setdefault("router_gap", []).append(gap)
            trace.setdefault("router_logits", []).append(router_logits)
            trace.setdefault("selected", []).append(sel)
        out = np.zeros(x.shape, dtype=nm.dtype)
        for e in np.unique(sel):
            rows, slot = np.nonzero(sel == e)
            y = self.mlp(f"{p}experts.{e}.", x[rows], cfg.moe_intermediate_size)
            out[rows] = nm.rx(out[rows] + nm.rx(y * weights[rows, slot][:, None]))
        return nm.r(out)

    def forward(self, ids, trace=None):
        cfg, nm = self.cfg, self.nm
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) == 0:
            raise ValueError("ids must be a non-empty 1-D sequence")
        if ids.min() < 0 or ids.max() >= cfg.vocab_size:
            raise ValueError(f"ids must lie in [0, {cfg.vocab_size})")
        H = cfg.hidden_size
        embed = self.w("model.embed_tokens.weight", (cfg.vocab_size, H))
        h = embed[ids].astype(nm.dtype)
        cos, sin = rope_cos_sin(cfg, np.arange(len(ids)))
        cos, sin = nm.rx(cos), nm.rx(sin)
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}."
            x = rms_norm(h, self.w(p + "input_layernorm.weight", (H,)), cfg.rms_norm_eps, nm)
            h = nm.r(h + self.attention(i, x, cos, sin))
            x = rms_norm(h, self.w(p + "post_attention_layernorm.weight", (H,)), cfg.rms_norm_eps, nm)
            if cfg.is_moe_layer(i):
                m = self.moe(i, x, trace)
            else:
                m = self.mlp(p + "mlp.", x, cfg.intermediate_size)
            h = nm.r(h + m)
        h = rms_norm(h, self.w("model.norm.weight", (H,)), cfg.rms_norm_eps, nm)
        head = embed if cfg.tie_word_embeddings else self.w("lm_head.weight", (cfg.vocab_size, H))
        return linear(h, head, None, nm)


def forward(model_dir, ids, dtype="float64", trace=None):
    """Logits [n, vocab] (float64 for dtype float64, else float32): row i is the output after token i."""
    return Model(model_dir, dtype).forward(ids, trace)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    ap.add_argument("--ids", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True, help="output .npy, [n, vocab]")
    ap.add_argument("--dtype", default="float64", choices=list(Numerics.MODES))
    a = ap.parse_args(argv)
    try:
        ids = [int(t) for t in a.ids.split(",") if t.strip()]
        logits = forward(a.model, ids, a.dtype)
    except (ValueError, OSError, KeyError) as e:
        print(f"qwen3_ref: {e}", file=sys.stderr)
        return 1
    np.save(a.out, logits.astype(np.float64 if a.dtype == "float64" else np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
