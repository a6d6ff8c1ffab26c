"""gembed vs llama.cpp on full-size synthetic models (checked-in golden data).

tests/golden/data/llamacpp_<type>.json was produced by scripts/gen_llamacpp_golden.py
with llama.cpp 0.5.0 (llama-embedding -fa off) on a GGUF made by `gembed synth`
with a fixed seed. This test rebuilds the same GGUF (its sha256 must match the
recorded one: a drifted generator fails here, loudly, instead of silently
comparing against a different model), then checks per text that
* `gembed tokenize --model --add-special` gives llama.cpp's ids, and
* `gembed embed` (with --task/--title for the prompted texts) is within the
  recorded cosine (0.9999 F32, 0.999 Q8_0) of llama.cpp's embedding.
Texts reach 1,831 tokens (> 300, > 800, > 1,700), so the ±256 sliding window and
the global layers are both exercised. Run with -s for the worst cosine per type.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "oracle"))

import oracle_cli as gembed_cli  # noqa: E402
import numpy_forward as nf  # noqa: E402
import oracle_texts as T  # noqa: E402

DATA = REPO / "tests" / "golden" / "data"


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def load_golden(qtype: str) -> dict:
    path = DATA / f"llamacpp_{qtype}.json"
    if not path.exists():
        pytest.skip(f"{path} missing: run scripts/gen_llamacpp_golden.py (needs scripts/build_llama_cpp.sh)")
    return json.loads(path.read_text(encoding="utf-8"))


def rebuild_text(rec: dict) -> str:
    """The raw text of a golden record (before any task prefix)."""
    if "text" in rec:
        return rec["text"]
    r = rec["recipe"]
    assert r["fn"] == "oracle_texts.random_text", r
    text = T.random_text(r["seed"], r["n_words"])
    assert T.sha256(text) == rec["text_sha256"], (
        f"{rec['label']}: tests/oracle/oracle_texts.py random_text() no longer rebuilds the golden text")
    return text


@pytest.fixture(scope="module", params=["f32", "q8_0"])
def golden_model(request, gembed, tokenizer_dir, tmp_path_factory):
    qtype = request.param
    g = load_golden(qtype)
    path = tmp_path_factory.mktemp(f"golden_{qtype}") / f"golden_{qtype}.gguf"
    gembed_cli.run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json",
                    *g["model"]["synth_args"]])
    digest = _sha256(path)
    if digest != g["model"]["sha256"]:
        pytest.fail(
            f"`{g['model']['synth_command']}` no longer produces the golden model: sha256 {digest} != recorded "
            f"{g['model']['sha256']} (golden made with {g['model']['gembed_version']}). If the generator change is "
            "intended, regenerate the golden files with scripts/gen_llamacpp_golden.py and say why in the commit.")
    yield qtype, g, path
    path.unlink(missing_ok=True)


def test_golden_files_are_sane():
    """The checked-in data itself: enough texts, the lengths the brief asks for, unit vectors."""
    for qtype in ("f32", "q8_0"):
        g = load_golden(qtype)
        recs = g["texts"]
        assert len(recs) >= 20
        n = [r["n_tokens"] for r in recs]
        assert max(n) > 1700 and any(800 < k <= 1700 for k in n) and any(300 < k <= 800 for k in n), n
        assert any(r["task"] for r in recs)
        assert g["model"]["n_layer"] == 24 and g["model"]["n_embd"] == 768 and g["model"]["dense"]
        for r in recs:
            assert len(r["ids"]) == r["n_tokens"] and r["ids"][0] == 2 and r["ids"][-1] == 1
            e = np.array(r["embedding"])
            assert e.shape == (768,) and abs(np.linalg.norm(e) - 1) < 1e-5, r["label"]


def test_gembed_matches_llamacpp(gembed, golden_model):
    qtype, g, model = golden_model
    recs = g["texts"]
    raw = [rebuild_text(r) for r in recs]
    full = [T.task_prefix(r["task"], r["title"]) + t for r, t in zip(recs, raw)]

    # Token ids (on the full prompted text, as llama.cpp saw it).
    ids = gembed_cli.tokenize(gembed, model, full)
    bad_ids = [r["label"] for r, i in zip(recs, ids) if i != r["ids"]]

    # Embeddings: one gembed call per (task, title) group.
    groups: dict = {}
    for k, (r, t) in enumerate(zip(recs, raw)):
        groups.setdefault((r["task"], r["title"]), []).append((k, t))
    got = [None] * len(recs)
    for (task, title), items in groups.items():
        vecs = gembed_cli.embed(gembed, model, [t for _, t in items], task=task, title=title)
        for (k, _), v in zip(items, vecs):
            got[k] = v

    min_cos = g["min_cosine"]
    cos = [nf.cosine(v, r["embedding"]) for v, r in zip(got, recs)]
    worst = int(np.argmin(cos))
    print(f"\nLLAMACPP {qtype}: worst cosine {cos[worst]:.9f} (1-cos {1 - cos[worst]:.1e}) at {recs[worst]['label']} "
          f"({recs[worst]['n_tokens']} tokens); mean {np.mean(cos):.9f}; {len(recs)} texts; "
          f"llama.cpp {g['reference']['llama_cpp']}")
    low = [f"{r['label']} ({r['n_tokens']} tokens): {c:.7f}" for r, c in zip(recs, cos) if c < min_cos]
    assert not bad_ids, f"token ids differ from llama.cpp for {bad_ids}"
    assert not low, f"cosine below {min_cos}: " + "; ".join(low)
