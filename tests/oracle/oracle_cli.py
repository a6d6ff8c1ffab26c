"""Thin wrappers over the `gembed` CLI for the oracle / golden tests.

Texts travel as JSON strings (`--jsonl`), so newlines, tabs and any Unicode
survive; outputs are one JSON array per line.
"""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np


def run(cmd: list, stdin: bytes | None = None, timeout: float = 900) -> bytes:
    r = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise AssertionError(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n"
                             f"stderr: {r.stderr.decode(errors='replace')[-3000:]}")
    return r.stdout


def _jsonl(texts: list[str]) -> bytes:
    return "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts).encode("utf-8")


def synth(gembed, tokenizer_json, out, *, qtype: str, seed: int, extra: list[str] = ()) -> None:
    run([gembed, "synth", "-o", out, "--tokenizer", tokenizer_json, "--type", qtype, "--seed", str(seed), *extra])


def synth_command(qtype: str, seed: int, extra: list[str] = ()) -> str:
    """The synth command line as recorded in golden files (paths symbolic)."""
    return " ".join(["gembed synth -o MODEL.gguf --tokenizer gemma3-tokenizer/tokenizer.json",
                     "--type", qtype, "--seed", str(seed), *extra])


def tokenize(gembed, model, texts: list[str], add_special: bool = True) -> list[list[int]]:
    cmd = [gembed, "tokenize", "--model", model, "--jsonl"]
    if add_special:
        cmd.append("--add-special")
    out = run(cmd, _jsonl(texts)).decode("utf-8").splitlines()
    ids = [json.loads(line) for line in out if line.strip()]
    if len(ids) != len(texts):
        raise AssertionError(f"gembed tokenize returned {len(ids)} lines for {len(texts)} texts")
    return ids


def embed(gembed, model, texts: list[str], *, task: str | None = None, title: str | None = None,
          dim: int | None = None, threads: int | None = None, strip: bool = False) -> np.ndarray:
    """strip=False (--no-strip): the prompted text exactly as given, which is what
    llama.cpp embeds and what `tokenize` above returns the ids of (gembed's default
    strips edge whitespace like sentence-transformers)."""
    cmd = [gembed, "embed", "--model", model, "--jsonl"]
    if not strip:
        cmd.append("--no-strip")
    if task:
        cmd += ["--task", task]
    if title:
        cmd += ["--title", title]
    if dim:
        cmd += ["--dim", str(dim)]
    if threads is None:
        threads = os.cpu_count() or 2
    cmd += ["--threads", str(threads)]
    out = run(cmd, _jsonl(texts)).decode("utf-8").splitlines()
    vecs = [json.loads(line) for line in out if line.strip()]
    if len(vecs) != len(texts):
        raise AssertionError(f"gembed embed returned {len(vecs)} vectors for {len(texts)} texts")
    return np.array(vecs, dtype=np.float64)


def version(gembed) -> str:
    return run([gembed, "--version"]).decode("utf-8").strip()
