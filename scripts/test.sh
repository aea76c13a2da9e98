#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: unit and integration
# tests (ctest), then the same tests under ASan+UBSan, then each fuzz target
# for a bounded time. Run as root (integration tests create network
# namespaces; they never touch the machine's own namespace).
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    skip the sanitizer pass and fuzzing
#                              (also: SVCD_TEST_QUICK=1)
#   scripts/test.sh --stress   everything, while stress-ng keeps every CPU
#                              busy (bounded: stopped when the script ends,
#                              and after SVCD_STRESS_MAX seconds, default
#                              3600): the suite must pass on a contended
#                              machine with its default deadlines
#   SVCD_FUZZ_SECONDS=N ...    seconds per fuzz target (default 30)
# docs/TESTING.md says what runs in each pass, how long it takes, and how to
# run one test alone.
set -euo pipefail
cd "$(dirname "$0")/.."

stress=0
for arg in "$@"; do
  case $arg in
  --quick) SVCD_TEST_QUICK=1 ;;
  --stress) stress=1 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "scripts/test.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
fail=0
t_start=$SECONDS
phase_t=$SECONDS
timings=()
phase_done() { timings+=("$(printf '%-28s %5d s' "$1" $((SECONDS - phase_t)))"); phase_t=$SECONDS; }

stress_pid=
stop_stress() { [ -z "$stress_pid" ] || { kill "$stress_pid" 2>/dev/null; wait "$stress_pid" 2>/dev/null || true; stress_pid=; }; }
trap stop_stress EXIT
if [ "$stress" = 1 ]; then
  echo "== stress-ng --cpu $jobs (for at most ${SVCD_STRESS_MAX:-3600} s, stopped at the end)"
  stress-ng --cpu "$jobs" --timeout "${SVCD_STRESS_MAX:-3600}" --quiet &
  stress_pid=$!
fi

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
phase_done "build"

echo "== tests"
(cd build && ctest --output-on-failure -j1) || fail=1
phase_done "tests"

echo "== demo smoke test (scripts/demo.sh --once)"
./scripts/demo.sh --once --no-deps --no-build > build/demo.log 2>&1 || { tail -40 build/demo.log; fail=1; }
phase_done "demo smoke test"

if [ -z "${SVCD_TEST_QUICK:-}" ]; then
  echo "== tests under ASan+UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSVCD_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j1) || fail=1
  phase_done "build + tests (ASan+UBSan)"

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
  phase_done "fuzzing"
fi
stop_stress

echo "== wall time per pass"
printf '%s\n' "${timings[@]}"
printf '%-28s %5d s\n' "total" $((SECONDS - t_start))
if [ "$fail" -ne 0 ]; then
  echo "scripts/test.sh: FAILED"
  exit 1
fi
echo "scripts/test.sh: all passed"
