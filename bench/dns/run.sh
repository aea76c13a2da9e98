#!/usr/bin/env bash
# bench/dns/run.sh: server CPU per query of svcd's DNS against NSD, same
# names, same run, same network namespace (loopback only).
#
#   bench/dns/run.sh [BUILD_DIR] [SECONDS]     (root; default build, 8 s)
#
# Zone (as in /work/shared/FACTS.md): 1000 ClusterIP Services (one A each),
# 100 headless Services with 5 ready endpoints each (5 A), and 100 names
# that do not exist. The query file asks each name once per round.
# Each server is pinned to CPU 0, dnsperf to CPU 1 (`-c 4 -q 200`); server
# CPU = utime+stime from /proc/<pid>/stat before and after the run.
# Prints one line per server: queries/s and server CPU microseconds per
# query. Everything runs inside a fresh namespace that is deleted on exit.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
SECS=${2:-8}
[[ -x $BUILD/svcd ]] || { echo "no $BUILD/svcd (build first)"; exit 1; }
for t in dnsperf nsd taskset; do command -v $t >/dev/null || { echo "missing $t"; exit 1; }; done
[[ $(id -u) == 0 ]] || { echo "needs root (network namespace)"; exit 1; }

NS=svcdbench$$
TMP=$(mktemp -d /tmp/svcd-dnsbench.XXXXXX)
PIDS=()
cleanup() {
    # every process left in the namespace (servers and their children)
    local p
    trap - EXIT INT TERM
    for p in $(ip netns pids "$NS" 2>/dev/null) "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up
inns() { ip netns exec "$NS" "$@"; }

# ---- the names -------------------------------------------------------------
mkdir -p "$TMP/manifests"
ZONE=$TMP/cluster.local.zone
QF=$TMP/queries
{
    echo '$ORIGIN cluster.local.'
    echo '$TTL 5'
    echo '@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5'
    echo '@ IN NS ns.dns.cluster.local.'
    echo 'ns.dns IN A 127.0.0.1'
} >"$ZONE"
: >"$QF"
{
    for i in $(seq 0 999); do
        ip="10.96.$((i / 250)).$((i % 250 + 1))"
        printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: default}\n' "$i"
        printf 'spec:\n  clusterIP: %s\n  ports: [{port: 80}]\n' "$ip"
        echo "s$i.default.svc IN A $ip" >>"$ZONE"
        echo "s$i.default.svc.cluster.local A" >>"$QF"
    done
    for i in $(seq 0 99); do
        printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: h%d, namespace: default}\n' "$i"
        printf 'spec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n'
        printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
        printf 'metadata: {name: h%d-1, namespace: default, labels: {kubernetes.io/service-name: h%d}}\n' "$i" "$i"
        printf 'addressType: IPv4\nports: [{name: http, port: 80}]\nendpoints:\n'
        for k in 1 2 3 4 5; do
            ip="10.244.$i.$k"
            printf -- '- {addresses: ["%s"], conditions: {ready: true}}\n' "$ip"
            echo "h$i.default.svc IN A $ip" >>"$ZONE"
        done
        echo "h$i.default.svc.cluster.local A" >>"$QF"
    done
} >"$TMP/manifests/bench.yaml"
for i in $(seq 0 99); do echo "missing$i.default.svc.cluster.local A" >>"$QF"; done

# ---- servers ---------------------------------------------------------------
cat >"$TMP/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@5302
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$TMP"
    database: ""
    pidfile: "$TMP/nsd.pid"
    xfrdfile: "$TMP/xfrd.state"
    zonelistfile: "$TMP/zone.list"
    logfile: "$TMP/nsd.log"
    rrl-ratelimit: 0
    hide-version: yes
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: cluster.local
    zonefile: "$ZONE"
EOF

# utime + stime (fields 14, 15); comm (field 2) may contain spaces: cut after ')'
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
tree_ticks() {
    local total=0 p
    for p in "$@"; do
        [[ -r /proc/$p/stat ]] && total=$((total + $(cpu_ticks "$p")))
    done
    echo "$total"
}
nsd_pids() {    # nsd forks xfrd and its serving child: every nsd in the namespace
    local p
    for p in $(ip netns pids "$NS"); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == nsd* ]] && echo "$p"
    done
    return 0
}

run_one() {   # name port pid-list-function
    local label=$1 port=$2 pidsfn=$3 before after out q qps ticks hz
    hz=$(getconf CLK_TCK)
    # warm up, then measure
    inns taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$QF" -c 4 -q 200 -l 1 >/dev/null 2>&1 || true
    before=$(tree_ticks $($pidsfn))
    out=$(inns taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$QF" -c 4 -q 200 -l "$SECS" 2>&1)
    after=$(tree_ticks $($pidsfn))
    q=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
    qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")
    lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' <<<"$out")
    ticks=$((after - before))
    awk -v l="$label" -v q="$q" -v qps="$qps" -v t="$ticks" -v hz="$hz" -v lost="$lost" 'BEGIN {
        printf "%-6s %9.0f queries/s  %8d queries  lost %s  server CPU %6.2f us/query\n",
               l, qps, q, lost, (q > 0 ? t * 1e6 / hz / q : 0) }'
}

ip netns exec "$NS" taskset -c 0 "$BUILD/svcd" --manifests "$TMP/manifests" --state-dir "$TMP/state" --no-nft --admin-listen off \
    --dns-listen 127.0.0.1:5301 --upstream 127.0.0.1:5399 --log-level warn \
    >"$TMP/svcd.log" 2>&1 &
SVCD_PID=$!
PIDS+=("$SVCD_PID")
ip netns exec "$NS" taskset -c 0 nsd -d -c "$TMP/nsd.conf" >"$TMP/nsd.out" 2>&1 &
NSD_PID=$!
PIDS+=("$NSD_PID")

# wait for both to answer (bounded)
for _ in $(seq 50); do
    a=$(inns dig +short +time=1 +tries=1 -p 5301 @127.0.0.1 h99.default.svc.cluster.local A | wc -l)
    b=$(inns dig +short +time=1 +tries=1 -p 5302 @127.0.0.1 h99.default.svc.cluster.local A | wc -l)
    [[ $a == 5 && $b == 5 ]] && break
    sleep 0.2
done
[[ $a == 5 ]] || { echo "svcd not answering"; cat "$TMP/svcd.log"; exit 1; }
[[ $b == 5 ]] || { echo "nsd not answering"; cat "$TMP/nsd.out" "$TMP/nsd.log" 2>/dev/null; exit 1; }

svcd_pids() { echo "$SVCD_PID"; }
echo "zone: 1000 A names, 100 names x 5 A, 100 missing; dnsperf -c 4 -q 200 -l $SECS, server CPU 0, client CPU 1"
run_one svcd 5301 svcd_pids
run_one nsd 5302 nsd_pids
run_one svcd 5301 svcd_pids
run_one nsd 5302 nsd_pids
