#!/usr/bin/env python3
"""Golden data for the real EmbeddingGemma-300M (run by hand; CI only reads the files).

Two modes:

1. sentence-transformers (default; needs the PyTorch reference env):

    HF_HUB_OFFLINE=1 .cache/venv-ref/bin/python scripts/gen_st_golden.py \
        [--model-dir models/embeddinggemma-300m]

   writes tests/golden/data/st_embeddinggemma.json:
   * "cases": 60+ texts (short hand-written ones, and long ones assembled from a
     seeded shuffle of the retrieval documents: > 300, > 1,000 and > 2,048
     tokens, the last one truncated by sentence-transformers to max_seq_length)
     covering every prompt name of the folder's config_sentence_transformers.json
     and every built-in gembed --task name (tokenizer/prompts.h), each at one of
     the Matryoshka dims 768/512/256/128 (every dim used often). For each: the
     gembed --task name and --title, the prompt string, the text verbatim,
     sentence-transformers' token ids (model.tokenize on prompt + text, i.e.
     after its truncation) and its embedding: SentenceTransformer.encode(...,
     prompt=..., truncate_dim=dim) (the full pipeline incl. Dense and
     Normalize, then the first dim components), re-normalised to unit length
     as the model card prescribes for Matryoshka dims, rounded to 7
     significant digits.
   * "retrieval": for the hand-written pairs in st_retrieval_pairs.json, the
     queries embedded with prompt_name="query" and the documents with
     prompt_name="document"; cosine top-1 document per query, its score, the
     margin to the runner-up, and recall@1.
   * "whitespace_cases": texts whose PROMPT + TEXT has leading or trailing
     whitespace that sentence-transformers strips (str.strip(): tabs,
     newlines, U+00A0, U+3000, ...), in the same record format as "cases".

   --whitespace-only recomputes just "whitespace_cases" and leaves every other
   line of the existing file as it is.

2. llama.cpp (--llamacpp; the project .venv is enough):

    .venv/bin/python scripts/gen_st_golden.py --llamacpp --gembed build/bin/gembed

   converts the folder with `gembed convert` to F32 and Q8_0 GGUFs (sha256
   recorded: the converter is deterministic, the test re-converts and checks
   it), runs llama.cpp's llama-embedding on them (-fa off, mean pooling,
   --embd-normalize 2; tests/oracle/llamacpp_ref.py) for a subset of the
   golden cases (incl. the long ones) and writes
   tests/golden/data/st_embeddinggemma_llamacpp.json.

Neither mode is run by CI; tests/python/test_real_model.py compares gembed
with these files when the real model is present.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import random
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "golden" / "data"
ST_GOLDEN = DATA / "st_embeddinggemma.json"
LLAMA_GOLDEN = DATA / "st_embeddinggemma_llamacpp.json"
PAIRS = DATA / "st_retrieval_pairs.json"
DIMS = (768, 512, 256, 128)

# gembed's built-in --task names (src/tokenizer/prompts.h, from the model card):
# the one Python copy of the table lives with the test oracles.
sys.path.insert(0, str(REPO / "tests" / "oracle"))
from oracle_texts import TASK_PREFIXES as BUILTIN_PROMPTS  # noqa: E402

# Short hand-written texts (label, text).
SHORT_TEXTS = [
    ("cat", "The cat sat on the mat."),
    ("password", "How do I reset my password?"),
    ("paris", "Paris is the capital of France."),
    ("violin", "He plays the violin in an orchestra."),
    ("stocks", "The stock market crashed today, wiping out billions in value."),
    ("boiling", "Water boils at 100 degrees Celsius at sea level."),
    ("hiking", "I love hiking in the mountains on cool autumn mornings."),
    ("fever", "The patient has had a high fever and a dry cough for three days."),
    ("german", "Der Hund bellt laut, weil der Briefträger vor der Tür steht."),
    ("french", "Les enfants jouent dans le jardin pendant que leurs parents préparent le dîner."),
    ("spanish", "¿Dónde está la estación de tren más cercana?"),
    ("japanese", "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。"),
    ("chinese", "机器学习是人工智能的一个分支，它使计算机能够从数据中学习。"),
    ("russian", "Москва — столица России и крупнейший город страны."),
    ("arabic", "القاهرة هي عاصمة مصر وأكبر مدنها."),
    ("hindi", "भारत एक विशाल और विविधतापूर्ण देश है।"),
    ("emoji", "Best pizza in town 🍕🔥 — would definitely come back! 👍"),
    ("code_py", "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return a + b\n"),
    ("code_cpp", "for (int i = 0; i < n; ++i) {\n\tsum += values[i] * weights[i];\n}"),
    ("sql", "SELECT name, COUNT(*) AS n FROM orders GROUP BY name HAVING n > 5 ORDER BY n DESC;"),
    ("json", "{\"id\": 42, \"tags\": [\"alpha\", \"beta\"], \"active\": true}"),
    ("multiline", "First line of the note.\nSecond line, after a newline.\n\nA new paragraph after a blank line."),
    ("spaces", "Columns    separated     by    runs   of   spaces\tand\ttabs."),
    ("html", "<p>Click <b>here</b> to <a href=\"/docs\">read the documentation</a>.</p>"),
    ("special_in_text", "The tokens <start_of_turn> and <end_of_turn> appear literally in this text."),
    ("numbers", "In 2023, revenue grew 17.5% to $3,141,592.65 across 12 regions."),
    ("url", "Visit https://example.com/path?query=embedding&lang=en#section-2 for details."),
    ("empty", ""),
    ("single_word", "serendipity"),
    ("punct", "Wait... what?! No way — that's (almost) impossible; right?"),
    ("question", "What is the difference between a virus and a bacterium?"),
    ("math", "The integral of x squared from 0 to 3 equals 9; e^(iπ) + 1 = 0."),
    ("legal", "The lessee shall indemnify the lessor against all claims arising from the use of the premises."),
    ("medical", "Metformin is a first-line medication for the treatment of type 2 diabetes."),
    ("recipe", "Whisk two eggs with a pinch of salt, pour into a hot buttered pan and stir gently until just set."),
    ("news", "Heavy rain caused flooding in several districts overnight, and schools will remain closed on Monday."),
]

# Which prompt each short text gets, in order; cycles over every name so each
# folder name and each built-in name is used at least once.
# Entries: ("folder", name) = prompt_name in config_sentence_transformers.json;
# ("builtin", name[, title]) = gembed's built-in table; (None,) = no prompt.
# Long texts: (seed, n_words, prompt spec).
LONG_RECIPES = [
    (101, 260, ("folder", "document")),
    (102, 300, ("builtin", "similarity")),
    (103, 330, (None,)),
    (104, 900, ("folder", "query")),
    (105, 1100, ("builtin", "document", "A long report")),
    (106, 1500, ("folder", "Clustering")),
    (107, 2400, ("folder", "Retrieval-document")),  # > 2,048 tokens: truncated
]


def sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pairs() -> list[dict]:
    return json.loads(PAIRS.read_text(encoding="utf-8"))["pairs"]


def long_text(seed: int, n_words: int) -> str:
    """A long natural-language text: the retrieval documents in a seeded order
    (paragraph breaks every few), cut to n_words words. Stored verbatim in the
    golden file; the recipe is recorded for provenance only."""
    docs = [p["document"] for p in load_pairs()]
    rng = random.Random(seed)
    words: list[str] = []
    paragraphs: list[str] = []
    while len(words) < n_words:
        order = docs[:]
        rng.shuffle(order)
        for i in range(0, len(order), 4):
            para = " ".join(order[i:i + 4])
            paragraphs.append(para)
            words.extend(para.split())
            if len(words) >= n_words:
                break
    text = "\n\n".join(paragraphs)
    # Cut at the n_words-th word, keeping the original whitespace before it.
    count, pos = 0, 0
    for i, ch in enumerate(text):
        if not ch.isspace() and (i == 0 or text[i - 1].isspace()):
            count += 1
            if count > n_words:
                pos = i
                break
    return text[:pos].rstrip() if pos else text


def prompt_specs(folder_prompts: dict) -> list[tuple]:
    specs = [("folder", n) for n in folder_prompts]
    specs += [("builtin", n) for n in BUILTIN_PROMPTS if n not in folder_prompts]
    specs += [("builtin", "document", "Quarterly results"), ("folder", "document", "Cooking at home"), (None,)]
    return specs


def resolve(spec: tuple, folder_prompts: dict) -> tuple[str | None, str | None, str]:
    """(gembed --task, --title, prompt string) of a prompt spec."""
    if spec[0] is None:
        return None, None, ""
    kind, name = spec[0], spec[1]
    title = spec[2] if len(spec) > 2 else None
    if kind == "folder":
        p = folder_prompts[name]
        if title:
            assert p.startswith("title: none | "), p
            p = f"title: {title} | " + p[len("title: none | "):]
        return name, title, p
    p = BUILTIN_PROMPTS[name].replace("{title}", title or "none")
    return name, title, p


# Texts with edge whitespace that sentence-transformers strips from PROMPT + TEXT
# (label, prompt spec as in LONG_RECIPES, text, dim). With a prompt, the text's
# leading whitespace is inside PROMPT + TEXT and stays (ws_leading_prompt, the
# one case with nothing to strip).
WHITESPACE_CASES = [
    ("ws_empty_query", ("folder", "query"), "", 768),
    ("ws_leading", (None,), "  leading spaces", 512),
    ("ws_leading_prompt", ("folder", "document"), "  leading spaces", 256),
    ("ws_trailing_newline", ("builtin", "question-answering"), "trailing newline\n", 128),
    ("ws_tabs_ideographic", (None,), "\ttabs and\u3000ideographic space\u3000", 768),
    ("ws_nbsp", ("folder", "STS"), "\u00a0nbsp\u00a0", 512),
    ("ws_only", ("folder", "Clustering"), "  \n\t ", 256),
    ("ws_nel_line_separator", (None,), "\u0085\u2028NEL and line separator\u2029\u202f\r\n", 128),
]


def build_whitespace_cases(folder_prompts: dict) -> list[dict]:
    cases = []
    for label, spec, text, dim in WHITESPACE_CASES:
        task, title, prompt = resolve(spec, folder_prompts)
        cases.append({"label": label, "prompt_source": spec[0], "task": task, "title": title,
                      "prompt": prompt, "text": text, "dim": dim})
    return cases


def build_cases(folder_prompts: dict) -> list[dict]:
    specs = prompt_specs(folder_prompts)
    cases = []
    for i, (label, text) in enumerate(SHORT_TEXTS):
        spec = specs[i % len(specs)]
        task, title, prompt = resolve(spec, folder_prompts)
        cases.append({"label": label, "prompt_source": spec[0], "task": task, "title": title,
                      "prompt": prompt, "text": text})
    # A few more texts so that every prompt spec is used at least once and a
    # handful get two prompts.
    extra = len(specs) - len(SHORT_TEXTS) if len(specs) > len(SHORT_TEXTS) else 0
    for k in range(extra + 10):
        label, text = SHORT_TEXTS[(k * 7 + 3) % len(SHORT_TEXTS)]
        spec = specs[(len(SHORT_TEXTS) + k) % len(specs)]
        task, title, prompt = resolve(spec, folder_prompts)
        cases.append({"label": f"{label}_p{k}", "prompt_source": spec[0], "task": task, "title": title,
                      "prompt": prompt, "text": text})
    for seed, n_words, spec in LONG_RECIPES:
        task, title, prompt = resolve(spec, folder_prompts)
        cases.append({"label": f"long{seed}", "prompt_source": spec[0], "task": task, "title": title,
                      "prompt": prompt, "recipe": {"fn": "long_text", "seed": seed, "n_words": n_words},
                      "text": long_text(seed, n_words)})
    for i, c in enumerate(cases):
        c["dim"] = DIMS[i % len(DIMS)]
    return cases


def round7(x: float) -> float:
    return float(f"{x:.7g}")


def dump(doc: dict, path: pathlib.Path) -> None:
    """Indented JSON with one line per case (small diffs, < 1 MB)."""
    def compact(o):
        return json.dumps(o, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    keys = list(doc)
    for ki, k in enumerate(keys):
        end = "," if ki < len(keys) - 1 else ""
        v = doc[k]
        if isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append(f'  "{k}": [')
            for i, rec in enumerate(v):
                lines.append("    " + compact(rec) + ("," if i < len(v) - 1 else ""))
            lines.append("  ]" + end)
        elif isinstance(v, dict):
            lines.append(f'  "{k}": {{')
            sub = list(v)
            for si, sk in enumerate(sub):
                lines.append(f'    {json.dumps(sk)}: {compact(v[sk])}' + ("," if si < len(sub) - 1 else ""))
            lines.append("  }" + end)
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{end}")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def model_files(model_dir: pathlib.Path) -> dict:
    names = ["model.safetensors", "2_Dense/model.safetensors", "3_Dense/model.safetensors", "tokenizer.json",
             "config.json", "config_sentence_transformers.json"]
    return {n: sha256_file(model_dir / n) for n in names}


# --------------------------------------------------------------------------
# sentence-transformers mode
# --------------------------------------------------------------------------
def run_st(args) -> int:
    """Everything, or with --whitespace-only just "whitespace_cases"."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model_dir = pathlib.Path(args.model_dir)
    t0 = time.perf_counter()
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    auto = model[0].auto_model
    attn_impl = getattr(auto.config, "_attn_implementation", None)
    print(f"loaded in {time.perf_counter() - t0:.1f} s; attention {attn_impl}; dtype {auto.dtype}", file=sys.stderr)
    folder_prompts = dict(model.prompts)
    cases = build_cases(folder_prompts)
    ws_cases = build_whitespace_cases(folder_prompts)

    def embed(texts, prompt, dim=None, batch_size=1):
        with torch.inference_mode():
            e = model.encode(texts, prompt=prompt, batch_size=batch_size, convert_to_numpy=True,
                             truncate_dim=dim)
        e = e.astype(np.float64)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def fill(cs):
        t0 = time.perf_counter()
        for c in cs:
            ids = model.tokenize([c["prompt"] + c["text"]])["input_ids"][0].tolist()
            c["n_tokens"] = len(ids)
            c["st_ids"] = ids
            e = embed([c["text"]], c["prompt"], dim=c["dim"])[0]
            c["embedding"] = [round7(x) for x in e]
            print(f"{c['label']:>24} {c['dim']:4d} {len(ids):5d} tokens  task={c['task']}", file=sys.stderr)
        print(f"{len(cs)} cases: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    fill(ws_cases)
    if args.whitespace_only:
        doc = json.loads(ST_GOLDEN.read_text(encoding="utf-8"))
        assert doc["model"]["sha256"] == model_files(model_dir), "the golden file was made from other files"
        doc["whitespace_cases"] = ws_cases
        dump(doc, ST_GOLDEN)
        print(f"wrote {ST_GOLDEN}: whitespace_cases ({len(ws_cases)})", file=sys.stderr)
        return 0
    fill(cases)

    pairs = load_pairs()
    t0 = time.perf_counter()
    q = embed([p["query"] for p in pairs], model.prompts["query"], batch_size=8)
    d = embed([p["document"] for p in pairs], model.prompts["document"], batch_size=8)
    sims = q @ d.T
    order = np.argsort(-sims, axis=1)
    top1 = order[:, 0]
    retrieval = {
        "pairs_file": "st_retrieval_pairs.json",
        "query_prompt": model.prompts["query"],
        "document_prompt": model.prompts["document"],
        "n_queries": len(pairs),
        "recall_at_1": float(np.mean(top1 == np.arange(len(pairs)))),
        "top1": [int(i) for i in top1],
        "top1_score": [round7(sims[i, top1[i]]) for i in range(len(pairs))],
        "margin": [round7(sims[i, order[i, 0]] - sims[i, order[i, 1]]) for i in range(len(pairs))],
    }
    print(f"retrieval: recall@1 {retrieval['recall_at_1']:.4f} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    doc = {
        "generator": "scripts/gen_st_golden.py",
        "reference": {"sentence_transformers": sentence_transformers.__version__,
                      "transformers": transformers.__version__, "torch": torch.__version__,
                      "device": "cpu", "dtype": str(auto.dtype), "attn_implementation": attn_impl},
        "model": {"dir": "models/embeddinggemma-300m", "sha256": model_files(model_dir)},
        "embedding": ("SentenceTransformer.encode(text, prompt=PROMPT, truncate_dim=DIM), then re-normalised to "
                      "unit length (float64), rounded to 7 significant digits"),
        "ids": "model.tokenize([PROMPT + TEXT]) input_ids (BOS ... EOS, truncated to max_seq_length 2048)",
        "builtin_prompts": BUILTIN_PROMPTS,
        "folder_prompts": folder_prompts,
        "retrieval": retrieval,
        "cases": cases,
        "whitespace_cases": ws_cases,
    }
    dump(doc, ST_GOLDEN)
    print(f"wrote {ST_GOLDEN} ({ST_GOLDEN.stat().st_size} bytes, {len(cases)} cases)", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------
# llama.cpp mode
# --------------------------------------------------------------------------
LLAMA_TYPES = ("f32", "q8_0")


def llamacpp_case_labels(cases: list[dict]) -> list[str]:
    """The subset llama.cpp embeds: every 3rd short case plus every long one."""
    short = [c["label"] for c in cases if "recipe" not in c]
    return [l for l in short[::3] if l != "empty"] + [c["label"] for c in cases if "recipe" in c]


def run_llamacpp(args) -> int:
    import subprocess
    import tempfile

    import numpy as np
    sys.path.insert(0, str(REPO / "tests" / "oracle"))
    import llamacpp_ref as llamacpp

    golden = json.loads(ST_GOLDEN.read_text(encoding="utf-8"))
    cases = {c["label"]: c for c in golden["cases"]}
    labels = llamacpp_case_labels(golden["cases"])
    model_dir = pathlib.Path(args.model_dir)
    out = {
        "generator": "scripts/gen_st_golden.py --llamacpp",
        "llama_cpp": llamacpp.version(),
        "command": llamacpp.embed_command_line("MODEL.gguf", "off", 2048),
        "convert": "gembed convert models/embeddinggemma-300m -o MODEL.gguf --type TYPE",
        "model": {"sha256": model_files(model_dir)},
        "note": ("texts are the st_embeddinggemma.json cases with these labels, embedded as PROMPT + TEXT; "
                 "embeddings at full dim (768), L2-normalised by llama.cpp, 7 decimals as printed"),
        "labels": labels,
        "gguf": {},
        "embeddings": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for t in LLAMA_TYPES:
            gguf = pathlib.Path(tmp) / f"embeddinggemma-300m-{t}.gguf"
            subprocess.run([args.gembed, "convert", str(model_dir), "-o", str(gguf), "--type", t], check=True)
            out["gguf"][t] = {"sha256": sha256_file(gguf), "bytes": gguf.stat().st_size}
            texts = [cases[l]["prompt"] + cases[l]["text"] for l in labels]
            # llama.cpp does not truncate (MODEL-SPEC §4.2): the > 2,048-token text
            # is left out here (it is compared with sentence-transformers instead).
            keep = [i for i, l in enumerate(labels) if cases[l]["n_tokens"] < 2048]
            t0 = time.perf_counter()
            emb = llamacpp.embed(gguf, [texts[i] for i in keep], max_tokens=2048)
            print(f"llama.cpp {t}: {len(keep)} texts in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            out["embeddings"][t] = {labels[i]: [float(x) for x in emb[k]] for k, i in enumerate(keep)}
    out["labels"] = [l for l in labels if cases[l]["n_tokens"] < 2048]
    dump_llama(out)
    return 0


def dump_llama(doc: dict) -> None:
    lines = ["{"]
    keys = list(doc)
    for ki, k in enumerate(keys):
        end = "," if ki < len(keys) - 1 else ""
        v = doc[k]
        if k == "embeddings":
            lines.append('  "embeddings": {')
            types = list(v)
            for ti, t in enumerate(types):
                lines.append(f'    "{t}": {{')
                labs = list(v[t])
                for li, l in enumerate(labs):
                    vec = ",".join(f"{x:.7f}".rstrip("0").rstrip(".") if x != 0 else "0" for x in v[t][l])
                    lines.append(f'      {json.dumps(l)}: [{vec}]' + ("," if li < len(labs) - 1 else ""))
                lines.append("    }" + ("," if ti < len(types) - 1 else ""))
            lines.append("  }" + end)
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{end}")
    lines.append("}")
    LLAMA_GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {LLAMA_GOLDEN} ({LLAMA_GOLDEN.stat().st_size} bytes)", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default=str(REPO / "models" / "embeddinggemma-300m"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llamacpp", action="store_true", help="llama.cpp mode (see the module doc)")
    ap.add_argument("--whitespace-only", action="store_true",
                    help="sentence-transformers mode: recompute only \"whitespace_cases\" in the existing file")
    ap.add_argument("--gembed", default=str(REPO / "build" / "bin" / "gembed"), help="gembed binary (--llamacpp)")
    args = ap.parse_args()
    return run_llamacpp(args) if args.llamacpp else run_st(args)


if __name__ == "__main__":
    sys.exit(main())
