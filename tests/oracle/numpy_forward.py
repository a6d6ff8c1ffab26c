#!/usr/bin/env python3
"""Independent float64 NumPy forward pass of EmbeddingGemma (GGUF arch `gemma-embedding`).

This is the *oracle* the gembed engine is tested against. It was written from
docs/MODEL-SPEC.md §1-§7 (and llama.cpp's gemma-embedding graph for facts), not
from gembed's C++, and it computes everything in float64 so that its own error
is negligible next to an fp32 engine's.

Input: a GGUF file and token ids (BOS/EOS included; tokenisation is tested
separately). Output: the pooled, (optionally Dense-projected) and
L2-normalised embedding, float64.

The file is parsed by gguf_lite.GGUFFile (a fast struct-based header parser
next to this file, cross-checked against gguf-py's GGUFReader in the tests;
`reader="gguf"` uses gguf.GGUFReader itself, 15-25 s slower on the full
vocabulary). Weights are memory-mapped and dequantised to float64 *here*, by
our own code (see `dequantize_rows`): F32, F16, BF16 and
Q8_0 are decoded directly (Q8_0: value = fp16 scale d × int8 q, per 32-block);
any other ggml type falls back to gguf.quants.dequantize (float32, then widened).

Only the token-embedding rows that a sequence uses are dequantised (the full
table is 262,144 × 768), and per-layer weights are dequantised once and cached.

Shapes: GGUF stores a Linear weight as ne = (in, out); its bytes are a row-major
NumPy array of shape (out, in), so `y = x @ W.T` for activations x of shape
(T, in). Every array below is named with its shape in comments.

CLI:
    python tests/oracle/numpy_forward.py MODEL.gguf --ids "[2, 651, 1]" [--dim 256]
prints the embedding as a JSON array (one line). `--ids-file F` reads one JSON
array of ids per line and prints one JSON array per line.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field

import numpy as np

try:
    import gguf
except ImportError as e:  # pragma: no cover - reported to the user, not a test
    raise SystemExit(f"numpy_forward: the `gguf` package is required ({e})")

if __package__:
    from . import gguf_lite
else:  # run as a script or imported with tests/oracle on sys.path
    import gguf_lite

# ggml type ids (ggml.h `enum ggml_type`); only the ones decoded natively here.
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_Q8_0 = 8
GGML_TYPE_BF16 = 30

QK8_0 = 32  # values per Q8_0 block
Q8_0_BLOCK_BYTES = 2 + QK8_0  # fp16 scale + 32 int8

POOLING_NONE, POOLING_MEAN, POOLING_CLS, POOLING_LAST = 0, 1, 2, 3


# --------------------------------------------------------------------------
# Dequantisation (our own; float64 out)
# --------------------------------------------------------------------------

def dequantize_rows(raw: np.ndarray, ggml_type: int, n_per_row: int) -> np.ndarray:
    """Decodes rows of a ggml tensor to float64.

    raw: the tensor's bytes arranged as (n_rows, row_bytes), possibly already
    row-gathered. Returns a float64
    array of shape (n_rows, n_per_row).
    """
    n_rows = raw.shape[0]
    b = np.ascontiguousarray(raw).view(np.uint8).reshape(n_rows, -1)
    if ggml_type == GGML_TYPE_F32:
        return b.view("<f4").reshape(n_rows, n_per_row).astype(np.float64)
    if ggml_type == GGML_TYPE_F16:
        return b.view("<f2").reshape(n_rows, n_per_row).astype(np.float64)
    if ggml_type == GGML_TYPE_BF16:
        # bf16 is the top half of an fp32: widen by shifting into the high 16 bits.
        u16 = b.view("<u2").reshape(n_rows, n_per_row).astype(np.uint32)
        return (u16 << 16).view(np.float32).astype(np.float64)
    if ggml_type == GGML_TYPE_Q8_0:
        if n_per_row % QK8_0:
            raise ValueError(f"Q8_0 row length {n_per_row} is not a multiple of {QK8_0}")
        nb = n_per_row // QK8_0
        blocks = b.reshape(n_rows, nb, Q8_0_BLOCK_BYTES)
        d = blocks[:, :, :2].copy().view("<f2").astype(np.float64)          # (rows, nb, 1)
        qs = blocks[:, :, 2:].view(np.int8).astype(np.float64)              # (rows, nb, 32)
        return (d * qs).reshape(n_rows, n_per_row)
    # Anything else (Q4_0, K-quants, ...): gguf-py's reference decoder.
    qtype = gguf.GGMLQuantizationType(ggml_type)
    return gguf.quants.dequantize(b, qtype).astype(np.float64).reshape(n_rows, n_per_row)


def int8_roundtrip(x: np.ndarray, block: int | None = QK8_0, fp16_scales: bool = True) -> np.ndarray:
    """x rounded to symmetric int8 and returned dequantised in float64: each
    row cut into `block`-value blocks (None: one block per row), each block
    quantised with d = max|x|/127, q = round(x/d) (half away from zero), and
    the value taken as d * q, with d rounded to fp16 when `fp16_scales`.
    x: (..., n) with n % block == 0."""
    shape = x.shape
    block = block or shape[-1]
    if shape[-1] % block:
        raise ValueError(f"int8 row length {shape[-1]} is not a multiple of the block length {block}")
    b = x.reshape(-1, shape[-1] // block, block)
    d = np.abs(b).max(axis=-1, keepdims=True) / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    v = b * inv
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)         # roundf: half away from zero
    if fp16_scales:
        d = d.astype(np.float16).astype(np.float64)
    return (q * d).reshape(shape)


def q8_0_roundtrip(x: np.ndarray) -> np.ndarray:
    """What llama.cpp's CPU path does to the *activations* of a matmul whose
    weights are Q8_0 (MODEL-SPEC §7.2): each row is cut into 32-blocks, each
    block quantised with d = max|x|/127 (stored as fp16), q = round(x/d) (half
    away from zero), and the int8 dot product uses d_fp16 * q. Returns those
    values in float64. x: (..., n) with n % 32 == 0."""
    return int8_roundtrip(x, QK8_0, fp16_scales=True)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

@dataclass
class HParams:
    arch: str
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_rot: int
    eps: float
    n_swa: int                 # the stored (full) window width; masks |p-j| > n_swa//2
    is_swa: list[bool]         # per layer
    rope_base: float           # global (full-attention) layers
    rope_base_swa: float       # sliding layers
    pooling: int
    n_ctx_train: int
    embd_scale: float = field(default=0.0)


@dataclass
class Tensor:
    name: str
    ne: tuple[int, ...]      # ne[0] innermost
    ggml_type: int
    rows: np.ndarray         # uint8 bytes, (prod(ne[1:]), row_bytes), memory-mapped


class _Source:
    """Metadata + tensors from either parser, behind one small interface."""

    def __init__(self, path: str, reader: str):
        if reader == "lite":
            f = gguf_lite.GGUFFile(path)
            self.kv = f.kv
            self.tensors = {n: Tensor(n, t.ne, t.ggml_type, t.data) for n, t in f.tensors.items()}
        elif reader == "gguf":
            r = gguf.GGUFReader(path, "r")
            self.kv = {name: fld.contents() for name, fld in r.fields.items()}
            self.tensors = {}
            for t in r.tensors:
                ne = tuple(int(x) for x in t.shape)
                n_rows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
                rows = np.asarray(t.data).view(np.uint8).reshape(n_rows, -1)
                self.tensors[t.name] = Tensor(t.name, ne, int(t.tensor_type), rows)
        else:
            raise ValueError(f"unknown reader {reader!r}")


def _field(src: _Source, key: str, default=None):
    return src.kv.get(key, default)


def read_hparams(src: _Source) -> HParams:
    reader = src
    arch = _field(reader, "general.architecture")
    if arch != "gemma-embedding":
        raise ValueError(f"architecture is {arch!r}, expected 'gemma-embedding'")
    a = arch

    def req(key):
        v = _field(reader, f"{a}.{key}")
        if v is None:
            raise ValueError(f"missing GGUF key {a}.{key}")
        return v

    def scalar_or_first(v):
        # feed_forward_length / head_count may be per-layer arrays; this oracle
        # supports only uniform layers (as the 300M model has).
        if isinstance(v, list):
            if len(set(v)) != 1:
                raise ValueError(f"non-uniform per-layer hparam {v} is not supported")
            return v[0]
        return v

    n_embd = int(req("embedding_length"))
    n_layer = int(req("block_count"))
    n_ff = int(scalar_or_first(req("feed_forward_length")))
    n_head = int(scalar_or_first(req("attention.head_count")))
    n_head_kv = int(scalar_or_first(_field(reader, f"{a}.attention.head_count_kv", n_head)))
    head_dim_k = int(_field(reader, f"{a}.attention.key_length", n_embd // n_head))
    head_dim_v = int(_field(reader, f"{a}.attention.value_length", head_dim_k))
    n_rot = int(_field(reader, f"{a}.rope.dimension_count", head_dim_k))
    eps = float(req("attention.layer_norm_rms_epsilon"))
    n_swa = int(req("attention.sliding_window"))

    # SWA pattern: a per-layer bool array, or a period (default 6) where the
    # last layer of each period is global (llama.cpp set_swa_pattern; period 0
    # makes every layer sliding).
    pat = _field(reader, f"{a}.attention.sliding_window_pattern", 6)
    if isinstance(pat, list):
        if len(pat) != n_layer:
            raise ValueError(f"sliding_window_pattern has {len(pat)} entries for {n_layer} layers")
        is_swa = [bool(x) for x in pat]
    else:
        period = int(pat)
        is_swa = [period == 0 or (il % period) < period - 1 for il in range(n_layer)]

    rope_base = float(_field(reader, f"{a}.rope.freq_base", 10000.0))
    rope_base_swa = float(_field(reader, f"{a}.rope.freq_base_swa", 10000.0))
    pooling = int(_field(reader, f"{a}.pooling_type", POOLING_MEAN))
    n_ctx_train = int(_field(reader, f"{a}.context_length", 2048))
    if n_head % n_head_kv:
        raise ValueError(f"head_count {n_head} is not a multiple of head_count_kv {n_head_kv}")
    if n_rot > head_dim_k or n_rot % 2:
        raise ValueError(f"bad rope dimension count {n_rot}")
    return HParams(arch=a, n_embd=n_embd, n_layer=n_layer, n_ff=n_ff, n_head=n_head,
                   n_head_kv=n_head_kv, head_dim_k=head_dim_k, head_dim_v=head_dim_v,
                   n_rot=n_rot, eps=eps, n_swa=n_swa, is_swa=is_swa, rope_base=rope_base,
                   rope_base_swa=rope_base_swa, pooling=pooling, n_ctx_train=n_ctx_train,
                   embd_scale=math.sqrt(n_embd))


def rms_norm(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    """x: (..., n) float64, g: (n,). RMSNorm over the last axis, times the
    stored weight directly (GGUF norm weights already include HF's +1)."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def gelu_tanh(z: np.ndarray) -> np.ndarray:
    return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))


def rope_neox(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float) -> np.ndarray:
    """NeoX (rotate-half) RoPE. x: (T, H, D) float64, pos: (T,) ints.
    Pairs (i, i + n_rot/2) for i < n_rot/2 rotate by pos * base^(-2i/n_rot);
    dims >= n_rot pass through."""
    half = n_rot // 2
    inv_freq = base ** (-2.0 * np.arange(half, dtype=np.float64) / n_rot)  # (half,)
    theta = pos.astype(np.float64)[:, None] * inv_freq[None, :]             # (T, half)
    cos = np.cos(theta)[:, None, :]                                          # (T, 1, half)
    sin = np.sin(theta)[:, None, :]
    a = x[..., :half]
    b = x[..., half:n_rot]
    out = x.copy()
    out[..., :half] = a * cos - b * sin
    out[..., half:n_rot] = a * sin + b * cos
    return out


class GemmaEmbeddingOracle:
    """Loads a gemma-embedding GGUF and runs the float64 forward pass.

    act_quant=True additionally emulates llama.cpp's Q8_0 matmul path: the
    input of every matmul with a Q8_0 weight is rounded through Q8_0 first
    (q8_0_roundtrip); everything else stays float64. Default False: the
    oracle then measures an engine's total error against exact arithmetic on
    the stored weights.

    Not thread-safe (it caches dequantised weights lazily)."""

    def __init__(self, path: str, reader: str = "lite", act_quant: bool = False):
        self.path = str(path)
        self.act_quant = act_quant
        self.src = _Source(self.path, reader)
        self.kv = self.src.kv
        self.hp = read_hparams(self.src)
        self.tensors = self.src.tensors
        self._cache: dict[str, np.ndarray] = {}
        hp = self.hp
        for name in ("token_embd.weight", "output_norm.weight"):
            if name not in self.tensors:
                raise ValueError(f"missing tensor {name}")
        te = self.tensors["token_embd.weight"]
        if len(te.ne) != 2 or te.ne[0] != hp.n_embd:
            raise ValueError(f"token_embd has ne={te.ne}, expected ({hp.n_embd}, n_vocab)")
        self.n_vocab = te.ne[1]
        self.has_dense = "dense_2.weight" in self.tensors and "dense_3.weight" in self.tensors

    # ---- weights ---------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.tensors

    def weight(self, name: str) -> np.ndarray:
        """Whole tensor as float64, shape (ne1, ne0) for 2-D, (ne0,) for 1-D."""
        w = self._cache.get(name)
        if w is not None:
            return w
        t = self.tensors.get(name)
        if t is None:
            raise KeyError(f"missing tensor {name}")
        ne = list(t.ne)
        n0 = ne[0]
        w = dequantize_rows(t.rows, t.ggml_type, n0)
        if len(ne) == 1:
            w = w.reshape(n0)
        else:
            w = w.reshape(list(reversed(ne)))
        self._cache[name] = w
        return w

    def embed_rows(self, ids: np.ndarray) -> np.ndarray:
        """token_embd rows for ids: (T, n_embd) float64, gathered before decoding."""
        t = self.tensors["token_embd.weight"]
        return dequantize_rows(t.rows[ids], t.ggml_type, self.hp.n_embd)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        """x: (T, in) → (T, out) with GGUF weight `name` (ne = (in, out)) and
        an optional bias `name` with .weight → .bias."""
        if self.act_quant and self.tensors[name].ggml_type == GGML_TYPE_Q8_0:
            x = q8_0_roundtrip(x)
        y = x @ self.weight(name).T
        bias = name[: -len(".weight")] + ".bias"
        if self.has(bias):
            y = y + self.weight(bias)
        return y

    # ---- forward ---------------------------------------------------------
    def hidden_states(self, ids) -> np.ndarray:
        """Final-normed token states z: (T, n_embd) float64 for one sequence
        (positions 0..T-1, bidirectional attention within the sequence)."""
        hp = self.hp
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError("ids must be a non-empty 1-D sequence")
        if ids.min() < 0 or ids.max() >= self.n_vocab:
            raise ValueError(f"token id out of range [0, {self.n_vocab})")
        T = ids.size
        pos = np.arange(T)
        H, Hkv, Dk, Dv = hp.n_head, hp.n_head_kv, hp.head_dim_k, hp.head_dim_v
        group = H // Hkv

        x = self.embed_rows(ids) * hp.embd_scale                      # (T, n_embd)

        # Masks: the symmetric sliding window keeps |p - j| <= n_swa // 2.
        dist = np.abs(pos[:, None] - pos[None, :])                     # (T, T)
        swa_mask = np.where(dist > hp.n_swa // 2, -np.inf, 0.0)        # (T, T)

        for il in range(hp.n_layer):
            p = f"blk.{il}."
            is_swa = hp.is_swa[il]
            base = hp.rope_base_swa if is_swa else hp.rope_base

            h = rms_norm(x, self.weight(p + "attn_norm.weight"), hp.eps)        # (T, n_embd)
            if self.has(p + "attn_qkv.weight"):
                qkv = self._linear(h, p + "attn_qkv.weight")                    # (T, H*Dk + 2*Hkv*Dk)
                q = qkv[:, : H * Dk]
                k = qkv[:, H * Dk: H * Dk + Hkv * Dk]
                v = qkv[:, H * Dk + Hkv * Dk:]
            else:
                q = self._linear(h, p + "attn_q.weight")                        # (T, H*Dk)
                k = self._linear(h, p + "attn_k.weight")                        # (T, Hkv*Dk)
                v = self._linear(h, p + "attn_v.weight")                        # (T, Hkv*Dv)
            q = q.reshape(T, H, Dk)      # head-major: dims [Dk*h, Dk*h + Dk) are head h
            k = k.reshape(T, Hkv, Dk)
            v = v.reshape(T, Hkv, Dv)

            # Per-head q/k RMSNorm (one Dk-vector of weights shared by all heads), then RoPE.
            q = rms_norm(q, self.weight(p + "attn_q_norm.weight"), hp.eps)
            k = rms_norm(k, self.weight(p + "attn_k_norm.weight"), hp.eps)
            q = rope_neox(q, pos, hp.n_rot, base)
            k = rope_neox(k, pos, hp.n_rot, base)
            q = q * (1.0 / math.sqrt(Dk))

            # Bidirectional attention, GQA: query head h reads KV head h // group.
            o = np.empty((T, H, Dv))
            for hh in range(H):
                kv = hh // group
                s = q[:, hh, :] @ k[:, kv, :].T                                 # (T, T)
                if is_swa:
                    s = s + swa_mask
                s = s - s.max(axis=1, keepdims=True)
                a = np.exp(s)
                a /= a.sum(axis=1, keepdims=True)
                o[:, hh, :] = a @ v[:, kv, :]                                   # (T, Dv)
            attn = self._linear(o.reshape(T, H * Dv), p + "attn_output.weight")  # (T, n_embd)

            x = x + rms_norm(attn, self.weight(p + "post_attention_norm.weight"), hp.eps)

            h = rms_norm(x, self.weight(p + "ffn_norm.weight"), hp.eps)          # (T, n_embd)
            gate = self._linear(h, p + "ffn_gate.weight")                       # (T, n_ff)
            up = self._linear(h, p + "ffn_up.weight")                           # (T, n_ff)
            f = self._linear(gelu_tanh(gate) * up, p + "ffn_down.weight")       # (T, n_embd)
            x = x + rms_norm(f, self.weight(p + "post_ffw_norm.weight"), hp.eps)

        return rms_norm(x, self.weight("output_norm.weight"), hp.eps)           # (T, n_embd)

    def pooled(self, ids, pooling: int | None = None) -> np.ndarray:
        """Pooled (and Dense-projected if the GGUF has Dense) embedding, not normalised."""
        z = self.hidden_states(ids)
        pooling = self.hp.pooling if pooling is None else pooling
        if pooling == POOLING_MEAN:
            e = z.mean(axis=0)
        elif pooling == POOLING_CLS:
            e = z[0]
        elif pooling == POOLING_LAST:
            e = z[-1]
        else:
            raise ValueError(f"pooling type {pooling} not supported by the oracle")
        if self.has_dense:
            e = self._linear(e[None, :], "dense_2.weight")[0]   # (dense_2_out,)
            e = self._linear(e[None, :], "dense_3.weight")[0]   # (n_embd,)
        return e

    def embed(self, ids, dim: int | None = None, pooling: int | None = None) -> np.ndarray:
        """L2-normalised embedding; with dim, the first dim components re-normalised
        (Matryoshka). Zero vector stays zero."""
        e = self.pooled(ids, pooling)
        if dim is not None:
            if not 0 < dim <= e.size:
                raise ValueError(f"dim {dim} out of range (1..{e.size})")
            e = e[:dim]
        n = np.linalg.norm(e)
        return e / n if n > 0 else e


def cosine(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="gemma-embedding GGUF")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--ids", help='token ids as a JSON array, e.g. "[2, 651, 1]"')
    g.add_argument("--ids-file", help="file with one JSON array of ids per line")
    ap.add_argument("--dim", type=int, default=None, help="Matryoshka dimension")
    ap.add_argument("--pooling", type=int, default=None, help="override pooling (1 mean, 2 cls, 3 last)")
    ap.add_argument("--act-quant", action="store_true",
                    help="emulate llama.cpp's Q8_0 activation quantisation before Q8_0 matmuls")
    args = ap.parse_args(argv)
    try:
        m = GemmaEmbeddingOracle(args.model, act_quant=args.act_quant)
        if args.ids is not None:
            seqs = [json.loads(args.ids)]
        else:
            with open(args.ids_file, encoding="utf-8") as f:
                seqs = [json.loads(line) for line in f if line.strip()]
        for ids in seqs:
            e = m.embed(ids, dim=args.dim, pooling=args.pooling)
            print(json.dumps([float(x) for x in e]))
    except (ValueError, KeyError, OSError) as e:
        print(f"numpy_forward: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
