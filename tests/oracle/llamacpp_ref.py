"""Runs the locally built llama.cpp reference tools (scripts/build_llama_cpp.sh).

Used by scripts/gen_llamacpp_golden.py and tests/oracle/validate_oracle.py, never
by the CI tests (CI has no llama.cpp build; it reads the checked-in golden files).

Pitfalls handled here (MODEL-SPEC §4.2, §6.3, §8):
* `--no-escape`: both tools otherwise turn "\\n" etc. in the input into control
  characters.
* llama-embedding's `-f` drops one trailing newline of the file, so the file is
  written with an extra "\\n"; texts are joined with a separator no text
  contains. llama-tokenize's `-f` reads the file verbatim (one text per file).
* Non-causal models need the whole sequence in one micro-batch: -c = -b = -ub =
  a size ≥ the longest input. It is kept small because llama.cpp reserves
  n_vocab × n_outputs × 4 bytes of logits (1 GiB per 1,024 tokens here).
* `-fa off` keeps attention in fp32 (flash attention casts K/V to fp16).
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
SEPARATOR = "<#gembed-separator#>"


def bin_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LLAMA_CPP_BIN_DIR", REPO / ".cache" / "llama.cpp" / "build" / "bin"))


def tool(name: str) -> pathlib.Path:
    p = bin_dir() / name
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run scripts/build_llama_cpp.sh first")
    return p


def version() -> str:
    """llama.cpp version string from the unpacked sources (e.g. '0.5.0 (llama-cpp-python 0.3.36)')."""
    src = REPO / ".cache" / "llama.cpp" / "src"
    stamps = sorted(p.name for p in src.glob(".from-llama-cpp-python-*"))
    cm = (src / "CMakeLists.txt").read_text(encoding="utf-8") if (src / "CMakeLists.txt").exists() else ""
    parts = []
    for k in ("MAJOR", "MINOR", "PATCH"):
        for line in cm.splitlines():
            if line.startswith(f"set(LLAMA_VERSION_{k} "):
                parts.append(line.split()[1].rstrip(")"))
    v = ".".join(parts) if len(parts) == 3 else "unknown"
    if stamps:
        v += " (llama-cpp-python " + stamps[-1].removeprefix(".from-llama-cpp-python-") + ")"
    return v


def tokenize(model: str | os.PathLike, text: str) -> list[int]:
    """llama.cpp's token ids for one text, BOS/EOS added as the model asks,
    special tokens parsed (as llama-embedding does)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        r = subprocess.run([str(tool("llama-tokenize")), "-m", str(model), "-f", path,
                            "--no-escape", "--ids", "--log-disable"],
                           capture_output=True, check=False)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise RuntimeError(f"llama-tokenize failed ({r.returncode}): {r.stderr.decode(errors='replace')[-2000:]}")
    out = r.stdout.decode("utf-8").strip().splitlines()
    return json.loads(out[-1])


def embed(model: str | os.PathLike, texts: list[str], *, flash_attn: str = "off",
          threads: int = 2, n_batch: int | None = None, max_tokens: int | None = None) -> np.ndarray:
    """llama.cpp's L2-normalised mean-pooled embeddings, one row per text
    (float64 parsed from the tool's 7-decimal JSON). n_batch defaults to the
    smallest multiple of 256 ≥ max_tokens (the longest input in tokens)."""
    for t in texts:
        if SEPARATOR in t:
            raise ValueError("a text contains the separator")
    if n_batch is None:
        longest = max_tokens if max_tokens is not None else 2048
        n_batch = max(256, (longest + 255) // 256 * 256)
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write((SEPARATOR.join(texts) + "\n").encode("utf-8"))
        path = f.name
    cmd = [str(tool("llama-embedding")), "-m", str(model), "-f", path, "--no-escape",
           "--embd-separator", SEPARATOR, "--embd-normalize", "2", "--pooling", "mean",
           "-fa", flash_attn, "-c", str(n_batch), "-b", str(n_batch), "-ub", str(n_batch),
           "-t", str(threads), "--embd-output-format", "json"]
    try:
        r = subprocess.run(cmd, capture_output=True, check=False)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise RuntimeError(f"llama-embedding failed ({r.returncode}): {r.stderr.decode(errors='replace')[-3000:]}")
    out = r.stdout.decode("utf-8")
    start = out.index("{")
    doc, _ = json.JSONDecoder().raw_decode(out[start:])
    data = sorted(doc["data"], key=lambda d: d["index"])
    if len(data) != len(texts):
        raise RuntimeError(f"llama-embedding returned {len(data)} embeddings for {len(texts)} texts")
    return np.array([d["embedding"] for d in data], dtype=np.float64)


def embed_command_line(model_name: str = "MODEL.gguf", flash_attn: str = "off", n_batch: int = 2048) -> str:
    """The command line embed() runs, for provenance records."""
    return (f"llama-embedding -m {model_name} -f TEXTS --no-escape --embd-separator '{SEPARATOR}' "
            f"--embd-normalize 2 --pooling mean -fa {flash_attn} -c {n_batch} -b {n_batch} -ub {n_batch} "
            f"-t 2 --embd-output-format json")
