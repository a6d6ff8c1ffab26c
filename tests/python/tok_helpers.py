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


# ---------------------------------------------------------------------------
# llama.cpp reference: a 20-line driver over llama.cpp's C API (llama_tokenize
# with parse_special = true, as llama-embedding and the server use), linked
# against the static libraries scripts/build_llama_cpp.sh leaves in
# .cache/llama.cpp/build. One process tokenises every line (llama-tokenize
# takes a single prompt per run).
# ---------------------------------------------------------------------------
LLAMA_CPP_DIR = REPO / ".cache" / "llama.cpp"

LLAMA_REF_SOURCE = r"""
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "llama.h"
static void Quiet(ggml_log_level, const char*, void*) {}
int main(int argc, char** argv) {
  if (argc < 3) return 2;
  llama_log_set(Quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) { std::fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const bool add_special = std::string(argv[2]) == "1";
  std::vector<llama_token> ids(1 << 16);
  std::string line;
  while (std::getline(std::cin, line)) {
    const std::string text = nlohmann::json::parse(line).get<std::string>();
    int n = llama_tokenize(vocab, text.data(), (int32_t)text.size(), ids.data(), (int32_t)ids.size(), add_special, true);
    if (n < 0) {
      ids.resize((size_t)-n);
      n = llama_tokenize(vocab, text.data(), (int32_t)text.size(), ids.data(), (int32_t)ids.size(), add_special, true);
    }
    std::cout << nlohmann::json(std::vector<llama_token>(ids.begin(), ids.begin() + n)).dump() << "\n";
  }
  llama_model_free(model);
  return 0;
}
"""


def build_llama_reference(out_dir: pathlib.Path) -> tuple[pathlib.Path | None, str]:
    """Compiles the driver; returns (binary, "") or (None, why not)."""
    import shutil

    build = LLAMA_CPP_DIR / "build"
    libs = [build / "src" / "libllama.a", build / "ggml" / "src" / "libggml.a",
            build / "ggml" / "src" / "libggml-cpu.a", build / "ggml" / "src" / "libggml-base.a"]
    include = LLAMA_CPP_DIR / "src" / "include" / "llama.h"
    if not include.exists() or not all(p.exists() for p in libs):
        return None, f"llama.cpp not built under {LLAMA_CPP_DIR} (run scripts/build_llama_cpp.sh)"
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        return None, "no C++ compiler"
    src = out_dir / "llama_ref.cc"
    src.write_text(LLAMA_REF_SOURCE)
    exe = out_dir / "llama_ref"
    cmd = [cxx, "-std=c++17", "-O1", str(src), f"-I{LLAMA_CPP_DIR / 'src' / 'include'}",
           f"-I{LLAMA_CPP_DIR / 'src' / 'ggml' / 'include'}", *map(str, libs), "-fopenmp", "-lpthread", "-ldl",
           "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None, "could not link the llama.cpp driver: " + proc.stderr[-500:]
    return exe, ""


def llama_encode(exe: pathlib.Path, vocab: pathlib.Path, texts: list[str], add_special: bool) -> list[list[int]]:
    proc = subprocess.run([str(exe), str(vocab), "1" if add_special else "0"], input=jsonl_bytes(texts),
                          capture_output=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"llama.cpp driver failed: {proc.stderr.decode(errors='replace')}")
    ids = parse_lines(proc.stdout)
    assert len(ids) == len(texts)
    return ids


# ---------------------------------------------------------------------------
# The real EmbeddingGemma files, when a local download exists (models/ is
# gitignored; see docs/REAL-WEIGHTS.md): tokenizer.json whose post-processor
# adds <bos> and <eos>, and the SentencePiece tokenizer.model with the real scores.
# ---------------------------------------------------------------------------
def embeddinggemma_dir() -> pathlib.Path:
    import os

    return pathlib.Path(os.environ.get("GEMBED_EMBEDDINGGEMMA_DIR", REPO / "models" / "embeddinggemma-300m"))


def _varint(b: bytes, i: int) -> tuple[int, int]:
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _proto_fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield field, wire, v


def sentencepiece_pieces(path: pathlib.Path) -> list[tuple[str, float, int]]:
    """(piece, score, type) of a SentencePiece ModelProto (field 1: pieces; piece 1, score 2, type 3)."""
    import struct

    out = []
    for field, wire, v in _proto_fields(path.read_bytes()):
        if field != 1 or wire != 2:
            continue
        piece, score, typ = "", 0.0, 1
        for f2, _, v2 in _proto_fields(v):
            if f2 == 1:
                piece = v2.decode("utf-8")
            elif f2 == 2:
                score = struct.unpack("<f", v2)[0]
            elif f2 == 3:
                typ = v2
        out.append((piece, score, typ))
    return out


def write_vocab_with_scores(src: pathlib.Path, dst: pathlib.Path, scores: list[float]) -> None:
    """Copies the tokenizer keys of `src` (a vocab GGUF) to `dst` with other scores, using gguf-py."""
    import gguf

    f = gguf.GGUFReader(str(src)).fields
    w = gguf.GGUFWriter(str(dst), "gemma-embedding")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(f["tokenizer.ggml.tokens"].contents())
    w.add_token_scores(scores)
    w.add_token_types(f["tokenizer.ggml.token_type"].contents())
    for key, add in [("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id),
                     ("unknown_token_id", w.add_unk_token_id), ("padding_token_id", w.add_pad_token_id)]:
        add(f["tokenizer.ggml." + key].contents())
    w.add_add_bos_token(f["tokenizer.ggml.add_bos_token"].contents())
    w.add_add_eos_token(f["tokenizer.ggml.add_eos_token"].contents())
    w.add_bool("tokenizer.ggml.add_space_prefix", False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
