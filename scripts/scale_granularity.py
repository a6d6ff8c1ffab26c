#!/usr/bin/env python3
"""What the int8 scale granularity of a matmul costs in quality, on the float64
NumPy oracle (tests/oracle/numpy_forward.py), before anyone writes a kernel
for it.

The Q8_0 GEMM spends ~3 vector operations per 32-value block of every output
on its two scales (weight block, activation block), next to 8 `vpdpbusd`
(docs/PERFORMANCE.md). Coarser scales remove some of that work: one scale per
weight row removes the weight-scale multiply; one scale per token (activation
row) as well removes the per-block conversion entirely. This script runs the
oracle on the F32 model with every layer matmul's inputs and weights rounded
to int8 in each arrangement and reports the cosine of the final embedding to
the exact float64 one:

  q8_0         weights and activations in 32-blocks (what gembed runs today)
  roww_blocka  weights one scale per output row; activations in 32-blocks
  blockw_rowa  weights in 32-blocks; activations one scale per token
  row          both one scale per row

    .venv/bin/python scripts/scale_granularity.py --model F32.gguf [--texts 30] [--modes q8_0,row,...]

F32.gguf: `build/bin/gembed quantize models/embeddinggemma-300m -o f32.gguf --type f32`. Texts:
the first N of bench/data/quality_texts_v1.json with 4-160 tokens (the oracle is float64 NumPy: ~1.5 min
for 30 texts). Rounding: symmetric, scale = max|x| / 127, round half away from zero, fp16 scales for the
32-blocks (as Q8_0), fp64 for the row scales.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import numpy_forward as nf  # noqa: E402

MODES = ("q8_0", "roww_blocka", "blockw_rowa", "row")


def per_row(x: np.ndarray) -> np.ndarray:
    """x rounded to int8 with one (float64) scale per row, returned dequantised."""
    return nf.int8_roundtrip(x, block=None, fp16_scales=False)


class Rounded(nf.GemmaEmbeddingOracle):
    """The oracle with every layer matmul's weights and inputs rounded as `mode` says."""

    def __init__(self, path, mode, shared_cache):
        super().__init__(path)
        self.mode = mode
        self._cache = shared_cache  # the exact float64 weights, shared with the reference
        self._rounded = {}

    def _w(self, name):
        if name not in self._rounded:
            w = self.weight(name)
            self._rounded[name] = per_row(w) if self.mode in ("roww_blocka", "row") else nf.q8_0_roundtrip(w)
        return self._rounded[name]

    def _linear(self, x, name):
        if not name.startswith("blk."):  # the Dense head stays exact: it is not what the layers' GEMMs do
            return super()._linear(x, name)
        a = per_row(x) if self.mode in ("blockw_rowa", "row") else nf.q8_0_roundtrip(x)
        y = a @ self._w(name).T
        bias = name[: -len(".weight")] + ".bias"
        return y + self.weight(bias) if self.has(bias) else y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="an F32 gemma-embedding GGUF")
    ap.add_argument("--texts", type=int, default=30)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--gembed", default=os.environ.get("GEMBED_BIN", str(ROOT / "build" / "bin" / "gembed")))
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    bad = set(modes) - set(MODES)
    if bad:
        ap.error(f"unknown modes {sorted(bad)} (known: {', '.join(MODES)})")
    texts = json.loads((ROOT / "bench" / "data" / "quality_texts_v1.json").read_text(encoding="utf-8"))["texts"]
    r = subprocess.run([args.gembed, "tokenize", "--model", args.model, "--jsonl", "--add-special"],
                       input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True, check=True)
    ids = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    ids = [s for s in ids if 4 <= len(s) <= 160][: args.texts]
    ref = nf.GemmaEmbeddingOracle(args.model)
    exact = [ref.embed(s) for s in ids]
    print(f"{len(ids)} texts, {sum(map(len, ids))} tokens; cosine to the exact float64 embedding")
    for mode in modes:
        m = Rounded(args.model, mode, ref._cache)
        cs = np.array([float(m.embed(s) @ e) for s, e in zip(ids, exact)])
        print(f"  {mode:12s} mean {cs.mean():.5f}  min {cs.min():.5f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
