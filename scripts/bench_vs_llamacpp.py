#!/usr/bin/env python3
"""gembed vs llama.cpp on the same model and the same texts, measured side by side.

Both engines run as child processes of this script, on the SAME full-size
Q8_0 EmbeddingGemma-300M GGUF (generated with `gembed synth ... --type q8_0
--dense --seed 1` unless --model is given) and the SAME texts, "the the the
..." with exactly N tokens including <bos>/<eos> (checked with
`gembed tokenize` and llama.cpp's `llama-tokenize`). Cases are interleaved
round by round (gembed, llama.cpp, gembed, ...) so both see the same machine
conditions; each figure is the median over the rounds.

Measured (every row of issue 4's table, both engines):
  latency of one 12 / 128 / 2,048-token text, throughput of 64 x 128-token
  texts, peak RSS of a one-text run, process start -> first embedding (wall
  time of a one-text run), 1 -> 2 thread scaling, and a mixed-length run
  (--mixed texts of 2..2,048 tokens; llama.cpp too unless --no-llama-mixed).

How each engine is timed:
  gembed:    `gembed bench --json` (one warm-up call, then --repeat timed calls
             in one process; p50 of those) for latency/throughput; peak RSS and
             startup from `/usr/bin/time` around `gembed embed` of one text.
  llama.cpp: `llama-embedding` (the local build of scripts/build_llama_cpp.sh)
             with -t T -c 2048 -b 2048 -ub 2048 (one micro-batch holds the longest
             text; llama.cpp packs several texts per batch up to 2,048 tokens),
             --pooling mean --embd-normalize 2, flash attention at its default
             (auto; the log line "Flash Attention enabled/disabled" is recorded),
             --perf -v. Latency and 64 x 128 rows run llama.cpp twice per round,
             with -fa on and -fa off, and keep the faster (on this CPU, off is
             faster for one text and on for packed batches; both are in the
             JSON). The compute time is the log-timestamp difference between
             the first "batch_decode" line and "llama_perf_context_print" (the
             model load and warm-up run are before it). One process per round.
             Peak RSS and startup from `/usr/bin/time` around the same run.

Usage:
  scripts/bench_vs_llamacpp.py [--gembed build/bin/gembed] [--model M.gguf]
      [--rounds 3] [--repeat 10] [--mixed 1000] [--no-llama-mixed] [--short 1000]
      [--json-out bench_vs_llamacpp.json] [--quick]
Timings on a shared machine are noisy: the JSON records `uptime` before and
after, and everything should be read as provisional unless the load was low.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
SEPARATOR = "<#gembed-separator#>"
TS_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+) ")


def shared_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("GEMBED_SHARED_DIR", REPO.parent / "shared"))


def llama_bin_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LLAMA_CPP_BIN_DIR", REPO / ".cache" / "llama.cpp" / "build" / "bin"))


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def text_of(n_tokens: int) -> str:
    """<bos> + (n_tokens - 2) x "the" + <eos> with the Gemma3 vocabulary."""
    return " ".join(["the"] * max(0, n_tokens - 2))


def timed_run(cmd: list[str], env: dict | None = None) -> dict:
    """Runs cmd under /usr/bin/time; returns wall seconds (perf_counter),
    peak RSS (MiB), stdout and stderr (without time's line)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as tf:
        tpath = tf.name
    try:
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tpath, *map(str, cmd)],
                           capture_output=True, env=env)
        wall = time.perf_counter() - t0
        fields = pathlib.Path(tpath).read_text().strip().splitlines()[-1].split()
    finally:
        os.unlink(tpath)
    if r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{r.stderr.decode(errors='replace')[-3000:]}")
    return {"wall_s": wall, "rss_mib": int(fields[1]) / 1024.0,
            "stdout": r.stdout.decode(errors="replace"), "stderr": r.stderr.decode(errors="replace")}


# ---------------------------------------------------------------------------
# gembed


class Gembed:
    def __init__(self, binary: pathlib.Path, model: pathlib.Path):
        self.bin = binary
        self.model = model

    def bench(self, tokens: int, batch: int, threads: int, repeat: int) -> dict:
        r = subprocess.run([str(self.bin), "bench", "--model", str(self.model), "--tokens", str(tokens),
                            "--batch", str(batch), "--threads", str(threads), "--repeat", str(repeat), "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"gembed bench failed: {r.stderr[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def bench_input(self, path: pathlib.Path, threads: int) -> dict:
        r = subprocess.run([str(self.bin), "bench", "--model", str(self.model), "--input", str(path),
                            "--threads", str(threads), "--repeat", "1", "--json"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"gembed bench --input failed: {r.stderr[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def embed_run(self, text_file: pathlib.Path, threads: int, output: pathlib.Path | None = None) -> dict:
        """A whole `gembed embed` process on a file (vectors to `output`, else stdout): wall time and peak RSS."""
        cmd = [self.bin, "embed", "--model", self.model, "--input", text_file, "--threads", str(threads)]
        if output is not None:
            cmd += ["--output", output, "--no-progress"]
        return timed_run(cmd)

    def count_tokens(self, texts: list[str]) -> list[int]:
        inp = "".join(json.dumps(t) + "\n" for t in texts)
        r = subprocess.run([str(self.bin), "tokenize", "--model", str(self.model), "--jsonl", "--add-special"],
                           input=inp, capture_output=True, text=True, check=True)
        return [len(json.loads(line)) for line in r.stdout.splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# llama.cpp


def parse_ts(line: str) -> float | None:
    """llama.cpp log timestamps: M.SS.mmm.uuu since start (e.g. 0.06.576.940 = 6.57694 s)."""
    m = TS_RE.match(line)
    if not m:
        return None
    minutes, secs, ms, us = (int(x) for x in m.groups())
    return minutes * 60 + secs + ms / 1e3 + us / 1e6


class Llama:
    def __init__(self, bin_dir: pathlib.Path, model: pathlib.Path, extra: list[str] | None = None):
        self.embedding = bin_dir / "llama-embedding"
        self.extra = list(extra or [])
        self.tokenize = bin_dir / "llama-tokenize"
        self.model = model
        self.flash_attn = "?"

    def available(self) -> bool:
        return self.embedding.exists()

    def run(self, text_file: pathlib.Path, threads: int, n_batch: int = 2048, flash_attn: str | None = None) -> dict:
        cmd = [self.embedding, "-m", self.model, "-f", text_file, "--no-escape", "--embd-separator", SEPARATOR,
               "--pooling", "mean", "--embd-normalize", "2", "-c", str(n_batch), "-b", str(n_batch), "-ub",
               str(n_batch), "-t", str(threads), "--perf", "-v", *self.extra]
        if flash_attn is not None:
            cmd += ["-fa", flash_attn]
        r = timed_run(cmd)
        first_decode = end = None
        batches = 0
        for line in r["stderr"].splitlines():
            if "Flash Attention" in line:
                self.flash_attn = line.split("Flash Attention", 1)[1].strip()
            ts = parse_ts(line)
            if ts is None:
                continue
            if "batch_decode:" in line:
                batches += 1
                if first_decode is None:
                    first_decode = ts
            if "llama_perf_context_print" in line and end is None:
                end = ts
        if first_decode is None or end is None:
            raise RuntimeError("could not find llama.cpp's batch_decode / perf timestamps in its log")
        r["compute_s"] = end - first_decode
        r["batches"] = batches
        del r["stdout"]
        del r["stderr"]
        return r

    def best_compute_s(self, text_file: pathlib.Path, threads: int, out: dict, key: str) -> float:
        """Compute time with flash attention on and off (neither is faster on
        every shape on CPU: off wins for one text, on for packed batches);
        records both under key_fa_on / key_fa_off and returns the faster."""
        best = None
        for fa in ("on", "off"):
            c = self.run(text_file, threads, flash_attn=fa)["compute_s"]
            out.setdefault(f"{key}_fa_{fa}", []).append(c)
            best = c if best is None else min(best, c)
        return best

    def count_tokens(self, text: str) -> int | None:
        if not self.tokenize.exists():
            return None
        with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
            f.write(text.encode())
            path = f.name
        try:
            r = subprocess.run([str(self.tokenize), "-m", str(self.model), "-f", path, "--no-escape", "--ids",
                                "--log-disable"], capture_output=True, text=True)
        finally:
            os.unlink(path)
        if r.returncode != 0:
            return None
        return len(json.loads(r.stdout.strip().splitlines()[-1]))


def write_texts(path: pathlib.Path, texts: list[str], for_llama: bool) -> pathlib.Path:
    # llama-embedding's -f drops one trailing newline; texts are joined with a
    # separator no text contains. gembed reads one text per line.
    if for_llama:
        path.write_text(SEPARATOR.join(texts) + "\n", encoding="utf-8")
    else:
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    return path


def mixed_lengths(n: int, seed: int) -> list[int]:
    """Token counts 2..2048: 70% short (2-128), 25% medium (129-512), 5% long (513-2048)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        u = rng.random()
        if u < 0.70:
            out.append(rng.randint(2, 128))
        elif u < 0.95:
            out.append(rng.randint(129, 512))
        else:
            out.append(rng.randint(513, 2048))
    return out


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(v, spec=".1f", unit=""):
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def add_llama_args_option(ap: argparse.ArgumentParser, tool: str) -> None:
    """--llama-args: extra arguments for llama.cpp's tool, one shell-quoted string (this script and bench_serve.py
    take it alike); args.llama_args is then the list."""
    ap.add_argument("--llama-args", type=shlex.split, default=[],
                    help=f"extra {tool} arguments, one string, e.g. --llama-args=-nr on Intel AMX hosts, where "
                         "llama.cpp's AMX Q8_0 path crashes (ggml-org/llama.cpp#20824)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gembed", default=str(REPO / "build" / "bin" / "gembed"))
    ap.add_argument("--model", help="Q8_0 GGUF (default: generate the full-size synthetic one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per case (median reported)")
    ap.add_argument("--repeat", type=int, default=10, help="gembed timed calls per round")
    ap.add_argument("--mixed", type=int, default=1000, help="texts in the mixed-length run (0: skip)")
    ap.add_argument("--no-llama-mixed", action="store_true", help="mixed-length run for gembed only")
    ap.add_argument("--short", type=int, default=1000,
                    help="texts in the short-text run (10-40 tokens each, e.g. queries and STS sentences; 0: skip)")
    add_llama_args_option(ap, "llama-embedding")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json-out", default="bench_vs_llamacpp.json")
    ap.add_argument("--quick", action="store_true", help="1 round, 3 repeats, 200 mixed texts (smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.repeat, args.mixed = 1, 3, min(args.mixed, 200)

    gembed_bin = pathlib.Path(args.gembed)
    if not gembed_bin.exists():
        sys.exit(f"{gembed_bin} not found: build gembed first (or pass --gembed)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="gembed_vs_llama_"))
    if args.model:
        model = pathlib.Path(args.model)
    else:
        cache = REPO / ".cache" / "bench"
        cache.mkdir(parents=True, exist_ok=True)
        model = cache / "embeddinggemma-300m-synth-q8_0-seed1.gguf"
        if not model.exists():
            tok = shared_dir() / "gemma3-tokenizer" / "tokenizer.json"
            if not tok.exists():
                sys.exit(f"{tok} not found (set GEMBED_SHARED_DIR)")
            print(f"generating {model} ...", flush=True)
            subprocess.run([str(gembed_bin), "synth", "-o", str(model), "--tokenizer", str(tok), "--type", "q8_0",
                            "--dense", "--seed", "1"], check=True)
    g = Gembed(gembed_bin, model)
    ll = Llama(llama_bin_dir(), model, args.llama_args)
    have_llama = ll.available()
    if not have_llama:
        print(f"llama.cpp not found in {llama_bin_dir()} (scripts/build_llama_cpp.sh): gembed only", flush=True)

    T = args.threads
    lengths = (12, 128, 2048)
    texts = {n: text_of(n) for n in lengths}
    counts = g.count_tokens([texts[n] for n in lengths])
    for n, c in zip(lengths, counts):
        if c != n:
            sys.exit(f"text for {n} tokens has {c} tokens with this vocabulary")
        if have_llama:
            lc = ll.count_tokens(texts[n])
            if lc is not None and lc != n:
                sys.exit(f"llama.cpp tokenises the {n}-token text into {lc} tokens")
    files_g = {n: write_texts(work / f"g{n}.txt", [texts[n]], False) for n in lengths}
    files_l = {n: write_texts(work / f"l{n}.txt", [texts[n]], True) for n in lengths}
    batch64_l = write_texts(work / "l64x128.txt", [texts[128]] * 64, True)

    res = {"uptime_before": uptime(), "host": platform.node(), "threads": T, "model": str(model),
           "rounds": args.rounds, "gembed_repeat": args.repeat, "llama_extra_args": args.llama_args, "gembed": {},
           "llama": {}}
    G, L = res["gembed"], res["llama"]
    L_fa = res.setdefault("llama_compute_s_by_flash_attn", {})

    def add(d, key, value):
        d.setdefault(key, []).append(value)

    print(f"model {model}\nwork dir {work}\n{res['uptime_before']}", flush=True)
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds}", flush=True)
        for n in lengths:
            for threads in ((1, T) if n in (128, 2048) and T > 1 else (T,)):
                rep = args.repeat if n < 2048 else max(2, args.repeat // 3)
                j = g.bench(n, 1, threads, rep)
                add(G, f"lat{n}_t{threads}_ms", j["p50_ms"])
                if have_llama:
                    c = ll.best_compute_s(files_l[n], threads, L_fa, f"lat{n}_t{threads}_s")
                    add(L, f"lat{n}_t{threads}_ms", c * 1e3)
        for threads in ((1, T) if T > 1 else (T,)):
            j = g.bench(128, 64, threads, max(2, args.repeat // 3))
            add(G, f"b64x128_t{threads}_texts_s", j["texts_per_s"])
            if have_llama:
                c = ll.best_compute_s(batch64_l, threads, L_fa, f"b64x128_t{threads}_s")
                add(L, f"b64x128_t{threads}_texts_s", 64 / c)
        # One-text process runs: startup (wall) and peak RSS.
        for n in (12, 128):
            r = g.embed_run(files_g[n], T)
            add(G, f"startup{n}_s", r["wall_s"])
            add(G, f"rss{n}_mib", r["rss_mib"])
            if have_llama:
                r = ll.run(files_l[n], T)
                add(L, f"startup{n}_s", r["wall_s"])
                add(L, f"rss{n}_mib", r["rss_mib"])
        j = g.bench(12, 1, T, 1)
        add(G, "load_ms", j["load_ms"])
        add(G, "bench_peak_rss_mib", j["peak_rss_mib"])

    if args.mixed > 0:
        lens = mixed_lengths(args.mixed, args.seed)
        mixed = [text_of(n) for n in lens]
        got = g.count_tokens(mixed[:50])
        if got != lens[:50]:
            sys.exit("mixed texts do not have the intended token counts")
        mg = write_texts(work / "mixed_g.txt", mixed, False)
        ml = write_texts(work / "mixed_l.txt", mixed, True)
        total = sum(lens)
        res["mixed"] = {"texts": len(lens), "tokens": total, "min": min(lens), "max": max(lens),
                        "mean": total / len(lens)}
        print(f"mixed: {len(lens)} texts, {total} tokens", flush=True)
        j = g.bench_input(mg, T)
        G["mixed_texts_s"] = [j["texts_per_s"]]
        G["mixed_tokens_s"] = [j["tokens_per_s"]]
        if have_llama and not args.no_llama_mixed:
            r = ll.run(ml, T)
            L["mixed_texts_s"] = [len(lens) / r["compute_s"]]
            L["mixed_tokens_s"] = [total / r["compute_s"]]
            L["mixed_batches"] = [r["batches"]]

    if args.short > 0:
        rng = random.Random(args.seed + 1)
        lens = [rng.randint(10, 40) for _ in range(args.short)]
        short = [text_of(n) for n in lens]
        sg = write_texts(work / "short_g.txt", short, False)
        sl = write_texts(work / "short_l.txt", short, True)
        total = sum(lens)
        res["short"] = {"texts": len(lens), "tokens": total, "mean": total / len(lens)}
        print(f"short: {len(lens)} texts, {total} tokens", flush=True)
        for _ in range(max(1, args.rounds)):
            j = g.bench_input(sg, T)
            add(G, "short_texts_s", j["texts_per_s"])
            if have_llama:
                c = ll.best_compute_s(sl, T, L_fa, "short_s")
                add(L, "short_texts_s", len(lens) / c)

    res["uptime_after"] = uptime()
    res["llama_flash_attention"] = ll.flash_attn
    res["llama_settings"] = (f"-t {T} -c 2048 -b 2048 -ub 2048 --pooling mean --embd-normalize 2; latency and "
                             f"64x128 rows: the faster of -fa on / -fa off per run; startup, RSS and mixed rows: "
                             f"flash attention default (auto -> {ll.flash_attn})")
    med = {"gembed": {k: median(v) for k, v in G.items()}, "llama": {k: median(v) for k, v in L.items()}}
    res["median"] = med
    mg_, ml_ = med["gembed"], med["llama"]

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    rows = []

    def row(name, lkey, gkey, unit, spec, faster_is_lower, target):
        lv, gv = ml_.get(lkey), mg_.get(gkey)
        r = ratio(lv, gv) if faster_is_lower else ratio(gv, lv)
        rows.append((name, fmt(lv, spec, unit), fmt(gv, spec, unit), fmt(r, ".2f", "x"), target))

    row("one 12-token text", "lat12_t%d_ms" % T, "lat12_t%d_ms" % T, " ms", ".2f", True, "<= 5 ms")
    row("one 128-token text", "lat128_t%d_ms" % T, "lat128_t%d_ms" % T, " ms", ".1f", True, "<= 50 ms")
    row("64 texts x 128 tokens", "b64x128_t%d_texts_s" % T, "b64x128_t%d_texts_s" % T, " texts/s", ".1f", False,
        ">= 20 texts/s")
    row("one 2,048-token text", "lat2048_t%d_ms" % T, "lat2048_t%d_ms" % T, " ms", ".0f", True, ">= 3x faster")
    row("peak RSS, one 128-token text", "rss128_mib", "rss128_mib", " MiB", ".0f", True, "<= 400 MiB")
    row("peak RSS, one 12-token text", "rss12_mib", "rss12_mib", " MiB", ".0f", True, "<= 400 MiB")
    row("process start -> first embedding (12 tokens)", "startup12_s", "startup12_s", " s", ".3f", True,
        "<= 0.2 s")
    for key, name in (("lat128", "1->2 threads, one 128-token text"), ("lat2048", "1->2 threads, one 2,048-token text"),
                      ("b64x128", "1->2 threads, 64 x 128 tokens")):
        if T > 1:
            if key == "b64x128":
                sg = ratio(mg_.get(f"{key}_t{T}_texts_s"), mg_.get(f"{key}_t1_texts_s"))
                sl = ratio(ml_.get(f"{key}_t{T}_texts_s"), ml_.get(f"{key}_t1_texts_s"))
            else:
                sg = ratio(mg_.get(f"{key}_t1_ms"), mg_.get(f"{key}_t{T}_ms"))
                sl = ratio(ml_.get(f"{key}_t1_ms"), ml_.get(f"{key}_t{T}_ms"))
            rows.append((name, fmt(sl, ".2f", "x"), fmt(sg, ".2f", "x"), "", ">= 1.8x"))
    if "mixed_texts_s" in mg_:
        row(f"mixed lengths, {res['mixed']['texts']} texts (texts/s)", "mixed_texts_s", "mixed_texts_s", " texts/s",
            ".1f", False, "holds")
        row(f"mixed lengths, {res['mixed']['tokens']} tokens (tokens/s)", "mixed_tokens_s", "mixed_tokens_s",
            " tok/s", ".0f", False, "")

    if "short_texts_s" in mg_:
        row(f"short texts, {res['short']['texts']} x 10-40 tokens (mean {res['short']['mean']:.1f})",
            "short_texts_s", "short_texts_s", " texts/s", ".1f", False, ">= 120 texts/s")

    table = ["| case | llama.cpp | gembed | gembed advantage | target |", "|---|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    res["table_markdown"] = "\n".join(table)
    print()
    print("\n".join(table))
    print(f"\nllama.cpp: {res['llama_settings']}")
    print(f"gembed: load (open + first embedding) {fmt(mg_.get('load_ms'), '.1f', ' ms')}")
    print(f"{res['uptime_after']}")
    pathlib.Path(args.json_out).write_text(json.dumps(res, indent=1))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
