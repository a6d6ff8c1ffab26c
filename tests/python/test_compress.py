"""gembed quantize / gembed prune on tiny synthetic models (docs/COMPRESSION.md).

Oracles we did not write: gguf-py's numpy quantisers (ggml's Q4_0 / Q4_1
reference rules, byte for byte) and dequantisers, and the float64 NumPy forward
pass (tests/oracle/numpy_forward.py, which dequantises Q4 blocks with gguf-py)
for the vectors of every variant. Files are read with tests/oracle/gguf_lite.py
(types, shapes, keys, bytes), which test_oracle_numpy.py checks against
gguf-py's reader.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "oracle"))

import gguf_lite  # noqa: E402
import numpy_forward as nf  # noqa: E402
import oracle_cli as gembed_cli  # noqa: E402
import oracle_texts as T  # noqa: E402

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

TEXTS = ["Which planet is known as the Red Planet?", "short", "Der schnelle braune Fuchs springt über den Hund.",
         "def add(a, b):\n    return a + b", " ".join(["word"] * 300)]
CALIB = ["The quick brown fox jumps over the lazy dog.", "Mars is red.", "int main() { return 0; }",
         "Les gens regardent les étoiles.", "A longer calibration text about planets, stars and rivers " * 5]


def run(cmd, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr}")
    return r


@pytest.fixture(scope="module")
def tiny(gembed, tokenizer_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("compress")
    f32 = d / "tiny_f32.gguf"
    gembed_cli.synth(gembed, tokenizer_dir / "tokenizer.json", f32, qtype="f32", seed=11, extra=["--tiny"])
    calib = d / "calib.txt"
    calib.write_text("\n".join(CALIB) + "\n", encoding="utf-8")
    return d, f32, calib


class _Tensor:
    """The part of gguf.ReaderTensor these tests use: name, tensor_type, shape (ne order) and data
    (float32 rows for F32; the raw block bytes, one row per matrix row, for quantised types)."""

    def __init__(self, info):
        self.name = info.name
        self.tensor_type = Q(info.ggml_type)
        self.shape = list(info.ne)
        self.data = info.data.view(np.float32).reshape(list(reversed(info.ne))) if self.tensor_type == Q.F32 \
            else info.data


class _Reader:
    """A GGUF file read with tests/oracle/gguf_lite (cross-checked against gguf.GGUFReader in
    test_oracle_numpy.py): gguf.GGUFReader spends 15-25 s per open on the 262,144-entry vocabulary,
    and these tests open dozens of files."""

    def __init__(self, path):
        f = gguf_lite.GGUFFile(str(path))
        self.fields = f.kv
        self.tensors = [_Tensor(t) for t in f.tensors.values()]


def reader(path):
    return _Reader(path)


def tensor(r, name):
    for t in r.tensors:
        if t.name == name:
            return t
    raise KeyError(name)


def field(r, key):
    return r.fields[key]


def float_weight(r, name):
    t = tensor(r, name)
    return dequantize(np.asarray(t.data), t.tensor_type).reshape(list(reversed([int(x) for x in t.shape]))) \
        if t.tensor_type != Q.F32 else np.asarray(t.data, dtype=np.float32).reshape(
            list(reversed([int(x) for x in t.shape])))


def check_vectors(gembed, model, min_cos):
    """gembed's vectors vs the float64 oracle on the same file; returns the worst cosine."""
    oracle = nf.GemmaEmbeddingOracle(model)
    full = [T.task_prefix(None, None) + t for t in TEXTS]
    ids = gembed_cli.tokenize(gembed, model, full)
    got = gembed_cli.embed(gembed, model, TEXTS)
    cos = [nf.cosine(g, oracle.embed(i)) for g, i in zip(got, ids)]
    assert min(cos) >= min_cos, (model, cos)
    return min(cos)


@pytest.mark.parametrize("qtype,ggml", [("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1)])
def test_quantize_reference_rule_matches_gguf_py(gembed, tiny, qtype, ggml):
    d, f32, _ = tiny
    out = d / f"{qtype}_ref.gguf"
    run([gembed, "quantize", f32, "-o", out, "--type", qtype, "--no-search", "--threads", "2"])
    src, dst = reader(f32), reader(out)
    assert int(field(dst, "general.file_type")) == (2 if qtype == "q4_0" else 3)
    n_mats = 0
    for t in src.tensors:
        q = tensor(dst, t.name)
        if t.name.endswith("_norm.weight"):
            assert q.tensor_type == Q.F32, t.name
            continue
        assert q.tensor_type == ggml, t.name
        want = quantize(np.asarray(t.data, dtype=np.float32), ggml)
        assert np.array_equal(np.asarray(q.data).view(np.uint8).reshape(-1), want.view(np.uint8).reshape(-1)), t.name
        n_mats += 1
    assert n_mats >= 6 * 7 + 3
    # The vocabulary and prompts came along; the file runs, matching the oracle.
    assert field(dst, "tokenizer.ggml.model") == field(src, "tokenizer.ggml.model")
    check_vectors(gembed, out, 0.999)


def test_quantize_search_never_worse_than_ggml_rule(gembed, tiny):
    d, f32, calib = tiny
    src = reader(f32)
    for qtype in ("q4_0", "q4_1"):
        ref_out, mse_out = d / f"{qtype}_r.gguf", d / f"{qtype}_mse.gguf"
        run([gembed, "quantize", f32, "-o", ref_out, "--type", qtype, "--no-search"])
        run([gembed, "quantize", f32, "-o", mse_out, "--type", qtype])
        r_ref, r_mse = reader(ref_out), reader(mse_out)
        better = 0
        for name in ("blk.0.attn_q.weight", "blk.3.ffn_down.weight", "token_embd.weight"):
            w = float_weight(src, name)
            e_ref = ((float_weight(r_ref, name) - w) ** 2).reshape(-1, 32).sum(axis=1)
            e_mse = ((float_weight(r_mse, name) - w) ** 2).reshape(-1, 32).sum(axis=1)
            # fp16 stores and float32 rounding: allow a hair per block
            assert np.all(e_mse <= e_ref * (1 + 1e-5) + 1e-12), (qtype, name)
            better += int(e_mse.sum() < 0.97 * e_ref.sum())
        assert better >= 2, f"{qtype}: the search should lower the squared error clearly"
        check_vectors(gembed, mse_out, 0.999)
    # Activation-aware: a different file, still valid and close to the oracle.
    aw = d / "q4_1_aw.gguf"
    r = run([gembed, "quantize", f32, "-o", aw, "--type", "q4_1", "--calib", calib])
    assert "calibrated on 5 texts" in r.stderr
    assert "activation-weighted" in field(reader(aw), "gembed.compression")
    check_vectors(gembed, aw, 0.999)


def test_mixed_precision_by_class(gembed, tiny):
    d, f32, _ = tiny
    out = d / "mixed.gguf"
    run([gembed, "quantize", f32, "-o", out, "--type", "q4_1", "--keep-8bit", "attn_v,ffn_down,first,dense",
         "--embd-type", "q8_0"])
    r = reader(out)
    types = {t.name: t.tensor_type for t in r.tensors}
    assert types["token_embd.weight"] == Q.Q8_0
    assert types["dense_2.weight"] == Q.Q8_0
    for l in range(6):
        for m in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"):
            assert types[f"blk.{l}.{m}.weight"] == (Q.Q8_0 if l == 0 else Q.Q4_1), (l, m)
        assert types[f"blk.{l}.attn_v.weight"] == Q.Q8_0
        assert types[f"blk.{l}.ffn_down.weight"] == Q.Q8_0
    check_vectors(gembed, out, 0.999)


def test_prune_ffn_width_and_layers(gembed, tiny):
    d, f32, calib = tiny
    src = reader(f32)
    ffn = d / "ffn128.gguf"
    run([gembed, "prune", f32, "-o", ffn, "--ffn-width", "128", "--type", "f32", "--calib", calib])
    r = reader(ffn)
    assert int(field(r, "gemma-embedding.feed_forward_length")) == 128
    assert [int(x) for x in tensor(r, "blk.2.ffn_gate.weight").shape] == [128, 128]
    assert [int(x) for x in tensor(r, "blk.2.ffn_down.weight").shape] == [128, 128]
    # The kept channels are rows of gate/up and the same columns of down, in order.
    g_src, g_dst = float_weight(src, "blk.2.ffn_gate.weight"), float_weight(r, "blk.2.ffn_gate.weight")
    kept = [int(np.argmin(np.abs(g_src - row).sum(axis=1))) for row in g_dst]
    assert kept == sorted(kept) and len(set(kept)) == 128
    np.testing.assert_array_equal(float_weight(r, "blk.2.ffn_down.weight"),
                                  float_weight(src, "blk.2.ffn_down.weight")[:, kept])
    check_vectors(gembed, ffn, 0.9999)

    drop = d / "drop.gguf"
    run([gembed, "prune", f32, "-o", drop, "--drop-layers", "1,3", "--type", "f32"])
    r = reader(drop)
    assert int(field(r, "gemma-embedding.block_count")) == 4
    # The tiny model's layer 5 is its global layer; after dropping 1 and 3 it is layer 3.
    np.testing.assert_array_equal(float_weight(r, "blk.3.attn_q.weight"), float_weight(src, "blk.5.attn_q.weight"))
    np.testing.assert_array_equal(float_weight(r, "blk.1.ffn_up.weight"), float_weight(src, "blk.2.ffn_up.weight"))
    pattern = [bool(x) for x in field(r, "gemma-embedding.attention.sliding_window_pattern")]
    assert pattern == [True, True, True, False]
    check_vectors(gembed, drop, 0.9999)

    auto = d / "drop_auto.gguf"
    res = run([gembed, "prune", f32, "-o", auto, "--drop-count", "2", "--calib", calib, "--type", "q8_0"])
    assert "dropped layers" in res.stderr
    assert int(field(reader(auto), "gemma-embedding.block_count")) == 4
    check_vectors(gembed, auto, 0.999)


@pytest.mark.parametrize("score,group", [("magnitude", "row"), ("wanda", "row"), ("wanda", "matrix")])
def test_block_sparsity(gembed, tiny, score, group):
    d, f32, calib = tiny
    out = d / f"sparse_{score}_{group}.gguf"
    run([gembed, "prune", f32, "-o", out, "--block-sparsity", "ffn=0.5,attn_q=0.25", "--block", "16x32", "--score",
         score, "--group", group, "--calib", calib])
    r = reader(out)
    for name, ratio in (("blk.1.ffn_up.weight", 0.5), ("blk.4.ffn_down.weight", 0.5), ("blk.0.attn_q.weight", 0.25),
                        ("blk.0.attn_k.weight", 0.0)):
        w = float_weight(r, name)
        rows, cols = w.shape
        zero_tiles = np.all(w.reshape(rows // 16, 16, cols // 32, 32) == 0, axis=(1, 3))  # [block row, block col]
        if group == "row":  # every block row loses the same number of blocks
            assert np.all(zero_tiles.sum(axis=1) == np.floor(ratio * zero_tiles.shape[1])), (name, zero_tiles.sum(1))
        else:
            assert zero_tiles.sum() == np.floor(ratio * zero_tiles.size), (name, zero_tiles.sum())
    assert "block_sparsity=ffn=0.5,attn_q=0.25" in field(r, "gembed.compression")
    assert f"group={group}" in field(r, "gembed.compression")
    # The sparse kernels skip those tiles: the vectors still match the oracle on the same file.
    check_vectors(gembed, out, 0.999)


def test_bad_input_is_a_clear_error(gembed, tiny):
    d, f32, calib = tiny
    out = d / "bad.gguf"
    cases = [
        (["quantize", f32, "-o", out, "--type", "q5_0"], 2, "unknown --type"),
        (["quantize", f32, "-o", out, "--type", "q4_0", "--keep-8bit", "attn,wrong"], 2, "unknown tensor class"),
        (["quantize", d / "missing.gguf", "-o", out, "--type", "q4_0"], 1, "missing.gguf"),
        (["prune", f32, "-o", out, "--ffn-width", "100"], 1, "multiple of 32"),
        (["prune", f32, "-o", out, "--ffn-width", "512"], 1, "multiple of 32"),
        (["prune", f32, "-o", out, "--drop-count", "2"], 2, "--calib"),
        (["prune", f32, "-o", out, "--drop-layers", "0,1,2,3,4,5"], 1, "cannot drop all"),
        (["prune", f32, "-o", out, "--drop-layers", "9"], 1, "does not exist"),
        (["prune", f32, "-o", out, "--block-sparsity", "ffn=0.5"], 2, "--calib"),
        (["prune", f32, "-o", out, "--block-sparsity", "ffn=0.5", "--score", "magnitude", "--group", "col"], 2,
         "--group"),
        (["prune", f32, "-o", out, "--block-sparsity", "ffn=1.5", "--score", "magnitude"], 2, "[0, 1)"),
        (["prune", f32, "-o", out, "--block-sparsity", "mlp=0.5", "--score", "magnitude"], 2, "mlp"),
        (["prune", f32, "-o", out, "--block-sparsity", "ffn=0.5", "--block", "8x32", "--score", "magnitude"], 2,
         "multiple of 16"),
        (["quantize", f32, "-o", out, "--type", "q4_0", "--calib", d / "nope.txt"], 1, "nope.txt"),
    ]
    for args, rc, msg in cases:
        r = run([gembed, *args], check=False)
        assert r.returncode == rc and msg in r.stderr, (args, r.returncode, r.stderr)
        assert not out.exists(), args
    # A file that is not a model.
    junk = d / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\0" * 40)
    r = run([gembed, "quantize", junk, "-o", out, "--type", "q4_0"], check=False)
    assert r.returncode == 1 and "junk.gguf" in r.stderr and not out.exists()


def test_quantize_from_gguf_keeps_keys(gembed, tiny):
    """A GGUF input (here Q8_0) re-encoded: the non-architecture keys are copied."""
    d, f32, _ = tiny
    q8 = d / "q8.gguf"
    run([gembed, "quantize", f32, "-o", q8, "--type", "q8_0"])
    q4 = d / "from_q8.gguf"
    run([gembed, "quantize", q8, "-o", q4, "--type", "q4_0", "--no-search"])
    a, b = reader(q8), reader(q4)
    for key in ("tokenizer.ggml.tokens", "general.name", "gemma-embedding.context_length"):
        assert key in b.fields, key
    assert len(field(b, "tokenizer.ggml.tokens")) == len(field(a, "tokenizer.ggml.tokens"))
    check_vectors(gembed, q4, 0.999)
    info = run([gembed, "inspect", q4]).stdout
    assert "Q4_0" in info


def test_table_script_smallest_settings(gembed, tiny, tmp_path):
    """scripts/compression_table.py end to end on the tiny model (quick timing,
    no STS): every row gets its quality and timing figures."""
    d, f32, calib = tiny
    out = tmp_path / "table.json"
    md = tmp_path / "table.md"
    r = subprocess.run([sys.executable, REPO / "scripts" / "compression_table.py", "--reference", f32, "--work",
                        tmp_path / "work", "--calib", calib, "--timing", "quick", "--rounds", "2", "--sts", "none", "--variants",
                        "q8_0,q4_0,q4_1aw,mixed,sparse50,drop2", "--json", out, "--markdown", md],
                       capture_output=True, text=True, env={**__import__("os").environ, "GEMBED_BIN": str(gembed)})
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"q8_0", "q4_0", "q4_1aw", "mixed", "sparse50", "drop2"}
    for name, row in rows.items():
        q, t = row["quality"], row["timing"]
        # Quantised variants stay close on any model; dropping layers or half the blocks of a tiny random
        # model can turn a vector around, so those rows are only checked to be valid cosines.
        floor = 0.5 if name in ("q8_0", "q4_0", "q4_1aw", "mixed") else -1.0 - 1e-6
        assert floor < q["cos_min"] <= q["cos_mean"] <= 1.0 + 1e-6, (name, q)
        assert 0.0 <= q["top10"] <= 1.0 and q["sts_spearman"] is None
        assert t["ms_12"] > 0 and t["ms_128"] > 0 and t["texts_per_s_64x128"] > 0 and t["peak_rss_mib"] > 0
        # Two timing rounds over all rows; a row's figure is the median (here: the mean) of its rounds.
        rounds = row["timing_rounds"]
        assert len(rounds) == 2, (name, rounds)
        for k in ("ms_12", "ms_128", "texts_per_s_64x128"):
            assert t[k] == pytest.approx((rounds[0][k] + rounds[1][k]) / 2, rel=1e-12), (name, k)
        assert t["peak_rss_mib"] == max(r_["peak_rss_mib"] for r_ in rounds)
    # Orders that must hold on any model: 8-bit beats 4-bit; 4-bit files are smaller.
    assert rows["q8_0"]["quality"]["cos_mean"] > rows["q4_0"]["quality"]["cos_mean"]
    assert rows["q4_0"]["file_mb"] < rows["q8_0"]["file_mb"]
    assert "| Q4_0 (ggml rule) |" in md.read_text()


def test_scale_granularity_script(gembed, tiny):
    """scripts/scale_granularity.py (docs/PERFORMANCE.md: what coarser int8 scales would cost) runs on the
    tiny F32 model and reports a valid cosine for each arrangement of scales."""
    d, f32, _ = tiny
    r = subprocess.run([sys.executable, REPO / "scripts" / "scale_granularity.py", "--model", f32, "--texts", "3",
                        "--gembed", gembed], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = {}
    for line in r.stdout.splitlines()[1:]:
        mode, _, mean, _, low = line.split()
        got[mode] = (float(mean), float(low))
    assert set(got) == {"q8_0", "roww_blocka", "blockw_rowa", "row"}, r.stdout
    for mode, (mean, low) in got.items():
        assert -1.0 <= low <= mean <= 1.0 + 1e-9, (mode, mean, low)
    # 8-bit rounding of a small random model keeps its vectors close (as in the table test above).
    assert got["q8_0"][1] > 0.5, got
    bad = subprocess.run([sys.executable, REPO / "scripts" / "scale_granularity.py", "--model", f32, "--modes",
                          "q4", "--gembed", gembed], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "unknown modes" in bad.stderr
