#!/usr/bin/env python3
"""Regenerates the llama.cpp golden files in tests/golden/data/ (run by hand).

Needs: a built gembed (`gembed synth`) and the llama.cpp reference build
(scripts/build_llama_cpp.sh). CI never runs this; it reads the files.

    .venv/bin/python scripts/gen_llamacpp_golden.py --gembed build-oracle/bin/gembed \
        [--tokenizer-dir ../shared/gemma3-tokenizer] [--workdir /tmp/gembed-golden] [--types f32,q8_0] \
        [--skip-embeddings] [--skip-tokenize] [--no-oracle]

Writes
* llamacpp_<type>.json: a fixed-seed full-size synthetic model (24 layers,
  with Dense) made by `gembed synth` (command, seed, gembed version and the
  GGUF's sha256, so the test can rebuild the same bytes and notice a drifted
  generator), the texts (short ones verbatim, long ones as a seeded recipe from
  tests/oracle/oracle_texts.py plus their sha256), llama.cpp's token ids and its
  L2-normalised embeddings (llama-embedding -fa off, 7 decimals as printed);
* llamacpp_tokenize.json: llama-tokenize ids for ~200 varied strings on the
  vocabulary-only GGUF from `gembed synth --vocab-only`.
It also runs the float64 NumPy oracle (tests/oracle/numpy_forward.py) on
llama.cpp's ids and records its worst cosine against llama.cpp (validation of
the oracle on the full-size model), and checks that gembed's GGUF vocabulary
equals the converter layout written independently in tests/oracle/make_test_gguf.py.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "oracle"))

import oracle_cli as gembed_cli  # noqa: E402
import gguf_lite  # noqa: E402
import llamacpp_ref as llamacpp  # noqa: E402
import make_test_gguf as make_gguf  # noqa: E402
import numpy_forward as nf  # noqa: E402
import oracle_texts as T  # noqa: E402
import oracle_tokenize_corpus as tokenize_corpus  # noqa: E402

DATA = REPO / "tests" / "golden" / "data"
SEED = 424242
FLASH_ATTN = "off"
MIN_COSINE = {"f32": 0.9999, "q8_0": 0.999}


def sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def corpus() -> list[dict]:
    """Golden text records (without ids/embeddings yet). `full` is what is embedded."""
    recs = []
    for i, t in enumerate(T.SHORT_TEXTS):
        recs.append({"label": f"short{i}", "task": None, "title": None, "text": t, "full": t})
    for i, (task, title, t) in enumerate(T.PROMPTED_TEXTS):
        recs.append({"label": f"prompted{i}", "task": task, "title": title, "text": t,
                     "full": T.task_prefix(task, title) + t})
    for seed, n, task in T.LONG_RECIPES:
        t = T.random_text(seed, n)
        recs.append({"label": f"long{seed}", "task": task, "title": None,
                     "recipe": {"fn": "oracle_texts.random_text", "seed": seed, "n_words": n},
                     "text_sha256": T.sha256(t), "text": t, "full": T.task_prefix(task) + t})
    return recs


def dump_golden(doc: dict, path: pathlib.Path) -> None:
    """Indented JSON, but each id list / embedding on one line (small, diffable)."""
    def compact(o):
        return json.dumps(o, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    keys = list(doc)
    for ki, k in enumerate(keys):
        end = "," if ki < len(keys) - 1 else ""
        if k in ("texts", "cases"):
            lines.append(f'  "{k}": [')
            for i, rec in enumerate(doc[k]):
                lines.append("    {" + ", ".join(f"{json.dumps(rk)}: {compact(rv)}" for rk, rv in rec.items())
                             + "}" + ("," if i < len(doc[k]) - 1 else ""))
            lines.append("  ]" + end)
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(doc[k], ensure_ascii=False)}{end}")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_vocab_layout(vocab_gguf: pathlib.Path, tokenizer_dir: pathlib.Path) -> list[str]:
    """Differences between gembed's GGUF vocabulary and make_test_gguf.py's converter layout."""
    g = gguf_lite.GGUFFile(vocab_gguf)
    tokens, scores, types = make_gguf.build_vocab(tokenizer_dir)
    problems = []
    gt = g.get("tokenizer.ggml.tokens") or []
    gs = g.get("tokenizer.ggml.scores") or []
    gy = g.get("tokenizer.ggml.token_type") or []
    if len(gt) != len(tokens):
        problems.append(f"token count {len(gt)} != {len(tokens)}")
    bad = [i for i in range(min(len(gt), len(tokens))) if gt[i] != tokens[i]]
    if bad:
        problems.append(f"{len(bad)} token texts differ, first ids {bad[:5]}")
    bad = [i for i in range(min(len(gy), len(types))) if gy[i] != types[i]]
    if bad:
        problems.append(f"{len(bad)} token types differ, first ids {bad[:5]}")
    bad = [i for i in range(min(len(gs), len(scores))) if gs[i] != float(scores[i])]
    if bad:
        problems.append(f"{len(bad)} scores differ, first ids {bad[:5]}")
    for key, want in (("tokenizer.ggml.model", "llama"), ("tokenizer.ggml.bos_token_id", 2),
                      ("tokenizer.ggml.eos_token_id", 1), ("tokenizer.ggml.add_bos_token", True),
                      ("tokenizer.ggml.add_eos_token", True), ("tokenizer.ggml.add_space_prefix", False)):
        if g.get(key) != want:
            problems.append(f"{key} = {g.get(key)!r}, expected {want!r}")
    return problems


def gen_embeddings(args, qtype: str, work: pathlib.Path) -> None:
    tok_json = pathlib.Path(args.tokenizer_dir) / "tokenizer.json"
    model = work / f"golden_{qtype}.gguf"
    t0 = time.time()
    gembed_cli.synth(args.gembed, tok_json, model, qtype=qtype, seed=SEED)
    t_synth = time.time() - t0
    digest = sha256_file(model)
    recs = corpus()
    ids = [llamacpp.tokenize(model, r["full"]) for r in recs]
    longest = max(map(len, ids))
    t0 = time.time()
    emb = llamacpp.embed(model, [r["full"] for r in recs], flash_attn=FLASH_ATTN, max_tokens=longest)
    t_llama = time.time() - t0
    n_batch = max(256, (longest + 255) // 256 * 256)

    worst_oracle = None
    if not args.no_oracle:
        oracle = nf.GemmaEmbeddingOracle(model)
        worst_oracle = min(nf.cosine(oracle.embed(i), e) for i, e in zip(ids, emb))
        print(f"{qtype}: oracle (float64, dequantised weights) vs llama.cpp worst cosine {worst_oracle:.9f}")

    hp = nf.read_hparams(nf._Source(str(model), "lite"))
    out_recs = []
    for r, i, e in zip(recs, ids, emb):
        rec = {"label": r["label"], "task": r["task"], "title": r["title"]}
        if "recipe" in r:
            rec["recipe"] = r["recipe"]
            rec["text_sha256"] = r["text_sha256"]
        else:
            rec["text"] = r["text"]
        rec["n_tokens"] = len(i)
        rec["ids"] = i
        rec["embedding"] = [float(f"{x:.7g}") for x in e]
        out_recs.append(rec)
    doc = {
        "format": 1,
        "description": f"llama.cpp reference embeddings of a full-size synthetic EmbeddingGemma GGUF ({qtype})",
        "generator": "scripts/gen_llamacpp_golden.py",
        "model": {
            "synth_command": gembed_cli.synth_command(qtype, SEED),
            "synth_args": ["--type", qtype, "--seed", str(SEED)],
            "seed": SEED, "type": qtype, "gembed_version": gembed_cli.version(args.gembed),
            "sha256": digest, "size_bytes": model.stat().st_size,
            "n_embd": hp.n_embd, "n_layer": hp.n_layer, "dense": "dense_2.weight" in
            gguf_lite.GGUFFile(model).tensors,
        },
        "reference": {
            "llama_cpp": llamacpp.version(),
            "command": llamacpp.embed_command_line("MODEL.gguf", FLASH_ATTN, n_batch),
            "tokenize_command": "llama-tokenize -m MODEL.gguf -f TEXT --no-escape --ids --log-disable",
            "embedding_decimals": 7,
        },
        "min_cosine": MIN_COSINE[qtype],
        "oracle_vs_llamacpp_worst_cosine": worst_oracle,
        "texts": out_recs,
    }
    path = DATA / f"llamacpp_{qtype}.json"
    dump_golden(doc, path)
    print(f"{qtype}: wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes); synth {t_synth:.1f}s, "
          f"llama.cpp {t_llama:.1f}s for {len(recs)} texts (longest {longest} tokens)")
    if not args.keep_models:
        model.unlink()


def gen_tokenize(args, work: pathlib.Path) -> None:
    tok_dir = pathlib.Path(args.tokenizer_dir)
    model = work / "golden_vocab.gguf"
    gembed_cli.run([args.gembed, "synth", "-o", model, "--tokenizer", tok_dir / "tokenizer.json",
                    "--vocab-only"])
    problems = check_vocab_layout(model, tok_dir)
    for p in problems:
        print(f"WARNING: gembed synth vocabulary differs from the converter layout: {p}")
    strings = tokenize_corpus.strings()
    cases = []
    for s in strings:
        cases.append({"text": s, "ids": llamacpp.tokenize(model, s)})
    doc = {
        "format": 1,
        "description": "llama.cpp token ids (BOS/EOS added, special tokens parsed) on gembed's vocab-only GGUF",
        "generator": "scripts/gen_llamacpp_golden.py",
        "model": {"synth_command": "gembed synth -o VOCAB.gguf --tokenizer gemma3-tokenizer/tokenizer.json "
                                   "--vocab-only",
                  "synth_args": ["--vocab-only"], "gembed_version": gembed_cli.version(args.gembed),
                  "sha256": sha256_file(model), "vocab_layout_problems": problems},
        "reference": {"llama_cpp": llamacpp.version(),
                      "command": "llama-tokenize -m VOCAB.gguf -f TEXT --no-escape --ids --log-disable"},
        "cases": cases,
    }
    path = DATA / "llamacpp_tokenize.json"
    dump_golden(doc, path)
    print(f"tokenize: wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes), {len(cases)} strings")
    if not args.keep_models:
        model.unlink()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gembed", default=str(REPO / "build" / "bin" / "gembed"))
    ap.add_argument("--tokenizer-dir", default=str(REPO.parent / "shared" / "gemma3-tokenizer"))
    ap.add_argument("--workdir", default="/tmp/gembed-golden")
    ap.add_argument("--types", default="f32,q8_0")
    ap.add_argument("--skip-embeddings", action="store_true")
    ap.add_argument("--skip-tokenize", action="store_true")
    ap.add_argument("--no-oracle", action="store_true", help="do not run the NumPy oracle check")
    ap.add_argument("--keep-models", action="store_true")
    args = ap.parse_args()
    work = pathlib.Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    if not args.skip_tokenize:
        gen_tokenize(args, work)
    if not args.skip_embeddings:
        for qtype in args.types.split(","):
            gen_embeddings(args, qtype, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
