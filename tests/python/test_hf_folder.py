"""Hugging Face sentence-transformers folders without the real weights.

A small random EmbeddingGemma folder (scripts/make_hf_fixture.py: 6 layers,
64 wide, 2 query heads x 32 + 1 KV head, sliding_window 64, Dense 64->128->64,
written with the `safetensors` package; the real Gemma3 vocabulary from
GEMBED_SHARED_DIR) is made once per session, then:

* `gembed convert` (F32 / Q8_0) is read back with gguf-py (not gembed's
  reader): the converter's keys, llama.cpp tensor names, shapes and dtypes,
  norm weights = 1 + the safetensors value, matrices equal to the source (F32)
  or within Q8_0 rounding, tokenizer keys;
* gembed on the folder equals gembed on the F32 GGUF converted from it;
* the float64 NumPy oracle (tests/oracle/numpy_forward.py) on the converted
  GGUF agrees with gembed on the folder (cosine >= 0.99999), incl. texts longer
  than the sliding window and with prompts (Matryoshka dims need a model at
  least 256 wide: they are covered by the real-model tests);
* a BF16, sharded, "model."-prefixed folder loads and converts the same way;
* --task takes the folder's prompt table first, then the built-in names;
* the converted GGUF carries that table (gembed.prompts.* keys, shown by
  `gembed inspect`), so --task and the default prompt behave on it exactly as
  on the folder;
* broken folders fail with exit 1 and a message naming the problem.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "oracle"))
sys.path.insert(0, str(REPO / "scripts"))

import make_hf_fixture  # noqa: E402
import gguf_lite  # noqa: E402
import numpy_forward as nf  # noqa: E402
import oracle_texts as T  # noqa: E402

MIN_COSINE_F32 = 0.99999
GGUF_NAMES = {  # llama.cpp tensor name -> HF name (MODEL-SPEC §3), written here independently
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "attn_output": "self_attn.o_proj", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "post_ffw_norm": "post_feedforward_layernorm",
}
CUSTOM_PROMPTS = {"query": "custom query prompt: ", "MyTask": "task: my own task | query: "}


def run(cmd, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, timeout=600, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-3000:]}")
    return r


def jsonl_in(texts) -> bytes:
    return "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts).encode()


def embed(gembed, model, texts, *args) -> np.ndarray:
    out = run([gembed, "embed", "--model", model, "--jsonl", "--threads", "2", *args], jsonl_in(texts)).stdout
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert len(rows) == len(texts)
    return np.array(rows, dtype=np.float64)


def hf_ids(gembed, folder, texts) -> list[list[int]]:
    out = run([gembed, "tokenize", "--tokenizer", pathlib.Path(folder) / "tokenizer.json", "--add-special",
               "--jsonl"], jsonl_in(texts)).stdout
    return [json.loads(line) for line in out.decode().splitlines()]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# Texts: short ones, and long ones well past the ±32 window of the fixture.
TEXTS = ["hello world", "", "The quick brown fox jumps over the lazy dog.", "東京は日本の首都です。 🍣",
         "def f(x):\n\treturn x * 2\n", "<start_of_turn>user text<end_of_turn>",
         T.random_text(11, 60), T.random_text(12, 250)]


@pytest.fixture(scope="module")
def fixture(tokenizer_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_fixture") / "tiny-embeddinggemma"
    make_hf_fixture.make(d, tokenizer_dir, seed=7, extra_prompts=CUSTOM_PROMPTS)
    return d


@pytest.fixture(scope="module")
def converted(gembed, fixture, tmp_path_factory):
    out = {}
    d = tmp_path_factory.mktemp("hf_converted")
    for t in ("f32", "q8_0"):
        p = d / f"tiny-{t}.gguf"
        run([gembed, "convert", fixture, "-o", p, "--type", t])
        out[t] = p
    return out


def load_safetensors(folder: pathlib.Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file
    tensors = {}
    for f in sorted(folder.glob("model*.safetensors")):
        tensors.update(load_file(str(f)))
    tensors = {k.removeprefix("model."): v for k, v in tensors.items()}
    for dense, gguf_name in (("2_Dense", "dense_2"), ("3_Dense", "dense_3")):
        tensors[gguf_name] = load_file(str(folder / dense / "model.safetensors"))["linear.weight"]
    return tensors


def gguf_name_to_hf(name: str) -> str:
    base = name.removesuffix(".weight")
    if base == "token_embd":
        return "embed_tokens.weight"
    if base == "output_norm":
        return "norm.weight"
    if base in ("dense_2", "dense_3"):
        return base
    _, layer, what = base.split(".", 2)
    return f"layers.{layer}.{GGUF_NAMES[what]}.weight"


def test_converted_gguf_matches_the_folder_read_independently(fixture, converted):
    """Read back with tests/oracle/gguf_lite.py (a struct-based parser
    cross-checked against gguf-py's GGUFReader in test_oracle_numpy.py, and
    15-25 s faster on a 262k vocabulary) and gguf-py's Q8_0 dequantiser."""
    import gguf
    src = load_safetensors(fixture)
    config = json.loads((fixture / "config.json").read_text())
    for qtype, ftype in (("f32", 0), ("q8_0", 7)):
        r = gguf_lite.GGUFFile(converted[qtype])
        kv = r.kv
        assert list(kv)[0] == "general.architecture" and kv["general.architecture"] == "gemma-embedding"
        assert kv["general.file_type"] == ftype
        assert kv["gemma-embedding.context_length"] == config["max_position_embeddings"]
        assert kv["gemma-embedding.embedding_length"] == config["hidden_size"]
        assert kv["gemma-embedding.block_count"] == config["num_hidden_layers"]
        assert kv["gemma-embedding.feed_forward_length"] == config["intermediate_size"]
        assert kv["gemma-embedding.attention.head_count"] == config["num_attention_heads"]
        assert kv["gemma-embedding.attention.head_count_kv"] == config["num_key_value_heads"]
        assert kv["gemma-embedding.attention.key_length"] == config["head_dim"]
        assert kv["gemma-embedding.attention.value_length"] == config["head_dim"]
        assert kv["gemma-embedding.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-6)
        assert kv["gemma-embedding.attention.sliding_window"] == config["sliding_window"]  # 64, as HF stores it
        assert kv["gemma-embedding.rope.freq_base"] == pytest.approx(config["rope_theta"])
        assert kv["gemma-embedding.rope.freq_base_swa"] == pytest.approx(config["rope_local_base_freq"])
        assert kv["gemma-embedding.pooling_type"] == 1
        assert kv["gemma-embedding.dense_2_feat_in"] == 64
        assert kv["gemma-embedding.dense_2_feat_out"] == 128
        assert kv["gemma-embedding.dense_3_feat_in"] == 128
        assert kv["gemma-embedding.dense_3_feat_out"] == 64
        # Period-6 pattern: not written (llama.cpp's default).
        assert "gemma-embedding.attention.sliding_window_pattern" not in kv
        assert kv["tokenizer.ggml.model"] == "llama"
        assert kv["tokenizer.ggml.add_bos_token"] is True
        assert kv["tokenizer.ggml.add_eos_token"] is True
        assert kv["tokenizer.ggml.bos_token_id"] == 2
        assert kv["tokenizer.ggml.eos_token_id"] == 1
        assert len(kv["tokenizer.ggml.tokens"]) == config["vocab_size"]

        names = list(r.tensors)
        want = (["token_embd.weight"] + [f"blk.{i}.{n}.weight" for i in range(6) for n in GGUF_NAMES]
                + ["output_norm.weight", "dense_2.weight", "dense_3.weight"])
        assert names == want  # the converter's order
        for name, t in r.tensors.items():
            ref = src[gguf_name_to_hf(name)].astype(np.float64)
            assert list(t.ne) == list(reversed(ref.shape)), name  # GGUF ne = reversed PyTorch shape
            if ref.ndim == 1:
                assert t.ggml_type == gguf.GGMLQuantizationType.F32, name
                # The converter's norm shift: stored = 1 + w (HF computes x̂ * (1 + w)).
                got = t.data.view("<f4").reshape(-1)
                np.testing.assert_array_equal(got, (1.0 + src[gguf_name_to_hf(name)]).astype(np.float32),
                                              err_msg=name)
                continue
            if qtype == "f32":
                assert t.ggml_type == gguf.GGMLQuantizationType.F32, name
                np.testing.assert_array_equal(t.data.view("<f4").reshape(ref.shape), ref, err_msg=name)
            else:
                assert t.ggml_type == gguf.GGMLQuantizationType.Q8_0, name  # token_embd and Dense too
                deq = gguf.quants.dequantize(np.asarray(t.data), gguf.GGMLQuantizationType.Q8_0)
                deq = deq.reshape(ref.shape).astype(np.float64)
                # Q8_0: |x - d*q| <= d/2 per 32-block with d = amax/127, plus up to
                # 127 * |d - fp16(d)| <= 127 * d * 2^-11 from storing d as fp16.
                d = np.abs(ref.reshape(-1, 32)).max(axis=1) / 127.0
                err = np.abs(deq - ref).reshape(-1, 32).max(axis=1)
                assert np.all(err <= d * (0.5 + 127 / 2048) * 1.0001 + 1e-12), name
                assert np.mean(err / np.maximum(d, 1e-30)) < 0.5, name  # typical error well inside


def test_folder_and_converted_f32_gguf_give_the_same_vectors(gembed, fixture, converted):
    for args in ([], ["--task", "document", "--title", "A title"], ["--task", "similarity"]):
        a = embed(gembed, fixture, TEXTS, *args)
        b = embed(gembed, converted["f32"], TEXTS, *args)
        cos = cosines(a, b)
        print(f"FOLDER-vs-F32-GGUF {args}: worst cosine {cos.min():.9f}, max |diff| {np.abs(a - b).max():.3g}")
        assert cos.min() >= MIN_COSINE_F32


def test_numpy_oracle_on_converted_gguf_agrees_with_folder(gembed, fixture, converted):
    oracle = nf.GemmaEmbeddingOracle(str(converted["f32"]))
    worst = 1.0
    for prompt in ("", "task: search result | query: ", "title: none | text: "):
        # Default stripping: the ids are those of (prompt + text).strip(), as in
        # sentence-transformers ("" and a trailing "\n" are among TEXTS).
        got = embed(gembed, fixture, TEXTS, "--prompt", prompt)
        ids = hf_ids(gembed, fixture, [(prompt + t).strip() for t in TEXTS])
        assert all(s[0] == 2 and s[-1] == 1 for s in ids)
        assert max(len(s) for s in ids) > 200  # well past the ±32 window
        for i, s in enumerate(ids):
            want = oracle.embed(s)
            c = float(nf.cosine(got[i], want))
            worst = min(worst, c)
            assert c >= MIN_COSINE_F32, (prompt, TEXTS[i][:40], c)
    print(f"ORACLE folder F32: worst cosine {worst:.9f}")


def test_q8_0_conversion_runs_close_to_the_folder(gembed, fixture, converted):
    a = embed(gembed, fixture, TEXTS)
    b = embed(gembed, converted["q8_0"], TEXTS)
    cos = cosines(a, b)
    print(f"FOLDER-F32-vs-Q8_0-GGUF: worst cosine {cos.min():.6f}")
    assert cos.min() >= 0.995


def test_bf16_sharded_prefixed_folder(gembed, tokenizer_dir, tmp_path):
    d = make_hf_fixture.make(tmp_path / "bf16", tokenizer_dir, seed=9, dtype="bf16", shards=3, prefix=True)
    assert (d / "model.safetensors.index.json").exists()
    gguf_path = tmp_path / "bf16.gguf"
    run([gembed, "convert", d, "-o", gguf_path, "--type", "f32"])
    a = embed(gembed, d, TEXTS[:6])
    b = embed(gembed, gguf_path, TEXTS[:6])
    assert cosines(a, b).min() >= MIN_COSINE_F32
    # The F32 file holds exactly the bf16 values (1 + bf16 for norms), read
    # straight from the safetensors bytes.
    tensors = gguf_lite.GGUFFile(gguf_path).tensors
    index = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]

    def bf16_tensor(name):
        blob = (d / index[name]).read_bytes()
        n = int.from_bytes(blob[:8], "little")
        info = json.loads(blob[8:8 + n])[name]
        assert info["dtype"] == "BF16"
        b0, b1 = info["data_offsets"]
        bits = np.frombuffer(blob[8 + n + b0: 8 + n + b1], dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(info["shape"])

    np.testing.assert_array_equal(tensors["output_norm.weight"].data.view("<f4").reshape(-1),
                                  (1.0 + bf16_tensor("model.norm.weight")).astype(np.float32))
    np.testing.assert_array_equal(tensors["blk.2.ffn_gate.weight"].data.view("<f4").reshape(128, 64),
                                  bf16_tensor("model.layers.2.mlp.gate_proj.weight"))


def test_task_prompts_folder_first_then_builtins(gembed, fixture):
    text = ["what is the capital of France?"]

    def by_prompt(p):
        return embed(gembed, fixture, text, "--prompt", p)

    # A name only the folder has.
    np.testing.assert_array_equal(embed(gembed, fixture, text, "--task", "MyTask"),
                                  by_prompt(CUSTOM_PROMPTS["MyTask"]))
    # The folder redefines "query": its prompt wins over the built-in one.
    np.testing.assert_array_equal(embed(gembed, fixture, text, "--task", "query"), by_prompt(CUSTOM_PROMPTS["query"]))
    assert not np.array_equal(by_prompt(CUSTOM_PROMPTS["query"]), by_prompt("task: search result | query: "))
    # Folder names of the real table, and built-in names the folder lacks.
    np.testing.assert_array_equal(embed(gembed, fixture, text, "--task", "Summarization"),
                                  by_prompt("task: summarization | query: "))
    np.testing.assert_array_equal(embed(gembed, fixture, text, "--task", "fact-checking"),
                                  by_prompt("task: fact checking | query: "))
    # Titles fill the folder's "title: none | text: " document prompt.
    np.testing.assert_array_equal(embed(gembed, fixture, text, "--task", "document", "--title", "Geo"),
                                  by_prompt("title: Geo | text: "))
    r = run([gembed, "embed", "--model", fixture, "--task", "nope"], b"x\n", check=False)
    assert r.returncode == 1
    msg = r.stderr.decode()
    assert "unknown task 'nope'" in msg and "MyTask" in msg and "fact-checking" in msg
    assert msg.index("Summarization") < msg.index("fact-checking")  # folder names first
    r = run([gembed, "embed", "--model", fixture, "--task", "STS", "--title", "T"], b"x\n", check=False)
    assert r.returncode == 1 and b"title cannot be used with task 'STS'" in r.stderr


def inspect_metadata(gembed, gguf_path) -> dict:
    return json.loads(run([gembed, "inspect", gguf_path, "--json", "--all"]).stdout)["metadata"]


def test_converted_gguf_carries_the_prompt_table(gembed, fixture, converted):
    """The keys hold exactly the folder's table (file order), read here from
    `gembed inspect --json` and checked against config_sentence_transformers.json."""
    table = json.loads((fixture / "config_sentence_transformers.json").read_text())
    assert table["default_prompt_name"] is None and "MyTask" in table["prompts"]
    for t in ("f32", "q8_0"):
        md = inspect_metadata(gembed, converted[t])
        names, prefixes = md["gembed.prompts.names"], md["gembed.prompts.prefixes"]
        assert names["elem_type"] == "string" and prefixes["elem_type"] == "string"
        assert names["values"] == list(table["prompts"])
        assert prefixes["values"] == list(table["prompts"].values())
        assert "gembed.prompts.default_name" not in md  # null in the folder: not written
    text = run([gembed, "inspect", converted["f32"]]).stdout.decode()
    assert "gembed.prompts.names" in text and "gembed.prompts.prefixes" in text


def test_folder_only_task_names_work_on_the_converted_gguf(gembed, fixture, converted):
    """`--task NAME` on the converted GGUF equals the folder's, for a name only the
    folder has, for a built-in name the folder redefines, and for a built-in name."""
    texts = TEXTS[:6]
    for args in (["--task", "MyTask"], ["--task", "Summarization"], ["--task", "query"],
                 ["--task", "Retrieval-document", "--title", "T"], ["--task", "fact-checking"]):
        a = embed(gembed, fixture, texts, *args)
        b = embed(gembed, converted["f32"], texts, *args)
        cos = cosines(a, b)
        print(f"FOLDER-vs-F32-GGUF {args}: worst cosine {cos.min():.12f} (1 - cos = {1 - cos.min():.3g}), "
              f"max |diff| {np.abs(a - b).max():.3g}")
        assert cos.min() >= 1 - 1e-9, args
    # The GGUF resolves the folder's prompts, not the built-in ones.
    g = converted["f32"]
    np.testing.assert_array_equal(embed(gembed, g, texts, "--task", "MyTask"),
                                  embed(gembed, g, texts, "--prompt", CUSTOM_PROMPTS["MyTask"]))
    np.testing.assert_array_equal(embed(gembed, g, texts, "--task", "query"),
                                  embed(gembed, g, texts, "--prompt", CUSTOM_PROMPTS["query"]))
    np.testing.assert_array_equal(embed(gembed, converted["q8_0"], texts, "--task", "MyTask"),
                                  embed(gembed, converted["q8_0"], texts, "--prompt", CUSTOM_PROMPTS["MyTask"]))
    # Unknown names list the folder's names first, as on the folder.
    r = run([gembed, "embed", "--model", g, "--task", "nope"], b"x\n", check=False)
    assert r.returncode == 1
    msg = r.stderr.decode()
    assert "unknown task 'nope'" in msg and "MyTask" in msg
    assert msg.index("Summarization") < msg.index("fact-checking")
    folder_msg = run([gembed, "embed", "--model", fixture, "--task", "nope"], b"x\n", check=False).stderr.decode()
    assert msg[msg.index("(valid:"):] == folder_msg[folder_msg.index("(valid:"):]


def test_default_prompt_name_survives_conversion(gembed, fixture, tmp_path):
    """A folder with default_prompt_name: the GGUF stores it and applies it when no
    prompt is given, as the folder does (sentence-transformers' behaviour)."""
    d = copy_folder(fixture, tmp_path / "with_default")
    _edit_json(d / "config_sentence_transformers.json", default_prompt_name="MyTask")
    g = tmp_path / "with_default.gguf"
    run([gembed, "convert", d, "-o", g, "--type", "f32"])
    md = inspect_metadata(gembed, g)
    assert md["gembed.prompts.default_name"] == {"type": "string", "value": "MyTask"}
    texts = TEXTS[:4]
    on_folder = embed(gembed, d, texts)
    on_gguf = embed(gembed, g, texts)
    assert cosines(on_folder, on_gguf).min() >= 1 - 1e-9
    np.testing.assert_array_equal(on_gguf, embed(gembed, g, texts, "--prompt", CUSTOM_PROMPTS["MyTask"]))
    # ... and it is a real change: without the default the vectors differ.
    assert not np.array_equal(on_gguf, embed(gembed, g, texts, "--prompt", ""))


def test_converted_gguf_without_a_prompt_table(gembed, fixture, tmp_path):
    d = copy_folder(fixture, tmp_path / "no_table")
    (d / "config_sentence_transformers.json").unlink()
    g = tmp_path / "no_table.gguf"
    run([gembed, "convert", d, "-o", g, "--type", "f32"])
    assert not [k for k in inspect_metadata(gembed, g) if k.startswith("gembed.")]
    r = run([gembed, "embed", "--model", g, "--task", "MyTask"], b"x\n", check=False)
    assert r.returncode == 1 and b"unknown task 'MyTask'" in r.stderr
    # Built-in names still work.
    np.testing.assert_array_equal(embed(gembed, g, ["x"], "--task", "similarity"),
                                  embed(gembed, g, ["x"], "--prompt", "task: sentence similarity | query: "))


def copy_folder(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    """Copies the small files and links the big ones (they are not modified)."""
    dst.mkdir(parents=True)
    for p in src.rglob("*"):
        q = dst / p.relative_to(src)
        if p.is_dir():
            q.mkdir(parents=True, exist_ok=True)
        elif p.stat().st_size > 1 << 20:
            q.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(p, q)
        else:
            q.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, q)
    return dst


def _edit_json(path: pathlib.Path, **changes):
    j = json.loads(path.read_text())
    j.update(changes)
    path.write_text(json.dumps(j))


BROKEN = [
    ("bad config.json", lambda d: (d / "config.json").write_text('{"model_type": "gemma3_text",'), "invalid JSON"),
    ("causal", lambda d: _edit_json(d / "config.json", use_bidirectional_attention=False),
     "use_bidirectional_attention"),
    ("no weights", lambda d: (d / "model.safetensors").unlink(), "model.safetensors"),
    ("no tokenizer", lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json"),
    ("dense activation", lambda d: _edit_json(d / "2_Dense" / "config.json",
                                              activation_function="torch.nn.modules.activation.Tanh"), "Tanh"),
    ("wrong hidden size", lambda d: _edit_json(d / "config.json", hidden_size=96), "word_embedding_dimension"),
    ("wrong ffn size", lambda d: _edit_json(d / "config.json", intermediate_size=96), "mlp.gate_proj.weight: shape"),
    ("prompt scale", lambda d: _edit_json(d / "config.json", query_pre_attn_scalar=256), "query_pre_attn_scalar"),
    ("max pooling", lambda d: _edit_json(d / "1_Pooling" / "config.json", pooling_mode_max_tokens=True),
     "pooling_mode_max_tokens"),
]


@pytest.mark.parametrize("what,damage,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_folders_fail_cleanly(gembed, fixture, tmp_path, what, damage, message):
    d = copy_folder(fixture, tmp_path / "broken")
    damage(d)
    for cmd in ([gembed, "embed", "--model", d], [gembed, "convert", d, "-o", tmp_path / "x.gguf"]):
        r = run(cmd, b"hello\n", check=False)
        assert r.returncode == 1, (what, cmd[1], r.stderr)
        err = r.stderr.decode()
        assert message in err, (what, err)
        assert str(d) in err, err  # the message names the folder
    assert not (tmp_path / "x.gguf").exists()


def test_convert_usage_errors(gembed, fixture, tmp_path):
    r = run([gembed, "convert", fixture, "-o", tmp_path / "x.gguf", "--type", "q4_0"], check=False)
    assert r.returncode == 2 and b"--type" in r.stderr
    r = run([gembed, "convert", tmp_path / "missing", "-o", tmp_path / "x.gguf"], check=False)
    assert r.returncode == 1 and b"missing" in r.stderr
    r = run([gembed, "convert", fixture], check=False)
    assert r.returncode != 0 and b"output" in r.stderr.lower()
