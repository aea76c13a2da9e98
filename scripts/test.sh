#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: unit and integration
# tests (ctest), then the same tests under ASan+UBSan, then each fuzz target
# for a bounded time. Run as root (integration tests create network
# namespaces; they never touch the machine's own namespace).
#
#   scripts/test.sh            everything
#   SVCD_TEST_QUICK=1 ...      skip the sanitizer build and fuzzing
#   SVCD_FUZZ_SECONDS=N ...    seconds per fuzz target (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
fail=0

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

echo "== tests"
(cd build && ctest --output-on-failure -j1) || fail=1

echo "== demo smoke test (scripts/demo.sh --once)"
./scripts/demo.sh --once --no-deps --no-build > build/demo.log 2>&1 || { tail -40 build/demo.log; fail=1; }

if [ -z "${SVCD_TEST_QUICK:-}" ]; then
  echo "== tests under ASan+UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSVCD_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j1) || fail=1

  echo "== fuzzing (${SVCD_FUZZ_SECONDS:-30} s per target)"
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DSVCD_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=Debug >/dev/null
  # Only the fuzz targets: in this build the core carries coverage hooks that
  # only libFuzzer's runtime provides.
  targets=()
  for src in tests/fuzz/fuzz_*.c; do t=$(basename "$src" .c); targets+=(--target "$t"); done
  cmake --build build-fuzz -j"$jobs" "${targets[@]}"
  for f in build-fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    dict=()
    [ -f "tests/fuzz/${name#fuzz_}.dict" ] && dict=(-dict="tests/fuzz/${name#fuzz_}.dict")
    echo "-- $name"
    if ! "$f" -max_total_time="${SVCD_FUZZ_SECONDS:-30}" -print_final_stats=0 "${dict[@]}" "$work" \
         > "$work.log" 2>&1; then
      tail -50 "$work.log"; fail=1
    else
      grep -E "^(#[0-9]+.*DONE|Done)" "$work.log" | tail -1 || true
    fi
    rm -rf "$work" "$work.log"
  done
fi

if [ "$fail" -ne 0 ]; then
  echo "scripts/test.sh: FAILED"
  exit 1
fi
echo "scripts/test.sh: all passed"
