"""`gembed embed` over corpus files: JSON-lines objects with text and id fields,
every output format streamed in input order across length-sorted windows,
bad rows (stop / skip), and --resume after the process is killed with SIGKILL
(at a commit, and between writing a window and committing it): the resumed
file is byte-identical to an uninterrupted run's. Tiny synthetic model."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess

import numpy as np
import pytest

from test_embed_cli import embed, jsonl, run


@pytest.fixture(scope="module")
def model(gembed, tokenizer_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus_cli") / "tiny-q8_0.gguf"
    run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny",
         "--type", "q8_0", "--seed", "5"])
    return path


def corpus_texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu Über naïve 東京 🙂".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(0, 60))) for _ in range(n)]


def write_jsonl(path, texts, id_prefix="doc-"):
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"{id_prefix}{i}", "text": t, "extra": [1, 2]}, ensure_ascii=False) + "\n")


def plain(gembed, model, texts) -> np.ndarray:
    """The same texts embedded one JSON string per line through stdin (one window)."""
    data = "".join(json.dumps(t) + "\n" for t in texts).encode()
    return jsonl(embed(gembed, model, data, "--jsonl").stdout)


def test_jsonl_objects_with_ids_in_input_order(gembed, model, tmp_path):
    texts = corpus_texts(60)
    src = tmp_path / "corpus.jsonl"
    write_jsonl(src, texts)
    want = plain(gembed, model, texts)
    out = tmp_path / "out.jsonl"
    # Small windows: each is sorted by length inside, so order must be restored.
    embed(gembed, model, b"", "--input", src, "--id-field", "id", "--window", "7", "--output", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"doc-{i}" for i in range(60)]
    np.testing.assert_array_equal(np.array([r["embedding"] for r in rows], dtype=np.float32), want)
    assert not (tmp_path / "out.jsonl.partial").exists() and not (tmp_path / "out.jsonl.resume").exists()


def test_every_output_format_agrees(gembed, model, tmp_path):
    texts = corpus_texts(25, seed=2)
    src = tmp_path / "c.jsonl"
    write_jsonl(src, texts)
    want = plain(gembed, model, texts)
    common = ["--input", src, "--window", "4"]
    embed(gembed, model, b"", *common, "--output", tmp_path / "v.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), want)
    embed(gembed, model, b"", *common, "--output", tmp_path / "v.f32")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "v.f32", dtype="<f4").reshape(want.shape), want)
    embed(gembed, model, b"", *common, "--output", tmp_path / "v.json")
    np.testing.assert_array_equal(np.array(json.loads((tmp_path / "v.json").read_text()), dtype=np.float32), want)
    embed(gembed, model, b"", *common, "--output", tmp_path / "v.csv")
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "v.csv", delimiter=",", dtype=np.float32), want)
    # npy to standard output, and ids beside binary outputs.
    r = embed(gembed, model, b"", *common, "--format", "npy")
    np.testing.assert_array_equal(np.load(__import__("io").BytesIO(r.stdout)), want)
    embed(gembed, model, b"", *common, "--id-field", "id", "--output", tmp_path / "w.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), want)
    ids = [json.loads(line) for line in (tmp_path / "w.npy.ids.jsonl").read_text().splitlines()]
    assert ids == [f"doc-{i}" for i in range(25)]
    # An empty corpus is a valid (0, dim) array.
    (tmp_path / "empty.jsonl").write_text("")
    embed(gembed, model, b"", "--input", tmp_path / "empty.jsonl", "--output", tmp_path / "e.npy")
    assert np.load(tmp_path / "e.npy").shape == (0, 128)


@pytest.mark.parametrize("line, reason", [
    (b'{"id": 1}', b"no field 'text'"),
    (b'{"text": 42}', b"field 'text' is number, not a string"),
    (b'{"text": "x"', b"not valid JSON"),
    (b'[1, 2]', b"a JSON array, not a string or an object"),
    (b'{"text": "\xff\xfe"}', b"not valid UTF-8"),
    (b'{"text": "' + b"[" * 10 + b'"}', None),  # a text that merely looks odd is fine
])
def test_bad_rows_stop_or_skip(gembed, model, tmp_path, line, reason):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"text": "first"}\n' + line + b'\n{"text": "third"}\n')
    out = tmp_path / "o.jsonl"
    r = embed(gembed, model, b"", "--input", src, "--output", out, check=False)
    if reason is None:
        assert r.returncode == 0 and len(out.read_text().splitlines()) == 3
        return
    assert r.returncode == 1 and b"line 2: " + reason in r.stderr, r.stderr
    assert not out.exists()
    for p in (tmp_path / "o.jsonl.partial", tmp_path / "o.jsonl.resume"):
        p.unlink(missing_ok=True)
    r = embed(gembed, model, b"", "--input", src, "--output", out, "--on-error", "skip")
    assert b"skipped line 2: " + reason in r.stderr and b"skipped 1 bad row(s) of 3" in r.stderr
    got = jsonl(out.read_bytes())
    np.testing.assert_array_equal(got, plain(gembed, model, ["first", "third"]))


def test_too_long_text_with_truncation_off_is_a_bad_row(gembed, model, tmp_path):
    src = tmp_path / "long.txt"
    src.write_text("short one\n" + "word " * 3000 + "\nlast\n")
    r = embed(gembed, model, b"", "--input", src, "--no-truncate", check=False)
    assert r.returncode == 1 and b"line 2: text has" in r.stderr and b"2048" in r.stderr
    r = embed(gembed, model, b"", "--input", src, "--no-truncate", "--on-error", "skip")
    assert jsonl(r.stdout).shape == (2, 128) and b"skipped line 2" in r.stderr
    r = embed(gembed, model, b"", "--input", src)
    assert jsonl(r.stdout).shape == (3, 128) and b"1 text(s) longer than 2048 tokens were truncated" in r.stderr


@pytest.mark.parametrize("fmt", ["npy", "jsonl", "json"])
@pytest.mark.parametrize("crash", ["commit:3", "write:4"])
def test_resume_after_sigkill_is_byte_identical(gembed, model, tmp_path, fmt, crash):
    texts = corpus_texts(230, seed=3)
    src = tmp_path / "c.jsonl"
    write_jsonl(src, texts)
    args = ["--input", src, "--id-field", "id", "--window", "40"]
    clean = tmp_path / f"clean.{fmt}"
    embed(gembed, model, b"", *args, "--output", clean)
    out = tmp_path / f"out.{fmt}"
    env = dict(os.environ, GEMBED_TEST_CRASH=crash)
    r = run([gembed, "embed", "--model", model, *args, "--output", out], check=False, env=env)
    assert r.returncode == -signal.SIGKILL
    assert not out.exists()
    state = json.loads((tmp_path / f"out.{fmt}.resume").read_text())
    committed_windows = int(crash.split(":")[1]) - (1 if crash.startswith("write") else 0)
    assert state["embedded"] == 40 * committed_windows
    partial = tmp_path / f"out.{fmt}.partial"
    if crash.startswith("write"):
        assert partial.stat().st_size > state["output_bytes"]  # uncommitted bytes to cut
    # Without --resume the interrupted run is not overwritten.
    r = embed(gembed, model, b"", *args, "--output", out, check=False)
    assert r.returncode == 1 and b"--resume" in r.stderr
    # Other arguments cannot resume it.
    r = embed(gembed, model, b"", *args, "--task", "query", "--output", out, "--resume", check=False)
    assert r.returncode == 1 and b"other arguments" in r.stderr
    r = embed(gembed, model, b"", *args, "--output", out, "--resume")
    assert f"resumed after row {state['rows_read']}".encode() in r.stderr
    assert out.read_bytes() == clean.read_bytes()
    assert not partial.exists() and not (tmp_path / f"out.{fmt}.resume").exists()


def test_output_safety(gembed, model, tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("a\nb\n")
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    # A symbolic link at the .partial path is not followed.
    (tmp_path / "o.npy.partial").symlink_to(victim)
    r = embed(gembed, model, b"", "--input", src, "--output", tmp_path / "o.npy", check=False)
    assert r.returncode == 1 and b"symbolic link" in r.stderr
    assert victim.read_text() == "keep me"
    # A folder or device as the output is refused; the input is never the output.
    r = embed(gembed, model, b"", "--input", src, "--output", tmp_path, check=False)
    assert r.returncode == 1 and b"not a regular file" in r.stderr
    r = embed(gembed, model, b"", "--input", src, "--output", "/dev/null", check=False)
    assert r.returncode == 1 and b"not a regular file" in r.stderr
    r = embed(gembed, model, b"", "--input", src, "--output", src, check=False)
    assert r.returncode == 1 and b"is the --input file" in r.stderr
    assert src.read_text() == "a\nb\n"
    # --resume needs files; --id-field needs JSON lines.
    r = embed(gembed, model, b"a\n", "--resume", check=False)
    assert r.returncode == 1 and b"--resume needs --output FILE" in r.stderr
    r = embed(gembed, model, b"", "--input", src, "--id-field", "id", check=False)
    assert r.returncode == 1 and b"--id-field needs JSON-lines input" in r.stderr


def test_progress_only_when_asked_or_on_a_terminal(gembed, model, tmp_path):
    src = tmp_path / "p.txt"
    src.write_text("\n".join(corpus_texts(30, seed=4)) + "\n")
    r = embed(gembed, model, b"", "--input", src, "--window", "10")
    assert r.stderr == b""  # not a terminal: quiet
    r = embed(gembed, model, b"", "--input", src, "--window", "10", "--progress")
    assert b"texts/s" in r.stderr and b"tokens/s" in r.stderr and b"ETA" in r.stderr
    assert b"30 texts" in r.stderr
