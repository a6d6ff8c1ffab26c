#!/usr/bin/env python3
"""Tokenizer speed: gembed (bench/bench_tokenizer.cc) vs Hugging Face `tokenizers`, single-threaded.

Generates the corpus with scripts/gen_tokenizer_corpus.py, runs
  <build>/bin/bench_tokenizer --benchmark_format=json   (GEMBED_TOKENIZER_CORPUS=<corpus>)
and, in a child process with RAYON_NUM_THREADS=1, HF `tokenizers`:
  Tokenizer.from_file(tokenizer.json)            load time
  encode_batch(texts, add_special_tokens=False)  with the BPE cache cleared before each pass (cold)
                                                 and kept (warm: repeated texts hit HF's word cache)
  encode(text) in a Python loop                  cold
then prints one table. Times are medians over --repeat runs; tokens/s use CPU
time when --cpu (default: wall time). Other processes on the machine make all
figures noisy: treat them as provisional.

Usage: scripts/bench_tokenizer.py [--build-dir build] [--count 6000] [--seed 1] [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import gen_tokenizer_corpus  # noqa: E402

HF_CHILD = textwrap.dedent(r"""
    import json, statistics, sys, time
    from tokenizers import Tokenizer
    tok_path, corpus_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    texts = [json.loads(l) for l in open(corpus_path, encoding="utf-8").read().split("\n") if l]
    out = {}
    loads = []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        tok = Tokenizer.from_file(tok_path)
        loads.append((time.perf_counter() - t0, time.process_time() - c0))
    out["load"] = loads
    def run(fn, clear):
        res = []
        n = 0
        for _ in range(repeat):
            if clear:
                tok.model._clear_cache()
            t0, c0 = time.perf_counter(), time.process_time()
            n = fn()
            res.append((time.perf_counter() - t0, time.process_time() - c0))
        return res, n
    batch = lambda: sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    loop = lambda: sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    out["batch_cold"], out["tokens"] = run(batch, True)
    out["batch_warm"], _ = run(batch, False)
    out["loop_cold"], _ = run(loop, True)
    print(json.dumps(out))
""")


def median(pairs, idx):
    return statistics.median(p[idx] for p in pairs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=str(REPO / "build"))
    ap.add_argument("--shared-dir", default=os.environ.get("GEMBED_SHARED_DIR", str(REPO.parent / "shared")))
    ap.add_argument("--count", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cpu", action="store_true", help="rates from CPU time instead of wall time")
    args = ap.parse_args()

    tok_json = pathlib.Path(args.shared_dir) / "gemma3-tokenizer" / "tokenizer.json"
    if not tok_json.exists():
        print(f"tokenizer.json not found at {tok_json} (set GEMBED_SHARED_DIR)", file=sys.stderr)
        return 1
    bench = pathlib.Path(args.build_dir) / "bin" / "bench_tokenizer"
    if not bench.exists():
        print(f"{bench} not found: build the bench_tokenizer target first", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = pathlib.Path(tmp) / "corpus.jsonl"
        texts = [t for _, t in gen_tokenizer_corpus.generate(args.seed, args.count)]
        with open(corpus_path, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps(t, ensure_ascii=True) + "\n")
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)

        env = dict(os.environ, GEMBED_TOKENIZER_CORPUS=str(corpus_path), GEMBED_SHARED_DIR=args.shared_dir)
        bench_cmd = [str(bench), "--benchmark_format=json", f"--benchmark_repetitions={args.repeat}",
                     "--benchmark_report_aggregates_only=true"]
        res = subprocess.run(bench_cmd, env=env, capture_output=True, text=True, check=True)
        ours = {}
        for b in json.loads(res.stdout)["benchmarks"]:
            if b.get("aggregate_name") != "median":
                continue
            name = b["run_name"].split("/")[0]
            scale = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[b["time_unit"]]
            ours[name] = {"real": b["real_time"] * scale, "cpu": b["cpu_time"] * scale,
                          "items_per_second": b.get("items_per_second")}

        hf_env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
        hf_cmd = [sys.executable, "-c", HF_CHILD, str(tok_json), str(corpus_path), str(args.repeat)]
        res = subprocess.run(hf_cmd, env=hf_env, capture_output=True, text=True, check=True)
        hf = json.loads(res.stdout)

    idx = 1 if args.cpu else 0
    kind = "CPU" if args.cpu else "wall"
    tokens = hf["tokens"]
    rows = []

    def rate(seconds):
        return tokens / seconds / 1e6

    o_spm = ours["BM_EncodeGgufSpm"]["cpu" if args.cpu else "real"]
    o_bpe = ours["BM_EncodeTokenizerJsonBpe"]["cpu" if args.cpu else "real"]
    h_cold = median(hf["batch_cold"], idx)
    h_warm = median(hf["batch_warm"], idx)
    h_loop = median(hf["loop_cold"], idx)
    rows.append(("encode, tokens/s (M)", f"{rate(o_spm):.2f} (GGUF/SPM)", f"{rate(h_cold):.2f} (encode_batch, cold)",
                 f"{h_cold / o_spm:.1f}x"))
    rows.append(("", f"{rate(o_bpe):.2f} (tokenizer.json/BPE)", f"{rate(h_cold):.2f} (encode_batch, cold)",
                 f"{h_cold / o_bpe:.1f}x"))
    rows.append(("", f"{rate(o_spm):.2f} (GGUF/SPM)", f"{rate(h_warm):.2f} (encode_batch, warm cache)",
                 f"{h_warm / o_spm:.1f}x"))
    rows.append(("", f"{rate(o_spm):.2f} (GGUF/SPM)", f"{rate(h_loop):.2f} (encode loop, cold)",
                 f"{h_loop / o_spm:.1f}x"))
    o_lj = ours["BM_LoadTokenizerJson"]["cpu" if args.cpu else "real"]
    o_lg = ours["BM_LoadGguf"]["cpu" if args.cpu else "real"]
    h_load = median(hf["load"], idx)
    rows.append(("vocabulary load (ms)", f"{o_lg * 1e3:.1f} (GGUF)", f"{h_load * 1e3:.1f} (tokenizer.json)",
                 f"{h_load / o_lg:.1f}x"))
    rows.append(("", f"{o_lj * 1e3:.1f} (tokenizer.json)", f"{h_load * 1e3:.1f} (tokenizer.json)",
                 f"{h_load / o_lj:.1f}x"))

    print(f"corpus: {len(texts)} texts, {n_bytes} bytes, {tokens} tokens (seed {args.seed}); "
          f"single thread; {kind} time, median of {args.repeat}")
    print(f"gembed: GEMBED_TOKENIZER_CORPUS=<corpus> {' '.join(bench_cmd)}")
    print(f"HF:     RAYON_NUM_THREADS=1 tokenizers {__import__('tokenizers').__version__}: "
          f"Tokenizer.from_file; encode_batch / encode (add_special_tokens=False)")
    w = [max(len(r[i]) for r in rows + [("measurement", "gembed", "HF tokenizers", "speed-up")]) for i in range(4)]
    header = ("measurement", "gembed", "HF tokenizers", "speed-up")
    print(" | ".join(h.ljust(w[i]) for i, h in enumerate(header)))
    print("-+-".join("-" * x for x in w))
    for r in rows:
        print(" | ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
