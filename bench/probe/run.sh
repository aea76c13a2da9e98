#!/usr/bin/env bash
# bench/probe/run.sh: CPU of svcd's prober for N pods with a 1 s httpGet
# readinessProbe (issue 5 target: 1,000 pods < 5% of one core).
#
# Everything runs in a private network namespace made here and deleted on
# exit: lo up, one podserver (tests/lab) answering /healthz on :8080 for all
# the pod addresses 127.1.x.y, and probe_bench (bench/probe/probe_bench.c:
# the real store + probe manager) measuring its own user+sys CPU.
#
# usage: bench/probe/run.sh [BUILD_DIR] [PODS] [SECONDS]
#   BUILD_DIR defaults to $SVCD_BUILD or build; PODS 1000; SECONDS 10.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-${SVCD_BUILD:-$SRC/build}}
PODS=${2:-1000}
SECS=${3:-10}
NS="svpb$$"
# As in FACTS.md's DNS runs: the target server and the prober on separate CPUs.
NCPU=$(nproc)
BENCH_CPU=${BENCH_CPU:-0}
SRV_CPU=${SRV_CPU:-$(( NCPU > 1 ? 1 : 0 ))}
TMP=$(mktemp -d)
SRV_PID=

[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (network namespace)"; exit 1; }
for b in probe_bench podserver; do
    [[ -x $BUILD/$b ]] || { echo "run.sh: build $BUILD/$b first (cmake --build $BUILD --target $b)"; exit 1; }
done

cleanup() {
    [[ -n $SRV_PID ]] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" taskset -c "$SRV_CPU" "$BUILD/podserver" --name bench --http 8080 --pidfile "$TMP/pid" \
    >"$TMP/podserver.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 50); do [[ -s $TMP/pid ]] && break; sleep 0.1; done
[[ -s $TMP/pid ]] || { echo "podserver did not start"; cat "$TMP/podserver.log"; exit 1; }

srv_cpu() { awk '{print $14 + $15}' "/proc/$SRV_PID/stat"; }
HZ=$(getconf CLK_TCK)
s0=$(srv_cpu)
echo "# $PODS pods, 1 s httpGet readinessProbe, measuring ${SECS} s after 3 s warm-up (prober on CPU $BENCH_CPU, server on CPU $SRV_CPU)"
set +e
ip netns exec "$NS" taskset -c "$BENCH_CPU" "$BUILD/probe_bench" --pods "$PODS" --period 1 --seconds "$SECS" --warmup 3 ${BENCH_KIND:+--kind $BENCH_KIND}
rc=$?
set -e
s1=$(srv_cpu)
awk -v t=$(( s1 - s0 )) -v hz="$HZ" -v s="$SECS" \
    'BEGIN { printf "# target server (podserver) CPU: %.2f%% of a core (not part of svcd)\n", 100 * t / hz / (s + 3) }'
exit $rc
