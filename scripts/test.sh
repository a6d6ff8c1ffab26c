#!/usr/bin/env bash
# The whole test suite: set up (idempotent), build, run the C++ tests through
# ctest (unit tests, kernel tests on every ISA this CPU has), the Python
# parity tests through pytest (skips are listed with their reasons), then the
# fuzz targets under ASan+UBSan for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" -E '^pytest$'
GEMBED_BIN="$PWD/build/bin/gembed" GEMBED_SHARED_DIR="${GEMBED_SHARED_DIR:-$PWD/../shared}" \
  .venv/bin/python -m pytest -q -rs tests/python
./scripts/fuzz.sh "${GEMBED_FUZZ_SECONDS:-30}"
