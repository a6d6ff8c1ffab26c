#!/usr/bin/env python3
"""Corpus-scale embedding throughput, side by side in one run.

On one file of N texts with MS MARCO-like passage lengths (token counts from
a normal distribution, mean 72, sd 24, clipped to 12..256; BOS/EOS included):

  gembed embed      the whole CLI process on the file (read, tokenise, sort
                    by length in windows, embed, write .npy): wall time, peak RSS
  gembed bench      the same texts in-process (`bench --input`, no I/O; the
                    first --bench-rows of them): the engine's rate for this
                    length mix; target: embed within 10%
  llama-embedding   llama.cpp on the first --llama-rows texts of the file
                    (compute time from its log, as scripts/bench_vs_llamacpp.py)
  Ray (--ray)       gembed.ray.embed_dataset over a Parquet copy of the first
                    --ray-rows texts on a local 1-node Ray cluster, same total
                    threads as the CLI: whole-job wall time including Ray
                    start-up, and the time of the map stage alone, against a
                    `gembed embed` process on the same rows run just before;
                    target: <= 15% over the CLI

    .venv/bin/python scripts/bench_corpus.py --model .cache/bench/embeddinggemma-300m-q8_0.gguf \\
        --rows 100000 --bench-rows 10000 --llama-rows 2000 --ray --ray-rows 10000 --json-out bench_corpus.json

Timings on a shared machine are noisy: the JSON records `uptime` before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from bench_vs_llamacpp import Gembed, Llama, llama_bin_dir, text_of, timed_run, uptime, write_texts  # noqa: E402


def passage_lengths(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [max(12, min(256, int(round(rng.gauss(72, 24))))) for _ in range(n)]


RAY_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import ray, ray.data
import gembed.ray as gray
src, out, model, actors, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ray.init(num_cpus=actors * threads + 2, _node_ip_address="127.0.0.1", include_dashboard=False,
         object_store_memory=512 << 20, log_to_driver=False)
t1 = time.perf_counter()
ds = ray.data.read_parquet(src)  # one file, one block: embed_dataset splits it for the actors
ds = gray.embed_dataset(ds, model=model, text_column="text", task=None, dim=None, concurrency=actors,
                        threads_per_actor=threads, batch_size=256)
ds.write_parquet(out)
t2 = time.perf_counter()
ray.shutdown()
print(json.dumps({"ray_init_s": t1 - t0, "pipeline_s": t2 - t1, "total_s": time.perf_counter() - t0}))
"""


def run_ray(python: str, texts: list[str], model: pathlib.Path, actors: int, threads: int, tmp: pathlib.Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp / "corpus.parquet"
    pq.write_table(pa.table({"text": texts}), src)
    out = tmp / "ray_out"
    env = dict(os.environ, RAY_DEDUP_LOGS="0")
    r = timed_run([python, "-c", RAY_SCRIPT, src, out, model, str(actors), str(threads)], env=env)
    stats = json.loads(r["stdout"].strip().splitlines()[-1])
    rows = pq.read_table(out).num_rows
    if rows != len(texts):
        raise RuntimeError(f"Ray wrote {rows} rows for {len(texts)} texts")
    stats["wall_s"] = r["wall_s"]
    return stats


def add_ray(res: dict, rr: dict, cli: dict, rows: int, args) -> None:
    """Ray's run `rr` against the `gembed embed` run `cli` on the same `rows` texts."""
    rr["rows"] = rows
    rr["cli_wall_s"] = cli["wall_s"]
    rr["texts_per_s_total"] = rows / rr["wall_s"]
    rr["texts_per_s_pipeline"] = rows / rr["pipeline_s"]
    rr["overhead_total"] = rr["wall_s"] / cli["wall_s"] - 1
    rr["overhead_pipeline"] = rr["pipeline_s"] / cli["wall_s"] - 1
    res["ray"] = rr
    print(f"Ray ({args.threads} actors x 1 thread, {rows} texts): whole job {rr['wall_s']:.1f} s "
          f"({100 * rr['overhead_total']:+.1f}% vs the CLI), map+write stage {rr['pipeline_s']:.1f} s "
          f"({100 * rr['overhead_pipeline']:+.1f}%)", flush=True)


def ray_side_by_side(res: dict, g, texts: list[str], tmp: pathlib.Path, args) -> None:
    """`gembed embed` and then Ray on the first --ray-rows texts, one right after the other."""
    n = min(args.ray_rows or len(texts), len(texts))
    cf = write_texts(tmp / "ray_cli.txt", texts[:n], for_llama=False)
    cli = g.embed_run(cf, args.threads, output=tmp / "ray_cli.npy")
    rr = run_ray(sys.executable, texts[:n], pathlib.Path(args.model), actors=args.threads, threads=1, tmp=tmp)
    add_ray(res, rr, cli, n, args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gembed", default=str(REPO / "build" / "bin" / "gembed"))
    ap.add_argument("--model", required=True, help="Q8_0 GGUF")
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--llama-rows", type=int, default=2000, help="texts for llama-embedding (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench-rows", type=int, default=0, help="texts for `gembed bench --input` (0: all)")
    ap.add_argument("--ray", action="store_true", help="also run gembed.ray (needs ray[data] and pyarrow)")
    ap.add_argument("--ray-rows", type=int, default=0, help="texts for the Ray comparison (0: all)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--json-out")
    ap.add_argument("--ray-only", metavar="JSON",
                    help="run only the Ray part and add it to this earlier result of the same --rows/--seed")
    args = ap.parse_args(argv)

    g = Gembed(pathlib.Path(args.gembed), pathlib.Path(args.model))
    lengths = passage_lengths(args.rows, args.seed)
    texts = [text_of(n) for n in lengths]
    tokens = sum(lengths)
    if args.ray_only:
        res = json.loads(pathlib.Path(args.ray_only).read_text())
        if (res["rows"], res["tokens"]) != (args.rows, tokens):
            sys.exit("--ray-only: that result is for another corpus (--rows / --seed)")
        with tempfile.TemporaryDirectory() as td:
            ray_side_by_side(res, g, texts, pathlib.Path(td), args)
        res["uptime_after_ray"] = uptime()
        pathlib.Path(args.json_out or args.ray_only).write_text(json.dumps(res, indent=2) + "\n")
        return 0
    res = {"rows": args.rows, "tokens": tokens, "mean_tokens": tokens / args.rows, "threads": args.threads,
           "uptime_before": uptime()}
    with tempfile.TemporaryDirectory() as td:
        tmp = pathlib.Path(td)
        f = write_texts(tmp / "corpus.txt", texts, for_llama=False)
        out = tmp / "vectors.npy"
        r = g.embed_run(f, args.threads, output=out)
        res["embed"] = {"wall_s": r["wall_s"], "rss_mib": r["rss_mib"], "texts_per_s": args.rows / r["wall_s"],
                        "tokens_per_s": tokens / r["wall_s"]}
        print(f"gembed embed: {args.rows} texts in {r['wall_s']:.1f} s = {args.rows / r['wall_s']:.1f} texts/s, "
              f"{tokens / r['wall_s']:.0f} tokens/s, peak RSS {r['rss_mib']:.0f} MiB", flush=True)
        bn = min(args.bench_rows or args.rows, args.rows)
        bf = f if bn == args.rows else write_texts(tmp / "bench_sub.txt", texts[:bn], for_llama=False)
        b = g.bench_input(bf, args.threads)
        res["bench"] = {"rows": bn, "texts_per_s": b["texts_per_s"], "tokens_per_s": b["tokens_per_s"],
                        "ms": b["p50_ms"]}
        res["embed_vs_bench"] = res["embed"]["texts_per_s"] / b["texts_per_s"]
        print(f"gembed bench --input ({bn} texts): {b['texts_per_s']:.1f} texts/s; "
              f"embed / bench = {res['embed_vs_bench']:.3f}",
              flush=True)
        if args.llama_rows > 0:
            llama = Llama(llama_bin_dir(), pathlib.Path(args.model))
            if not llama.available():
                res["llama"] = "not built (scripts/build_llama_cpp.sh)"
            else:
                n = min(args.llama_rows, args.rows)
                lf = write_texts(tmp / "llama.txt", texts[:n], for_llama=True)
                gf = write_texts(tmp / "gembed_sub.txt", texts[:n], for_llama=False)
                ltok = sum(lengths[:n])
                lr = llama.run(lf, args.threads)
                gs = g.embed_run(gf, args.threads, output=tmp / "sub.npy")
                res["llama"] = {"rows": n, "compute_s": lr["compute_s"], "wall_s": lr["wall_s"],
                                "rss_mib": lr["rss_mib"], "texts_per_s": n / lr["compute_s"],
                                "tokens_per_s": ltok / lr["compute_s"], "flash_attn": llama.flash_attn,
                                "gembed_embed_wall_s": gs["wall_s"], "gembed_texts_per_s": n / gs["wall_s"]}
                res["llama"]["gembed_advantage"] = res["llama"]["gembed_texts_per_s"] / res["llama"]["texts_per_s"]
                print(f"llama-embedding ({n} texts): {n / lr['compute_s']:.1f} texts/s compute only "
                      f"(wall {lr['wall_s']:.1f} s, RSS {lr['rss_mib']:.0f} MiB); gembed embed whole process on "
                      f"the same {n}: {n / gs['wall_s']:.1f} texts/s = {res['llama']['gembed_advantage']:.2f}x",
                      flush=True)
        if args.ray:
            ray_side_by_side(res, g, texts, tmp, args)
    res["uptime_after"] = uptime()
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
