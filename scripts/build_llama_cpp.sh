#!/usr/bin/env bash
# Builds llama.cpp as a local *reference* for gembed (accuracy and speed), from
# the llama.cpp sources vendored in the llama-cpp-python sdist on PyPI (the only
# place this machine can fetch them from).
#
#   scripts/build_llama_cpp.sh            # download (once), unpack, build
#   LLAMA_CPP_JOBS=4 scripts/build_llama_cpp.sh
#
# Output: .cache/llama.cpp/build/bin/{llama-embedding,llama-tokenize,llama-server}
# (.cache/ is gitignored; never commit llama.cpp code or binaries).
#
# Why this version: llama-cpp-python 0.3.36 vendors llama.cpp 0.5.0, which has
# the `gemma-embedding` architecture (src/models/gemma-embedding.cpp) with the
# sentence-transformers Dense head (`dense_2` / `dense_3`, PR #16367). The script
# checks both before building, so a bumped pin that lost them fails loudly.
#
# GGML_NATIVE=ON: this binary is only a reference on the machine that built it,
# so it may use every ISA this CPU has (that is also the fair speed baseline).
# Idempotent: re-running only rebuilds what changed (nothing, normally).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

LLAMA_CPP_PYTHON_VERSION="0.3.36"
# sha256 of llama_cpp_python-0.3.36.tar.gz as downloaded from PyPI.
LLAMA_CPP_PYTHON_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"

ROOT="$REPO/.cache/llama.cpp"
DL="$ROOT/dl"
SRC="$ROOT/src"
BUILD="$ROOT/build"
JOBS="${LLAMA_CPP_JOBS:-$(nproc)}"
PIP="$REPO/.venv/bin/pip"
[ -x "$PIP" ] || PIP="pip3"

SDIST="$DL/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
mkdir -p "$DL"
if [ ! -f "$SDIST" ]; then
  echo "build_llama_cpp: downloading llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION (sdist) from PyPI"
  "$PIP" download --disable-pip-version-check --no-deps --no-binary :all: \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$DL"
fi
echo "$LLAMA_CPP_PYTHON_SHA256  $SDIST" | sha256sum -c --quiet - || {
  echo "build_llama_cpp: sha256 mismatch for $SDIST" >&2; exit 1; }

# Unpack vendor/llama.cpp once; the stamp names the sdist it came from.
STAMP="$SRC/.from-llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION"
if [ ! -f "$STAMP" ]; then
  echo "build_llama_cpp: unpacking vendor/llama.cpp into $SRC"
  rm -rf "$SRC" "$ROOT/unpack"
  mkdir -p "$ROOT/unpack"
  tar xzf "$SDIST" -C "$ROOT/unpack" "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
  mv "$ROOT/unpack/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp" "$SRC"
  rm -rf "$ROOT/unpack"
  touch "$STAMP"
fi

# The features gembed is compared on must exist in this llama.cpp.
[ -f "$SRC/src/models/gemma-embedding.cpp" ] || grep -q "gemma-embedding" "$SRC/src/llama-arch.cpp" || {
  echo "build_llama_cpp: this llama.cpp has no gemma-embedding architecture" >&2; exit 1; }
grep -q "dense_2" "$SRC/src/llama-arch.cpp" || {
  echo "build_llama_cpp: this llama.cpp has no dense_2 (sentence-transformers Dense) support" >&2; exit 1; }

# Only what we need: the embedding example, the tokenize tool and the HTTP
# server (scripts/bench_serve.py runs it beside `gembed serve`). No tests, no
# network (curl/openssl), no web UI: with LLAMA_BUILD_UI=OFF (no npm build) and
# LLAMA_USE_PREBUILT_UI=OFF (no download from the Hugging Face bucket),
# scripts/ui-assets.cmake embeds an empty asset table and llama-server builds
# without its web page (cmake prints a warning saying so); the API is unchanged.
cmake -S "$SRC" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=ON \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_MTMD=OFF \
  -Wno-dev >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target llama-embedding llama-tokenize llama-server

for b in llama-embedding llama-tokenize llama-server; do
  [ -x "$BUILD/bin/$b" ] || { echo "build_llama_cpp: $BUILD/bin/$b missing" >&2; exit 1; }
done
echo "build_llama_cpp: llama.cpp $(cat "$SRC/CMakeLists.txt" | sed -n 's/^set(LLAMA_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\))/\2/p' | paste -sd.) (from llama-cpp-python $LLAMA_CPP_PYTHON_VERSION)"
echo "build_llama_cpp: binaries in $BUILD/bin:"
echo "  $BUILD/bin/llama-embedding"
echo "  $BUILD/bin/llama-tokenize"
echo "  $BUILD/bin/llama-server"
