#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan + UBSan in build-fuzz/ and runs
# each for a bounded time (first argument: seconds per target, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGEMBED_FUZZ=ON -DGEMBED_SANITIZE=address,undefined \
  -DGEMBED_BUILD_TESTS=OFF -DGEMBED_BUILD_BENCH=OFF >/dev/null
# Only the fuzz targets (and the libraries they link), not the whole CLI.
fuzz_targets=()
for src in tests/fuzz/fuzz_*.cc; do fuzz_targets+=("$(basename "$src" .cc)"); done
cmake --build build-fuzz -j"$(nproc)" --target "${fuzz_targets[@]}"
shopt -s nullglob
targets=(build-fuzz/bin/fuzz_*)
passed=0; failed=0
for t in "${targets[@]}"; do
  name=$(basename "$t")
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  seeds="tests/fuzz/seeds/$name"
  args=("$corpus"); [ -d "$seeds" ] && args+=("$seeds")
  echo "fuzz: $name for ${secs}s"
  if "$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 "${args[@]}" > "build-fuzz/$name.log" 2>&1; then
    passed=$((passed+1))
  else
    failed=$((failed+1)); tail -n 60 "build-fuzz/$name.log"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
