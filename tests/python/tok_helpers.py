"""Helpers for the tokenizer tests: run `gembed tokenize`, load the corpus generator."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_corpus_module():
    path = REPO / "scripts" / "gen_tokenizer_corpus.py"
    spec = importlib.util.spec_from_file_location("gen_tokenizer_corpus", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def run_gembed(gembed: pathlib.Path, args: list[str], stdin: bytes, check: bool = True,
               timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(gembed), *args], input=stdin, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"gembed {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc


def jsonl_bytes(texts: list[str]) -> bytes:
    # ensure_ascii keeps every line pure ASCII, so no text can break the line
    # structure (U+2028 etc. are escaped too).
    return "".join(json.dumps(t, ensure_ascii=True) + "\n" for t in texts).encode("ascii")


def parse_lines(out: bytes) -> list:
    # Split on '\n' only: str.splitlines() would also split on U+2028, U+0085, ...
    text = out.decode("utf-8")
    lines = text.split("\n")
    assert lines[-1] == "", "output must end with a newline"
    return [json.loads(line) for line in lines[:-1]]


def encode(gembed, model_args: list[str], texts: list[str], add_special: bool = False) -> list[list[int]]:
    args = ["tokenize", *model_args, "--jsonl"] + (["--add-special"] if add_special else [])
    ids = parse_lines(run_gembed(gembed, args, jsonl_bytes(texts)).stdout)
    assert len(ids) == len(texts)
    return ids


def decode(gembed, model_args: list[str], ids: list[list[int]]) -> list[str]:
    stdin = "".join(json.dumps(x) + "\n" for x in ids).encode("ascii")
    out = parse_lines(run_gembed(gembed, ["tokenize", *model_args, "--decode"], stdin).stdout)
    assert len(out) == len(ids)
    return out


def describe(text: str, limit: int = 120) -> str:
    s = json.dumps(text, ensure_ascii=False)
    return s if len(s) <= limit else s[:limit] + f"...({len(text)} chars)"


# A tiny SentencePiece vocabulary, written with gguf-py's GGUFWriter
# (llama.cpp's own Python writer), for CLI tests that need no shared data.
#   0..3  CONTROL <pad> <eos> <bos> <unk>; 4 "\n", 5 "  " USER_DEFINED;
#   6..261 BYTE <0x00>..<0xFF> (id 6 + byte); 262.. NORMAL with score -(id - 262):
TINY_NORMAL = ["\u2581", "a", "b", "ab", "\u2581a", "h", "i", "hi"]


def tiny_id(piece: str) -> int:
    return 262 + TINY_NORMAL.index(piece)


def tiny_byte(b: int) -> int:
    return 6 + b


def write_tiny_vocab(path: pathlib.Path) -> pathlib.Path:
    import gguf

    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "\n", "  "] + [f"<0x{b:02X}>" for b in range(256)] + TINY_NORMAL
    types = [3, 3, 3, 3, 4, 4] + [6] * 256 + [1] * len(TINY_NORMAL)
    scores = [-1000.0] * 6 + [0.0] * 256 + [-float(i) for i in range(len(TINY_NORMAL))]
    w = gguf.GGUFWriter(str(path), "gemma-embedding")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_bool("tokenizer.ggml.add_space_prefix", False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
