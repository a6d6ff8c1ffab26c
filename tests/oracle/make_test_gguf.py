#!/usr/bin/env python3
"""Writes a small synthetic `gemma-embedding` GGUF with gguf-py's GGUFWriter.

Why this exists: to validate the NumPy oracle (numpy_forward.py) against
llama.cpp independently of gembed (`gembed synth` is the project's generator;
this one is written separately so that a shared mistake is unlikely). It is a
test helper, not part of the engine.

The vocabulary is the real Gemma3 one (tokenizer.json + tokenizer_config.json),
laid out as llama.cpp's converter does (MODEL-SPEC §6.2): added tokens that are
special or look special (<mask>, <unused*>) → CONTROL, other added tokens →
USER_DEFINED with U+2581 written as ASCII spaces, <0xXX> → BYTE (score 0),
everything else NORMAL with score −(id − 494); added tokens score −1000.

Dimensions are free (defaults are small: 6 layers so that layer 5 is global,
3 query heads sharing 1 KV head, head_dim 64, q width ≠ n_embd on purpose).
The window is the real 512 (±256), so inputs > 257 tokens exercise it.

    python tests/oracle/make_test_gguf.py -o /tmp/t.gguf --tokenizer-dir ../shared/gemma3-tokenizer \
        [--type f32|f16|bf16|q8_0] [--seed 1] [--dense] [--n-embd 128 ...]
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import pathlib

import numpy as np
import gguf

ARCH = "gemma-embedding"

TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_BYTE = 1, 3, 4, 6


def looks_special(text: str) -> bool:
    # llama.cpp's converter (does_token_look_special) for Gemma: these added
    # tokens are not flagged special in tokenizer_config.json but are control.
    return (text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (text.startswith("<|") and text.endswith("|>"))
            or (text.startswith("<unused") and text.endswith(">")))


@functools.lru_cache(maxsize=2)
def _build_vocab_cached(tokenizer_dir: str):
    return build_vocab(pathlib.Path(tokenizer_dir))


def build_vocab(tokenizer_dir: pathlib.Path):
    tj = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tc = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    n = len(vocab)
    tokens = [""] * n
    for piece, i in vocab.items():
        tokens[i] = piece
    scores = np.array([-(i - 494.0) for i in range(n)], dtype=np.float32)
    types = np.full(n, TOKEN_NORMAL, dtype=np.int32)
    for i in range(n):
        t = tokens[i]
        if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types[i] = TOKEN_BYTE
            scores[i] = 0.0
    for sid, data in tc["added_tokens_decoder"].items():
        i = int(sid)
        if i >= n:
            continue  # <image_soft_token> (262144) is outside the embedding table
        text = data["content"]
        if data.get("special") or looks_special(text):
            types[i] = TOKEN_CONTROL
        else:
            text = text.replace("\u2581", " ")
            types[i] = TOKEN_USER_DEFINED
        scores[i] = -1000.0
        tokens[i] = text
    return tokens, scores, types


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--type", default="f32", choices=["f32", "f16", "bf16", "q8_0"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-ff", type=int, default=256)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--heads-kv", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--dense", action="store_true", help="add dense_2/dense_3 (n_embd→4n_embd→n_embd)")
    ap.add_argument("--swa", type=int, default=512, help="stored sliding_window (full width)")
    ap.add_argument("--quiet", action="store_true", help="do not print the output path")
    ap.add_argument("--vocab-size", type=int, default=0,
                    help="keep only the first N tokens (oracle-only files: gguf.GGUFReader is slow on 262k)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    tokens, scores, types = _build_vocab_cached(str(pathlib.Path(args.tokenizer_dir)))
    if args.vocab_size:
        tokens, scores, types = tokens[:args.vocab_size], scores[:args.vocab_size], types[:args.vocab_size]
    n_vocab = len(tokens)
    E, F, H, Hkv, D = args.n_embd, args.n_ff, args.heads, args.heads_kv, args.head_dim

    w = gguf.GGUFWriter(args.output, ARCH)
    w.add_context_length(2048)
    w.add_embedding_length(E)
    w.add_block_count(args.layers)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(Hkv)
    w.add_key_length(D)
    w.add_value_length(D)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_sliding_window(args.swa)
    w.add_rope_freq_base(1_000_000.0)
    w.add_float32(f"{ARCH}.rope.freq_base_swa", 10_000.0)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    ftype = {"f32": 0, "f16": 1, "bf16": 32, "q8_0": 7}[args.type]
    w.add_file_type(ftype)
    w.add_quantization_version(2)
    if args.dense:
        w.add_uint32(f"{ARCH}.dense_2_feat_in", E)
        w.add_uint32(f"{ARCH}.dense_2_feat_out", 4 * E)
        w.add_uint32(f"{ARCH}.dense_3_feat_in", 4 * E)
        w.add_uint32(f"{ARCH}.dense_3_feat_out", E)

    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores.tolist())
    w.add_token_types(types.tolist())
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_add_space_prefix(False)

    qtype = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
             "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[args.type]

    def matrix(name, n_out, n_in, scale):
        # PyTorch layout (out, in) == GGUF ne (in, out). 2-D weights take the file type.
        m = (rng.standard_normal((n_out, n_in)) * scale).astype(np.float32)
        if qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, m)
        else:
            q = gguf.quants.quantize(m, qtype)
            w.add_tensor(name, q, raw_dtype=qtype)

    def norm(name, n, spread):
        # GGUF norm weights are used directly (the +1 is already folded in).
        w.add_tensor(name, (1.0 + spread * rng.standard_normal(n)).astype(np.float32))

    matrix("token_embd.weight", n_vocab, E, 1.0 / math.sqrt(E))
    for il in range(args.layers):
        p = f"blk.{il}."
        norm(p + "attn_norm.weight", E, 0.2)
        matrix(p + "attn_q.weight", H * D, E, 1.0 / math.sqrt(E))
        matrix(p + "attn_k.weight", Hkv * D, E, 1.0 / math.sqrt(E))
        matrix(p + "attn_v.weight", Hkv * D, E, 1.0 / math.sqrt(E))
        # q/k norm weights > 1 so attention is peaked enough for positions to matter.
        norm(p + "attn_q_norm.weight", D, 0.3)
        norm(p + "attn_k_norm.weight", D, 0.3)
        matrix(p + "attn_output.weight", E, H * D, 1.0 / math.sqrt(H * D))
        norm(p + "post_attention_norm.weight", E, 0.2)
        norm(p + "ffn_norm.weight", E, 0.2)
        matrix(p + "ffn_gate.weight", F, E, 1.0 / math.sqrt(E))
        matrix(p + "ffn_up.weight", F, E, 1.0 / math.sqrt(E))
        matrix(p + "ffn_down.weight", E, F, 1.0 / math.sqrt(F))
        norm(p + "post_ffw_norm.weight", E, 0.2)
    norm("output_norm.weight", E, 0.2)
    if args.dense:
        matrix("dense_2.weight", 4 * E, E, 1.0 / math.sqrt(E))
        matrix("dense_3.weight", E, 4 * E, 1.0 / math.sqrt(4 * E))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if not args.quiet:
        print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
