#!/usr/bin/env python3
"""The Python package's cost, and gembed from Python next to sentence-transformers
and llama-cpp-python, on the same machine and the same texts, in one run.

Engines (each in its own child process, so peak RSS is its own):
  gembed-python   `import gembed; m = gembed.Model(GGUF, threads=T)`, then
                  m.encode(texts, prompt="") (this repository's .venv);
  gembed-bench    `gembed bench --model GGUF --input FILE --threads T --json`
                  (the C++ engine with no Python; it times pre-tokenised texts,
                  so the difference to gembed-python is tokenisation + Python);
  st              sentence-transformers on PyTorch, CPU, torch.set_num_threads(T),
                  SentenceTransformer(FOLDER, device="cpu").encode(texts,
                  batch_size=64) (F32 weights: the reference implementation);
  llama-cpp       llama-cpp-python: Llama(GGUF, embedding=True, n_threads=T,
                  n_ctx=n_batch=n_ubatch=2048, mean pooling).embed(texts)
                  (llama.cpp on the same Q8_0 file as gembed);
  ort-fp32        ONNX Runtime (CPU, intra_op_num_threads=T) on the whole
                  sentence-transformers pipeline (transformer, mean pooling,
                  both Dense layers, normalisation) exported once with
                  torch.onnx.export (eager attention, opset 17), batches of
                  64 padded to their longest text: what fastembed and TEI's
                  ONNX path run;
  ort-int8        the same graph after onnxruntime.quantization.quantize_dynamic
                  (int8 weights, per-tensor dynamic activation quantisation).
The ONNX files are made on first use in .cache/bench/onnx/ (not timed).
GGUF is the Q8_0 file `gembed convert FOLDER --type q8_0` makes (cached in
.cache/bench/); FOLDER is the Hugging Face folder (models/embeddinggemma-300m).

Cases: 1 text (a query), 64 texts (documents) and all queries (115 short
texts of ~20 tokens) from tests/golden/data/st_retrieval_pairs.json, with the model card's prompts
already in the text ("task: search result | query: ...", "title: none | text:
..."), so every engine embeds exactly the same string. Each child loads once,
embeds each case once as a warm-up, then --repeat timed calls (median = p50).
Rounds interleave the engines (gembed-python, gembed-bench, st, llama-cpp,
ort-fp32, ort-int8, then again) and each figure is the median over the
rounds. Peak RSS: the child's own peak (VmHWM) right after import + load (before any embedding) and at the
end. Every vector of every case is compared with sentence-transformers' (F32
PyTorch, the reference) and gembed-python's: mean and min cosine.

st and llama-cpp run in a separate venv (default .cache/bench-venv) that this
script creates from PyPI on first use: torch (PyPI's Linux wheel, with its
nvidia-* runtime packages: several GB; it runs on the CPU),
sentence-transformers, and llama-cpp-python (an sdist: it compiles llama.cpp,
~10 min on 2 cores, with GGML_NATIVE=ON).

Usage:
  scripts/bench_python.py [--model models/embeddinggemma-300m] [--gguf G.gguf]
      [--threads 2] [--rounds 3] [--repeat 10]
      [--engines gembed-python,gembed-bench,st,llama-cpp,ort-fp32,ort-int8]
      [--bench-venv .cache/bench-venv] [--json-out bench_python.json]
  scripts/bench_python.py --setup-only      create/refresh the bench venv and exit
  scripts/bench_python.py --quick           1 round, 2 repeats (a smoke test, not a measurement)
Timings on a shared machine are noisy: the JSON records the load average
before and after.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
ENGINES = ["gembed-python", "gembed-bench", "st", "llama-cpp", "ort-fp32", "ort-int8"]
REF_ENGINES = {"st", "llama-cpp", "ort-fp32", "ort-int8"}  # run in the bench venv
QUERY_PROMPT = "task: search result | query: "
SHORT = "all queries"  # the short-text case (every query of the pairs file, with its prompt)
DOC_PROMPT = "title: none | text: "
# The bench venv's packages (the versions of scripts/setup_reference_env.sh
# where they overlap); the stamp is the hash of this list.
BENCH_PINS = """torch==2.8.0
transformers==4.57.1
sentence-transformers==5.1.2
tokenizers==0.22.1
numpy==2.2.6
llama-cpp-python==0.3.36
onnx==1.19.1
onnxruntime==1.23.2"""


# ------------------------------------------------------------------ children
def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss would also count the parent's peak, which Linux
    carries across fork + exec."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child(args: argparse.Namespace) -> int:
    """Runs in the engine's own process: load, warm up, time; prints one JSON line."""
    if args.child == "ort-prepare":  # the ONNX files, before any timing
        for int8 in (False, True):
            onnx_model(pathlib.Path(args.model), int8)
        print("{}")
        return 0
    cases = json.loads(pathlib.Path(args.texts).read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    if args.child == "gembed-python":
        import gembed

        m = gembed.Model(args.gguf, threads=args.threads)
        def embed(texts):
            return m.encode(texts, prompt="")
        version = gembed.__version__
    elif args.child == "st":
        import torch

        torch.set_num_threads(args.threads)
        from sentence_transformers import SentenceTransformer

        m = SentenceTransformer(args.model, device="cpu")
        def embed(texts):
            return m.encode(texts, batch_size=64, convert_to_numpy=True)
        import sentence_transformers
        version = f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"
    elif args.child in ("ort-fp32", "ort-int8"):
        import onnxruntime as ort
        import numpy as np
        from tokenizers import Tokenizer

        path = onnx_model(pathlib.Path(args.model), args.child == "ort-int8")
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(pathlib.Path(args.model) / "tokenizer.json"))
        tok.enable_truncation(2048)
        tok.enable_padding(pad_id=0, pad_token="<pad>")

        def embed(texts):
            outs = []
            for i in range(0, len(texts), 64):
                enc = tok.encode_batch(texts[i:i + 64])
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                outs.append(sess.run(None, {"input_ids": ids, "attention_mask": mask})[0])
            return np.concatenate(outs)
        version = f"onnxruntime {ort.__version__}"
    elif args.child == "llama-cpp":
        import llama_cpp

        m = llama_cpp.Llama(model_path=args.gguf, embedding=True, n_threads=args.threads,
                            n_threads_batch=args.threads, n_ctx=2048, n_batch=2048, n_ubatch=2048,
                            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False)
        def embed(texts):
            return m.embed(texts, normalize=True)
        version = f"llama-cpp-python {llama_cpp.__version__}"
    else:
        raise SystemExit(f"unknown child {args.child}")
    load_s = time.perf_counter() - t0
    rss_load = peak_rss_mib()
    import numpy as np

    out = {"engine": args.child, "version": version, "load_s": load_s, "rss_after_load_mib": rss_load, "cases": {}}
    for ci, (name, texts) in enumerate(cases.items()):
        vecs = np.asarray(embed(texts), dtype=np.float32).reshape(len(texts), -1)  # warm-up
        if args.vec_out:
            np.save(pathlib.Path(args.vec_out) / f"{args.child}-{ci}.npy", vecs)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            embed(texts)
            times.append((time.perf_counter() - t) * 1000.0)
        out["cases"][name] = {"texts": len(texts), "p50_ms": statistics.median(times), "min_ms": min(times),
                              "mean_ms": statistics.fmean(times)}
    out["rss_peak_mib"] = peak_rss_mib()
    print(json.dumps(out))
    return 0


def onnx_model(model_dir: pathlib.Path, int8: bool) -> pathlib.Path:
    """The sentence-transformers pipeline as one ONNX graph (input_ids,
    attention_mask -> normalised embedding), exported on first use; the int8
    file is quantize_dynamic of the fp32 one. Runs in the bench venv."""
    out_dir = REPO / ".cache" / "bench" / "onnx"
    fp32 = out_dir / "embeddinggemma-300m-fp32.onnx"
    q8 = out_dir / "embeddinggemma-300m-int8.onnx"
    if not fp32.exists():
        import torch
        from sentence_transformers import SentenceTransformer

        out_dir.mkdir(parents=True, exist_ok=True)
        st = SentenceTransformer(str(model_dir), device="cpu", model_kwargs={"attn_implementation": "eager"})

        class Pipeline(torch.nn.Module):
            def __init__(self, st):
                super().__init__()
                self.st = st

            def forward(self, input_ids, attention_mask):
                return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

        enc = st.tokenize(["an example text for the export", "a second, somewhat longer example text for it"])
        tmp = fp32.with_suffix(".tmp.onnx")
        # transformers builds its attention masks with torch.vmap, which the TorchScript exporter cannot trace
        # (RuntimeError: unordered_map::at). Every mask function here is element-wise on (batch, head, query,
        # key) indices, so for the export the mask is built by broadcasting those indices instead: the same
        # mask, made of ops the exporter knows.
        import transformers.masking_utils as mu

        def broadcast_sdpa_mask(batch_size, cache_position, kv_length, kv_offset=0,
                                mask_function=mu.causal_mask_function, attention_mask=None, **_):
            padding = mu.prepare_padding_mask(attention_mask, kv_length, kv_offset, _slice=False)
            if padding is not None:
                mask_function = mu.and_masks(mask_function, mu.padding_mask_function(padding))
            b = torch.arange(batch_size).view(-1, 1, 1, 1)
            h = torch.zeros(1, dtype=torch.long).view(1, -1, 1, 1)
            q = cache_position.view(1, 1, -1, 1)
            kv = (torch.arange(kv_length) + kv_offset).view(1, 1, 1, -1)
            return mask_function(b, h, q, kv).expand(batch_size, 1, cache_position.shape[0], kv_length)

        mu.sdpa_mask = broadcast_sdpa_mask
        with torch.no_grad():
            torch.onnx.export(Pipeline(st).eval(), (enc["input_ids"], enc["attention_mask"]), str(tmp),
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"},
                                            "embedding": {0: "batch"}},
                              opset_version=17, dynamo=False)
        os.replace(tmp, fp32)
    if int8 and not q8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = q8.with_suffix(".tmp.onnx")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, q8)
    return q8 if int8 else fp32


# -------------------------------------------------------------------- parent
def run(cmd, env=None, timeout=3600) -> str:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return r.stdout


def loadavg() -> list[float]:
    return list(os.getloadavg())


def setup_bench_venv(venv: pathlib.Path) -> pathlib.Path:
    py = venv / "bin" / "python"
    stamp = venv / ".gembed-bench-pins"
    want = hashlib.sha256(BENCH_PINS.encode()).hexdigest()
    if py.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return py
    if not py.exists():
        print(f"bench venv: creating {venv}", file=sys.stderr)
        venv.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "venv", venv])
    req = venv / ".gembed-bench-requirements.txt"
    req.write_text(BENCH_PINS + "\n")
    print("bench venv: installing torch (several GB), sentence-transformers, onnxruntime and llama-cpp-python "
          "(compiles llama.cpp); this takes a while", file=sys.stderr)
    env = dict(os.environ, CMAKE_ARGS="-DGGML_NATIVE=ON", CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", req], env=env, timeout=7200)
    stamp.write_text(want + "\n")
    return py


def make_cases(tmp: pathlib.Path) -> tuple[pathlib.Path, dict[str, pathlib.Path]]:
    pairs = json.loads((REPO / "tests/golden/data/st_retrieval_pairs.json").read_text(encoding="utf-8"))["pairs"]
    one = [QUERY_PROMPT + " ".join(pairs[0]["query"].split())]
    docs = [DOC_PROMPT + " ".join(p["document"].split()) for p in pairs[:64]]  # one line each
    assert len(docs) == 64
    queries = [QUERY_PROMPT + " ".join(p["query"].split()) for p in pairs]  # short texts: ~20 tokens each
    cases = {"1 text": one, "64 texts": docs, SHORT: queries}
    path = tmp / "cases.json"
    path.write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
    files = {}
    for name, texts in cases.items():
        f = tmp / f"{name.replace(' ', '_')}.txt"
        f.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        files[name] = f
    return path, files


def gembed_bench(gembed_bin, gguf, files, threads, repeat) -> dict:
    out = {"engine": "gembed-bench", "cases": {}}
    for name, f in files.items():
        j = json.loads(run([gembed_bin, "bench", "--model", gguf, "--input", f, "--threads", threads,
                            "--repeat", repeat, "--json"]))
        out["cases"][name] = {"texts": j["batch"], "p50_ms": j["p50_ms"], "min_ms": j["min_ms"],
                              "mean_ms": j["mean_ms"], "mean_tokens": j["tokens"]}
        out["rss_peak_mib"] = max(out.get("rss_peak_mib", 0.0), j["peak_rss_mib"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models" / "embeddinggemma-300m"),
                    help="Hugging Face folder (sentence-transformers; source of the GGUF)")
    ap.add_argument("--gguf", help="Q8_0 GGUF for gembed and llama.cpp (default: converted from --model)")
    ap.add_argument("--gembed", default=str(REPO / "build" / "bin" / "gembed"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--bench-venv", default=str(REPO / ".cache" / "bench-venv"))
    ap.add_argument("--json-out")
    ap.add_argument("--quick", action="store_true", help="1 round, 2 repeats: a smoke test")
    ap.add_argument("--setup-only", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--texts", help=argparse.SUPPRESS)
    ap.add_argument("--vec-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engines {sorted(unknown)} (known: {', '.join(ENGINES)})")
    if args.quick:
        args.rounds, args.repeat = 1, 2
    ref_py = None
    if args.setup_only or REF_ENGINES & set(engines):
        ref_py = setup_bench_venv(pathlib.Path(args.bench_venv))
        if args.setup_only:
            print(f"bench venv ready: {ref_py}")
            return 0

    model = pathlib.Path(args.model)
    gguf = pathlib.Path(args.gguf) if args.gguf else REPO / ".cache" / "bench" / "embeddinggemma-300m-q8_0.gguf"
    if not gguf.exists():
        gguf.parent.mkdir(parents=True, exist_ok=True)
        print(f"converting {model} -> {gguf} (Q8_0)", file=sys.stderr)
        run([args.gembed, "convert", model, "-o", gguf, "--type", "q8_0"])

    results: dict[str, list[dict]] = {e: [] for e in engines}
    load_before = loadavg()
    with tempfile.TemporaryDirectory() as tmp_dir:
        cases_path, files = make_cases(pathlib.Path(tmp_dir))
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   OMP_NUM_THREADS=str(args.threads))
        if {"ort-fp32", "ort-int8"} & set(engines):
            print("ONNX export (once, not timed)", file=sys.stderr)
            run([ref_py, __file__, "--child", "ort-prepare", "--model", model, "--gguf", gguf, "--texts", cases_path,
                 "--threads", args.threads, "--repeat", 1], env=env, timeout=3600)
        for r in range(args.rounds):
            for e in engines:
                print(f"round {r + 1}/{args.rounds}: {e}", file=sys.stderr)
                if e == "gembed-bench":
                    results[e].append(gembed_bench(args.gembed, gguf, files, args.threads, args.repeat))
                    continue
                py = sys.executable if e == "gembed-python" else ref_py
                cmd = [py, __file__, "--child", e, "--model", model, "--gguf", gguf, "--texts", cases_path,
                       "--threads", args.threads, "--repeat", args.repeat]
                if r == 0:
                    cmd += ["--vec-out", tmp_dir]
                out = run(cmd, env=env)
                results[e].append(json.loads(out.strip().splitlines()[-1]))
        import numpy as np

        sys.path.insert(0, str(REPO / "scripts"))
        import eval_quality as eq  # row_cosines

        vecs_of = {}  # engine -> one (texts, dim) array per case, from its first round
        for e in engines:
            fs = [pathlib.Path(tmp_dir) / f"{e}-{i}.npy" for i in range(len(files))]
            if all(f.exists() for f in fs):
                vecs_of[e] = [np.load(f) for f in fs]

    def med(e: str, case: str, key: str = "p50_ms") -> float:
        return statistics.median(r["cases"][case][key] for r in results[e])

    def med_top(e: str, key: str) -> float | None:
        vals = [r[key] for r in results[e] if key in r]
        return statistics.median(vals) if vals else None

    case_names = list(files)
    summary = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "threads": args.threads, "rounds": args.rounds, "repeat": args.repeat, "gguf": str(gguf),
               "model": str(model), "loadavg_before": load_before, "loadavg_after": loadavg(), "engines": {}}
    for e in engines:
        summary["engines"][e] = {
            "version": results[e][0].get("version"),
            "p50_ms": {c: med(e, c) for c in case_names},
            "texts_per_s": {c: results[e][0]["cases"][c]["texts"] / med(e, c) * 1000.0 for c in case_names},
            "load_s": med_top(e, "load_s"),
            "rss_after_load_mib": med_top(e, "rss_after_load_mib"),
            "rss_peak_mib": med_top(e, "rss_peak_mib"),
            "rounds": results[e],
        }
    base = "gembed-python" if "gembed-python" in engines else engines[0]
    # Every vector of every case against the reference (sentence-transformers, F32 PyTorch) and gembed.
    for e in engines:
        for ref in ("st", base):
            if e == ref or ref not in vecs_of or e not in vecs_of:
                continue
            summary["engines"][e]["all_vectors_vs_" + ref] = {
                c: {"cos_mean": float(cs.mean()), "cos_min": float(cs.min())}
                for c, cs in ((c, eq.row_cosines(vecs_of[e][i], vecs_of[ref][i])) for i, c in enumerate(case_names))}

    # The table (ratios: engine time / gembed-python time; > 1 = slower than gembed from Python).
    print(f"threads {args.threads}, {args.rounds} round(s) x {args.repeat} calls, median p50 per call; "
          f"load average {load_before[0]:.2f} -> {summary['loadavg_after'][0]:.2f}")
    n_short = results[base][0]["cases"][SHORT]["texts"]
    print(f"| engine | 1 text ms | 64 texts ms | texts/s (64) | texts/s ({n_short} queries) | "
          "vs gembed-python (1 / 64 / queries) | load s | RSS after load MiB | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for e in engines:
        s = summary["engines"][e]
        ratio = " / ".join(f"{s['p50_ms'][c] / summary['engines'][base]['p50_ms'][c]:.2f}x" for c in case_names)
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        print(f"| {e} | {s['p50_ms']['1 text']:.2f} | {s['p50_ms']['64 texts']:.1f} | "
              f"{s['texts_per_s']['64 texts']:.1f} | {s['texts_per_s'][SHORT]:.1f} | {ratio} | {fmt(s['load_s'], '.2f')} | "
              f"{fmt(s['rss_after_load_mib'], '.0f')} | {fmt(s['rss_peak_mib'], '.0f')} |")
    if "gembed-bench" in engines and "gembed-python" in engines:
        over = {c: summary["engines"]["gembed-python"]["p50_ms"][c] / summary["engines"]["gembed-bench"]["p50_ms"][c]
                - 1.0 for c in case_names}
        summary["python_overhead_vs_bench"] = over
        print("gembed-python vs gembed bench: " + ", ".join(f"{c} {100 * v:+.1f}%" for c, v in over.items())
              + " (target: within 5%)")
    printed = set()
    for e in engines:
        for key, cs in summary["engines"][e].items():
            pair = frozenset((e, key[len("all_vectors_vs_"):]))
            if key.startswith("all_vectors_vs_") and pair not in printed:  # each pair once
                printed.add(pair)
                print(f"{e} vs {key[len('all_vectors_vs_'):]}, cosine over all vectors (mean / min): "
                      + ", ".join(f"{c} {v['cos_mean']:.5f} / {v['cos_min']:.5f}" for c, v in cs.items()))
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
