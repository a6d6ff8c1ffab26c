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
(~15 s), then per model (folder, F32 GGUF, Q8_0 GGUF) one `gembed embed` call
over every golden text and retrieval text and one `--no-strip` call over the
texts llama.cpp embedded, and one --dim call on the folder.

Input preprocessing: sentence-transformers strips leading/trailing whitespace
of PROMPT + TEXT before tokenising (Transformer.tokenize: str(s).strip()), and
so does gembed by default; llama.cpp embeds the text as given, which is
`gembed embed --no-strip`. gembed is therefore fed the unstripped PROMPT + TEXT
everywhere: the sentence-transformers comparisons run through gembed's own
stripping (the golden "whitespace_cases" are texts with edge whitespace:
tabs, newlines, U+00A0, U+3000, ...), and the llama.cpp comparisons pass
--no-strip. The prompt strings come from the golden file; that
`gembed embed --task NAME [--title]` resolves each name to the same string is
checked by test_hf --gtest_filter=HfPrompts.GoldenCasesResolveToTheirPrompts
and here for a few names on the real folder and on the converted GGUFs (which
carry the folder's prompt table as gembed.prompts.* keys).

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
# The folder (F32 weights, fp32 arithmetic) vs sentence-transformers' PyTorch F32
# on the same input: measured 1 - cos ~ 4e-12.
MIN_COSINE_FOLDER_EXACT = 1 - 1e-9


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


GOLDEN = load("st_embeddinggemma.json")
PAIRS = load("st_retrieval_pairs.json")["pairs"]
LLAMA = load("st_embeddinggemma_llamacpp.json")
CASES = GOLDEN["cases"]
WS_CASES = GOLDEN["whitespace_cases"]  # PROMPT + TEXT with edge whitespace that ST strips
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


# What sentence-transformers was given for a case / a retrieval text: PROMPT + TEXT,
# unstripped (ST and gembed strip it themselves).
ST_TEXTS = ([c["prompt"] + c["text"] for c in CASES]
            + [GOLDEN["retrieval"]["query_prompt"] + p["query"] for p in PAIRS]
            + [GOLDEN["retrieval"]["document_prompt"] + p["document"] for p in PAIRS])
N_CASES, N_PAIRS = len(CASES), len(PAIRS)
# What llama.cpp embedded (unstripped PROMPT + TEXT; gembed needs --no-strip).
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
    """Per model, rows of: the golden cases, queries and documents (ST_TEXTS, default
    stripping like sentence-transformers), then the llama.cpp texts (--no-strip, as
    llama.cpp saw them). The F32 GGUF skips the retrieval texts (it is compared with
    the folder, which gets them, bit for bit); their rows are NaN."""
    out = {}
    for k in ("folder", "f32", "q8_0"):
        n = N_CASES if k == "f32" else len(ST_TEXTS)
        st = np.full((len(ST_TEXTS), 768), np.nan)
        st[:n] = embed(gembed, real_models[k], ST_TEXTS[:n])
        out[k] = np.vstack([st, embed(gembed, real_models[k], LLAMA_TEXTS, "--no-strip")])
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
    """`gembed tokenize --strip` on the unstripped PROMPT + TEXT gives sentence-transformers'
    ids (which are of the stripped string); without --strip the whitespace cases differ."""
    cases = CASES + WS_CASES
    texts = [c["prompt"] + c["text"] for c in cases]
    cmd = [gembed, "tokenize", "--tokenizer", REAL / "tokenizer.json", "--add-special", "--jsonl"]
    stripped = run(cmd + ["--strip"], jsonl(texts)).decode().splitlines()
    raw = run(cmd, jsonl(texts)).decode().splitlines()
    mismatches, raw_same = [], []
    for c, t, line, raw_line in zip(cases, texts, stripped, raw):
        ids = json.loads(line)
        if len(ids) > 2048:  # sentence-transformers truncates to max_seq_length, keeping <eos>
            ids = ids[:2047] + [1]
        if ids != c["st_ids"]:
            mismatches.append(c["label"])
        if t != t.strip() and json.loads(raw_line) == c["st_ids"]:
            raw_same.append(c["label"])
    assert mismatches == []
    assert raw_same == []
    assert sum(t != t.strip() for t in texts) >= 10


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
    """On the texts llama.cpp embedded, gembed's Q8_0 GGUF with --no-strip (the
    same input llama.cpp saw) is as close to sentence-transformers as llama.cpp's
    Q8_0 on the same file, within 2e-4."""
    rows = []
    for k, l in enumerate(LLAMA["labels"]):
        c = BY_LABEL[l]
        st = np.array(c["embedding"])
        gembed_cos = cosine(truncate(vectors["q8_0"][len(ST_TEXTS) + k], c["dim"]), st)
        llama = cosine(truncate(np.array(LLAMA["embeddings"]["q8_0"][l]), c["dim"]), st)
        rows.append((l, gembed_cos, llama))
    assert len(rows) == len(LLAMA["labels"]) >= 15
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
        if c["task"] and key not in picks and c["n_tokens"] < 100 and c["text"]:
            picks[key] = i
    chosen = [picks[k] for k in list(picks)[:4]]
    for i in chosen:
        c = CASES[i]
        args = ["--task", c["task"]] + (["--title", c["title"]] if c["title"] else [])
        got = embed(gembed, REAL, [c["text"]], *args)[0]
        assert cosine(got, vectors["folder"][i]) >= 0.999999, c["label"]


def test_converted_ggufs_carry_the_folder_prompt_table(gembed, real_models):
    """`gembed convert` stores the folder's 14 prompts as gembed.prompts.* keys, so
    `--task NAME` with a name only the folder has (STS, Summarization,
    Retrieval-document with a title) gives on the converted GGUFs what it gives on
    the folder: F32 at 1 - 1e-9, Q8_0 at its sentence-transformers bound."""
    table = json.loads((REAL / "config_sentence_transformers.json").read_text())
    assert table["prompts"] == GOLDEN["folder_prompts"]
    for t in ("f32", "q8_0"):
        md = json.loads(run([gembed, "inspect", real_models[t], "--json", "--all"]))["metadata"]
        assert md["gembed.prompts.names"]["values"] == list(table["prompts"])
        assert md["gembed.prompts.prefixes"]["values"] == list(table["prompts"].values())
        assert ("gembed.prompts.default_name" in md) == (table["default_prompt_name"] is not None)
    texts = [BY_LABEL[l]["text"] for l in ("cat", "french", "code_cpp", "question")]
    for args in (["--task", "STS"], ["--task", "Summarization"], ["--task", "Retrieval-document", "--title", "Mars"]):
        assert args[1] in table["prompts"] and args[1] not in GOLDEN["builtin_prompts"]  # folder-only
        folder = embed(gembed, REAL, texts, *args)
        for t in ("f32", "q8_0"):
            got = embed(gembed, real_models[t], texts, *args)
            cos = [cosine(a, b) for a, b in zip(folder, got)]
            print(f"REAL --task {' '.join(args[1:])}: folder vs converted {t} GGUF worst cosine {min(cos):.12f} "
                  f"(1 - cos = {1 - min(cos):.3g}), max |diff| {np.abs(folder - got).max():.3g}")
            assert min(cos) >= (1 - 1e-9 if t == "f32" else MIN_COSINE["q8_0"]), (args, t, cos)
    # On the GGUF the name resolves to the folder's prompt string.
    np.testing.assert_array_equal(embed(gembed, real_models["q8_0"], texts[:1], "--task", "STS"),
                                  embed(gembed, real_models["q8_0"], texts[:1], "--prompt", table["prompts"]["STS"]))


def test_unstripped_input_matches_sentence_transformers_exactly(gembed, vectors):
    """Default stripping: the folder on the unstripped PROMPT + TEXT of every golden
    case (the rows of `vectors`) is as close to sentence-transformers as on the
    string ST tokenised ((PROMPT + TEXT).strip()), trailing newlines and an empty
    text after a prompt included."""
    cos = st_cosines(vectors["folder"])
    bad = [(c["label"], x) for c, x in zip(CASES, cos) if x < MIN_COSINE_FOLDER_EXACT]
    assert bad == []
    edge = [i for i, t in enumerate(ST_TEXTS[:N_CASES]) if t != t.strip()]
    assert {"code_py", "empty"} <= {CASES[i]["label"] for i in edge}
    given = embed(gembed, REAL, [ST_TEXTS[i].strip() for i in edge])
    for k, i in enumerate(edge):
        c = CASES[i]
        pre = cosine(truncate(given[k], c["dim"]), np.array(c["embedding"]))
        print(f"REAL whitespace {c['label']}: folder vs sentence-transformers 1 - cos {1 - cos[i]:.2g} "
              f"(unstripped input), {1 - pre:.2g} (input stripped beforehand)")
        assert pre >= MIN_COSINE_FOLDER_EXACT and cosine(given[k], vectors["folder"][i]) >= 1 - 1e-12, c["label"]


def ws_embed(gembed, model, cases, *args) -> list[float]:
    """Cosines with sentence-transformers of the whitespace cases: the text as given
    and its prompt by `--task NAME [--title]` (folder names such as STS included: a
    converted GGUF carries the folder's prompt table); one call per prompt."""
    groups: dict = {}
    for i, c in enumerate(cases):
        assert bool(c["task"]) == bool(c["prompt"]), c["label"]
        groups.setdefault((c["task"], c["title"]), []).append(i)
    cos = [0.0] * len(cases)
    for (task, title), idx in groups.items():
        flags = (["--task", task] if task else []) + (["--title", title] if title else [])
        v = embed(gembed, model, [cases[i]["text"] for i in idx], *flags, *args)
        for k, i in enumerate(idx):
            cos[i] = cosine(truncate(v[k], cases[i]["dim"]), np.array(cases[i]["embedding"]))
    return cos


def test_whitespace_cases_match_sentence_transformers(gembed, real_models):
    """The golden texts with edge whitespace (tabs, newlines, U+00A0, U+3000,
    U+0085/U+2028/U+2029/U+202F, whitespace-only, empty after a prompt): the
    default matches sentence-transformers at the folder's F32 bound (and the Q8_0
    GGUF at its bound); --no-strip (llama.cpp's input) measurably does not."""
    assert len(WS_CASES) >= 6
    edge = [c for c in WS_CASES if (c["prompt"] + c["text"]).strip() != c["prompt"] + c["text"]]
    assert len(edge) >= 6
    folder = ws_embed(gembed, REAL, WS_CASES)
    raw = ws_embed(gembed, REAL, WS_CASES, "--no-strip")
    q8 = ws_embed(gembed, real_models["q8_0"], WS_CASES)
    for c, a, b, q in zip(WS_CASES, folder, raw, q8):
        print(f"REAL whitespace {c['label']} ({c['prompt'] + c['text']!r}): folder vs sentence-transformers "
              f"cos {a:.12f} (default), {b:.6f} (--no-strip); Q8_0 {q:.6f}")
    assert [c["label"] for c, x in zip(WS_CASES, folder) if x < MIN_COSINE_FOLDER_EXACT] == []
    assert [c["label"] for c, x in zip(WS_CASES, q8) if x < MIN_COSINE["q8_0"]] == []
    for c, x in zip(WS_CASES, raw):
        if c in edge:
            assert x < 0.9999, c["label"]  # the whitespace tokens change the vector
        else:
            assert x >= MIN_COSINE_FOLDER_EXACT, c["label"]  # nothing to strip: same input


def test_no_strip_embeds_the_text_as_given(gembed):
    """--no-strip (llama.cpp's behaviour): the trailing newline is kept and the
    vector differs slightly from sentence-transformers'."""
    c = BY_LABEL["code_py"]
    assert c["text"].endswith("\n")
    raw = embed(gembed, REAL, [c["text"]], "--prompt", c["prompt"], "--no-strip")[0]
    default = embed(gembed, REAL, [c["text"]], "--prompt", c["prompt"])[0]
    st = np.array(c["embedding"])
    cos = cosine(truncate(raw, c["dim"]), st)
    print(f"REAL whitespace code_py --no-strip: cos {cos:.6f} vs sentence-transformers")
    assert 0.99 < cos < 0.9999, cos
    assert cosine(truncate(default, c["dim"]), st) >= MIN_COSINE_FOLDER_EXACT
