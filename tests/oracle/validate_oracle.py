#!/usr/bin/env python3
"""Validates the NumPy oracle itself against llama.cpp (run by hand).

Writes small gemma-embedding GGUFs with make_test_gguf.py (independent of gembed),
embeds the shared test texts with llama.cpp (llama-embedding, -fa off) and with
the oracle on llama.cpp's own token ids, and prints the cosine per text and the
worst per model. Needs scripts/build_llama_cpp.sh to have run.

    .venv/bin/python tests/oracle/validate_oracle.py --tokenizer-dir ../shared/gemma3-tokenizer \
        [--workdir /tmp/oracle-validate] [--types f32,q8_0,f16,bf16] [--full]

Expectations: F32 GGUFs agree to cosine ≥ 0.9999 (llama.cpp computes in fp32
with a fp16 GELU table); for F16/BF16/Q8_0 llama.cpp also rounds the
*activations* to that type before each matmul (MODEL-SPEC §7.2), so those agree
less closely. For Q8_0 the oracle is run twice: exact activations, and with
llama.cpp's Q8_0 activation rounding emulated (act_quant=True).
"""
from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import llamacpp_ref as llamacpp  # noqa: E402
import numpy_forward as nf  # noqa: E402
import oracle_texts as T  # noqa: E402


def corpus() -> list[str]:
    out = list(T.SHORT_TEXTS)
    out += [T.task_prefix(task, title) + text for task, title, text in T.PROMPTED_TEXTS]
    out += [T.task_prefix(task) + T.random_text(seed, n) for seed, n, task in T.LONG_RECIPES]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--workdir", default="/tmp/oracle-validate")
    ap.add_argument("--types", default="f32,q8_0,f16,bf16")
    ap.add_argument("--full", action="store_true", help="also a full-size 768-wide, 24-layer F32 model")
    ap.add_argument("--flash-attn", default="off")
    args = ap.parse_args()
    work = pathlib.Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    texts = corpus()

    configs = []
    for t in args.types.split(","):
        configs.append((f"small_{t}_dense", t, ["--dense"]))
    configs.append(("small_f32_nodense", "f32", []))
    if args.full:
        configs.append(("full_f32_dense", "f32", ["--dense", "--layers", "24", "--n-embd", "768", "--n-ff", "1152",
                                                  "--heads", "3", "--heads-kv", "1", "--head-dim", "256"]))
    worst_all = {}
    for name, qtype, extra in configs:
        path = work / f"{name}.gguf"
        if not path.exists():
            subprocess.run([sys.executable, str(HERE / "make_test_gguf.py"), "-o", str(path), "--tokenizer-dir",
                            args.tokenizer_dir, "--type", qtype, "--seed", "7", *extra], check=True,
                           stdout=subprocess.DEVNULL)
        ids = [llamacpp.tokenize(path, t) for t in texts]
        t0 = time.time()
        ref = llamacpp.embed(path, texts, flash_attn=args.flash_attn, max_tokens=max(map(len, ids)))
        t_ll = time.time() - t0
        modes = [False, True] if qtype == "q8_0" else [False]
        for act_quant in modes:
            oracle = nf.GemmaEmbeddingOracle(path, act_quant=act_quant)
            tag = name + ("+actq8" if act_quant else "")
            t0 = time.time()
            worst = (2.0, None)
            for i, (t, tid) in enumerate(zip(texts, ids)):
                e = oracle.embed(tid)
                c = nf.cosine(e, ref[i])
                print(f"{tag}: text {i:2d} ({len(tid):4d} tokens) cosine {c:.9f}")
                if c < worst[0]:
                    worst = (c, i)
            t_np = time.time() - t0
            print(f"== {tag}: worst cosine {worst[0]:.9f} (text {worst[1]}, {len(ids[worst[1]])} tokens); "
                  f"llama.cpp {t_ll:.1f}s, numpy {t_np:.1f}s")
            worst_all[tag] = worst[0]
    print("SUMMARY " + " ".join(f"{k}={v:.9f}" for k, v in worst_all.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
