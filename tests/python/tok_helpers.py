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
