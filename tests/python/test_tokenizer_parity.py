"""Token-id parity of `gembed tokenize` with Hugging Face `tokenizers` on the real Gemma3 tokenizer.

Reference: `tokenizers.Tokenizer.from_file(tokenizer.json)` (the library, not our code).
Corpus: scripts/gen_tokenizer_corpus.py, seeded, generated at test time (6,000 strings).

Two paths are checked:

* tokenizer.json path (`--tokenizer`): HF's own algorithm. Every string must give
  exactly HF's ids, with and without special tokens, and decode like HF.

* GGUF path (`--model`): a vocabulary GGUF written by `gembed tokenize
  --write-gguf-vocab` (the keys llama.cpp's converter writes, checked below with
  the independent `gguf` package), tokenised with llama.cpp's SPM algorithm.
  It must match HF on every string except two documented classes that cannot match:

  1. Literal U+2581 ("▁") in the text. HF matches the added tokens "▁▁", "▁▁▁", ...
     (ids 138-167, normalized: false) against the *raw* text, and its BPE merges
     "▁" runs; the GGUF stores those tokens with ASCII spaces (the converter's
     "pre-normalize user-defined spaces"), so llama.cpp never produces them from a
     literal "▁▁" and emits "▁" + "▁word" etc. instead.
  2. The text "<image_soft_token>". HF has it as added token 262144, beyond the
     262,144-row model vocabulary; the converter drops ids >= vocab_size, so the
     GGUF tokenises that text as ordinary characters. (An engine fed HF's id would
     index past the embedding table.)

  The test prints every differing string with its class and fails on any
  difference that is in neither class. When llama.cpp is built locally
  (scripts/build_llama_cpp.sh), the GGUF path is also compared with llama.cpp's
  own llama_tokenize on the same vocabulary file: that must be 100% identical,
  the two classes above included.
"""
from __future__ import annotations

import collections
import json

import pytest

import tok_helpers as th

tokenizers = pytest.importorskip("tokenizers")
gguf = pytest.importorskip("gguf")

SEED = 20250917
COUNT = 6000
IMAGE_SOFT_TOKEN = "<image_soft_token>"


def mismatch_class(text: str) -> str | None:
    if "\u2581" in text:
        return "literal U+2581"
    if IMAGE_SOFT_TOKEN in text:
        return "<image_soft_token> (id 262144 not in the GGUF)"
    return None


@pytest.fixture(scope="module")
def corpus():
    mod = th.load_corpus_module()
    pairs = mod.generate(SEED, COUNT)
    assert len(pairs) == COUNT
    # Deterministic: a second run gives the same corpus.
    assert mod.generate(SEED, COUNT) == pairs
    return pairs


@pytest.fixture(scope="module")
def hf(tokenizer_dir):
    return tokenizers.Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))


@pytest.fixture(scope="module")
def json_args(tokenizer_dir):
    return ["--tokenizer", str(tokenizer_dir / "tokenizer.json")]


@pytest.fixture(scope="module")
def gguf_vocab(gembed, json_args, tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "vocab.gguf"
    th.run_gembed(gembed, ["tokenize", *json_args, "--write-gguf-vocab", str(path)], b"")
    return path


def hf_ids(hf, texts, add_special):
    return [e.ids for e in hf.encode_batch(texts, add_special_tokens=add_special)]


def test_corpus_covers_required_classes(corpus):
    cats = collections.Counter(c for c, _ in corpus)
    for c in ["english", "scripts", "emoji", "combining", "fullwidth", "code", "html", "whitespace", "specials",
              "controls", "unicode_spaces", "long_word", "long_text", "random_unicode", "literal_u2581"]:
        assert cats[c] > 0, c
    texts = [t for _, t in corpus]
    assert max(len(t) for t in texts) >= 5000
    assert all(len(t) <= 10000 for t in texts)
    assert sum("\u2581" in t for t in texts) > 0
    assert any("<start_of_turn>" in t for t in texts)


def test_json_path_matches_hf_exactly(gembed, json_args, hf, corpus, capsys):
    texts = [t for _, t in corpus]
    for add_special in (False, True):
        ours = th.encode(gembed, json_args, texts, add_special=add_special)
        ref = hf_ids(hf, texts, add_special)
        bad = [(c, t, r, o) for (c, t), r, o in zip(corpus, ref, ours) if r != o]
        if bad:
            lines = [f"{c}: {th.describe(t)}\n  hf   {r[:30]}\n  ours {o[:30]}" for c, t, r, o in bad[:20]]
            pytest.fail(f"{len(bad)}/{len(texts)} differ (add_special={add_special}):\n" + "\n".join(lines))
    with capsys.disabled():
        print(f"\n[tokenizer parity] tokenizer.json path: {len(texts)}/{len(texts)} identical to HF "
              f"(with and without special tokens)")


def test_json_path_special_tokens(gembed, json_args, hf):
    # Gemma3's tokenizer.json: post-processor adds <bos> only.
    ours = th.encode(gembed, json_args, ["", "x"], add_special=True)
    assert ours[0] == [2] == hf.encode("").ids
    assert ours[1][0] == 2 and ours[1][-1] != 1


def test_json_path_decode_matches_hf(gembed, json_args, hf, corpus):
    texts = [t for _, t in corpus]
    ids = hf_ids(hf, texts, add_special=True)
    ours = th.decode(gembed, json_args, ids)
    ref = hf.decode_batch(ids, skip_special_tokens=False)
    bad = [(t, r, o) for t, r, o in zip(texts, ref, ours) if r != o]
    assert not bad, f"{len(bad)} decodes differ, first: {bad[0]!r}"
    # Round trip: HF's decoder turns U+2581 into ' ', so only texts without it come back unchanged.
    ours_plain = th.decode(gembed, json_args, hf_ids(hf, texts, add_special=False))
    for t, o in zip(texts, ours_plain):
        if "\u2581" not in t:
            assert o == t


def test_gguf_vocab_keys_as_converter_writes(gguf_vocab):
    # Read back with gguf-py (llama.cpp's own Python package), not with our reader.
    r = gguf.GGUFReader(str(gguf_vocab))
    f = r.fields

    def val(key):
        return f[key].contents()

    assert val("general.architecture") == "gemma-embedding"
    assert val("tokenizer.ggml.model") == "llama"
    assert val("tokenizer.ggml.pre") == "default"
    tokens = val("tokenizer.ggml.tokens")
    types = val("tokenizer.ggml.token_type")
    scores = val("tokenizer.ggml.scores")
    assert len(tokens) == len(types) == len(scores) == 262144
    counts = collections.Counter(types)
    assert counts[3] == 6251 and counts[4] == 163 and counts[6] == 256
    assert counts[1] == 262144 - 6251 - 163 - 256
    assert f["tokenizer.ggml.token_type"].types[-1] == gguf.GGUFValueType.INT32
    assert f["tokenizer.ggml.scores"].types[-1] == gguf.GGUFValueType.FLOAT32
    for key, want in [("bos_token_id", 2), ("eos_token_id", 1), ("unknown_token_id", 3), ("padding_token_id", 0)]:
        assert f["tokenizer.ggml." + key].types[0] == gguf.GGUFValueType.UINT32
        assert val("tokenizer.ggml." + key) == want
    assert val("tokenizer.ggml.add_bos_token") is True
    assert val("tokenizer.ggml.add_eos_token") is True
    assert val("tokenizer.ggml.add_sep_token") is False
    assert val("tokenizer.ggml.add_space_prefix") is False
    # MODEL-SPEC §6.2 layout.
    assert tokens[:4] == ["<pad>", "<eos>", "<bos>", "<unk>"] and all(types[i] == 3 for i in range(5))
    assert tokens[5] == "[multimodal]" and types[5] == 4
    assert tokens[105:107] == ["<start_of_turn>", "<end_of_turn>"] and types[105] == types[106] == 3
    assert tokens[107] == "\n" and tokens[137] == "\n" * 31 and all(types[i] == 4 for i in range(107, 138))
    assert tokens[138] == "  " and tokens[167] == " " * 31 and all(types[i] == 4 for i in range(138, 168))
    assert tokens[212] == "</s>" and types[212] == 4
    assert tokens[238] == "<0x00>" and tokens[493] == "<0xFF>" and all(types[i] == 6 for i in range(238, 494))
    assert all(scores[i] == 0 for i in range(238, 494))
    assert scores[494] == 0 and scores[495] == -1 and scores[236742] == -(236742 - 494)
    assert all(scores[i] == -1000 for i in range(0, 238))
    assert tokens[255968] == "\t" and types[255968] == 4
    assert tokens[255999] == "<start_of_image>" and types[255999] == 3
    assert tokens[262143] == "<unused6241>" and types[262143] == 3
    assert not any("\u2581" in tokens[i] for i in range(len(tokens)) if types[i] == 4)


def test_gguf_path_matches_hf_except_documented(gembed, gguf_vocab, hf, corpus, capsys):
    texts = [t for _, t in corpus]
    ours = th.encode(gembed, ["--model", str(gguf_vocab)], texts)
    ref = hf_ids(hf, texts, add_special=False)
    explained = collections.Counter()
    report = []
    unexplained = []
    for (cat, t), r, o in zip(corpus, ref, ours):
        if r == o:
            continue
        cls = mismatch_class(t)
        if cls is None:
            unexplained.append(f"{cat}: {th.describe(t)}\n  hf   {r[:30]}\n  gguf {o[:30]}")
        else:
            explained[cls] += 1
            report.append(f"  [{cls}] {th.describe(t, 90)}")
    n_marker = sum("\u2581" in t for t in texts)
    with capsys.disabled():
        print(f"\n[tokenizer parity] GGUF path: {len(texts) - sum(explained.values()) - len(unexplained)}"
              f"/{len(texts)} identical to HF; documented differences: {dict(explained)} "
              f"({n_marker} strings contain U+2581)")
        for line in report[:15]:
            print(line)
        if len(report) > 15:
            print(f"  ... and {len(report) - 15} more of the same classes")
    assert not unexplained, f"{len(unexplained)} unexplained differences:\n" + "\n".join(unexplained[:20])


def test_gguf_path_matches_llama_cpp(gembed, gguf_vocab, corpus, tmp_path, capsys):
    """The GGUF path against llama.cpp itself (the reference for GGUF vocabularies):
    every id identical, including the strings where both differ from HF."""
    exe, why = th.build_llama_reference(tmp_path)
    if exe is None:
        pytest.skip(why)
    texts = [t for _, t in corpus]
    args = ["--model", str(gguf_vocab)]
    for add_special in (False, True):
        ours = th.encode(gembed, args, texts, add_special=add_special)
        ref = th.llama_encode(exe, gguf_vocab, texts, add_special)
        bad = [(c, t, r, o) for (c, t), r, o in zip(corpus, ref, ours) if r != o]
        if bad:
            lines = [f"{c}: {th.describe(t)}\n  llama.cpp {r[:30]}\n  gembed    {o[:30]}" for c, t, r, o in bad[:20]]
            pytest.fail(f"{len(bad)}/{len(texts)} differ from llama.cpp (add_special={add_special}):\n" + "\n".join(lines))
    with capsys.disabled():
        print(f"\n[tokenizer parity] GGUF path: {len(texts)}/{len(texts)} identical to llama.cpp "
              f"(llama_tokenize, parse_special, with and without BOS/EOS)")


def test_gguf_path_add_special_and_round_trip(gembed, gguf_vocab, hf, corpus):
    texts = [t for _, t in corpus if mismatch_class(t) is None]
    args = ["--model", str(gguf_vocab)]
    with_special = th.encode(gembed, args, texts, add_special=True)
    ref = hf_ids(hf, texts, add_special=False)
    # EmbeddingGemma GGUF: add_bos and add_eos are both true.
    for r, o in zip(ref, with_special):
        assert o == [2] + r + [1]
    assert th.encode(gembed, args, [""], add_special=True) == [[2, 1]]
    assert th.encode(gembed, args, [""], add_special=False) == [[]]
    # Decode gives the text back (special tokens as their text), as HF does.
    plain = [o[1:-1] for o in with_special]
    decoded = th.decode(gembed, args, plain)
    assert decoded == texts
    assert th.decode(gembed, args, with_special[:50]) == hf.decode_batch(
        [[2] + r + [1] for r in ref[:50]], skip_special_tokens=False)


# ---------------------------------------------------------------------------
# The real EmbeddingGemma tokenizer files (skipped without a local download).
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embeddinggemma():
    d = th.embeddinggemma_dir()
    if not (d / "tokenizer.json").exists() or not (d / "tokenizer.model").exists():
        pytest.skip(f"EmbeddingGemma tokenizer files not found in {d} (set GEMBED_EMBEDDINGGEMMA_DIR)")
    return d


def test_embeddinggemma_tokenizer_json_matches_hf(gembed, embeddinggemma, corpus):
    # Its post-processor adds <bos> and <eos> (the Gemma3 one only <bos>).
    hf_eg = tokenizers.Tokenizer.from_file(str(embeddinggemma / "tokenizer.json"))
    texts = [t for _, t in corpus]
    ours = th.encode(gembed, ["--tokenizer", str(embeddinggemma / "tokenizer.json")], texts, add_special=True)
    ref = hf_ids(hf_eg, texts, add_special=True)
    bad = [(t, r, o) for t, r, o in zip(texts, ref, ours) if r != o]
    assert not bad, f"{len(bad)} differ, first: {bad[0]!r}"
    assert ours[texts.index("")] == [2, 1]


def test_real_sentencepiece_scores_tokenize_the_same(gembed, gguf_vocab, embeddinggemma, corpus, tmp_path):
    """WriteGgufVocab cannot see tokenizer.model and writes NORMAL scores -(id - 494).
    The converter writes the real SentencePiece scores; tokenisation must not change."""
    pieces = th.sentencepiece_pieces(embeddinggemma / "tokenizer.model")
    f = gguf.GGUFReader(str(gguf_vocab)).fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    assert len(pieces) == len(tokens) == 262144
    # The converter: SentencePiece scores, then -1000 for every added token (CONTROL / USER_DEFINED here).
    real = [-1000.0 if types[i] in (3, 4) else pieces[i][1] for i in range(len(pieces))]
    assert all(pieces[i][0] == tokens[i] for i in range(len(tokens)) if types[i] in (1, 6))
    assert real != list(f["tokenizer.ggml.scores"].contents())  # they do differ (single characters)
    real_vocab = tmp_path / "vocab_real_scores.gguf"
    th.write_vocab_with_scores(gguf_vocab, real_vocab, real)
    texts = [t for _, t in corpus]
    assert th.encode(gembed, ["--model", str(real_vocab)], texts) == th.encode(gembed, ["--model", str(gguf_vocab)], texts)


# ---------------------------------------------------------------------------
# CLI behaviour on a tiny vocabulary written by gguf-py (no shared data needed).
# Expected ids are worked out by hand from llama.cpp's SPM rules.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return th.write_tiny_vocab(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


def test_cli_plain_lines(gembed, tiny):
    a, b, ab, hi = th.tiny_id("a"), th.tiny_id("b"), th.tiny_id("ab"), th.tiny_id("hi")
    sp, sp_a = th.tiny_id("\u2581"), th.tiny_id("\u2581a")
    args = ["tokenize", "--model", str(tiny)]
    # "\r\n" and "\n" end a line; a last line without "\n" keeps its "\r".
    out = th.parse_lines(th.run_gembed(gembed, args, b"ab\r\nhi\na b\n a\na  b\nab\r").stdout)
    assert out == [[ab], [hi], [a, sp, b], [sp_a], [a, 5, b], [ab, th.tiny_byte(0x0D)]]
    # NUL bytes and invalid UTF-8 are ordinary input (byte tokens).
    out = th.parse_lines(th.run_gembed(gembed, args, b"a\x00b\na\xffb\n\xe6\x97\n").stdout)
    assert out == [[a, th.tiny_byte(0), b], [a, th.tiny_byte(0xFF), b], [th.tiny_byte(0xE6), th.tiny_byte(0x97)]]
    # Empty line -> []; --add-special -> [bos, eos] (EmbeddingGemma GGUF flags).
    assert th.parse_lines(th.run_gembed(gembed, args, b"\n").stdout) == [[]]
    out = th.parse_lines(th.run_gembed(gembed, args + ["--add-special"], b"\nab\n").stdout)
    assert out == [[2, 1], [2, ab, 1]]
    # No input, no output.
    assert th.run_gembed(gembed, args, b"").stdout == b""


def test_cli_jsonl_and_decode(gembed, tiny):
    a, b, hi = th.tiny_id("a"), th.tiny_id("b"), th.tiny_id("hi")
    args = ["--model", str(tiny)]
    texts = ["a\nb", "hi\r", "\u0000", "<bos>hi<eos>", ""]
    ids = th.encode(gembed, args, texts)
    assert ids == [[a, 4, b], [hi, th.tiny_byte(0x0D)], [th.tiny_byte(0)], [2, hi, 1], []]
    assert th.decode(gembed, args, ids) == texts
    # Bytes that are not UTF-8 decode to U+FFFD in the JSON output.
    assert th.decode(gembed, args, [[th.tiny_byte(0xFF), a]]) == ["\ufffda"]


@pytest.mark.parametrize("stdin,args,line", [
    (b'"ok"\n42\n', ["--jsonl"], 2),
    (b'"ok"\n"unterminated\n', ["--jsonl"], 2),
    (b'["not", "a", "string"]\n', ["--jsonl"], 1),
    (b'"a"\n\n', ["--jsonl"], 2),
    (b'[1, 2]\n[1, "x"]\n', ["--decode"], 2),
    (b'[999999]\n', ["--decode"], 1),
    (b'[-1]\n', ["--decode"], 1),
    (b'"text"\n', ["--decode"], 1),
])
def test_cli_bad_lines(gembed, tiny, stdin, args, line):
    proc = th.run_gembed(gembed, ["tokenize", "--model", str(tiny), *args], stdin, check=False)
    assert proc.returncode == 1
    assert f"line {line}" in proc.stderr.decode()


def test_cli_bad_model(gembed, tmp_path):
    proc = th.run_gembed(gembed, ["tokenize", "--model", str(tmp_path / "missing.gguf")], b"x\n", check=False)
    assert proc.returncode == 1 and proc.stderr
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + bytes(range(200)))
    proc = th.run_gembed(gembed, ["tokenize", "--model", str(junk)], b"x\n", check=False)
    assert proc.returncode == 1 and proc.stderr
    bad_json = tmp_path / "tokenizer.json"
    bad_json.write_text('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}}')
    proc = th.run_gembed(gembed, ["tokenize", "--tokenizer", str(bad_json)], b"x\n", check=False)
    assert proc.returncode == 1 and b"merge" in proc.stderr
    # Usage errors: neither or both of --model / --tokenizer.
    assert th.run_gembed(gembed, ["tokenize"], b"", check=False).returncode == 2
    both = ["tokenize", "--model", "a", "--tokenizer", "b"]
    assert th.run_gembed(gembed, both, b"", check=False).returncode == 2
