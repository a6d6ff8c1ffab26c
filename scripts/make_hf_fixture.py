#!/usr/bin/env python3
"""Writes a small random EmbeddingGemma folder in the Hugging Face
sentence-transformers layout (the layout of google/embeddinggemma-300m), for
tests that must not need the real weights.

    .venv/bin/python scripts/make_hf_fixture.py OUT_DIR --tokenizer-dir ../shared/gemma3-tokenizer \
        [--seed 7] [--hidden 64] [--layers 6] [--heads 2] [--kv-heads 1] [--head-dim 32] [--ff 128] \
        [--dense 128 | --no-dense] [--window 64] [--dtype f32|bf16|f16] [--shards N] [--prefix]

Files: config.json (Gemma3TextConfig fields as the real one has them, with
use_bidirectional_attention, layer_types, query_pre_attn_scalar = head_dim),
model.safetensors (or N shards + model.safetensors.index.json; with --prefix
every name starts with "model."), modules.json, 1_Pooling/config.json,
2_Dense and 3_Dense (config.json + model.safetensors with linear.weight
[out, in]), sentence_bert_config.json, config_sentence_transformers.json (the
real prompt table), tokenizer.json (the shared Gemma3 one with EmbeddingGemma's
post-processor "<bos> $A <eos>") and tokenizer_config.json (add_bos_token /
add_eos_token true).

Weights come from numpy's PCG64 seeded with --seed, written with the
`safetensors` package (not gembed's writer). Norm weights are stored the HF
way, as w in x̂ * (1 + w). The tokenizer fixes the vocabulary (262,144 rows),
so the embedding table is 262,144 x hidden (64 MiB at hidden 64 in F32).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

PROMPTS = {
    "query": "task: search result | query: ",
    "document": "title: none | text: ",
    "BitextMining": "task: search result | query: ",
    "Clustering": "task: clustering | query: ",
    "Classification": "task: classification | query: ",
    "InstructionRetrieval": "task: code retrieval | query: ",
    "MultilabelClassification": "task: classification | query: ",
    "PairClassification": "task: sentence similarity | query: ",
    "Reranking": "task: search result | query: ",
    "Retrieval": "task: search result | query: ",
    "Retrieval-query": "task: search result | query: ",
    "Retrieval-document": "title: none | text: ",
    "STS": "task: sentence similarity | query: ",
    "Summarization": "task: summarization | query: ",
}


def write_json(path: pathlib.Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def to_dtype(a: np.ndarray, dtype: str):
    """numpy array -> (array for safetensors.numpy). bf16 is written as raw
    uint16 bits by the caller (numpy has no bfloat16)."""
    if dtype == "f32":
        return a.astype(np.float32)
    if dtype == "f16":
        return a.astype(np.float16)
    raise ValueError(dtype)


def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bit patterns (uint16)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = u + (0x7FFF + ((u >> 16) & 1))
    return (rounded >> 16).astype(np.uint16)


def save_tensors(path: pathlib.Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """Writes with the safetensors package. bf16 goes through the generic
    serializer with raw bytes, since numpy has no bfloat16."""
    from safetensors import serialize_file
    from safetensors.numpy import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    if dtype != "bf16":
        save_file({k: to_dtype(v, dtype) for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
        return
    data = {k: {"dtype": "bfloat16", "shape": list(v.shape), "data": f32_to_bf16_bits(v).tobytes()}
            for k, v in tensors.items()}
    serialize_file(data, str(path), metadata={"format": "pt"})


def make(out: pathlib.Path, tokenizer_dir: pathlib.Path, *, seed: int = 7, hidden: int = 64, layers: int = 6,
         heads: int = 2, kv_heads: int = 1, head_dim: int = 32, ff: int = 128, dense: int | None = 128,
         window: int = 64, dtype: str = "f32", shards: int = 1, prefix: bool = False,
         extra_prompts: dict | None = None) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    tok = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    # EmbeddingGemma's post-processor appends <eos> (the chat Gemma3 one does not).
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "<eos>", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<eos>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "<eos>", "type_id": 1}}],
        "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]},
                           "<eos>": {"id": "<eos>", "ids": [1], "tokens": ["<eos>"]}},
    }
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    write_json(out / "tokenizer_config.json", {"add_bos_token": True, "add_eos_token": True, "bos_token": "<bos>",
                                               "eos_token": "<eos>", "pad_token": "<pad>",
                                               "model_max_length": 2048, "padding_side": "right"})
    n_vocab = len(tok["model"]["vocab"])

    layer_types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(layers)]
    config = {
        "_sliding_window_pattern": 6,
        "architectures": ["Gemma3TextModel"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "bos_token_id": 2,
        "dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype],
        "eos_token_id": 1,
        "final_logit_softcapping": None,
        "head_dim": head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": ff,
        "layer_types": layer_types,
        "max_position_embeddings": 2048,
        "model_type": "gemma3_text",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "pad_token_id": 0,
        "query_pre_attn_scalar": head_dim,
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": window,
        "use_bidirectional_attention": True,
        "use_cache": True,
        "vocab_size": n_vocab,
    }
    write_json(out / "config.json", config)

    rng = np.random.Generator(np.random.PCG64(seed))

    def mat(n_out, n_in):
        return rng.standard_normal((n_out, n_in), dtype=np.float32) / np.float32(np.sqrt(n_in))

    def norm(n):  # HF stores w of x̂ * (1 + w)
        return (rng.standard_normal(n, dtype=np.float32) * np.float32(0.1)).astype(np.float32)

    p = "model." if prefix else ""
    tensors: dict[str, np.ndarray] = {
        f"{p}embed_tokens.weight": rng.standard_normal((n_vocab, hidden), dtype=np.float32) * np.float32(0.03)}
    q, kv = heads * head_dim, kv_heads * head_dim
    for i in range(layers):
        b = f"{p}layers.{i}."
        tensors[b + "input_layernorm.weight"] = norm(hidden)
        tensors[b + "self_attn.q_proj.weight"] = mat(q, hidden)
        tensors[b + "self_attn.k_proj.weight"] = mat(kv, hidden)
        tensors[b + "self_attn.v_proj.weight"] = mat(kv, hidden)
        tensors[b + "self_attn.q_norm.weight"] = norm(head_dim)
        tensors[b + "self_attn.k_norm.weight"] = norm(head_dim)
        tensors[b + "self_attn.o_proj.weight"] = mat(hidden, q)
        tensors[b + "post_attention_layernorm.weight"] = norm(hidden)
        tensors[b + "pre_feedforward_layernorm.weight"] = norm(hidden)
        tensors[b + "mlp.gate_proj.weight"] = mat(ff, hidden)
        tensors[b + "mlp.up_proj.weight"] = mat(ff, hidden)
        tensors[b + "mlp.down_proj.weight"] = mat(hidden, ff)
        tensors[b + "post_feedforward_layernorm.weight"] = norm(hidden)
    tensors[f"{p}norm.weight"] = norm(hidden)

    if shards <= 1:
        save_tensors(out / "model.safetensors", tensors, dtype)
    else:
        names = sorted(tensors)
        weight_map = {}
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[s::shards]}
            save_tensors(out / fname, part, dtype)
            weight_map.update({n: fname for n in part})
        bytes_per = {"f32": 4, "f16": 2, "bf16": 2}[dtype]
        write_json(out / "model.safetensors.index.json",
                   {"metadata": {"total_size": sum(v.size for v in tensors.values()) * bytes_per},
                    "weight_map": weight_map})

    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
    if dense:
        for idx, (name, n_in, n_out) in enumerate((("2_Dense", hidden, dense), ("3_Dense", dense, hidden)), start=2):
            modules.append({"idx": idx, "name": str(idx), "path": name, "type": "sentence_transformers.models.Dense"})
            write_json(out / name / "config.json", {"in_features": n_in, "out_features": n_out, "bias": False,
                                                    "activation_function": "torch.nn.modules.linear.Identity"})
            save_tensors(out / name / "model.safetensors", {"linear.weight": mat(n_out, n_in)}, dtype)
    modules.append({"idx": len(modules), "name": str(len(modules)), "path": f"{len(modules)}_Normalize",
                    "type": "sentence_transformers.models.Normalize"})
    write_json(out / "modules.json", modules)
    write_json(out / "sentence_bert_config.json", {"max_seq_length": 2048, "do_lower_case": False})
    prompts = dict(PROMPTS)
    prompts.update(extra_prompts or {})
    write_json(out / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer", "prompts": prompts, "default_prompt_name": None,
        "similarity_fn_name": "cosine"})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--tokenizer-dir", required=True, help="folder with the Gemma3 tokenizer.json")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--kv-heads", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--ff", type=int, default=128)
    ap.add_argument("--dense", type=int, default=128)
    ap.add_argument("--no-dense", action="store_true")
    ap.add_argument("--window", type=int, default=64, help="sliding_window as HF stores it (full width)")
    ap.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--prefix", action="store_true", help='tensor names start with "model."')
    a = ap.parse_args()
    make(pathlib.Path(a.out), pathlib.Path(a.tokenizer_dir), seed=a.seed, hidden=a.hidden, layers=a.layers,
         heads=a.heads, kv_heads=a.kv_heads, head_dim=a.head_dim, ff=a.ff, dense=None if a.no_dense else a.dense,
         window=a.window, dtype=a.dtype, shards=a.shards, prefix=a.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
