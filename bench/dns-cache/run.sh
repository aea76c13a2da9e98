#!/usr/bin/env bash
# bench/dns-cache/run.sh: svcd's forwarding cache vs Unbound's cache.
#
# One command, run as root:  bench/dns-cache/run.sh [BUILD_DIR]
# (BUILD_DIR default: $SVCD_BUILD, else ./build). Env: DURATION (s per run,
# default 8), ROUNDS (alternating runs per server, default 2), NAMES
# (default 1000).
#
# Everything runs inside a private network namespace that is deleted on
# exit (trap), on loopback only:
#   dnsmasq   127.0.0.1:5399  upstream, NAMES names from a hosts file, TTL 3600
#   unbound   127.0.0.1:5301  forward-zone "." -> dnsmasq (cache)
#   svcd      127.0.0.1:5353  --upstream 127.0.0.1:5399 (cache), --no-nft
# Both caches are warmed with one pass over the names, then each server is
# measured with the same dnsperf load (-c 4 -q 200, pinned to CPU 1; servers
# pinned to CPU 0), alternating, in the same run. The figure that matters
# is server CPU per answered query (user+sys from /proc/PID/stat), as in
# /work/shared/FACTS.md; queries/s is client-bound. The upstream's query
# count (dnsmasq log) shows that the measured phase was served from cache.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${SVCD_BUILD:-$SRC/build}}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-2}
NAMES=${NAMES:-1000}
SVCD=$BUILD/svcd

[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (network namespace)" >&2; exit 1; }
for t in dnsmasq unbound dnsperf taskset dig; do
    command -v "$t" >/dev/null || { echo "run.sh: $t not installed" >&2; exit 1; }
done
[[ -x $SVCD ]] || { echo "run.sh: no $SVCD (build first)" >&2; exit 1; }

NS=svcdbench-$$-$RANDOM
TMP=$(mktemp -d /tmp/svcd-dnscache.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up

# Names: nN.bench.example, one A each.
for ((i = 1; i <= NAMES; i++)); do
    echo "10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256)) n$i.bench.example"
done >"$TMP/hosts"
for ((i = 1; i <= NAMES; i++)); do echo "n$i.bench.example A"; done >"$TMP/queries"

ip netns exec "$NS" taskset -c 1 dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --pid-file= --user=root --listen-address=127.0.0.1 --bind-interfaces --port=5399 \
    --addn-hosts="$TMP/hosts" --local-ttl=3600 --cache-size=0 --log-queries \
    --log-facility="$TMP/upstream.log" </dev/null >/dev/null 2>&1 &
PIDS+=($!)

cat >"$TMP/unbound.conf" <<EOF
server:
    interface: 127.0.0.1
    port: 5301
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$TMP"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    qname-minimisation: no
    prefetch: no
    minimal-responses: yes
    auto-trust-anchor-file: ""
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@5399
EOF
ip netns exec "$NS" taskset -c 0 unbound -d -c "$TMP/unbound.conf" </dev/null >"$TMP/unbound.out" 2>&1 &
PIDS+=($!)
UNBOUND_PID=$!

ip netns exec "$NS" taskset -c 0 "$SVCD" --dns-listen 127.0.0.1:5353 --upstream 127.0.0.1:5399 --no-nft \
    --state-dir "$TMP/state" --admin-listen off --node-name bench --log-level warn --dns-cache-size 10000 \
    </dev/null >"$TMP/svcd.out" 2>&1 &
PIDS+=($!)
SVCD_PID=$!

wait_answer() { # port
    local t
    for ((t = 0; t < 50; t++)); do
        [[ $(nsx dig @127.0.0.1 -p "$1" +short +tries=1 +time=1 n1.bench.example) == 10.0.0.1 ]] &&
            return 0
        sleep 0.1
    done
    return 1
}
wait_answer 5399 || { echo "dnsmasq did not answer" >&2; exit 1; }
wait_answer 5301 || { echo "unbound did not answer" >&2; cat "$TMP/unbound.out" >&2; exit 1; }
wait_answer 5353 || { echo "svcd did not answer" >&2; cat "$TMP/svcd.out" >&2; exit 1; }

# The real server processes (ip netns exec + taskset exec in place).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

perf() { # port args... -> dnsperf output
    nsx taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$TMP/queries" -c 4 -q 200 -t 1 "${@:2}" 2>&1
}
field() { # output pattern -> first number after it
    sed -n "s/^ *$2 *\([0-9.]*\).*/\1/p" <<<"$1" | head -1
}

echo "warming caches (one pass of $NAMES names each)"
perf 5301 -n 1 >/dev/null
perf 5353 -n 1 >/dev/null
up_before=$(grep -c 'query\[' "$TMP/upstream.log" || true)

declare -A SUM_Q SUM_T SUM_QPS
for s in unbound svcd; do SUM_Q[$s]=0; SUM_T[$s]=0; SUM_QPS[$s]=0; done
printf '\n%-8s %5s %12s %12s %10s %14s\n' server round completed lost "q/s" "cpu us/query"
for ((r = 1; r <= ROUNDS; r++)); do
    for s in unbound svcd; do
        if [[ $s == unbound ]]; then port=5301 pid=$UNBOUND_PID; else port=5353 pid=$SVCD_PID; fi
        c0=$(cpu_ticks "$pid")
        out=$(perf "$port" -l "$DURATION")
        c1=$(cpu_ticks "$pid")
        done_q=$(field "$out" "Queries completed:")
        lost=$(field "$out" "Queries lost:")
        qps=$(field "$out" "Queries per second:")
        us=$(awk -v t=$((c1 - c0)) -v hz="$TCK" -v q="$done_q" \
            'BEGIN { printf "%.2f", (q > 0 ? t / hz * 1e6 / q : 0) }')
        printf '%-8s %5d %12s %12s %10.0f %14s\n' "$s" "$r" "$done_q" "$lost" "$qps" "$us"
        SUM_Q[$s]=$((SUM_Q[$s] + done_q))
        SUM_T[$s]=$((SUM_T[$s] + c1 - c0))
        if ! grep -q "NOERROR" <<<"$out"; then
            echo "  warning: no NOERROR answers from $s" >&2
        fi
    done
done
up_after=$(grep -c 'query\[' "$TMP/upstream.log" || true)

echo
for s in unbound svcd; do
    awk -v s="$s" -v t="${SUM_T[$s]}" -v hz="$TCK" -v q="${SUM_Q[$s]}" \
        'BEGIN { printf "%-8s total %d queries, server CPU %.2f us/query\n", s, q, q ? t / hz * 1e6 / q : 0 }'
done
echo "upstream queries during the measured runs: $((up_after - up_before)) (0 = all from cache)"
if ((up_after > up_before)); then
    grep 'query\[' "$TMP/upstream.log" | tail -n +"$((up_before + 1))" | head -5 | sed 's/^/  /'
fi
awk -v a="${SUM_T[svcd]}" -v qa="${SUM_Q[svcd]}" -v b="${SUM_T[unbound]}" -v qb="${SUM_Q[unbound]}" \
    'BEGIN { if (qa && qb && b) printf "svcd / unbound CPU per query: %.2f\n", (a / qa) / (b / qb) }'
