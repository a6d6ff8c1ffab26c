"""The real EmbeddingGemma-300M: gembed vs sentence-transformers and llama.cpp.

Runs only when the Hugging Face folder is present ($GEMBED_REAL_MODEL_DIR, else
models/embeddinggemma-300m: scripts/fetch_embeddinggemma.py); skips otherwise.
Golden data (tests/golden/data, see README.md there):
* st_embeddinggemma.json: sentence-transformers 5.1.2 / PyTorch CPU F32
  embeddings and token ids of 53 texts (every prompt name, all four
  Matryoshka dims, up to 2,996 tokens), and ST's top-1 results on 115
  hand-written query/document pairs (st_retrieval_pairs.json);
* st_embeddinggemma_llamacpp.json: llama.cpp's embeddings of 21 of those texts
  on the F32 / Q8_0 GGUFs that `gembed convert` makes from the folder (with the
  files' sha256).

Once per session: `gembed convert` to F32 and Q8_0 in a temporary folder
(~15 s), then ONE `gembed embed` call per model (folder, F32 GGUF, Q8_0 GGUF)
over every golden text and retrieval text, and one --dim call on the folder.

Input preprocessing: sentence-transformers strips leading/trailing whitespace
of PROMPT + TEXT before tokenising (Transformer.tokenize: str(s).strip());
gembed, like llama.cpp, embeds the text as given. The comparisons with
sentence-transformers therefore feed gembed (PROMPT + TEXT).strip() as the
text; test_whitespace_is_not_stripped documents the difference. The prompt
strings come from the golden file; that `gembed embed --task NAME [--title]`
resolves each name to the same string is checked by
test_hf --gtest_filter=HfPrompts.GoldenCasesResolveToTheirPrompts and here
for a few names on the real folder.

Run with -s to see the figures (lines starting "REAL").
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "golden" / "data"
REAL = pathlib.Path(os.environ.get("GEMBED_REAL_MODEL_DIR", REPO / "models" / "embeddinggemma-300m"))

pytestmark = pytest.mark.skipif(
    not ((REAL / "config.json").exists() and (REAL / "model.safetensors").exists()),
    reason=f"real EmbeddingGemma-300M folder not found at {REAL} "
           "(python3 scripts/fetch_embeddinggemma.py, or set GEMBED_REAL_MODEL_DIR)")

MIN_COSINE = {"folder": 0.9999, "f32": 0.9999, "q8_0": 0.999}    # vs sentence-transformers
# Q8_0 texts of more than 1,000 tokens: the int8 weights AND int8 activations
# (llama.cpp's arithmetic, MODEL-SPEC §7.2) cost a little more on long inputs.
# llama.cpp itself gives 0.99901 / 0.99913 / 0.99911 vs sentence-transformers
# on the 1,085 / 1,345 / 1,853-token golden texts (measured when the golden
# data was made); gembed's fast path 0.99905 / 0.99916 / 0.99903 and 0.99886 on
# the 2,048-token one (--precision high: 0.99942). The bound for those is 0.998,
# and test_q8_0_is_as_close_as_llamacpp holds gembed to llama.cpp's own level.
MIN_COSINE_Q8_LONG = 0.998
MIN_COSINE_LLAMA = {"f32": 0.9999, "q8_0": 0.999}                 # vs llama.cpp on the same GGUF


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


GOLDEN = load("st_embeddinggemma.json")
PAIRS = load("st_retrieval_pairs.json")["pairs"]
LLAMA = load("st_embeddinggemma_llamacpp.json")
CASES = GOLDEN["cases"]
BY_LABEL = {c["label"]: c for c in CASES}


def run(cmd, stdin: bytes = b"") -> bytes:
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, timeout=900, check=False)
    if r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-3000:]}")
    return r.stdout


def jsonl(texts) -> bytes:
    return "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts).encode()


def embed(gembed, model, texts, *args) -> np.ndarray:
    out = run([gembed, "embed", "--model", model, "--jsonl", "--threads", str(os.cpu_count() or 2), *args],
              jsonl(texts)).decode().splitlines()
    assert len(out) == len(texts)
    return np.array([json.loads(line) for line in out], dtype=np.float64)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def truncate(v: np.ndarray, dim: int) -> np.ndarray:
    v = v[:dim]
    return v / np.linalg.norm(v)


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# What sentence-transformers tokenises for a case / a retrieval text.
def st_text(prompt: str, text: str) -> str:
    return (prompt + text).strip()


ST_TEXTS = ([st_text(c["prompt"], c["text"]) for c in CASES]
            + [st_text(GOLDEN["retrieval"]["query_prompt"], p["query"]) for p in PAIRS]
            + [st_text(GOLDEN["retrieval"]["document_prompt"], p["document"]) for p in PAIRS])
N_CASES, N_PAIRS = len(CASES), len(PAIRS)
# What llama.cpp embedded (unstripped PROMPT + TEXT).
LLAMA_TEXTS = [BY_LABEL[l]["prompt"] + BY_LABEL[l]["text"] for l in LLAMA["labels"]]


@pytest.fixture(scope="session")
def real_models(gembed, tmp_path_factory):
    d = tmp_path_factory.mktemp("real_gguf")
    out = {"folder": REAL}
    for t in ("f32", "q8_0"):
        p = d / f"embeddinggemma-300m-{t}.gguf"
        run([gembed, "convert", REAL, "-o", p, "--type", t])
        out[t] = p
    return out


@pytest.fixture(scope="session")
def vectors(gembed, real_models):
    """One embed call per model: golden cases, queries, documents (ST input), then the
    llama.cpp texts. The F32 GGUF skips the retrieval texts (it is compared with the
    folder, which gets them, bit for bit); their rows are NaN."""
    texts = ST_TEXTS + LLAMA_TEXTS
    out = {k: embed(gembed, real_models[k], texts) for k in ("folder", "q8_0")}
    keep = list(range(N_CASES)) + list(range(len(ST_TEXTS), len(texts)))
    f32 = np.full_like(out["folder"], np.nan)
    f32[keep] = embed(gembed, real_models["f32"], [texts[i] for i in keep])
    out["f32"] = f32
    return out


def test_golden_provenance_matches_the_folder():
    """The golden files were made from these exact files."""
    for name in ("config.json", "config_sentence_transformers.json", "2_Dense/model.safetensors",
                 "3_Dense/model.safetensors"):
        assert sha256(REAL / name) == GOLDEN["model"]["sha256"][name], name
    assert LLAMA["model"]["sha256"] == GOLDEN["model"]["sha256"]
    assert len(CASES) >= 50 and len(PAIRS) >= 100
    assert {c["dim"] for c in CASES} == {768, 512, 256, 128}
    assert max(c["n_tokens"] for c in CASES) == 2048 and sum(c["n_tokens"] > 1000 for c in CASES) >= 3
    folder_names = set(GOLDEN["folder_prompts"])
    used = {c["task"] for c in CASES if c["prompt_source"] == "folder"}
    assert used == folder_names
    builtin = {c["task"] for c in CASES if c["prompt_source"] == "builtin"}
    assert builtin | folder_names >= set(GOLDEN["builtin_prompts"])


def test_token_ids_match_sentence_transformers(gembed):
    out = run([gembed, "tokenize", "--tokenizer", REAL / "tokenizer.json", "--add-special", "--jsonl"],
              jsonl(ST_TEXTS[:N_CASES])).decode().splitlines()
    mismatches = []
    for c, line in zip(CASES, out):
        ids = json.loads(line)
        if len(ids) > 2048:  # sentence-transformers truncates to max_seq_length, keeping <eos>
            ids = ids[:2047] + [1]
        if ids != c["st_ids"]:
            mismatches.append(c["label"])
    assert mismatches == []


def test_converted_gguf_bytes_match_the_llamacpp_golden(real_models):
    """The converter is deterministic: the files llama.cpp embedded are the ones converted now."""
    for t in ("f32", "q8_0"):
        assert real_models[t].stat().st_size == LLAMA["gguf"][t]["bytes"], t
        assert sha256(real_models[t]) == LLAMA["gguf"][t]["sha256"], t


def st_cosines(v: np.ndarray) -> list[float]:
    return [cosine(truncate(v[i], c["dim"]), np.array(c["embedding"])) for i, c in enumerate(CASES)]


@pytest.mark.parametrize("model", ["folder", "f32", "q8_0"])
def test_matches_sentence_transformers(vectors, model):
    cos = st_cosines(vectors[model])
    by_dim = {}
    for c, x in zip(CASES, cos):
        by_dim[c["dim"]] = min(by_dim.get(c["dim"], 1.0), x)
    k = int(np.argmin(cos))
    print(f"REAL {model} vs sentence-transformers: worst cosine {cos[k]:.9f} = 1 - {1 - cos[k]:.2g} "
          f"({CASES[k]['label']}, "
          f"{CASES[k]['n_tokens']} tokens); by dim "
          + ", ".join(f"{d}: {by_dim[d]:.7f}" for d in sorted(by_dim, reverse=True)))
    bad = []
    for c, x in zip(CASES, cos):
        bound = MIN_COSINE_Q8_LONG if model == "q8_0" and c["n_tokens"] > 1000 else MIN_COSINE[model]
        if x < bound:
            bad.append((c["label"], c["n_tokens"], round(x, 7)))
    assert bad == []


def test_q8_0_high_precision_meets_0999_on_every_text(gembed, real_models):
    """Issue 5's Q8_0 bound (>= 0.999 vs sentence-transformers) on every golden
    text, long ones included: with --precision high only the weights are int8,
    and the 2,048-token text clears it (the default int8-activation path is held
    to llama.cpp's level by the tests above and below)."""
    got = embed(gembed, real_models["q8_0"], ST_TEXTS[:N_CASES], "--precision", "high")
    cos = st_cosines(got)
    k = int(np.argmin(cos))
    print(f"REAL q8_0 --precision high vs sentence-transformers: worst cosine {cos[k]:.7f} "
          f"({CASES[k]['label']}, {CASES[k]['n_tokens']} tokens)")
    assert min(cos) >= MIN_COSINE["q8_0"], [(c["label"], round(x, 7)) for c, x in zip(CASES, cos) if x < 0.999]


def test_q8_0_is_as_close_as_llamacpp(vectors):
    """On the texts llama.cpp embedded (and sentence-transformers saw the same
    string), gembed's Q8_0 GGUF is as close to sentence-transformers as
    llama.cpp's Q8_0 on the same file, within 2e-4."""
    cos = st_cosines(vectors["q8_0"])
    rows = []
    for l in LLAMA["labels"]:
        i = next(k for k, c in enumerate(CASES) if c["label"] == l)
        c = CASES[i]
        if (c["prompt"] + c["text"]).strip() != c["prompt"] + c["text"]:
            continue  # llama.cpp saw the unstripped text
        llama = cosine(truncate(np.array(LLAMA["embeddings"]["q8_0"][l]), c["dim"]), np.array(c["embedding"]))
        rows.append((l, cos[i], llama))
    assert len(rows) >= 15
    worst = min(r[1] - r[2] for r in rows)
    print(f"REAL q8_0 vs sentence-transformers: gembed - llama.cpp worst {worst:+.6f} over {len(rows)} texts; "
          f"llama.cpp worst {min(r[2] for r in rows):.6f}, gembed worst {min(r[1] for r in rows):.6f}")
    assert worst >= -2e-4, [r for r in rows if r[1] - r[2] < -2e-4]


def test_dim_flag_equals_truncation(gembed, real_models, vectors):
    """`--dim 128` gives the truncated, re-normalised full vector."""
    idx = [i for i, c in enumerate(CASES) if c["n_tokens"] < 500]
    got = embed(gembed, real_models["folder"], [ST_TEXTS[i] for i in idx], "--dim", "128")
    assert got.shape == (len(idx), 128)
    for k, i in enumerate(idx):
        np.testing.assert_allclose(got[k], truncate(vectors["folder"][i], 128), atol=2e-6)
        if CASES[i]["dim"] == 128:
            assert cosine(got[k], np.array(CASES[i]["embedding"])) >= MIN_COSINE["folder"]


@pytest.mark.parametrize("model", ["folder", "q8_0"])
def test_retrieval_top1_equals_sentence_transformers(vectors, model):
    v = vectors[model]
    q = v[N_CASES:N_CASES + N_PAIRS]
    d = v[N_CASES + N_PAIRS:N_CASES + 2 * N_PAIRS]
    sims = q @ d.T
    top1 = sims.argmax(axis=1)
    recall = float(np.mean(top1 == np.arange(N_PAIRS)))
    st = GOLDEN["retrieval"]
    differ = [i for i in range(N_PAIRS) if top1[i] != st["top1"][i]]
    print(f"REAL {model} retrieval: recall@1 {recall:.4f} (sentence-transformers {st['recall_at_1']:.4f}), "
          f"top-1 differs on {len(differ)} of {N_PAIRS} queries; smallest ST margin {min(st['margin']):.4f}")
    assert differ == []
    assert recall == st["recall_at_1"]


@pytest.mark.parametrize("qtype", ["f32", "q8_0"])
def test_matches_llamacpp_on_the_converted_gguf(vectors, qtype):
    v = vectors[qtype][len(ST_TEXTS):]
    cos = [cosine(v[k], np.array(LLAMA["embeddings"][qtype][l])) for k, l in enumerate(LLAMA["labels"])]
    k = int(np.argmin(cos))
    print(f"REAL {qtype} GGUF vs llama.cpp: worst cosine {cos[k]:.9f} ({LLAMA['labels'][k]})")
    assert min(cos) >= MIN_COSINE_LLAMA[qtype]


def test_folder_equals_converted_f32_gguf(vectors):
    rows = ~np.isnan(vectors["f32"][:, 0])
    assert rows.sum() == N_CASES + len(LLAMA_TEXTS)
    a, b = vectors["folder"][rows], vectors["f32"][rows]
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"REAL folder vs converted F32 GGUF: worst cosine {cos.min():.9f}, max |diff| {np.abs(a - b).max():.3g}")
    assert cos.min() >= 0.99999


def test_task_names_on_the_real_folder(gembed, vectors):
    """--task resolves the folder's names (and built-ins) to the golden prompts."""
    picks = {}
    for i, c in enumerate(CASES):
        key = (c["task"], c["title"])
        if c["task"] and key not in picks and c["n_tokens"] < 100 and c["text"] and c["text"] == c["text"].strip():
            picks[key] = i
    chosen = [picks[k] for k in list(picks)[:4]]
    for i in chosen:
        c = CASES[i]
        args = ["--task", c["task"]] + (["--title", c["title"]] if c["title"] else [])
        got = embed(gembed, REAL, [c["text"]], *args)[0]
        assert cosine(got, vectors["folder"][i]) >= 0.999999, c["label"]


def test_whitespace_is_not_stripped(gembed):
    """gembed embeds the text as given (like llama.cpp); sentence-transformers
    strips it. With the trailing newline kept the vector differs slightly."""
    c = BY_LABEL["code_py"]
    assert c["text"].endswith("\n")
    raw = embed(gembed, REAL, [c["text"]], "--prompt", c["prompt"])[0]
    st = np.array(c["embedding"])
    cos = cosine(truncate(raw, c["dim"]), st)
    assert 0.99 < cos < 0.9999, cos
