"""`gembed tokenize --model` vs llama.cpp's llama-tokenize (checked-in golden ids).

tests/golden/data/llamacpp_tokenize.json holds llama-tokenize's ids (BOS/EOS
added, special tokens parsed, --no-escape) for ~200 varied strings
(tests/oracle/oracle_tokenize_corpus.py) on the vocabulary-only GGUF written by
`gembed synth --vocab-only`. The test rebuilds that GGUF (sha256 must match)
and requires identical ids for every string.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "oracle"))

import oracle_cli as gembed_cli  # noqa: E402
import oracle_tokenize_corpus as tokenize_corpus  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "data" / "llamacpp_tokenize.json"


@pytest.fixture(scope="module")
def golden():
    if not GOLDEN.exists():
        pytest.skip(f"{GOLDEN} missing: run scripts/gen_llamacpp_golden.py (needs scripts/build_llama_cpp.sh)")
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def vocab_gguf(gembed, tokenizer_dir, tmp_path_factory, golden):
    path = tmp_path_factory.mktemp("llamacpp_tok") / "vocab.gguf"
    gembed_cli.run([gembed, "synth", "-o", path, "--tokenizer", tokenizer_dir / "tokenizer.json",
                    *golden["model"]["synth_args"]])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != golden["model"]["sha256"]:
        pytest.fail(f"`{golden['model']['synth_command']}` no longer produces the golden vocabulary GGUF "
                    f"(sha256 {digest} != {golden['model']['sha256']}); regenerate with scripts/gen_llamacpp_golden.py "
                    "if the change is intended")
    return path


def test_corpus_matches_golden(golden):
    """The corpus generator still produces the strings the golden ids belong to."""
    assert [c["text"] for c in golden["cases"]] == tokenize_corpus.strings()
    assert len(golden["cases"]) >= 200


def test_gembed_tokenize_matches_llamacpp(gembed, golden, vocab_gguf):
    cases = golden["cases"]
    got = gembed_cli.tokenize(gembed, vocab_gguf, [c["text"] for c in cases], add_special=True)
    bad = [(c["text"], c["ids"], g) for c, g in zip(cases, got) if g != c["ids"]]
    msg = "\n".join(f"  {t!r}:\n    llama.cpp {w}\n    gembed    {g}" for t, w, g in bad[:10])
    print(f"\nTOKENIZE llama.cpp {golden['reference']['llama_cpp']}: {len(cases) - len(bad)}/{len(cases)} identical")
    assert not bad, f"{len(bad)}/{len(cases)} strings tokenised differently from llama.cpp:\n{msg}"
