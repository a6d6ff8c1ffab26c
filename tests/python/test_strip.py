"""gembed's whitespace stripping (src/tokenizer/strip.h) against Python's own str.strip().

sentence-transformers tokenises (PROMPT + TEXT).strip(); `gembed embed` does the
same by default and `gembed tokenize --strip` exposes it. Here the set of
whitespace code points comes from Python at run time (chr(c).isspace()), never
from a copy of the list, and for every Unicode scalar value and for a few
thousand random strings, `gembed tokenize --strip S` must give the ids of
`gembed tokenize S.strip()`, and decoding them must give S.strip() back.
"""
from __future__ import annotations

import json
import random
import subprocess

import pytest

WHITESPACE = [c for c in range(0x110000) if chr(c).isspace()]
SCALARS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]  # what UTF-8 can carry
# Not whitespace for Python, but "space-like" in other definitions.
NEAR_MISSES = [0x0000, 0x0008, 0x001B, 0x007F, 0x00AD, 0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x2581]


def tokenize(gembed, tokenizer, texts, *args) -> list[bytes]:
    """One output line (a JSON array of ids) per text, as bytes."""
    inp = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts).encode()
    r = subprocess.run([str(gembed), "tokenize", "--tokenizer", str(tokenizer), "--jsonl", *args], input=inp,
                       capture_output=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    lines = r.stdout.splitlines()
    assert len(lines) == len(texts)
    return lines


def decode(gembed, tokenizer, id_lines: list[bytes]) -> list[str]:
    r = subprocess.run([str(gembed), "tokenize", "--tokenizer", str(tokenizer), "--decode"],
                       input=b"".join(line + b"\n" for line in id_lines), capture_output=True, timeout=600,
                       check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    # Split on "\n" only: the JSON strings hold U+2028, U+0085, ... raw.
    out = [json.loads(line) for line in r.stdout.split(b"\n")[:-1]]
    assert len(out) == len(id_lines)
    return out


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    return tokenizer_dir / "tokenizer.json"


def random_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ascii_chars = [chr(c) for c in range(0x21, 0x7F)]

    def char() -> str:
        r = rng.random()
        if r < 0.45:
            return chr(rng.choice(WHITESPACE))
        if r < 0.65:
            return rng.choice(ascii_chars)
        if r < 0.75:
            return chr(rng.choice(NEAR_MISSES))
        return chr(rng.choice(SCALARS))

    out = []
    for _ in range(n):
        out.append("".join(char() for _ in range(rng.randrange(0, 13))))
    return out


def test_python_whitespace_set_is_what_strip_removes():
    """The reference itself: Python strips exactly the isspace() code points (and
    the brief's list is among them)."""
    assert {0x09, 0x0A, 0x0D, 0x20, 0x85, 0xA0, 0x3000} <= set(WHITESPACE)
    for c in WHITESPACE:
        assert (chr(c) + "x" + chr(c)).strip() == "x"
    for c in NEAR_MISSES:
        assert c not in WHITESPACE and (chr(c) + "x").strip() == chr(c) + "x"


def test_every_code_point_is_stripped_exactly_when_python_strips_it(gembed, tok):
    texts = [chr(c) + "x" + chr(c) for c in SCALARS]
    stripped = tokenize(gembed, tok, texts, "--strip")
    want = tokenize(gembed, tok, [t.strip() for t in texts])
    bad = [hex(c) for c, a, b in zip(SCALARS, stripped, want) if a != b]
    assert bad == [], f"{len(bad)} code points disagree with Python: {bad[:20]}"
    # Not vacuous: every whitespace code point has tokens of its own when not stripped.
    raw = tokenize(gembed, tok, [chr(c) + "x" + chr(c) for c in WHITESPACE])
    x = tokenize(gembed, tok, ["x"])[0]
    assert all(line != x for line in raw)
    print(f"STRIP {len(SCALARS)} code points agree with Python; {len(WHITESPACE)} are whitespace")


def test_runs_of_whitespace_and_whitespace_only_texts(gembed, tok):
    texts = ["".join(chr(c) for c in WHITESPACE), "".join(chr(c) for c in reversed(WHITESPACE)) + "a b",
             "", " ", "\r\n", "a" + "".join(chr(c) for c in WHITESPACE) + "b"]
    texts += [chr(c) * 3 + chr(n) + chr(c) * 2 for c in WHITESPACE for n in NEAR_MISSES]
    got = tokenize(gembed, tok, texts, "--strip")
    assert got == tokenize(gembed, tok, [t.strip() for t in texts])
    assert got[0] == b"[]" and got[2] == b"[]"  # whitespace only -> nothing


def test_random_strings_agree_with_python(gembed, tok):
    texts = random_strings(5000, seed=20251121)
    assert sum(t != t.strip() for t in texts) > 3000  # most have something to strip
    got = tokenize(gembed, tok, texts, "--strip")
    want = tokenize(gembed, tok, [t.strip() for t in texts])
    bad = [t for t, a, b in zip(texts, got, want) if a != b]
    assert bad == [], [ascii(t) for t in bad[:10]]
    # And the text itself: decoding the ids gives Python's strip() back (a
    # literal U+2581 decodes as a space in this vocabulary, so those are left out).
    keep = [i for i, t in enumerate(texts) if "\u2581" not in t]
    assert len(keep) > 4000
    back = decode(gembed, tok, [got[i] for i in keep])
    wrong = [texts[i] for i, b in zip(keep, back) if b != texts[i].strip()]
    assert wrong == [], [ascii(t) for t in wrong[:10]]


def test_tokenize_keeps_the_text_as_given_by_default(gembed, tok):
    """The llama.cpp / HF parity tool: no stripping unless asked."""
    texts = ["  hi\n", "\u3000x\u00a0", "x "]
    assert tokenize(gembed, tok, texts) != tokenize(gembed, tok, texts, "--strip")
    for t, line in zip(texts, tokenize(gembed, tok, texts)):
        assert decode(gembed, tok, [line]) == [t]
