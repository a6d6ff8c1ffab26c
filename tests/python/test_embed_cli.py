"""`gembed embed` (and `gembed synth`) as other tools use them: formats, input
handling, prompts, Matryoshka dims, odd inputs, and exit codes / messages for
bad input. Runs on a tiny synthetic model (6 layers, n_embd 128) written once
per session."""
from __future__ import annotations

import io
import json
import os
import subprocess

import numpy as np
import pytest


def run(cmd, stdin: bytes = b"", check: bool = True, env=None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, timeout=600, check=False, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


@pytest.fixture(scope="module")
def model(gembed, tokenizer_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("embed_cli") / "tiny-q8_0.gguf"
    run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny",
         "--type", "q8_0", "--seed", "3"])
    return path


def embed(gembed, model, stdin: bytes, *args, check: bool = True):
    return run([gembed, "embed", "--model", model, *args], stdin, check)


def jsonl(out: bytes) -> np.ndarray:
    rows = [json.loads(line) for line in out.decode().splitlines()]
    return np.array(rows, dtype=np.float32).reshape(len(rows), -1)


TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog.", "", "zebra"]
RAW = ("\n".join(TEXTS) + "\n").encode()


@pytest.fixture(scope="module")
def reference(gembed, model):
    return jsonl(embed(gembed, model, RAW).stdout)


def test_jsonl_default_one_unit_vector_per_line_in_order(gembed, model, reference):
    assert reference.shape == (len(TEXTS), 128)
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-5)
    for i, t in enumerate(TEXTS):  # input order = output order; batching does not matter
        single = jsonl(embed(gembed, model, (t + "\n").encode()).stdout)
        assert float(single[0] @ reference[i]) > 0.99999
    cos = reference @ reference.T
    assert np.all(cos[~np.eye(len(TEXTS), dtype=bool)] < 0.99)  # different texts differ


def test_formats_agree_bit_for_bit(gembed, model, reference, tmp_path):
    as_json = json.loads(embed(gembed, model, RAW, "--format", "json").stdout)
    np.testing.assert_array_equal(np.array(as_json, dtype=np.float32), reference)
    csv = embed(gembed, model, RAW, "--format", "csv").stdout.decode().splitlines()
    np.testing.assert_array_equal(np.array([[float(x) for x in r.split(",")] for r in csv], dtype=np.float32),
                                  reference)
    out = tmp_path / "v.npy"
    r = embed(gembed, model, RAW, "--format", "npy", "--output", out)
    assert r.stdout == b""
    arr = np.load(out)
    assert arr.dtype == np.float32 and arr.shape == (len(TEXTS), 128)
    np.testing.assert_array_equal(arr, reference)  # text output round-trips fp32 exactly
    to_stdout = np.load(io.BytesIO(embed(gembed, model, RAW, "--format", "npy").stdout))
    np.testing.assert_array_equal(to_stdout, reference)
    # --output for text formats too.
    out_txt = tmp_path / "v.jsonl"
    embed(gembed, model, RAW, "--output", out_txt)
    np.testing.assert_array_equal(jsonl(out_txt.read_bytes()), reference)


def test_empty_input(gembed, model):
    assert embed(gembed, model, b"").stdout == b""
    assert json.loads(embed(gembed, model, b"", "--format", "json").stdout) == []
    arr = np.load(io.BytesIO(embed(gembed, model, b"", "--format", "npy").stdout))
    assert arr.shape == (0, 128)


def test_input_file_crlf_and_missing_final_newline(gembed, model, reference, tmp_path):
    f = tmp_path / "in.txt"
    f.write_bytes("\r\n".join(TEXTS).encode())  # CRLF, no final newline
    np.testing.assert_array_equal(jsonl(embed(gembed, model, b"", "--input", f).stdout), reference)
    r = embed(gembed, model, b"", "--input", tmp_path / "missing.txt", check=False)
    assert r.returncode == 1 and b"missing.txt" in r.stderr


def test_jsonl_input(gembed, model, reference):
    lines = "".join(json.dumps(t) + "\n" for t in TEXTS).encode()
    np.testing.assert_array_equal(jsonl(embed(gembed, model, lines, "--jsonl").stdout), reference)
    # JSON strings carry what plain lines cannot: newlines, tabs, NUL.
    odd = "".join(json.dumps(t) + "\n" for t in ["a\nb", "tab\there", "nul\u0000byte", "é✓😀"]).encode()
    v = jsonl(embed(gembed, model, odd, "--jsonl").stdout)
    assert v.shape == (4, 128) and np.all(np.isfinite(v))
    # "a\nb" is one text, not two.
    split = jsonl(embed(gembed, model, b"a\nb\n").stdout)
    assert float(v[0] @ split[0]) < 0.9999 and float(v[0] @ split[1]) < 0.9999


@pytest.mark.parametrize("line, what", [(b'"ok"\n{"not": "a string"}\n', b"line 2"),
                                        (b'"ok"\nnot json\n', b"line 2"),
                                        (b'"unterminated\n', b"line 1"),
                                        (b'42\n', b"line 1")])
def test_jsonl_bad_lines_exit_1(gembed, model, line, what):
    r = embed(gembed, model, line, "--jsonl", check=False)
    assert r.returncode == 1
    assert what in r.stderr and r.stdout == b""


def test_task_prompts_equal_custom_prefixes(gembed, model):
    text = b"what is the capital of France\n"
    task = jsonl(embed(gembed, model, text, "--task", "query").stdout)
    prompt = jsonl(embed(gembed, model, text, "--prompt", "task: search result | query: ").stdout)
    np.testing.assert_array_equal(task, prompt)
    inline = jsonl(embed(gembed, model, b"task: search result | query: what is the capital of France\n").stdout)
    np.testing.assert_array_equal(task, inline)
    plain = jsonl(embed(gembed, model, text).stdout)
    assert float(task[0] @ plain[0]) < 0.9999  # the prompt changes the vector

    doc = jsonl(embed(gembed, model, text, "--task", "document").stdout)
    np.testing.assert_array_equal(doc, jsonl(embed(gembed, model, text, "--prompt", "title: none | text: ").stdout))
    titled = jsonl(embed(gembed, model, text, "--task", "document", "--title", "Paris").stdout)
    np.testing.assert_array_equal(titled,
                                  jsonl(embed(gembed, model, text, "--prompt", "title: Paris | text: ").stdout))
    for task_name, prefix in [("similarity", "task: sentence similarity | query: "),
                              ("code-retrieval", "task: code retrieval | query: ")]:
        np.testing.assert_array_equal(jsonl(embed(gembed, model, text, "--task", task_name).stdout),
                                      jsonl(embed(gembed, model, text, "--prompt", prefix).stdout))
    # An explicit empty prompt is no prompt.
    np.testing.assert_array_equal(jsonl(embed(gembed, model, text, "--prompt", "").stdout), plain)


def test_strip_like_sentence_transformers_and_no_strip(gembed, model):
    """Default: (prompt + text).strip() like sentence-transformers (Python str.strip():
    also U+00A0, U+3000, ...); --no-strip embeds the text as given (llama.cpp)."""
    padded = ["  hello world\n", "\u3000hello world\u00a0\t", "hello world"]
    lines = "".join(json.dumps(t) + "\n" for t in padded).encode()
    v = jsonl(embed(gembed, model, lines, "--jsonl").stdout)
    np.testing.assert_array_equal(v[0], v[2])
    np.testing.assert_array_equal(v[1], v[2])
    raw = jsonl(embed(gembed, model, lines, "--jsonl", "--no-strip").stdout)
    np.testing.assert_array_equal(raw[2], v[2])
    assert float(raw[0] @ v[2]) < 0.9999 and float(raw[1] @ v[2]) < 0.9999
    # prompt + text is stripped as a whole: an empty text loses the prompt's trailing space.
    empty = jsonl(embed(gembed, model, b'""\n', "--jsonl", "--task", "query").stdout)
    bare = jsonl(embed(gembed, model, b"task: search result | query:\n", "--no-strip").stdout)
    np.testing.assert_array_equal(empty, bare)
    empty_raw = jsonl(embed(gembed, model, b'""\n', "--jsonl", "--task", "query", "--no-strip").stdout)
    assert float(empty_raw[0] @ bare[0]) < 0.9999
    help_text = run([gembed, "embed", "--help"]).stdout
    assert b"--no-strip" in help_text and b"sentence-transformers" in help_text


@pytest.mark.parametrize("args, message", [
    (["--task", "bogus"], b"query"),                      # lists the valid names
    (["--task", "query", "--prompt", "x: "], b"--prompt"),
    (["--title", "T"], b"--title"),
    (["--task", "query", "--title", "T"], b"title cannot be used with task 'query'"),
    (["--dim", "64"], b"128"),                            # lists the allowed dims
    (["--dim", "768"], b"128"),
    (["--format", "xml"], b"xml"),
])
def test_bad_options_exit_1_with_message(gembed, model, args, message):
    r = embed(gembed, model, b"hello\n", *args, check=False)
    assert r.returncode == 1, r.stderr
    assert message in r.stderr and r.stdout == b""


def test_dim(gembed, model, reference):
    np.testing.assert_array_equal(jsonl(embed(gembed, model, RAW, "--dim", "128").stdout), reference)


def test_bad_model_files_exit_1(gembed, tmp_path):
    missing = tmp_path / "missing.gguf"
    r = embed(gembed, missing, b"hi\n", check=False)
    assert r.returncode == 1 and b"missing.gguf" in r.stderr
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    r = embed(gembed, junk, b"hi\n", check=False)
    assert r.returncode == 1 and b"junk.gguf" in r.stderr
    r = run([gembed, "embed"], b"", check=False)  # --model is required: usage error
    assert r.returncode != 0


def test_odd_inputs_never_crash(gembed, model):
    long_line = (b"lorem ipsum dolor sit amet " * 4000)[:100_000]
    lines = [b"", b"   ", b"\t\t", b"nul\x00in\x00line", b"\xff\xfe broken \xc3 utf8", long_line, b"end"]
    # Invalid UTF-8 is a bad row: by default the run stops and names its line...
    r = embed(gembed, model, b"\n".join(lines) + b"\n", check=False)
    assert r.returncode == 1 and b"line 5: not valid UTF-8" in r.stderr and r.stdout == b""
    # ...or it is skipped and reported; every other odd text embeds.
    r = embed(gembed, model, b"\n".join(lines) + b"\n", "--on-error", "skip")
    assert b"skipped line 5: not valid UTF-8" in r.stderr and b"skipped 1 bad row(s) of 7" in r.stderr
    v = jsonl(r.stdout)
    assert v.shape == (len(lines) - 1, 128)
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert b"truncated" in r.stderr  # the 100,000-character line, with a warning
    r = embed(gembed, model, long_line + b"\n", "--no-truncate", check=False)
    assert r.returncode == 1 and b"2048" in r.stderr and r.stdout == b""


def test_threads_do_not_change_results(gembed, model, reference):
    for n in ("1", "2", "3"):
        np.testing.assert_array_equal(jsonl(embed(gembed, model, RAW, "--threads", n).stdout), reference)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512vnni"])
def test_isa_override_gives_the_same_vectors(gembed, model, reference, isa):
    # GEMBED_ISA forces a kernel level (an unsupported one falls back with a
    # warning). Q8_0 activations are re-quantised per op, so levels agree to
    # rounding flips, not bits (see test_model.cc).
    env = dict(os.environ, GEMBED_ISA=isa)
    v = jsonl(run([gembed, "embed", "--model", model], RAW, env=env).stdout)
    assert np.all(np.sum(v * reference, axis=1) > 0.9999)


def test_synth_is_reproducible_and_rejects_bad_options(gembed, tokenizer_dir, tmp_path):
    tok = tokenizer_dir / "tokenizer.json"
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    run([gembed, "synth", "-o", a, "--tokenizer", tok, "--tiny", "--type", "q8_0", "--seed", "3", "--no-dense"])
    run([gembed, "synth", "-o", b, "--tokenizer", tok, "--tiny", "--type", "q8_0", "--seed", "3", "--no-dense",
         "--threads", "1"])
    assert a.read_bytes() == b.read_bytes()
    for bad in (["--type", "q5_0"], ["--layers", "4"], ["--heads", "3", "--kv-heads", "2"], ["--embd", "48", "--type", "q8_0"]):
        r = run([gembed, "synth", "-o", tmp_path / "c.gguf", "--tokenizer", tok, "--tiny", *bad], check=False)
        assert r.returncode == 1 and r.stderr, bad
        assert not (tmp_path / "c.gguf").exists()
