"""The Python package `gembed` (python/gembed + the nanobind module gembed._gembed),
as installed into the suite's venv by scripts/setup.sh (`pip install .`).

On a small synthetic model (`gembed synth --tiny --embd 256`: 6 layers, 256
wide, so it has the Matryoshka dims 256 and 128; real Gemma3 vocabulary) made
once per module:
* vectors equal `gembed embed`'s bit for bit (prompts, titles, dims, custom
  prompts, --no-strip, odd texts), a tiny Hugging Face folder's own prompt
  names (sentence-transformers' "Retrieval-query", ...) included;
* the output: float32, C-contiguous, one array per call; str -> 1-D;
* normalize=False, similarity, tokenize, the attributes, progress callbacks;
* the GIL is released: another thread runs Python code (and sees the call
  inside the engine) while `encode` runs;
* 4 threads x 50 calls on one Model give the serial results bit for bit;
* Ctrl-C (SIGINT) cancels a long encode with KeyboardInterrupt (in a child process);
* a table of bad inputs -> Python exceptions with the engine's message;
* `python -m gembed`, and the LangChain / LlamaIndex adapters (skipped when
  langchain-core / llama-index-core are not importable);
* the package imports and works from a clean venv after installing the wheel
  `pip wheel .` builds (reusing the kept build folder), run outside the source
  tree. GEMBED_TEST_PIP_INSTALL=1 also runs a full isolated `pip install .`
  into a clean venv (a fresh build: minutes).
With the real model present ($GEMBED_REAL_MODEL_DIR or models/embeddinggemma-300m):
the sentence-transformers golden vectors and token ids (tests/golden/data).
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

try:
    import gembed
except ImportError as e:  # the suite's venv must have it: scripts/setup.sh installs it
    pytest.fail(f"the gembed package is not installed in {sys.prefix} ({e}): run scripts/setup.sh "
                "(it runs pip install . into .venv)", pytrace=False)

import make_hf_fixture  # noqa: E402


def run(cmd, stdin: bytes = b"", check: bool = True, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, timeout=timeout, check=False, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-3000:]}")
    return r


@pytest.fixture(scope="session")
def cli_bin(gembed):
    """The `gembed` binary (conftest's fixture `gembed`, renamed: here `gembed` is the package)."""
    return gembed


@pytest.fixture(scope="module")
def model_path(cli_bin, tokenizer_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("python_pkg") / "small-q8_0.gguf"
    run([cli_bin, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json", "--tiny", "--embd", "256",
         "--type", "q8_0", "--seed", "11"])
    return path


@pytest.fixture(scope="module")
def m(model_path):
    with gembed.Model(model_path, threads=2) as model:
        yield model


def cli(gembed_bin, model, texts, *args) -> np.ndarray:
    """`gembed embed --format npy` of texts given as JSON lines."""
    stdin = "".join(json.dumps(t) + "\n" for t in texts).encode()
    out = run([gembed_bin, "embed", "--model", model, "--jsonl", "--format", "npy", "--threads", "2", *args],
              stdin).stdout
    import io
    return np.load(io.BytesIO(out))


TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog.", "", "zebra", "  padded  \n",
         "a\nb", "tab\there", "nul\u0000byte", "é✓😀 日本語のテキスト", "<bos> special <eos> tokens",
         "lorem ipsum " * 300]


def test_installed_package_is_not_the_source_tree():
    where = pathlib.Path(gembed.__file__).resolve()
    assert REPO / "python" not in where.parents, where
    assert (where.parent / "_model.py").exists()
    assert any(p.name.startswith("_gembed") for p in where.parent.iterdir())
    assert gembed.__version__.count(".") == 2
    assert gembed.cpu_isa() in gembed.supported_isas()


@pytest.mark.parametrize("kwargs, flags", [
    ({}, []),
    ({"prompt_name": "query"}, ["--task", "query"]),
    ({"prompt_name": "document"}, ["--task", "document"]),
    ({"prompt_name": "document", "titles": "Paris"}, ["--task", "document", "--title", "Paris"]),
    ({"prompt_name": "similarity", "dim": 128}, ["--task", "similarity", "--dim", "128"]),
    ({"truncate_dim": 128}, ["--dim", "128"]),
    ({"prompt": "my prefix: "}, ["--prompt", "my prefix: "]),
    ({"prompt": ""}, ["--prompt", ""]),
    ({"strip": False}, ["--no-strip"]),
])
def test_vectors_equal_the_cli(cli_bin, model_path, m, kwargs, flags):
    got = m.encode(TEXTS, **kwargs)
    want = cli(cli_bin, model_path, TEXTS, *flags)
    assert got.shape == want.shape == (len(TEXTS), kwargs.get("dim", kwargs.get("truncate_dim", 256)))
    np.testing.assert_array_equal(got, want)
    # One text at a time, and in batches of 3: the same bits (batching never changes a vector).
    np.testing.assert_array_equal(np.stack([m.encode(t, **kwargs) for t in TEXTS[:4]]), want[:4])
    np.testing.assert_array_equal(m.encode(TEXTS, batch_size=3, **kwargs), want)


def test_query_and_document_helpers_and_per_text_titles(cli_bin, model_path, m):
    q = m.encode_query("Which planet is known as the Red Planet?")
    assert q.shape == (256,) and q.dtype == np.float32
    np.testing.assert_array_equal(q, cli(cli_bin, model_path, ["Which planet is known as the Red Planet?"],
                                         "--task", "query")[0])
    docs = ["Mars is red.", "Venus is hot.", "Jupiter is big."]
    titles = ["Mars", None, "Jupiter"]
    d = m.encode_document(docs, titles=titles)
    for i, (t, title) in enumerate(zip(docs, titles)):
        flags = ["--task", "document"] + (["--title", title] if title else [])
        np.testing.assert_array_equal(d[i], cli(cli_bin, model_path, [t], *flags)[0])
    np.testing.assert_array_equal(m.encode_document(docs), cli(cli_bin, model_path, docs, "--task", "document"))
    np.testing.assert_array_equal(m.encode_query(docs, prompt="x: "), cli(cli_bin, model_path, docs, "--prompt", "x: "))
    np.testing.assert_array_equal(m.encode_document(docs, dim=128), cli(cli_bin, model_path, docs, "--task",
                                                                         "document", "--dim", "128"))


def test_output_is_one_float32_array(m):
    v = m.encode(TEXTS)
    assert v.dtype == np.float32 and v.shape == (len(TEXTS), 256)
    assert v.flags["C_CONTIGUOUS"] and v.flags["OWNDATA"] and v.flags["WRITEABLE"]
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    one = m.encode("hello world")
    assert one.shape == (256,) and one.dtype == np.float32
    np.testing.assert_array_equal(one, v[0])
    # Any iterable of str: tuple, generator, NumPy array of str.
    np.testing.assert_array_equal(m.encode(tuple(TEXTS[:3])), v[:3])
    np.testing.assert_array_equal(m.encode(t for t in TEXTS[:3]), v[:3])
    np.testing.assert_array_equal(m.encode(np.array(TEXTS[:3])), v[:3])
    assert m.encode([]).shape == (0, 256) and m.encode([], dim=128).shape == (0, 128)


def test_normalize_false_is_the_untruncated_models_prefix(m):
    full = m.encode(TEXTS)
    raw = m.encode(TEXTS, dim=128, normalize=False)
    assert raw.shape == (len(TEXTS), 128) and raw.flags["C_CONTIGUOUS"] and raw.dtype == np.float32
    np.testing.assert_array_equal(raw, full[:, :128])  # not re-normalised
    assert np.all(np.linalg.norm(raw, axis=1) < 0.9999)
    np.testing.assert_array_equal(m.encode(TEXTS, dim=128, normalize_embeddings=False), raw)
    unit = m.encode(TEXTS, dim=128)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=2e-7)
    # The model's last layer normalises: full width is unit length either way.
    np.testing.assert_array_equal(m.encode(TEXTS, normalize=False), full)
    one = m.encode("zebra", dim=128, normalize=False)
    np.testing.assert_array_equal(one, full[3, :128])


def test_similarity_is_cosine_like_sentence_transformers(m):
    q = m.encode_query("Which planet is red?")
    d = m.encode_document(["Mars is red.", "Venus is hot."])
    s = m.similarity(q, d)
    assert s.shape == (1, 2) and s.dtype == np.float32
    np.testing.assert_allclose(s[0], d @ q, atol=1e-6)
    assert m.similarity(d, d).shape == (2, 2)
    np.testing.assert_allclose(np.diag(m.similarity(d, d)), 1.0, atol=1e-6)
    # Not assumed to be unit vectors (normalize=False / other sources); zero rows give 0.
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(gembed.Model.similarity(x, [[6.0, 8.0], [4.0, -3.0]]), [[1, 0], [0, 0]], atol=1e-7)
    np.testing.assert_allclose(m.similarity_pairwise(d, d), [1, 1], atol=1e-6)
    with pytest.raises(ValueError, match="different widths"):
        m.similarity(q, d[:, :128])


def test_attributes_tokenize_and_info(m, tokenizer_dir):
    assert m.dims == [256, 128]
    assert m.max_seq_length == 2048
    assert m.get_sentence_embedding_dimension() == 256
    assert m.prompts["query"] == "task: search result | query: "
    assert m.prompts["document"] == "title: none | text: "
    assert {"similarity", "classification", "clustering", "code-retrieval"} <= set(m.prompts)
    for name, prefix in m.prompts.items():  # every name encodes as its prefix does
        np.testing.assert_array_equal(m.encode(TEXTS[:2], prompt_name=name), m.encode(TEXTS[:2], prompt=prefix))
    from tokenizers import Tokenizer  # Hugging Face's tokenizer on the same vocabulary

    hf = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    for t in ["hello world", "é✓😀 日本語", "  padded  "]:
        assert m.tokenize(t) == [2] + hf.encode(t.strip(), add_special_tokens=False).ids + [1]
    assert m.tokenize(["a", "b"]) == [m.tokenize("a"), m.tokenize("b")]
    assert m.tokenize("x", prompt_name="query") == m.tokenize("task: search result | query: x")
    assert m.tokenize("x", prompt_name="document", title="T") == m.tokenize("title: T | text: x")
    assert m.tokenize(" x ", strip=False) != m.tokenize("x")
    assert len(m.tokenize("lorem ipsum " * 3000)) == 2048
    assert m.token_text(m.tokenize("hello")[1]) == "hello"
    info = m.info()
    for key in ("version", "path", "format", "isa", "kernels", "precision", "threads", "weight_type", "dims", "config",
                "max_seq_length", "stats", "load_ms", "prompt_table", "task_names"):
        assert key in info, key
    assert info["format"] == "gguf" and info["weight_type"] == "Q8_0" and info["threads"] == 2
    assert info["config"]["n_embd"] == 256 and info["stats"]["forward_passes"] > 0
    assert "Q8_0" in repr(m)


def test_progress_callback_and_bar(m, capsys, monkeypatch):
    seen = []
    texts = ["lorem ipsum " * 200] * 12  # ~400 tokens each: more than one forward pass
    v = m.encode(texts, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (12, 12) and all(t == 12 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    np.testing.assert_array_equal(m.encode(texts, batch_size=5, progress=lambda d, t: seen.append((d, t))), v)
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert {5, 10} <= {d for d, _ in seen}  # engine calls of 5 + 5 + 2 texts
    # Without tqdm: a line on stderr.
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    capsys.readouterr()
    np.testing.assert_array_equal(m.encode(texts, show_progress_bar=True), v)
    assert "12/12 texts" in capsys.readouterr().err
    # An exception in the callback stops the call and comes back as it was.
    with pytest.raises(ZeroDivisionError):
        m.encode(texts, progress=lambda d, t: 1 / 0)
    np.testing.assert_array_equal(m.encode(texts[:2]), v[:2])  # the model still works


def test_gil_is_released_while_the_engine_runs(model_path):
    """A second thread runs Python code while `encode` is inside the engine: it
    reads stats() (which needs the GIL) and sees the call in progress, many
    times, with its own counter advancing between the readings. Holding the GIL
    through Engine::EmbedInto would make that impossible: it could only see the
    engine idle (before or after)."""
    with gembed.Model(model_path, threads=2, max_batch_tokens=2048) as model:
        texts = [f"lorem ipsum dolor sit amet {i} " * 50 for i in range(40)]  # ~14k tokens, ~7 passes
        done = threading.Event()
        during = []  # (counter, forward_passes) seen while the call was inside the engine
        counter = 0

        def watcher():
            nonlocal counter
            while not done.is_set():
                counter += 1
                s = model.info()["stats"]
                if s["active_calls"] > 0:
                    during.append((counter, s["forward_passes"]))

        t = threading.Thread(target=watcher)
        t.start()
        try:
            before = model.info()["stats"]["forward_passes"]
            v = model.encode(texts)
        finally:
            done.set()
            t.join(timeout=60)
        assert v.shape == (40, 256)
        passes = model.info()["stats"]["forward_passes"] - before
        print(f"GIL: watcher ran {counter} loops, {len(during)} of them while encode was in the engine "
              f"({passes} forward passes)")
        assert passes >= 4
        assert len(during) >= 2 and during[-1][0] > during[0][0]


def test_threads_share_one_model_and_get_the_serial_results(m):
    """4 threads x 50 calls on one Model, each call its own texts and options:
    every result equals the serial one bit for bit."""
    opts = [{}, {"prompt_name": "query"}, {"prompt_name": "document", "titles": "T"}, {"dim": 128},
            {"prompt": "p: ", "dim": 128}]

    def call(i):
        texts = [f"text {i} number {k} " * (1 + (i * 7 + k) % 9) for k in range(1 + i % 4)]
        return texts, opts[i % len(opts)]

    serial = [m.encode(*call(i)[:1], **call(i)[1]) for i in range(200)]
    results = [None] * 200
    errors = []
    start = threading.Barrier(4)
    before = m.info()["stats"]

    def worker(w):
        try:
            start.wait(timeout=60)
            for j in range(50):
                i = w * 50 + j
                texts, o = call(i)
                results[i] = m.encode(texts, **o)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == [] and not any(t.is_alive() for t in threads)
    for i in range(200):
        np.testing.assert_array_equal(results[i], serial[i], err_msg=f"call {i}")
    after = m.info()["stats"]
    n_texts = sum(len(call(i)[0]) for i in range(200))
    assert after["sequences"] - before["sequences"] == n_texts
    print(f"threads: 200 calls, {n_texts} texts in {after['forward_passes'] - before['forward_passes']} "
          "forward passes")


CTRL_C_SCRIPT = r"""
import json, os, signal, sys, threading, gembed
# Python's own Ctrl-C handler, as in a terminal. A process started with SIGINT ignored (a background job of
# a non-interactive shell, as CI may run the suite) inherits SIG_IGN, and Python then installs no handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
m = gembed.Model(sys.argv[1], threads=2, max_batch_tokens=2048)
texts = [f"lorem ipsum dolor sit amet {i} " * 50 for i in range(400)]  # ~70 forward passes
def interrupt():
    while m.info()["stats"]["forward_passes"] < 2:
        threading.Event().wait(0.005)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=interrupt, daemon=True).start()
try:
    m.encode(texts)
    result = "finished"
except KeyboardInterrupt:
    result = "KeyboardInterrupt"
s = m.info()["stats"]
again = m.encode(["still works"])
print(json.dumps({"result": result, "sequences": s["sequences"], "total": len(texts),
                  "active_calls": s["active_calls"], "queued": s["queued_sequences"], "again": again.shape[0]}))
"""


def test_ctrl_c_cancels_a_long_encode(model_path, tmp_path):
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    r = run([sys.executable, script, model_path], timeout=300, cwd=tmp_path)
    out = json.loads(r.stdout.decode().strip().splitlines()[-1])
    print(f"Ctrl-C: {out}")
    assert out["result"] == "KeyboardInterrupt"
    assert out["sequences"] < out["total"]  # stopped early: texts were dropped
    assert out["active_calls"] == 0 and out["queued"] == 0 and out["again"] == 1


def write_bytes(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


def test_bad_model_files(model_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model"):
        gembed.Model(tmp_path / "missing.gguf")
    cases = {
        "empty": write_bytes(tmp_path / "empty.gguf", b""),
        "not a gguf": write_bytes(tmp_path / "text.gguf", b"hello, this is not a model\n" * 10),
        "truncated": write_bytes(tmp_path / "cut.gguf", model_path.read_bytes()[:100000]),
        "empty folder": tmp_path / "folder",
    }
    cases["empty folder"].mkdir()
    for what, path in cases.items():
        with pytest.raises(gembed.ModelError) as e:
            gembed.Model(path)
        assert str(e.value) and isinstance(e.value, RuntimeError), what
        print(f"bad model {what}: ModelError: {e.value}")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"precision": "ultra"}, ValueError, "precision"),
    ({"threads": -1}, ValueError, "threads"),
    ({"threads": 100000}, ValueError, "threads"),
    ({"threads": "2"}, TypeError, "threads"),
    ({"max_batch_tokens": 0}, ValueError, "max_batch_tokens"),
])
def test_bad_model_options(model_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        gembed.Model(model_path, **kwargs)


LONG = "lorem ipsum " * 3000  # > 2,048 tokens


@pytest.mark.parametrize("args, kwargs, error, message", [
    (["x"], {"dim": 100}, ValueError, "dim 100 is not supported.*256, 128"),
    (["x"], {"dim": -1}, ValueError, "dim must be"),
    (["x"], {"dim": 128, "truncate_dim": 256}, ValueError, "disagree"),
    (["x"], {"prompt_name": "nope"}, ValueError, "unknown task 'nope'"),
    (["x"], {"prompt_name": "query", "prompt": "p: "}, ValueError, "task and a custom prompt"),
    (["x"], {"titles": "T"}, ValueError, "title needs a task"),
    (["x"], {"prompt_name": "query", "titles": "T"}, ValueError, "title cannot be used with task 'query'"),
    ([["a", "b"]], {"prompt_name": "document", "titles": ["T"]}, ValueError, "titles has 1 entries for 2"),
    ([["ok", LONG]], {"truncation": False}, ValueError, "text 2: text has .* tokens, more than .* 2048"),
    ([123], {}, TypeError, "str or an iterable of str"),
    ([b"bytes"], {}, TypeError, "bytes"),
    ([["ok", None]], {}, TypeError, r"texts\[1\] must be str, not NoneType"),
    ([["ok", 5]], {}, TypeError, r"texts\[1\] must be str, not int"),
    ([["\ud800"]], {}, UnicodeEncodeError, "surrogate"),
    (["x"], {"batch_size": 0}, ValueError, "batch_size"),
    (["x"], {"prompt_name": 5}, TypeError, "prompt_name"),
    (["x"], {"nonsense": 1}, TypeError, "nonsense"),
])
def test_bad_encode_inputs(m, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        m.encode(*args, **kwargs)


def test_odd_inputs_do_not_fail(m):
    v = m.encode(["", " ", "\u0000", "\ufeff", "x" * 100000, LONG, "<eos>" * 10])
    assert v.shape == (7, 256) and np.all(np.isfinite(v))
    assert m.encode(LONG).shape == (256,)  # truncated (the default)


def test_other_bad_calls(m, model_path):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m.token_text(10**9)
    with pytest.raises(ValueError, match="token_id"):
        m.token_text(-1)
    with pytest.raises(ValueError, match="truncation is off"):
        m.tokenize(LONG, truncation=False)
    with pytest.raises(ValueError):
        m.similarity(np.zeros((2, 2, 2)), np.zeros(2))
    closed = gembed.Model(model_path)
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        closed.encode("x")
    assert "closed" in repr(closed)


@pytest.fixture(scope="module")
def hf_folder(tokenizer_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("py_hf") / "tiny-embeddinggemma"
    return make_hf_fixture.make(d, tokenizer_dir, seed=7, extra_prompts={"MyTask": "task: my own task | query: "})


def test_folder_prompt_names_like_sentence_transformers(cli_bin, hf_folder):
    """A Hugging Face folder's own prompt table (config_sentence_transformers.json):
    sentence-transformers' names ("Retrieval-query", "STS", ...) work as
    prompt_name, and give what `gembed embed --task` gives."""
    table = json.loads((hf_folder / "config_sentence_transformers.json").read_text())["prompts"]
    with gembed.Model(hf_folder, threads=2) as model:
        assert model.info()["format"] == "huggingface-folder"
        for name in ("Retrieval-query", "Retrieval-document", "STS", "MyTask"):
            assert model.prompts[name] == table[name]
            got = model.encode(TEXTS[:3], prompt_name=name)
            np.testing.assert_array_equal(got, cli(cli_bin, hf_folder, TEXTS[:3], "--task", name))
            np.testing.assert_array_equal(got, model.encode(TEXTS[:3], prompt=table[name]))
        np.testing.assert_array_equal(
            model.encode_document(["doc"], titles=["A title"], prompt_name="Retrieval-document"),
            cli(cli_bin, hf_folder, ["doc"], "--task", "Retrieval-document", "--title", "A title"))


def test_python_dash_m_gembed(model_path):
    r = run([sys.executable, "-m", "gembed"])
    assert r.stdout.decode().startswith(f"gembed {gembed.__version__}")
    info = json.loads(run([sys.executable, "-m", "gembed", "info", model_path, "--threads", "1"]).stdout)
    assert info["output_dim"] == 256 and info["threads"] == 1 and info["prompts"]["query"]
    bad = run([sys.executable, "-m", "gembed", "info", "missing.gguf"], check=False)
    assert bad.returncode == 1 and b"missing.gguf" in bad.stderr and b"Traceback" not in bad.stderr


def test_langchain_adapter(model_path, m):
    pytest.importorskip("langchain_core", reason="langchain-core is not installed (pip install langchain-core)")
    from langchain_core.embeddings import Embeddings

    from gembed.integrations.langchain import GembedEmbeddings

    emb = GembedEmbeddings(m)
    assert isinstance(emb, Embeddings)
    docs = emb.embed_documents(["Mars is red.", "Venus is hot."])
    assert isinstance(docs, list) and isinstance(docs[0], list) and isinstance(docs[0][0], float)
    np.testing.assert_array_equal(np.array(docs, dtype=np.float32), m.encode_document(["Mars is red.", "Venus is hot."]))
    np.testing.assert_array_equal(np.array(emb.embed_query("red?"), dtype=np.float32), m.encode_query("red?"))
    import asyncio

    q = asyncio.run(emb.aembed_query("red?"))
    np.testing.assert_array_equal(np.array(q, dtype=np.float32), m.encode_query("red?"))
    small = GembedEmbeddings(model_path, dim=128, threads=1)
    assert len(small.embed_query("red?")) == 128


def test_llama_index_adapter(model_path, m):
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed (pip install llama-index-core)")
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from gembed.integrations.llama_index import GembedEmbedding

    emb = GembedEmbedding(m)
    assert isinstance(emb, BaseEmbedding)
    q = emb.get_query_embedding("red?")
    np.testing.assert_array_equal(np.array(q, dtype=np.float32), m.encode_query("red?"))
    texts = ["Mars is red.", "Venus is hot.", "Jupiter is big."]
    batch = emb.get_text_embedding_batch(texts)
    np.testing.assert_array_equal(np.array(batch, dtype=np.float32), m.encode_document(texts))
    import asyncio

    a = asyncio.run(emb.aget_text_embedding("Mars is red."))
    np.testing.assert_array_equal(np.array(a, dtype=np.float32), m.encode_document("Mars is red."))
    small = GembedEmbedding(model_path, dim=128, model_kwargs={"threads": 1})
    assert len(small.get_query_embedding("red?")) == 128


SNIPPET = r"""
import json, sys, gembed
m = gembed.Model(sys.argv[1], threads=1)
q = m.encode_query("Which planet is known as the Red Planet?")
d = m.encode_document(["Mars ...", "Venus ..."], titles=None)
v = m.encode(["a", "b"], prompt_name="similarity", dim=128, batch_size=64, show_progress_bar=False, normalize=True)
print(json.dumps({"file": gembed.__file__, "q": q.tolist(), "d": list(d.shape), "v": list(v.shape),
                  "sim": m.similarity(q, d).tolist(), "tok": m.tokenize("text"), "dims": m.dims,
                  "max_seq_length": m.max_seq_length, "n_prompts": len(m.prompts), "isa": m.info()["isa"]}))
"""


def check_clean_venv(venv: pathlib.Path, model_path, m, tmp_path):
    py = venv / "bin" / "python"
    script = tmp_path / "snippet.py"
    script.write_text(SNIPPET)
    outside = tmp_path / "elsewhere"
    outside.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = json.loads(run([py, script, model_path], cwd=outside, env=env).stdout)
    assert pathlib.Path(out["file"]).resolve().is_relative_to(venv.resolve()), out["file"]
    assert out["d"] == [2, 256] and out["v"] == [2, 128] and out["dims"] == [256, 128]
    np.testing.assert_array_equal(np.array(out["q"], dtype=np.float32),
                                  m.encode_query("Which planet is known as the Red Planet?"))
    r = run([py, "-m", "gembed"], cwd=outside, env=env)
    assert r.stdout.decode().startswith("gembed ")
    return out


def test_installs_into_a_clean_venv_from_the_wheel(model_path, m, tmp_path):
    """`pip wheel .` (what `pip install .` builds; the kept build folder makes it
    incremental) installed into a new venv: imports and runs the README snippet
    from a folder outside the source tree. The extension links no libfmt (fmt
    is header-only in the wheel), so the wheel needs nothing beyond libstdc++."""
    dist = tmp_path / "dist"
    t0 = time.monotonic()
    run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", dist, REPO],
        timeout=1800)
    t1 = time.monotonic()
    wheels = list(dist.glob("gembed-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path / "clean-venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheels[0]], timeout=900)
    t2 = time.monotonic()
    out = check_clean_venv(venv, model_path, m, tmp_path)
    so = next((venv / "lib").glob("python*/site-packages/gembed/_gembed*.so"))
    needed = run(["readelf", "-d", so]).stdout.decode()
    assert "libfmt" not in needed and "libpython" not in needed
    print(f"clean venv: wheel {wheels[0].name} ({wheels[0].stat().st_size / 1e6:.1f} MB) built in {t1 - t0:.0f} s, "
          f"installed in {t2 - t1:.0f} s; isa {out['isa']}")


@pytest.mark.skipif(os.environ.get("GEMBED_TEST_PIP_INSTALL") != "1",
                    reason="set GEMBED_TEST_PIP_INSTALL=1 for a full isolated `pip install .` (fresh build, minutes)")
def test_pip_install_dot_into_a_clean_venv(model_path, m, tmp_path):
    venv = tmp_path / "clean-venv"
    run([sys.executable, "-m", "venv", venv])
    t0 = time.monotonic()
    run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check",
         "-C", f"build-dir={tmp_path / 'build'}", REPO], timeout=3600)
    print(f"pip install . (isolated, fresh build folder): {time.monotonic() - t0:.0f} s")
    check_clean_venv(venv, model_path, m, tmp_path)


# ------------------------------------------------------------- the real model
REAL = pathlib.Path(os.environ.get("GEMBED_REAL_MODEL_DIR", REPO / "models" / "embeddinggemma-300m"))
real = pytest.mark.skipif(
    not ((REAL / "config.json").exists() and (REAL / "model.safetensors").exists()),
    reason=f"real EmbeddingGemma-300M folder not found at {REAL} "
           "(python3 scripts/fetch_embeddinggemma.py, or set GEMBED_REAL_MODEL_DIR)")
# The folder (F32) vs sentence-transformers (PyTorch F32), as in test_real_model.py.
MIN_COSINE_FOLDER_EXACT = 1 - 1e-9


@pytest.fixture(scope="module")
def golden():
    return json.loads((REPO / "tests" / "golden" / "data" / "st_embeddinggemma.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def real_model():
    with gembed.Model(REAL) as model:
        yield model


@real
def test_real_model_matches_sentence_transformers(real_model, golden):
    """Every golden case under 600 tokens through encode(prompt_name=TASK,
    titles=TITLE, truncate_dim=DIM) (sentence-transformers' names, the folder's
    prompt table first): cosine with SentenceTransformer.encode >= 1 - 1e-9;
    the token ids of every case (long ones too) equal ST's."""
    cases = [c for c in golden["cases"] + golden["whitespace_cases"] if c["n_tokens"] < 600]
    groups: dict = {}
    for i, c in enumerate(cases):
        groups.setdefault((c["task"], c["title"], c["dim"]), []).append(i)
    cos = [0.0] * len(cases)
    for (task, title, dim), idx in groups.items():
        v = real_model.encode([cases[i]["text"] for i in idx], prompt_name=task, titles=title,
                              truncate_dim=dim).astype(np.float64)
        for k, i in enumerate(idx):
            ref = np.array(cases[i]["embedding"], dtype=np.float64)
            cos[i] = float(v[k] @ ref / (np.linalg.norm(v[k]) * np.linalg.norm(ref)))
    k = int(np.argmin(cos))
    print(f"REAL python: {len(cases)} golden cases vs sentence-transformers, worst cosine {cos[k]:.12f} "
          f"(1 - cos = {1 - cos[k]:.2g}, {cases[k]['label']})")
    assert [c["label"] for c, x in zip(cases, cos) if x < MIN_COSINE_FOLDER_EXACT] == []
    for c in golden["cases"] + golden["whitespace_cases"]:
        assert real_model.tokenize(c["prompt"] + c["text"]) == c["st_ids"], c["label"]
