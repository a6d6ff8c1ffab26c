#!/usr/bin/env bash
# The whole test suite: set up (idempotent), build, run ctest (unit tests,
# kernel tests on every ISA this CPU has, Python parity tests), then the
# fuzz targets under ASan+UBSan for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
./scripts/fuzz.sh "${GEMBED_FUZZ_SECONDS:-30}"
