#!/usr/bin/python3
"""Shows that the numpy reference (qwen3_ref.py) is right, independently of opdev.

Hand computations (RMSNorm, rotary pairing and sign, YaRN frequencies from the formula, MoE routing with
ties, 1-layer models whose logits follow from a few lines of arithmetic), exact bf16 decoding,
invariances (causality, prefix consistency, GQA == MHA with duplicated heads, tied == untied with a
copied head, sharded == single file) and the float32 / float64 agreement. Plain unittest, no pytest.

    /usr/bin/python3 tests/model/reference/test_reference.py -v
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_synthetic as ms  # noqa: E402
import qwen3_ref as q  # noqa: E402
import safetensors_np as st  # noqa: E402

SQ2 = math.sqrt(2.0)


def cfg_of(**kw):
    return q.Config(dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", **kw))


def load_json(path):
    with open(path) as f:
        return json.load(f)


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def write_model(d, config, weights, dtype="F32"):
    os.makedirs(d, exist_ok=True)
    save_json(os.path.join(d, "config.json"), config)
    st.save(os.path.join(d, "model.safetensors"), weights, dtype)


def rn(x, eps=0.0):
    """RMS normalisation written out: x / sqrt(mean(x^2) + eps)."""
    x = np.asarray(x, dtype=np.float64)
    return x / math.sqrt(float(np.sum(x * x)) / len(x) + eps)


def rot(v, theta):
    """2-D rotation by theta (the rotary embedding of one NeoX pair)."""
    c, s = math.cos(theta), math.sin(theta)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def silu(z):
    return z / (1.0 + math.exp(-z))


class SafetensorsTest(unittest.TestCase):
    def test_hand_built_file(self):
        # A file assembled byte by byte: BF16 [1.0, -2.5] = 0x3F80, 0xC020; F16 [0.5] = 0x3800;
        # F32 [3.0] = 0x40400000.
        header = {"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
                  "b": {"dtype": "F16", "shape": [1, 1], "data_offsets": [4, 6]},
                  "c": {"dtype": "F32", "shape": [], "data_offsets": [6, 10]}}
        hb = json.dumps(header).encode()
        data = struct.pack("<HHHI", 0x3F80, 0xC020, 0x3800, 0x40400000)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            with open(p, "wb") as f:
                f.write(struct.pack("<Q", len(hb)) + hb + data)
            f = st.SafetensorsFile(p)
            self.assertEqual(f.get("a").tolist(), [1.0, -2.5])
            self.assertEqual(f.get("b").tolist(), [[0.5]])
            self.assertEqual(float(f.get("c")), 3.0)
            self.assertEqual(f.raw("a").tolist(), [0x3F80, 0xC020])

    def test_bf16_rounding_nearest_even(self):
        # bf16 keeps 7 fraction bits: the spacing at 1 is 2^-7.
        x = np.array([1.0, 1 + 2**-7, 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8 + 2**-20), 65504.0, 2.0**-133],
                     dtype=np.float32)
        want = [1.0, 1 + 2**-7, 1.0, 1 + 2**-6, -(1 + 2**-7), 65536.0, 2.0**-133]
        self.assertEqual(st.bf16_bits_to_f32(st.f32_to_bf16_bits(x)).tolist(), want)
        self.assertEqual(st.f32_to_bf16_bits(np.array([1.0, -2.5], np.float32)).tolist(), [0x3F80, 0xC020])
        self.assertTrue(np.isnan(st.round_to_bf16(np.array([np.nan]))[0]))
        self.assertEqual(st.round_to_bf16(np.array([np.inf]))[0], np.inf)

    def test_roundtrip_and_exact_decode(self):
        rng = np.random.default_rng(1)
        a = rng.standard_normal((5, 7))
        with tempfile.TemporaryDirectory() as d:
            for dt, tol in (("F32", 2**-24), ("F16", 2**-11), ("BF16", 2**-8)):
                p = os.path.join(d, dt + ".safetensors")
                st.save(p, {"w": a}, dt)
                got = st.SafetensorsFile(p).get("w")
                self.assertEqual(got.dtype, np.float64)
                self.assertLessEqual(np.max(np.abs(got - a) / np.abs(a)), tol)
                # Decoding is exact: float64 of the stored value equals the float32 widening of it.
                self.assertTrue(np.array_equal(got, st.SafetensorsFile(p).get("w", np.float32)))

    def test_bad_files_are_rejected(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            st.save(p, {"w": np.ones((4, 4))}, "F32")
            with open(p, "rb") as f:
                raw = f.read()
            for name, blob in (("short", raw[:5]), ("truncated data", raw[:-8]),
                               ("huge header", struct.pack("<Q", 1 << 60) + raw[8:]),
                               ("not json", raw[:8] + b"{" * (len(raw) - 8))):
                with open(p, "wb") as f:
                    f.write(blob)
                with self.assertRaises(st.SafetensorsError, msg=name):
                    st.SafetensorsFile(p)


class NormRopeTest(unittest.TestCase):
    nm = q.Numerics("float64")

    def test_rms_norm(self):
        # mean(3^2, 4^2) = 12.5; 3 / sqrt(12.5) = 0.848528..., 2 * 4 / sqrt(12.5) = 2.262741...
        got = q.rms_norm(np.array([3.0, 4.0]), np.array([1.0, 2.0]), 0.0, self.nm)
        np.testing.assert_allclose(got, [0.8485281374238570, 2.2627416997969520], rtol=1e-15)
        # eps enters under the root: ones / sqrt(1 + 1).
        got = q.rms_norm(np.ones(4), np.ones(4), 1.0, self.nm)
        np.testing.assert_allclose(got, [1 / SQ2] * 4, rtol=1e-15)

    def test_default_inv_freq_and_rotation(self):
        c = cfg_of(hidden_size=8, num_attention_heads=2, head_dim=4, rope_theta=100.0)
        inv, af = q.rope_parameters(c)
        np.testing.assert_allclose(inv, [1.0, 0.1], rtol=1e-15)  # 100^(-0/4), 100^(-2/4)
        self.assertEqual(af, 1.0)
        cos, sin = q.rope_cos_sin(c, [0, 1, 2])
        # NeoX: dims (0, 2) rotate by p * 1 rad, dims (1, 3) by p * 0.1 rad; x0' = x0 cos - x2 sin.
        x = np.array([[[1.0, 0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0, 0.0]], [[0.0, 1.0, 0.0, 2.0]]])
        y = q.apply_rope(x, cos, sin)
        np.testing.assert_allclose(y[0, 0], [1, 0, 0, 0], atol=1e-15)
        np.testing.assert_allclose(y[1, 0], [math.cos(1), 0, math.sin(1), 0], atol=1e-15)
        np.testing.assert_allclose(y[2, 0], [0, math.cos(0.2) - 2 * math.sin(0.2), 0,
                                             math.sin(0.2) + 2 * math.cos(0.2)], atol=1e-15)

    def test_linear(self):
        c = cfg_of(hidden_size=8, num_attention_heads=2, head_dim=4, rope_theta=100.0,
                   rope_scaling={"type": "linear", "factor": 4.0})
        inv, af = q.rope_parameters(c)
        np.testing.assert_allclose(inv, [0.25, 0.025], rtol=1e-15)
        self.assertEqual(af, 1.0)

    def test_yarn_truncated(self):
        # head_dim 32, theta 1e4, original context 4096, factor 16384 / 4096 = 4.
        # low  = floor(32 ln(4096 / (32 2 pi)) / (2 ln 1e4)) = floor(5.236) = 5
        # high = ceil (32 ln(4096 / ( 1 2 pi)) / (2 ln 1e4)) = ceil(11.257) = 12
        self.assertEqual(q.yarn_correction_range(32, 1, 32, 1e4, 4096, True), (5, 12))
        c = cfg_of(hidden_size=64, num_attention_heads=2, head_dim=32, rope_theta=1e4,
                   max_position_embeddings=16384,
                   rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096})
        inv, af = q.rope_parameters(c)
        self.assertAlmostEqual(af, 1 + 0.1 * math.log(4), places=15)
        # i < 5 extrapolates: inv = 1e4^(-2i/32); i = 0 -> 1, i = 4 -> 1e4^-0.25 = 0.1.
        self.assertAlmostEqual(inv[0], 1.0, places=15)
        self.assertAlmostEqual(inv[4], 0.1, places=15)
        # i = 8: ramp (8 - 5) / 7 = 3/7 interpolated: 1e4^-0.5 (3/7 / 4 + 4/7) = 0.01 * 19/28.
        self.assertAlmostEqual(inv[8], 0.01 * 19 / 28, places=15)
        # i >= 12 interpolates fully: i = 15 -> 1e4^(-30/32) / 4 = 10^-3.75 / 4.
        self.assertAlmostEqual(inv[15] / (10**-3.75 / 4), 1.0, places=13)
        # The attention factor multiplies cos and sin: position 0 gives cos = af, sin = 0.
        cos, sin = q.rope_cos_sin(c, [0, 2])
        np.testing.assert_allclose(cos[0], [af] * 32, rtol=1e-15)
        np.testing.assert_allclose(sin[1, [0, 16]], [af * math.sin(2.0)] * 2, rtol=1e-14)

    def test_yarn_factor_from_max_positions(self):
        # transformers 4.5x: with original_max_position_embeddings the factor is max / original (4 here,
        # not the configured 2), in both the frequencies and the attention factor.
        c = cfg_of(hidden_size=64, num_attention_heads=2, head_dim=32, rope_theta=1e4,
                   max_position_embeddings=16384,
                   rope_scaling={"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 4096})
        inv, af = q.rope_parameters(c)
        self.assertAlmostEqual(inv[15] / (10**-3.75 / 4), 1.0, places=13)
        self.assertAlmostEqual(af, 1 + 0.1 * math.log(4), places=15)

    def test_yarn_mscale_untruncated(self):
        # No original_max_position_embeddings: the ramp uses max_position_embeddings = 2048, factor 8.
        c = cfg_of(hidden_size=64, num_attention_heads=4, head_dim=16, rope_theta=1e4,
                   max_position_embeddings=2048,
                   rope_scaling={"rope_type": "yarn", "factor": 8.0, "mscale": 1.0, "mscale_all_dim": 0.5,
                                 "truncate": False})
        inv, af = q.rope_parameters(c)
        # (1 + 0.1 ln 8) / (1 + 0.05 ln 8) = 1.2079442 / 1.1039721
        self.assertAlmostEqual(af, 1.0941799, places=6)
        low = 16 * math.log(2048 / (32 * 2 * math.pi)) / (2 * math.log(1e4))   # 2.0160
        high = 16 * math.log(2048 / (1 * 2 * math.pi)) / (2 * math.log(1e4))   # 5.0263
        self.assertAlmostEqual(low, 2.0160, places=4)
        self.assertAlmostEqual(high, 5.0263, places=4)
        for i in (2, 3, 5):
            base = 1e4 ** (-2 * i / 16)
            ramp = min(max((i - low) / (high - low), 0.0), 1.0)
            self.assertAlmostEqual(inv[i] / (base * (ramp / 8 + (1 - ramp))), 1.0, places=13)
        self.assertAlmostEqual(inv[2] / 1e4 ** -0.25, 1.0, places=13)  # ramp 0 (2 < 2.016)

    def test_yarn_zero_width_ramp(self):
        # original context 6 < 2 pi: both correction dims are <= 0, so low == high == 0 and HF widens
        # the ramp to [0, 0.001]: only pair 0 extrapolates. factor = 24 / 6 = 4.
        self.assertEqual(q.yarn_correction_range(32, 1, 8, 1e4, 6, True), (0, 0))
        c = cfg_of(hidden_size=64, num_attention_heads=8, head_dim=8, rope_theta=1e4, max_position_embeddings=24,
                   rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 6})
        inv, _ = q.rope_parameters(c)
        np.testing.assert_allclose(inv, [1.0, 0.1 / 4, 0.01 / 4, 0.001 / 4], rtol=1e-14)

    def test_unsupported_rope(self):
        c = cfg_of(hidden_size=8, num_attention_heads=2, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
        with self.assertRaises(ValueError):
            q.rope_parameters(c)


class MoeRoutingTest(unittest.TestCase):
    def test_route_with_ties(self):
        e = math.e
        sel, w = q.route(np.array([[1.0, 3.0, 3.0, 0.0],     # tie for first place: 1 before 2
                                   [2.0, 1.0, 2.0, 2.0],     # three-way tie: 0 and 2 win, 3 loses
                                   [0.0, 0.0, 0.0, 5.0]]), 2, False)
        self.assertEqual(sel.tolist(), [[1, 2], [0, 2], [3, 0]])
        z0 = e + 2 * e**3 + 1
        np.testing.assert_allclose(w[0], [e**3 / z0, e**3 / z0], rtol=1e-15)
        z1 = 3 * e**2 + e
        np.testing.assert_allclose(w[1], [e**2 / z1, e**2 / z1], rtol=1e-15)
        _, wn = q.route(np.array([[2.0, 1.0, 2.0, 2.0], [0.0, math.log(3), 0.0, 0.0]]), 2, True)
        np.testing.assert_allclose(wn, [[0.5, 0.5], [0.75, 0.25]], rtol=1e-15)

    def test_moe_layer_rule(self):
        base = dict(architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", num_hidden_layers=4,
                    hidden_size=8, num_attention_heads=2, num_key_value_heads=2, num_experts=4)
        c = q.Config(dict(base, decoder_sparse_step=2))
        self.assertEqual([c.is_moe_layer(i) for i in range(4)], [False, True, False, True])
        c = q.Config(dict(base, decoder_sparse_step=1, mlp_only_layers=[1]))
        self.assertEqual([c.is_moe_layer(i) for i in range(4)], [True, False, True, True])
        c = q.Config(dict(base, num_experts=0))
        self.assertEqual([c.is_moe_layer(i) for i in range(4)], [False] * 4)


class HandModelTest(unittest.TestCase):
    """1-layer models with weights simple enough to derive the logits on paper."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.eps = 1e-12

    def config(self, **kw):
        c = dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=3, hidden_size=2,
                 intermediate_size=1, num_hidden_layers=1, num_attention_heads=1, num_key_value_heads=1,
                 head_dim=2, rms_norm_eps=self.eps, rope_theta=10000.0, tie_word_embeddings=False,
                 max_position_embeddings=32)
        c.update(kw)
        return c

    def common(self):
        I2 = np.eye(2)
        return {"model.embed_tokens.weight": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                "model.layers.0.input_layernorm.weight": np.ones(2),
                "model.layers.0.post_attention_layernorm.weight": np.ones(2),
                "model.layers.0.self_attn.q_proj.weight": I2,
                "model.layers.0.self_attn.k_proj.weight": I2,
                "model.layers.0.self_attn.v_proj.weight": I2,
                "model.layers.0.self_attn.o_proj.weight": I2,
                "model.layers.0.self_attn.q_norm.weight": np.ones(2),
                "model.layers.0.self_attn.k_norm.weight": np.ones(2),
                "model.norm.weight": np.array([1.0, 2.0]),
                "lm_head.weight": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])}

    def test_dense(self):
        # head_dim 4 != hidden 2: q/k/v_proj stack the input twice, [x0, x1, x0, x1]; o_proj averages the
        # two copies back. q_norm / k_norm weights differ from 1. rope_theta 1e4 -> inv_freq [1, 0.01]:
        # pair (0, 2) turns by p radians, pair (1, 3) by 0.01 p. Scores scale by 4^-0.5 (not hidden^-0.5).
        w = self.common()
        dup = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
        a = "model.layers.0.self_attn."
        w[a + "q_proj.weight"] = w[a + "k_proj.weight"] = w[a + "v_proj.weight"] = dup
        w[a + "o_proj.weight"] = 0.5 * dup.T
        wq, wk = np.array([2.0, 1.0, 1.0, 0.5]), np.array([1.0, 0.5, 2.0, 1.0])
        w[a + "q_norm.weight"], w[a + "k_norm.weight"] = wq, wk
        w["model.layers.0.mlp.gate_proj.weight"] = np.array([[1.0, 0.0]])
        w["model.layers.0.mlp.up_proj.weight"] = np.array([[0.0, 1.0]])
        w["model.layers.0.mlp.down_proj.weight"] = np.array([[1.0], [0.0]])
        d = os.path.join(self.tmp.name, "dense")
        write_model(d, self.config(head_dim=4), w)
        ids = [0, 1, 2]
        got = q.forward(d, ids)

        E = w["model.embed_tokens.weight"]
        n = [rn(E[t]) for t in ids]                        # input norm (rms 1 already for [1,0], [0,1])

        def rope4(v, p):                                   # NeoX pairs (0, 2) and (1, 3)
            a02, a13 = rot([v[0], v[2]], p * 1.0), rot([v[1], v[3]], p * 0.01)
            return np.array([a02[0], a13[0], a02[1], a13[1]])
        qs = [rope4(wq * rn(np.tile(n[p], 2)), p) for p in range(3)]
        ks = [rope4(wk * rn(np.tile(n[p], 2)), p) for p in range(3)]
        want = []
        for i in range(3):
            s = [qs[i] @ ks[j] / 2.0 for j in range(i + 1)]  # causal, head_dim^-0.5 = 1/2
            p = np.exp(s) / np.sum(np.exp(s))
            att = sum(p[j] * n[j] for j in range(i + 1))    # o_proj(v) = n
            h = E[ids[i]] + att
            x = rn(h)
            h = h + np.array([silu(x[0]) * x[1], 0.0])      # down(silu(gate x) * up x)
            y = np.array([1.0, 2.0]) * rn(h)
            want.append([y[0], y[1], y[0] - y[1]])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)

    def test_moe(self):
        # Attention off (o_proj = 0), so the MoE sees rn(embedding). Token 2 = [1, 1] -> x = [1, 1].
        # Router rows give logits [1, 0.5, 0.5, -1]: expert 0 first, then a tie of experts 1 and 2 that
        # goes to 1. Expert e computes [c_e silu(x0) x1, 0] with c = [1, 2, 3, 4].
        w = self.common()
        w["model.layers.0.self_attn.o_proj.weight"] = np.zeros((2, 2))
        w["model.layers.0.mlp.gate.weight"] = np.array([[1.0, 0.0], [0.0, 0.5], [0.5, 0.0], [-1.0, 0.0]])
        for e in range(4):
            p = f"model.layers.0.mlp.experts.{e}."
            w[p + "gate_proj.weight"] = np.array([[1.0, 0.0]])
            w[p + "up_proj.weight"] = np.array([[0.0, 1.0]])
            w[p + "down_proj.weight"] = np.array([[e + 1.0], [0.0]])
        cfg = self.config(architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", num_experts=4,
                          num_experts_per_tok=2, moe_intermediate_size=1, decoder_sparse_step=1,
                          mlp_only_layers=[])
        for norm_topk in (False, True):
            d = os.path.join(self.tmp.name, f"moe{norm_topk}")
            write_model(d, dict(cfg, norm_topk_prob=norm_topk), w)
            trace = {}
            got = q.forward(d, [2], trace=trace)
            self.assertEqual(trace["selected"][0].tolist(), [[0, 1]])
            e = math.e
            z = e + 2 * e**0.5 + e**-1
            w0, w1 = e / z, e**0.5 / z
            if norm_topk:
                w0, w1 = w0 / (w0 + w1), w1 / (w0 + w1)
            h = np.array([1.0, 1.0]) + np.array([(w0 * 1 + w1 * 2) * silu(1.0), 0.0])
            y = np.array([1.0, 2.0]) * rn(h)
            np.testing.assert_allclose(got, [[y[0], y[1], y[0] - y[1]]], rtol=1e-12, atol=1e-12)

    def test_attention_bias(self):
        # Biases: q/k get zero bias, v gets [1, 0], o gets [0, 1]; with one token attention is v itself.
        w = self.common()
        w["model.layers.0.mlp.gate_proj.weight"] = np.zeros((1, 2))
        w["model.layers.0.mlp.up_proj.weight"] = np.zeros((1, 2))
        w["model.layers.0.mlp.down_proj.weight"] = np.zeros((2, 1))
        for k, b in (("q", [0, 0]), ("k", [0, 0]), ("v", [1, 0]), ("o", [0, 1])):
            w[f"model.layers.0.self_attn.{k}_proj.bias"] = np.array(b, dtype=np.float64)
        d = os.path.join(self.tmp.name, "bias")
        write_model(d, self.config(attention_bias=True), w)
        got = q.forward(d, [0])
        h = np.array([1.0, 0.0]) + (rn([1.0, 0.0]) + [1, 0]) + [0, 1]
        y = np.array([1.0, 2.0]) * rn(h)
        np.testing.assert_allclose(got, [[y[0], y[1], y[0] - y[1]]], rtol=1e-12)


class InvarianceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dirs = {}
        for v in ms.VARIANTS:
            cls.dirs[v] = os.path.join(cls.tmp.name, v)
            ms.make(cls.dirs[v], v)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ids(self, n=10, seed=0):
        return np.random.default_rng(seed).integers(0, 1000, n)

    def test_magnitudes(self):
        # Activations O(1): logits neither vanish nor blow up, and differ across positions and tokens.
        for v, d in self.dirs.items():
            lg = q.forward(d, self.ids())
            self.assertTrue(np.all(np.isfinite(lg)), v)
            self.assertGreater(np.abs(lg).max(), 2.0, v)
            self.assertLess(np.abs(lg).max(), 30.0, v)
            self.assertGreater(lg.std(axis=1).min(), 0.3, v)
            self.assertGreater(np.abs(lg[1] - lg[2]).max(), 0.1, v)

    def test_causality_and_prefix(self):
        for v in ("dense", "moe", "moe_step2_tied_bias_yarn"):
            m = q.Model(self.dirs[v])
            ids = self.ids(12, 1)
            full = m.forward(ids)
            for i in (0, 4, 10):
                other = ids.copy()
                other[i + 1:] = (other[i + 1:] + 7) % 1000
                changed = m.forward(other)
                np.testing.assert_allclose(changed[:i + 1], full[:i + 1], rtol=0, atol=1e-12, err_msg=v)
                self.assertGreater(np.abs(changed[i + 1:] - full[i + 1:]).max(), 1e-3, v)
                np.testing.assert_allclose(m.forward(ids[:i + 1]), full[:i + 1], rtol=0, atol=1e-12)

    def test_gqa_equals_duplicated_mha(self):
        # repeat_kv: kv head j serves query heads j * rep ... j * rep + rep - 1. Duplicating k_proj / v_proj
        # rows that way into an MHA checkpoint must not change anything.
        src = st.Checkpoint(self.dirs["dense"])
        cfg = load_json(os.path.join(self.dirs["dense"], "config.json"))
        hq, hk, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        w = {k: src.get(k) for k in src.keys()}
        for k in list(w):
            if k.endswith(("k_proj.weight", "v_proj.weight")):
                w[k] = np.repeat(w[k].reshape(hk, d, -1), hq // hk, axis=0).reshape(hq * d, -1)
        dst = os.path.join(self.tmp.name, "mha")
        write_model(dst, dict(cfg, num_key_value_heads=hq), w)
        ids = self.ids()
        np.testing.assert_allclose(q.forward(dst, ids), q.forward(self.dirs["dense"], ids), rtol=0, atol=1e-12)

    def test_tied_equals_copied_head(self):
        src = st.Checkpoint(self.dirs["dense_tied_bias_linear"])
        cfg = load_json(os.path.join(self.dirs["dense_tied_bias_linear"], "config.json"))
        w = {k: src.get(k) for k in src.keys()}
        self.assertNotIn("lm_head.weight", w)
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
        dst = os.path.join(self.tmp.name, "untied")
        write_model(dst, dict(cfg, tie_word_embeddings=False), w)
        ids = self.ids()
        np.testing.assert_allclose(q.forward(dst, ids), q.forward(self.dirs["dense_tied_bias_linear"], ids),
                                   rtol=0, atol=1e-12)

    def test_sharded_equals_single(self):
        src = st.Checkpoint(self.dirs["moe"])
        names = sorted(src.keys())
        dst = os.path.join(self.tmp.name, "sharded")
        os.makedirs(dst)
        save_json(os.path.join(dst, "config.json"), load_json(os.path.join(self.dirs["moe"], "config.json")))
        wm = {}
        for s, part in enumerate((names[::2], names[1::2])):
            fn = f"model-0000{s + 1}-of-00002.safetensors"
            st.save(os.path.join(dst, fn), {k: src.get(k) for k in part}, "BF16")
            wm.update({k: fn for k in part})
        save_json(os.path.join(dst, "model.safetensors.index.json"), {"metadata": {}, "weight_map": wm})
        ids = self.ids()
        self.assertTrue(np.array_equal(q.forward(dst, ids), q.forward(self.dirs["moe"], ids)))

    def test_float32_close_to_float64(self):
        for v, d in self.dirs.items():
            ids = self.ids()
            a, b = q.forward(d, ids), q.forward(d, ids, "float32")
            self.assertEqual(b.dtype, np.float32)
            self.assertLess(np.abs(a - b).max() / np.abs(a).max(), 1e-5, v)

    def test_cli(self):
        out = os.path.join(self.tmp.name, "cli.npy")
        r = subprocess.run([sys.executable, os.path.join(HERE, "qwen3_ref.py"), "--model", self.dirs["moe"],
                            "--ids", "5,6,7", "--out", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(np.array_equal(np.load(out), q.forward(self.dirs["moe"], [5, 6, 7])))
        r = subprocess.run([sys.executable, os.path.join(HERE, "qwen3_ref.py"), "--model", self.dirs["moe"],
                            "--ids", "5,1000", "--out", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ids must lie in [0, 1000)", r.stderr)

    def test_shape_mismatch_is_named(self):
        # config.json claiming a different head_dim than the tensors have: an error naming the tensor.
        dst = os.path.join(self.tmp.name, "badshape")
        os.makedirs(dst)
        cfg = load_json(os.path.join(self.dirs["dense"], "config.json"))
        save_json(os.path.join(dst, "config.json"), dict(cfg, head_dim=16))
        os.link(os.path.join(self.dirs["dense"], "model.safetensors"), os.path.join(dst, "model.safetensors"))
        with self.assertRaisesRegex(ValueError, r"model.layers.0.self_attn.q_proj.weight' has shape \[64, 64\], "
                                                r"config.json implies \[128, 64\]"):
            q.forward(dst, [1, 2])


if __name__ == "__main__":
    unittest.main()
