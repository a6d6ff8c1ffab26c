#!/usr/bin/env bash
# Creates the PyTorch reference environment .cache/venv-ref (NOT used by CI).
#
# It holds the stack the EmbeddingGemma-300M checkpoint was published with
# (config_sentence_transformers.json names sentence-transformers 5.1.0,
# transformers 4.57.0.dev0, torch 2.8.0), pinned so that golden data generated
# from it is reproducible. Used to run SentenceTransformer(<model folder>) on
# the real weights (see docs/REAL-WEIGHTS.md) and, later, to generate golden
# embeddings.
#
# torch comes from PyPI, the only registry reachable here. PyPI has no
# CPU-only torch wheel for Linux x86-64 (those live on PyTorch's own index),
# so the standard wheel is installed together with its nvidia-* runtime
# dependencies (several GB); it runs on the CPU when no GPU is present.
#
# Idempotent: an existing environment whose installed versions already match
# the pins is left alone (a stamp file records the pin set).
#
# Usage: scripts/setup_reference_env.sh [VENV_DIR]   (default .cache/venv-ref)
# Env:   PYTHON=python3.11 to choose the interpreter (>= 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${1:-.cache/venv-ref}"
python="${PYTHON:-python3}"

# One pin per line; the stamp is the hash of this list.
pins="torch==2.8.0
transformers==4.57.1
sentence-transformers==5.1.2
tokenizers==0.22.1
safetensors==0.6.2
numpy==2.2.6"

stamp="$venv/.gembed-ref-pins"
want_hash=$(printf '%s\n' "$pins" | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_hash" ]; then
  echo "reference env: $venv is up to date"
else
  if [ ! -x "$venv/bin/python" ]; then
    echo "reference env: creating $venv with $("$python" --version)"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip
  req="$venv/.gembed-ref-requirements.txt"
  printf '%s\n' "$pins" > "$req"
  echo "reference env: installing pinned packages (torch is large; this takes a while)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  printf '%s\n' "$want_hash" > "$stamp"
fi

# Report what is installed (and prove the imports work).
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$venv/bin/python" - <<'EOF'
import platform
import numpy, safetensors, sentence_transformers, tokenizers, torch, transformers
print(f"python {platform.python_version()}")
for m in (torch, transformers, sentence_transformers, tokenizers, safetensors, numpy):
    print(f"{m.__name__} {m.__version__}")
print(f"torch threads {torch.get_num_threads()}, cuda available {torch.cuda.is_available()}")
EOF
