#!/usr/bin/env python3
"""The compression table of docs/COMPRESSION.md, in one run: builds every
variant from the F32 Hugging Face folder, times it with `gembed bench`, measures
its quality with scripts/eval_quality.py against the F32 reference, runs
llama.cpp on the same Q4_0 file, and draws the speed-vs-quality Pareto plot.

    python3 scripts/compression_table.py --reference models/embeddinggemma-300m \
        [--work .cache/compress] [--calib bench/data/calib_texts_v1.txt] [--sts .cache/stsb/dev.tsv] \
        [--timing full|quick|none] [--variants q8_0,q4_0,...] [--threads 2] \
        [--json docs/compression_results.json] [--markdown docs/compression_table.md] \
        [--plot docs/compression_pareto.png]

--timing full: 12- and 128-token latency (p50 of 30 / 15 calls), 64 x 128-token
throughput (6 calls), peak RSS (of the 12-token process), in 3 rounds over all
variants (--rounds; each round runs a third of the calls; a row's figure is
the median of its rounds' figures); quick: 3 / 2 / 1 calls in one round, for
validating the script on a busy machine (the figures then mean little); none:
quality only. Variants whose GGUF already exists in --work are
reused (delete them to rebuild). Environment: GEMBED_BIN (default
build/bin/gembed), LLAMA_CPP_BIN_DIR (default .cache/llama.cpp/build/bin).
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import eval_quality as eq  # noqa: E402

CALIB = "bench/data/calib_texts_v1.txt"

# name -> (label, gembed command after the input folder; {out} {calib} filled in)
VARIANTS = {
    "f32": ("F32", ["quantize", "{ref}", "-o", "{out}", "--type", "f32"]),
    "bf16": ("BF16", ["quantize", "{ref}", "-o", "{out}", "--type", "bf16"]),
    "q8_0": ("Q8_0 (today)", ["quantize", "{ref}", "-o", "{out}", "--type", "q8_0"]),
    "q4_0": ("Q4_0 (ggml rule)", ["quantize", "{ref}", "-o", "{out}", "--type", "q4_0", "--no-search"]),
    "q4_1aw": ("Q4_1, activation-aware search", ["quantize", "{ref}", "-o", "{out}", "--type", "q4_1",
                                                  "--calib", "{calib}"]),
    "q4_0aw": ("Q4_0, activation-aware search", ["quantize", "{ref}", "-o", "{out}", "--type", "q4_0",
                                                  "--calib", "{calib}"]),
    "mixed": ("mixed: Q4_1-aw, attn_v/ffn_down/first/last Q8_0",
              ["quantize", "{ref}", "-o", "{out}", "--type", "q4_1", "--calib", "{calib}",
               "--keep-8bit", "attn_v,ffn_down,first,last", "--embd-type", "q8_0"]),
    "sparse10": ("block-sparse 10% (16x32, Wanda, per block row)",
                  ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--block-sparsity", "all=0.1"]),
    "sparse20": ("block-sparse 20% (16x32, Wanda, per block row)",
                  ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--block-sparsity", "all=0.2"]),
    "sparse30": ("block-sparse 30% (16x32, Wanda, per block row)",
                  ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--block-sparsity", "all=0.3"]),
    "sparse50": ("block-sparse 50% (16x32, Wanda, per block row)",
                  ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--block-sparsity", "all=0.5"]),
    "sparse70": ("block-sparse 70% (16x32, Wanda, per block row)",
                  ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--block-sparsity", "all=0.7"]),
    "sparse30m": ("block-sparse 30% (16x32, Wanda, whole matrix)",
                  ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--block-sparsity", "all=0.3",
                   "--group", "matrix"]),
    "ffnsparse50": ("block-sparse 50% of the FFN only (16x32, Wanda, per block row)",
                    ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--block-sparsity", "ffn=0.5"]),
    "ffn896": ("FFN 1152 -> 896", ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--ffn-width", "896"]),
    "ffn640": ("FFN 1152 -> 640", ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--ffn-width", "640"]),
    "drop2": ("2 layers dropped", ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--drop-count", "2"]),
    "drop4": ("4 layers dropped", ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--drop-count", "4"]),
    "combo": ("combination: FFN 960 + Q4_1-aw mixed",
              ["prune", "{ref}", "-o", "{out}", "--calib", "{calib}", "--ffn-width", "960", "--type", "q4_1",
               "--keep-8bit", "attn_v,ffn_down,first,last", "--embd-type", "q8_0"]),
}
LLAMA_ROW = "llama.cpp Q4_0"

TIMING = {  # (12-token repeats, 128-token repeats, 64x128 repeats)
    "full": (30, 15, 6),
    "quick": (3, 2, 1),
}


def gembed():
    return os.environ.get("GEMBED_BIN", str(ROOT / "build" / "bin" / "gembed"))


def rel(path):
    """A path for the JSON: relative to the repository when inside it, never the machine's absolute path."""
    p = pathlib.Path(os.path.abspath(path))
    try:
        return str(p.relative_to(os.path.abspath(ROOT)))
    except ValueError:
        return p.name


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def build(name, ref, work, calib):
    out = work / f"{name}.gguf"
    if out.exists():
        return out
    args = [a.format(ref=ref, out=out, calib=calib) for a in VARIANTS[name][1]]
    t0 = time.time()
    r = run([gembed(), *args])
    print(f"  built {out.name} in {time.time() - t0:.0f} s: {r.stderr.strip().splitlines()[-1]}", flush=True)
    return out


def bench(model, tokens, batch, repeat, threads):
    r = run([gembed(), "bench", "--model", model, "--tokens", tokens, "--batch", batch, "--repeat", repeat,
             "--threads", threads, "--json"])
    return json.loads(r.stdout.strip().splitlines()[-1])


def time_gembed(model, reps, threads):
    a = bench(model, 12, 1, reps[0], threads)
    b = bench(model, 128, 1, reps[1], threads)
    c = bench(model, 128, 64, reps[2], threads)
    return {"ms_12": a["p50_ms"], "ms_128": b["p50_ms"], "texts_per_s_64x128": c["texts_per_s"],
            "peak_rss_mib": a["peak_rss_mib"]}


def words(n_tokens, seed):
    """A text of roughly n_tokens tokens (common English words: ~1 token each)."""
    vocab = ("the quick brown fox jumps over a lazy dog while seven red planets turn around one bright "
             "star in the cold night sky and people watch them from small houses near old rivers").split()
    return " ".join(vocab[(seed * 7 + i * 13) % len(vocab)] for i in range(max(1, n_tokens - 2)))


def time_llama(model, reps, threads):
    """llama-embedding on the same shapes as time_gembed: compute time from its log (first batch_decode to
    its perf print, model load excluded: scripts/bench_vs_llamacpp.py's method), median of `reps` runs.
    Every run is a new process that loads the model (~1-2 s) and 64 x 128 tokens take ~15 s, so the
    repeats are capped at (10, 5, 3) and each shape reports when it is done."""
    import statistics
    from bench_vs_llamacpp import Llama, llama_bin_dir, write_texts

    reps = tuple(min(r, cap) for r, cap in zip(reps, (10, 5, 3)))

    ll = Llama(llama_bin_dir(), pathlib.Path(model))
    if not ll.available():
        raise FileNotFoundError(f"{ll.embedding} is missing (scripts/build_llama_cpp.sh)")
    with tempfile.TemporaryDirectory() as td:
        f = pathlib.Path(td) / "texts.txt"

        def med(texts, n):
            write_texts(f, texts, for_llama=True)
            t = time.time()
            runs = [ll.run(f, threads) for _ in range(n)]
            s = statistics.median(r["compute_s"] for r in runs)
            print(f"  llama-embedding, {len(texts)} text(s): median {s * 1e3:.1f} ms of {n} runs "
                  f"({time.time() - t:.0f} s)", flush=True)
            return s, max(r["rss_mib"] for r in runs)
        s12, rss = med([words(12, 0)], reps[0])
        s128, _ = med([words(128, 0)], reps[1])
        s64, _ = med([words(128, i) for i in range(64)], reps[2])
    return {"ms_12": s12 * 1e3, "ms_128": s128 * 1e3, "texts_per_s_64x128": 64 / s64, "peak_rss_mib": rss}


def token_counts(model, texts):
    """Tokens of each text with BOS/EOS, by gembed's tokenizer (identical to the model's)."""
    inp = "".join(json.dumps(t) + "\n" for t in texts)
    r = subprocess.run([gembed(), "tokenize", "--model", str(model), "--jsonl", "--add-special"], input=inp,
                       capture_output=True, text=True, check=True)
    return [len(json.loads(line)) for line in r.stdout.splitlines() if line.strip()]


def llama_quality(model, ref, text_set, threads):
    """llama.cpp's vectors from `model` (prompts prepended as gembed's tasks do)
    against the reference, and gembed's vectors from the same file against
    llama.cpp's (the compatibility check: cos >= 0.999 expected)."""
    import numpy as np
    import llamacpp_ref as lc
    import oracle_texts as T

    def llama(texts, task=None):
        v = lc.embed(model, [T.task_prefix(task) + t for t in texts], threads=threads, max_tokens=2048)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    # llama-embedding refuses an input longer than its batch (2,048, the model's context) where gembed
    # truncates: compare the texts that fit.
    fit = [i for i, n in enumerate(token_counts(model, text_set["texts"])) if n <= 2048]
    texts = llama([text_set["texts"][i] for i in fit])
    gem = eq.embed(model, text_set["texts"])[fit]
    cos_ref = (texts * ref.texts[fit]).sum(axis=1)
    cos_gem = (texts * gem).sum(axis=1)
    q, d = llama(text_set["queries"], "query"), llama(text_set["documents"], "document")
    out = {"cos_mean": float(cos_ref.mean()), "cos_min": float(cos_ref.min()),
           "top10": eq.topk_agreement(ref.queries, ref.docs, q, d),
           "llama_vs_gembed_cos_mean": float(cos_gem.mean()), "llama_vs_gembed_cos_min": float(cos_gem.min()),
           "texts": len(fit), "texts_over_2048_tokens_left_out": len(text_set["texts"]) - len(fit),
           "sts_spearman": None}
    if ref.sts:
        s1, s2, gold = ref.sts
        a, b = llama(s1, "similarity"), llama(s2, "similarity")
        out["sts_spearman"] = 100.0 * eq.spearman(gold, (a * b).sum(axis=1))
    return out


def markdown(rows, timing):
    head = ("| variant | file MB | 12-token ms | 128-token ms | 64x128 texts/s | peak RSS MiB | cos to F32 mean / min "
            "| top-10 agreement | STS-B dev Spearman |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in rows:
        t = r.get("timing") or {}
        q = r.get("quality") or {}

        def f(v, fmt):
            return "" if v is None else format(v, fmt)
        lines.append(f"| {r['label']} | {f(r.get('file_mb'), '.1f')} | {f(t.get('ms_12'), '.2f')} | "
                     f"{f(t.get('ms_128'), '.1f')} | {f(t.get('texts_per_s_64x128'), '.1f')} | "
                     f"{f(t.get('peak_rss_mib'), '.0f')} | {f(q.get('cos_mean'), '.5f')} / {f(q.get('cos_min'), '.5f')} | "
                     f"{f(q.get('top10'), '.3f')} | {f(q.get('sts_spearman'), '.2f')} |")
    note = f"\nTiming: {timing}.\n"
    return head + "\n".join(lines) + "\n" + note


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pts = [(r["timing"]["texts_per_s_64x128"], r["timing"]["ms_12"], r["quality"]["cos_mean"], r["label"])
           for r in rows if r.get("timing") and r.get("quality") and r["quality"].get("cos_mean") is not None]
    if not pts:
        return
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, key, xlabel in ((axes[0], 0, "64 x 128-token texts/s (higher is better)"),
                            (axes[1], 1, "12-token latency, ms (lower is better)")):
        xs = [p[key] for p in pts]
        ys = [1 - p[2] for p in pts]
        ax.scatter(xs, ys)
        for p, x, y in zip(pts, xs, ys):
            ax.annotate(p[3], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        # Pareto front: better speed and lower 1 - cos.
        better_speed = (lambda a, b: a >= b) if key == 0 else (lambda a, b: a <= b)
        front = [p for p in pts if not any(better_speed(q[key], p[key]) and q[2] >= p[2] and q is not p and
                                           (q[key] != p[key] or q[2] != p[2]) for q in pts)]
        front.sort(key=lambda p: p[key])
        ax.plot([p[key] for p in front], [1 - p[2] for p in front], "r--", lw=1, label="Pareto front")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("1 - mean cosine to F32 (lower is better)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("gembed compression: speed vs quality (scripts/compression_table.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


FAMILIES = {  # the pruning families drawn as curves, each starting from dense Q8_0
    "block-sparse, Wanda per block row": ["q8_0", "sparse10", "sparse20", "sparse30", "sparse50", "sparse70"],
    "block-sparse, FFN only": ["q8_0", "ffnsparse50"],
    "FFN width": ["q8_0", "ffn896", "ffn640"],
    "layers dropped": ["q8_0", "drop2", "drop4"],
}


def layer_macs(path):
    """Multiply-adds per token in the layer matrices that a variant still does (weights per token), from
    its GGUF: layers x (q, k, v, o, gate, up, down) x (1 - the zero fraction its gembed.compression record
    states). None when a key is missing."""
    from gguf_lite import GGUFFile  # header only: the tensor data stays unread

    try:
        kv = GGUFFile(str(path)).kv
        arch = kv["general.architecture"]

        def num(key):
            return int(kv[f"{arch}.{key}"])
        n, ffn = num("block_count"), num("feed_forward_length")
        d, heads, kv_heads, hd = num("embedding_length"), num("attention.head_count"), \
            num("attention.head_count_kv"), num("attention.key_length")
    except (KeyError, ValueError, TypeError):
        return None
    m = re.search(r"zero_fraction_of_layer_matrices=([\d.]+)", str(kv.get("gembed.compression", "")))
    per_layer = 2 * d * heads * hd + 2 * d * kv_heads * hd + 3 * d * ffn
    return n * per_layer * (1 - (float(m.group(1)) if m else 0.0))


def plot_curve(rows, path, ref_sts):
    """Quality against the share of layer multiply-adds removed, for each pruning family (no timing noise in
    the x axis), with the targets drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by = {r["name"]: r for r in rows if r.get("quality") and r.get("layer_macs")}
    if "q8_0" not in by:
        return
    dense = by["q8_0"]["layer_macs"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for label, names in FAMILIES.items():
        pts = [by[n] for n in names if n in by]
        if len(pts) < 2:
            continue
        xs = [100 * (1 - r["layer_macs"] / dense) for r in pts]
        for ax, key in ((axes[0], "cos_mean"), (axes[1], "sts_spearman")):
            ys = [r["quality"].get(key) for r in pts]
            if any(y is None for y in ys):
                continue
            ax.plot(xs, ys, "o-", label=label)
            for r, x, y in zip(pts[1:], xs[1:], ys[1:]):
                ax.annotate(r["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    axes[0].axhline(0.98, color="r", ls="--", lw=1, label="target: cos >= 0.98")
    if ref_sts is not None:
        axes[1].axhline(ref_sts - 1.5, color="r", ls="--", lw=1, label="target: <= 1.5 points lost")
    for ax, ylabel in ((axes[0], "mean cosine to F32"), (axes[1], "STS-B dev Spearman x 100")):
        ax.axvline(44, color="g", ls=":", lw=1, label="1.5x 64x128 texts/s needs ~44% removed")
        ax.set_xlabel("% of the layer matrices' multiply-adds removed")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("pruning without fine-tuning: quality against work removed (scripts/compression_table.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="the F32 Hugging Face folder")
    ap.add_argument("--work", default=str(ROOT / ".cache" / "compress"))
    ap.add_argument("--calib", default=str(ROOT / CALIB))
    ap.add_argument("--texts", default=str(eq.DEFAULT_TEXTS))
    ap.add_argument("--sts", default=None, help="STS-B dev.tsv (default .cache/stsb/dev.tsv when present; "
                                                  "'none': skip the STS column)")
    ap.add_argument("--timing", choices=["full", "quick", "none"], default="full")
    ap.add_argument("--rounds", type=int, default=0,
                    help="timing rounds over all variants (default: 3 for --timing full, 1 for quick)")
    ap.add_argument("--variants", default=",".join(VARIANTS) + ",llama")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--curve", default=None, help="PNG: quality against speed-up for each pruning family")
    ap.add_argument("--quality-from", default=None,
                    help="a JSON of an earlier run on the same reference and text set: take each variant's quality "
                         "columns from it (they do not depend on machine load) and only time")
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sts = args.sts or (str(eq.DEFAULT_STS) if eq.DEFAULT_STS.exists() else None)
    if sts == "none":
        sts = None
    text_set = json.loads(pathlib.Path(args.texts).read_text(encoding="utf-8"))
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS and n != "llama"]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}, llama")

    earlier, prev = {}, {}
    if args.quality_from:
        prev = json.loads(pathlib.Path(args.quality_from).read_text())
        if prev.get("texts") != pathlib.Path(args.texts).name:
            raise SystemExit(f"--quality-from: {args.quality_from} was measured on another text set")
        earlier = {r["name"]: r["quality"] for r in prev["rows"] if r.get("quality")}
        sts_ok = (prev.get("reference_sts_spearman") is None) == (sts is None)
        if not sts_ok:
            raise SystemExit("--quality-from: that run and this one differ in whether STS is measured")
    t0 = time.time()
    refs = []

    def reference():  # built only when some quality column is measured in this run
        if not refs:
            print(f"reference vectors from {args.reference} (fp32){' + STS-B dev' if sts else ''}", flush=True)
            refs.append(eq.Reference(args.reference, text_set, sts, threads=args.threads))
        return refs[0]
    rows, paths = [], {}
    for name in names:
        if name == "llama":
            continue
        print(f"{name}:", flush=True)
        model = paths[name] = build(name, args.reference, work, args.calib)
        row = {"name": name, "label": VARIANTS[name][0], "file": rel(model),
               "file_mb": model.stat().st_size / 1e6,
               "command": "gembed " + " ".join(VARIANTS[name][1]).replace("{ref}", "MODEL_DIR").replace(
                   "{out}", f"{name}.gguf").replace("{calib}", CALIB)}
        row["quality"] = earlier.get(name) or reference().evaluate(model)
        row["layer_macs"] = layer_macs(model)
        print(f"  {json.dumps(row['quality'])}", flush=True)
        rows.append(row)
    if args.timing != "none" and rows:
        # Rounds over all variants, each with its share of the calls; a row's figure is the median of its
        # rounds, so a burst of load on a shared host hits one round of a few rows, not a whole row.
        rounds = args.rounds or (3 if args.timing == "full" else 1)
        reps = tuple(max(1, -(-n // rounds)) for n in TIMING[args.timing])
        for i in range(rounds):
            for row in rows:
                t = time_gembed(paths[row["name"]], reps, args.threads)
                row.setdefault("timing_rounds", []).append(t)
                print(f"round {i + 1}/{rounds} {row['name']}: {json.dumps(t)}", flush=True)
        for row in rows:
            rs = row["timing_rounds"]
            row["timing"] = {k: statistics.median(r[k] for r in rs) for k in ("ms_12", "ms_128", "texts_per_s_64x128")}
            row["timing"]["peak_rss_mib"] = max(r["peak_rss_mib"] for r in rs)
    if "llama" in names:
        q4 = build("q4_0", args.reference, work, args.calib)
        row = {"name": "llama", "label": LLAMA_ROW, "file": rel(q4), "file_mb": q4.stat().st_size / 1e6,
               "command": "llama-embedding -m q4_0.gguf --pooling mean --embd-normalize 2 -t 2"}
        try:
            row["quality"] = earlier.get("llama") or llama_quality(q4, reference(), text_set, args.threads)
            if args.timing != "none":
                row["timing"] = time_llama(q4, TIMING[args.timing], args.threads)
        except (FileNotFoundError, RuntimeError) as e:
            row["error"] = str(e)
        print(f"llama: {json.dumps({k: row.get(k) for k in ('quality', 'timing', 'error')})}", flush=True)
        rows.append(row)
    ref_sts = refs[0].sts_spearman if refs else prev.get("reference_sts_spearman")
    result = {"reference": rel(args.reference), "reference_sts_spearman": ref_sts, "timing": args.timing,
              "threads": args.threads, "texts": str(pathlib.Path(args.texts).name), "rows": rows,
              "seconds": time.time() - t0}
    md = markdown(rows, f"{args.timing}, {args.threads} threads")
    print(md)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(md)
    if args.plot and args.timing != "none":
        plot(rows, args.plot)
    if args.curve:
        plot_curve(rows, args.curve, ref_sts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
