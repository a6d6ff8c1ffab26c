"""gembed vs the independent float64 NumPy forward pass (tests/oracle/numpy_forward.py).

Synthetic EmbeddingGemma GGUFs are generated with `gembed synth` into a
temporary folder (tiny F32 / Q8_0, and full-width F32 / Q8_0 with fewer layers
to fit the time budget); texts of many lengths (incl. > 300 and > 800 tokens,
so the ±256 sliding window masks), with task prompts and at every Matryoshka
dim, are embedded by `gembed embed --no-strip`. The oracle gets the ids of
`gembed tokenize --model M --add-special` on the same (prompted) text —
tokenisation itself is checked against llama.cpp and HF elsewhere — and runs
the whole model in float64 on the dequantised weights.

Run with -s to see the worst cosine per model (lines starting "ORACLE").

The oracle itself was validated against llama.cpp (tests/oracle/validate_oracle.py,
README in tests/golden/data); the parser it uses is cross-checked here against
gguf-py's GGUFReader.
"""
from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "oracle"))

import oracle_cli as gembed_cli  # noqa: E402
import gguf_lite  # noqa: E402
import numpy_forward as nf  # noqa: E402
import oracle_texts as T  # noqa: E402

# Required agreement (cosine of gembed's vector with the oracle's).
# Q8_0: the oracle uses exact float64 activations on the dequantised weights,
# while an int8 engine (like llama.cpp, MODEL-SPEC §7.2) also rounds every
# matmul input to 8 bits. That alone costs ~1-3e-4 of cosine on these models
# (llama.cpp vs this oracle: 0.99977 worst on a 6-layer Q8_0 model), and
# emulating the activation rounding in the oracle does not close the gap: one
# differently-rounded element decorrelates all later rounding decisions. So the
# Q8_0 bound is 0.9995, not 0.9999; F32 has no such floor.
MIN_COSINE = {"f32": 0.99999, "q8_0": 0.9995}
SEED = 20250917
# Full width (768, 3 heads x 256, n_ff 1152, Dense) with 6 layers: layer 5 is
# global, 0-4 slide. 24 layers would take ~4x longer for little extra coverage.
FULL_LAYERS = 6
MATRYOSHKA_DIMS = (768, 512, 256, 128)


def _texts_with_ids():
    """(label, task, title, text) for every case; the oracle sees prefix + text."""
    cases = [(f"short{i}", None, None, t) for i, t in enumerate(T.SHORT_TEXTS)]
    cases += [(f"prompted{i}", task, title, t) for i, (task, title, t) in enumerate(T.PROMPTED_TEXTS)]
    # The ~1,830-token recipe is covered by the llama.cpp golden test; here the
    # long ones stop at ~850 tokens to bound the float64 run time.
    cases += [(f"long{seed}", task, None, T.random_text(seed, n)) for seed, n, task in T.LONG_RECIPES
              if n <= 500]
    return cases


CASES = _texts_with_ids()


@pytest.fixture(scope="module")
def models(gembed, tokenizer_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("oracle_models")
    tok = tokenizer_dir / "tokenizer.json"
    out = {}
    for qtype in ("f32", "q8_0"):
        p = d / f"tiny_{qtype}.gguf"
        gembed_cli.synth(gembed, tok, p, qtype=qtype, seed=SEED, extra=["--tiny"])
        out[("tiny", qtype)] = p
        p = d / f"full{FULL_LAYERS}_{qtype}.gguf"
        gembed_cli.synth(gembed, tok, p, qtype=qtype, seed=SEED, extra=["--layers", str(FULL_LAYERS)])
        out[("full", qtype)] = p
    return out


def _embed_cases(gembed, model, cases, dim=None):
    """gembed's vectors for every case, grouped by (task, title) so each group is one call."""
    vecs = {}
    groups = {}
    for label, task, title, text in cases:
        groups.setdefault((task, title), []).append((label, text))
    for (task, title), items in groups.items():
        v = gembed_cli.embed(gembed, model, [t for _, t in items], task=task, title=title, dim=dim)
        for (label, _), row in zip(items, v):
            vecs[label] = row
    return vecs


@pytest.mark.parametrize("size", ["tiny", "full"])
@pytest.mark.parametrize("qtype", ["f32", "q8_0"])
def test_gembed_matches_numpy_oracle(gembed, models, size, qtype):
    model = models[(size, qtype)]
    oracle = nf.GemmaEmbeddingOracle(model)
    full_texts = [T.task_prefix(task, title) + text for _, task, title, text in CASES]
    ids = gembed_cli.tokenize(gembed, model, full_texts)
    assert any(len(i) > 300 for i in ids) and any(len(i) > 800 for i in ids), [len(i) for i in ids]
    for i in ids:
        assert i[0] == 2 and i[-1] == 1, "gembed tokenize --add-special must give <bos> ... <eos>"

    got = _embed_cases(gembed, model, CASES)
    n_embd = oracle.hp.n_embd
    dims = [d for d in MATRYOSHKA_DIMS if d < n_embd]
    # Matryoshka: the dims below n_embd on a few cases (incl. a long and a prompted one).
    mat_cases = [c for c in CASES if c[0] in ("short2", "short6", "prompted0", "long101")]
    got_dim = {d: _embed_cases(gembed, model, mat_cases, dim=d) for d in dims}

    worst = (2.0, "")
    failures = []
    for (label, task, title, text), tid in zip(CASES, ids):
        pooled = oracle.pooled(tid)
        want = pooled / np.linalg.norm(pooled)
        g = got[label]
        assert g.shape == (n_embd,), (label, g.shape)
        assert abs(np.linalg.norm(g) - 1.0) < 1e-4, (label, np.linalg.norm(g))
        checks = [(n_embd, g, want)]
        for d in dims:
            if label in got_dim[d]:
                w = pooled[:d] / np.linalg.norm(pooled[:d])
                checks.append((d, got_dim[d][label], w))
        for d, gv, wv in checks:
            assert gv.shape == (d,), (label, d, gv.shape)
            c = nf.cosine(gv, wv)
            if c < worst[0]:
                worst = (c, f"{label} ({len(tid)} tokens, dim {d})")
            if c < MIN_COSINE[qtype]:
                failures.append(f"{label} ({len(tid)} tokens, dim {d}): cosine {c:.7f}")
    print(f"\nORACLE {size} {qtype} ({pathlib.Path(model).name}, {len(CASES)} texts, dims {[n_embd] + dims}): "
          f"worst cosine {worst[0]:.9f} (1-cos {1 - worst[0]:.1e}) at {worst[1]}")
    assert not failures, f"below {MIN_COSINE[qtype]}: " + "; ".join(failures)


# `--precision high` keeps the activations in fp32 against the (exactly
# widened) Q8_0 weights, so the int8 activation floor above does not apply:
# issue 3's bound of 0.9999 vs the float64 oracle holds.
MIN_COSINE_Q8_HIGH = 0.9999


def _embed_high(gembed, model, texts, task=None, title=None):
    cmd = [gembed, "embed", "--model", model, "--jsonl", "--precision", "high", "--threads", "2", "--no-strip"]
    if task:
        cmd += ["--task", task]
    if title:
        cmd += ["--title", title]
    out = gembed_cli.run(cmd, gembed_cli._jsonl(texts)).decode("utf-8").splitlines()
    vecs = [json.loads(line) for line in out if line.strip()]
    assert len(vecs) == len(texts)
    return np.array(vecs, dtype=np.float64)


@pytest.mark.parametrize("size", ["tiny", "full"])
def test_q8_high_precision_matches_numpy_oracle(gembed, models, size):
    model = models[(size, "q8_0")]
    oracle = nf.GemmaEmbeddingOracle(model)
    full_texts = [T.task_prefix(task, title) + text for _, task, title, text in CASES]
    ids = gembed_cli.tokenize(gembed, model, full_texts)
    groups = {}
    for (label, task, title, text), tid in zip(CASES, ids):
        groups.setdefault((task, title), []).append((label, text, tid))
    worst = (2.0, "")
    worst_fast = 2.0
    failures = []
    for (task, title), items in groups.items():
        high = _embed_high(gembed, model, [t for _, t, _ in items], task=task, title=title)
        fast = gembed_cli.embed(gembed, model, [t for _, t, _ in items], task=task, title=title)
        for (label, _, tid), g, f in zip(items, high, fast):
            pooled = oracle.pooled(tid)
            want = pooled / np.linalg.norm(pooled)
            c = nf.cosine(g, want)
            worst_fast = min(worst_fast, nf.cosine(f, want))
            if c < worst[0]:
                worst = (c, f"{label} ({len(tid)} tokens)")
            if c < MIN_COSINE_Q8_HIGH:
                failures.append(f"{label} ({len(tid)} tokens): cosine {c:.7f}")
    print(f"\nORACLE {size} q8_0 --precision high ({pathlib.Path(model).name}, {len(CASES)} texts): "
          f"worst cosine {worst[0]:.9f} (1-cos {1 - worst[0]:.1e}) at {worst[1]}; "
          f"default (fast) worst {worst_fast:.9f}")
    assert not failures, f"below {MIN_COSINE_Q8_HIGH}: " + "; ".join(failures)
    # The mode must actually change the arithmetic: fp32 activations are
    # strictly closer to the float64 pass than int8 ones on these texts.
    assert worst[0] > worst_fast


def test_oracle_is_discriminative(models, gembed):
    """Guards the guard: the oracle's agreement threshold must reject models that are
    slightly wrong. Switching off the sliding window or swapping RoPE bases has to move
    a long text's embedding by far more than the F32 tolerance."""
    model = models[("full", "f32")]
    oracle = nf.GemmaEmbeddingOracle(model)
    text = T.random_text(101, 180)
    (tid,) = gembed_cli.tokenize(gembed, model, [text])
    assert len(tid) > 300
    base = oracle.embed(tid)
    hp = oracle.hp
    saved = dict(hp.__dict__)
    try:
        hp.n_swa = 4 * hp.n_ctx_train              # no effective window
        c_window = nf.cosine(oracle.embed(tid), base)
        hp.__dict__.update(saved)
        hp.rope_base_swa, hp.rope_base = hp.rope_base, hp.rope_base_swa
        c_rope = nf.cosine(oracle.embed(tid), base)
    finally:
        hp.__dict__.update(saved)
    margin = 1.0 - MIN_COSINE["f32"]
    assert 1.0 - c_window > 10 * margin, c_window
    assert 1.0 - c_rope > 10 * margin, c_rope


# --------------------------------------------------------------------------
# The oracle's own plumbing, checked against gguf-py (no gembed needed).
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_vocab_models(tokenizer_dir, tmp_path_factory):
    """make_test_gguf.py models with a 2,000-token vocabulary so gguf.GGUFReader is quick."""
    import make_test_gguf as make_gguf

    d = tmp_path_factory.mktemp("oracle_selfcheck")
    out = {}
    for qtype in ("f32", "f16", "bf16", "q8_0"):
        p = d / f"m_{qtype}.gguf"
        make_gguf.main(["-o", str(p), "--tokenizer-dir", str(tokenizer_dir), "--type", qtype, "--seed", "3",
                        "--dense", "--vocab-size", "2000", "--quiet"])
        out[qtype] = p
    return out


@pytest.mark.parametrize("qtype", ["f32", "f16", "bf16", "q8_0"])
def test_oracle_reader_and_dequant_match_gguf_py(small_vocab_models, qtype):
    import gguf

    path = small_vocab_models[qtype]
    lite = gguf_lite.GGUFFile(path)
    ref = gguf.GGUFReader(path, "r")
    ref_kv = {name: f.contents() for name, f in ref.fields.items() if not name.startswith("GGUF.")}
    assert set(lite.kv) == set(ref_kv)
    for k, v in ref_kv.items():
        if isinstance(v, float):
            assert lite.kv[k] == pytest.approx(v, rel=0, abs=0), k
        else:
            assert lite.kv[k] == v, k
    assert [t.name for t in ref.tensors] == list(lite.tensors)
    for t in ref.tensors:
        mine = lite.tensors[t.name]
        assert mine.ne == tuple(int(x) for x in t.shape), t.name
        assert mine.ggml_type == int(t.tensor_type), t.name
        assert mine.data.tobytes() == np.asarray(t.data).tobytes(), t.name
        # Our float64 decoding equals gguf-py's reference decoder exactly (every
        # format here is exactly representable in float32).
        mine_f = nf.dequantize_rows(mine.data, mine.ggml_type, mine.ne[0])
        want = gguf.quants.dequantize(np.asarray(t.data), gguf.GGMLQuantizationType(int(t.tensor_type)))
        np.testing.assert_array_equal(mine_f.reshape(-1), np.asarray(want, dtype=np.float64).reshape(-1))

    # The whole forward pass is identical whichever parser feeds it.
    ids = [2, 651, 1200, 1999, 107, 1]
    a = nf.GemmaEmbeddingOracle(path, reader="lite").embed(ids)
    b = nf.GemmaEmbeddingOracle(path, reader="gguf").embed(ids)
    np.testing.assert_array_equal(a, b)


def test_oracle_sliding_window_is_symmetric_256(small_vocab_models):
    """For ≤ 257 tokens the window masks nothing (every |p - j| ≤ 256), so making all
    layers global with the sliding RoPE base must change nothing; at 258 tokens it must."""
    path = small_vocab_models["f32"]
    rng = np.random.default_rng(0)
    for n, expect_equal in ((257, True), (258, False)):
        ids = [2] + rng.integers(500, 2000, n - 2).tolist() + [1]
        o = nf.GemmaEmbeddingOracle(path)
        a = o.embed(ids)
        o.hp.n_swa = 10_000  # window wider than any sequence
        b = o.embed(ids)
        if expect_equal:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
        else:
            assert np.max(np.abs(a - b)) > 1e-9
