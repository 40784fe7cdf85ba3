#!/usr/bin/python3
"""Small synthetic Hugging Face Qwen3 / Qwen3-MoE checkpoints, written with numpy.

Independent of opdev's `make-model`: config.json (architectures, model_type and every field the
transformers config classes save), generation_config.json and model.safetensors (BF16 by default, F16
or F32), no tokenizer files. Weights are deterministic (seeded from the variant name) and scaled so
activations stay O(1): projections ~ N(0, 1/fan_in), norm weights 1 + 0.1 N(0, 1), biases 0.1 N(0, 1).

    make_synthetic.py --list
    make_synthetic.py --variant moe --out DIR [--dtype BF16|F16|F32] [--set key=json ...]
"""
import argparse
import json
import os
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

TORCH_DTYPE = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}

_DENSE = dict(
    architectures=["Qwen3ForCausalLM"], model_type="qwen3",
    vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
    num_attention_heads=8, num_key_value_heads=2, head_dim=8, hidden_act="silu",
    max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
    tie_word_embeddings=False, attention_bias=False, attention_dropout=0.0, initializer_range=0.02,
    use_cache=True, use_sliding_window=False, sliding_window=None, max_window_layers=3,
    bos_token_id=1, eos_token_id=2, transformers_version="4.51.0",
)

_MOE = dict(_DENSE, architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", num_hidden_layers=4,
            intermediate_size=96, head_dim=16, decoder_sparse_step=1, moe_intermediate_size=32,
            num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, mlp_only_layers=[1],
            output_router_logits=False, router_aux_loss_coef=0.001, rope_theta=1000000.0)
del _MOE["max_window_layers"]  # a Qwen3 (dense) field

# The test matrix. Together: dense and MoE, 3-4 layers, GQA (8 q / 2 kv) and MHA, head_dim equal to and
# different from hidden / heads, tied and untied embeddings, attention_bias on and off, default /
# linear / yarn rotary (yarn: original_max_position_embeddings with truncation, mscale / mscale_all_dim
# without truncation, an explicit attention_factor), decoder_sparse_step 1 and 2, mlp_only_layers [1],
# norm_topk_prob on and off, rms_norm_eps 1e-6 and 1e-2, BF16 / F16 / F32 storage.
VARIANTS = {
    "dense": (dict(_DENSE), "BF16"),
    "dense_tied_bias_linear": (dict(_DENSE, tie_word_embeddings=True, attention_bias=True, head_dim=16,
                                    rope_scaling={"rope_type": "linear", "factor": 2.0}), "BF16"),
    # transformers 4.5x uses max_position_embeddings / original_max_position_embeddings = 2.5 as the YaRN
    # factor here, not the configured 4.0 (as Qwen3's own config.json + the documented rope_scaling does).
    "dense_yarn_f32": (dict(_DENSE, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                            max_position_embeddings=10240,
                            rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                          "original_max_position_embeddings": 4096}), "F32"),
    # A large rms_norm_eps makes where eps enters visible at the float32 bound. An original context of 6
    # (< 2 pi) puts both YaRN correction dims at 0: HF's min == max rule widens the ramp by 0.001
    # (without it 0 / 0 at pair 0).
    "dense_mha_yarn_af_f16": (dict(_DENSE, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                                   max_position_embeddings=24, rms_norm_eps=0.01,
                                   rope_scaling={"type": "yarn", "factor": 4.0, "attention_factor": 0.9,
                                                 "beta_fast": 16, "beta_slow": 2,
                                                 "original_max_position_embeddings": 6}), "F16"),
    "moe": (dict(_MOE), "BF16"),
    "moe_step2_tied_bias_yarn": (dict(_MOE, decoder_sparse_step=2, mlp_only_layers=[], norm_topk_prob=False,
                                      tie_word_embeddings=True, attention_bias=True, rope_theta=10000.0,
                                      max_position_embeddings=2048,
                                      rope_scaling={"rope_type": "yarn", "factor": 8.0, "mscale": 1.0,
                                                    "mscale_all_dim": 0.5, "truncate": False}), "BF16"),
}


def _seed(name):
    return zlib.crc32(name.encode("utf-8"))


def make_weights(cfg, seed):
    """{tensor name: float64 array} for cfg (a config.json dict)."""
    rng = np.random.default_rng(seed)
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    hq, hk = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or H // hq
    moe = cfg["model_type"] == "qwen3_moe"

    def lin(n_out, n_in, scale=1.0):
        return rng.standard_normal((n_out, n_in)) * (scale / np.sqrt(n_in))

    def norm(n):
        return 1.0 + 0.1 * rng.standard_normal(n)

    def mlp(prefix, inter):
        w[prefix + "gate_proj.weight"] = lin(inter, H)
        w[prefix + "up_proj.weight"] = lin(inter, H)
        w[prefix + "down_proj.weight"] = lin(H, inter)

    w = {}
    # Tied: the embedding doubles as the output head, so a smaller scale keeps the logits O(1).
    w["model.embed_tokens.weight"] = rng.standard_normal((V, H)) * (0.3 if cfg["tie_word_embeddings"] else 1.0)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        a = p + "self_attn."
        w[a + "q_proj.weight"] = lin(hq * d, H)
        w[a + "k_proj.weight"] = lin(hk * d, H)
        w[a + "v_proj.weight"] = lin(hk * d, H)
        w[a + "o_proj.weight"] = lin(H, hq * d)
        if cfg["attention_bias"]:
            for nm_, n in (("q", hq * d), ("k", hk * d), ("v", hk * d), ("o", H)):
                w[a + nm_ + "_proj.bias"] = 0.1 * rng.standard_normal(n)
        w[a + "q_norm.weight"] = norm(d)
        w[a + "k_norm.weight"] = norm(d)
        sparse = (moe and i not in cfg["mlp_only_layers"] and cfg["num_experts"] > 0
                  and (i + 1) % cfg["decoder_sparse_step"] == 0)
        if sparse:
            # A wider router spreads the expert scores, so near-ties (which bf16 noise can flip) are rare.
            w[p + "mlp.gate.weight"] = lin(cfg["num_experts"], H, 2.0)
            for e in range(cfg["num_experts"]):
                mlp(f"{p}mlp.experts.{e}.", cfg["moe_intermediate_size"])
        else:
            mlp(p + "mlp.", cfg["intermediate_size"])
    w["model.norm.weight"] = norm(H)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = lin(V, H)
    return w


def make(out_dir, variant="dense", dtype=None, overrides=None, seed=None):
    """Writes the checkpoint of `variant` (with config overrides) into out_dir; returns the config dict."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    cfg, default_dtype = VARIANTS[variant]
    cfg = json.loads(json.dumps(cfg))  # deep copy
    cfg.update(overrides or {})
    dtype = dtype or default_dtype
    if dtype not in TORCH_DTYPE:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(TORCH_DTYPE)}")
    cfg["torch_dtype"] = TORCH_DTYPE[dtype]
    os.makedirs(out_dir, exist_ok=True)
    weights = make_weights(cfg, _seed(variant) if seed is None else seed)
    st.save(os.path.join(out_dir, "model.safetensors"), weights, dtype, metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    gen = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": [cfg["eos_token_id"]], "do_sample": True,
           "temperature": 0.6, "top_k": 20, "top_p": 0.95, "transformers_version": cfg["transformers_version"]}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="list the variants")
    ap.add_argument("--variant", default="dense")
    ap.add_argument("--out")
    ap.add_argument("--dtype", choices=sorted(TORCH_DTYPE), help="storage dtype (default: the variant's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="config override")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args(argv)
    if a.list:
        for k, (c, dt) in VARIANTS.items():
            print(f"{k:28s} {c['architectures'][0]:20s} {dt}")
        return 0
    if not a.out:
        ap.error("--out is required")
    overrides = {}
    for s in a.set:
        k, _, v = s.partition("=")
        overrides[k] = json.loads(v)
    make(a.out, a.variant, a.dtype, overrides, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
