#!/usr/bin/env bash
# bench/propagation/run.sh: change -> DNS answer and change -> nftables commit
# latency of the real svcd at 1,000 Services (issue 5: p99 < 20 ms).
#
# Builds a lab (tests/lab/lab.sh: node + pod network namespaces, deleted on
# exit), writes 1,000 Services into its manifest directory, starts svcd in
# the node namespace, and runs prop_bench (bench/propagation/prop_bench.c)
# there twice:
#   1. manifest mode: 200 flips of Service "flip" between clusterIP
#      10.96.200.1 and 10.96.200.2 (write temp file + rename, as kubectl-ish
#      tooling would), timing (a) DNS answer changed, (b) rules committed;
#   2. probe mode: 200 flips of lab pod live-1's podserver --fail-file
#      (its httpGet readinessProbe on /healthz: period 1 s, failure and
#      success threshold 1), timing (c) the headless Service "live-h" DNS
#      answer changed, (d) the ClusterIP Service "live" rules committed, and
#      the same from the probe answer seen on the wire (c', d').
# See README.md for the method.
#
# usage: bench/propagation/run.sh [BUILD_DIR] [FLIPS]
#   BUILD_DIR defaults to $SVCD_BUILD or build; FLIPS 200 (per mode).
# Environment: PROP_CSV_DIR=DIR keeps the per-flip CSV files there;
#   PROP_PIN=0 does not pin svcd and prop_bench to separate CPUs;
#   PROP_LIVE_PODS=N real lab pods behind live/live-h (default 8);
#   PROP_SVCD_ARGS="--sync-min-interval-ms 0" extra svcd flags.
# Needs root. Prints the figures; exits 1 if any flip was not seen.
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SVCD_SRC=$SRC
export SVCD_BUILD=${1:-${SVCD_BUILD:-$SRC/build}}
SVCD_BUILD=$(cd "$SVCD_BUILD" && pwd) || exit 1
FLIPS=${2:-200}
PIN=${PROP_PIN:-1}
FILLERS=997          # + flip + live + live-h = 1000 Services
LIVE=${PROP_LIVE_PODS:-8}   # real lab pods behind live / live-h
PODS_PER_FILLER=3

for b in svcd prop_bench podserver; do
    [[ -x $SVCD_BUILD/$b ]] || { echo "run.sh: no $SVCD_BUILD/$b (cmake --build $SVCD_BUILD)"; exit 1; }
done
[[ $FLIPS =~ ^[0-9]+$ && $FLIPS -ge 1 && $FLIPS -le 2000 ]] || { echo "run.sh: FLIPS 1-2000"; exit 2; }

export LAB_QUIET=1 LAB_POD_RESOLV=0
# lib.sh: lab + svcd helpers; it prints SKIP and exits 0 when not root.
# shellcheck source=../../tests/integration/lib.sh
source "$SRC/tests/integration/lib.sh"
[[ $(id -u) == 0 ]] || exit 1

die() { echo "run.sh: $*" >&2; exit 1; }

lab_up "$LIVE" "" app=live || die "lab_up failed"
M=$LAB_MANIFESTS
echo "# lab $LAB, svcd $SVCD_BUILD/svcd, $(nproc) CPUs, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- manifests --------------------------------------------------------------
# The two real lab pods, now with an httpGet readinessProbe on /healthz.
for i in $(seq "$LIVE"); do
    lab_write_manifest "pod-live-$i.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: live-$i
  namespace: default
  uid: $LAB-live-$i
  labels: {app: live}
spec:
  nodeName: $LAB_NODE_NAME
  containers:
  - name: server
    image: svcd-lab/podserver
    ports:
    - {name: http, containerPort: 80, protocol: TCP}
    readinessProbe:
      httpGet: {path: /healthz, port: 80}
      periodSeconds: 1
      failureThreshold: 1
      successThreshold: 1
      timeoutSeconds: 1
status:
  phase: Running
  hostIP: $LAB_NODE_IP4
  podIP: ${LAB_POD_IP4[$i]}
  podIPs:
  - ip: ${LAB_POD_IP4[$i]}
  conditions:
  - {type: Ready, status: "True"}
EOF
done

lab_write_manifest svc-live.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: live, namespace: default}
spec:
  clusterIP: 10.96.100.10
  selector: {app: live}
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: live-h, namespace: default}
spec:
  clusterIP: None
  selector: {app: live}
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP}
EOF

# The Service the manifest flips rewrite: two versions differing in clusterIP.
flip_svc() {
    cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: flip, namespace: default}
spec:
  clusterIP: $1
  selector: {app: f0001}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
EOF
}
flip_svc 10.96.200.1 >"$LAB_TMP/flip-a.yaml"
flip_svc 10.96.200.2 >"$LAB_TMP/flip-b.yaml"
cp "$LAB_TMP/flip-a.yaml" "$LAB_TMP/.flip.tmp" && mv "$LAB_TMP/.flip.tmp" "$M/svc-flip.yaml"

# Fillers: ClusterIP Services f0001..f0997 (10.96.1.1 ...), each selecting
# PODS_PER_FILLER manifest-only pods with addresses 10.244.1.1 ... (inside
# the cluster's pod range, outside the lab's bridge subnet: never routed).
awk -v nsvc=$FILLERS -v npod=$PODS_PER_FILLER -v node="$LAB_NODE_NAME" 'BEGIN {
    k = 0
    for (i = 1; i <= nsvc; i++) {
        name = sprintf("f%04d", i)
        printf "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n", name
        printf "spec:\n  clusterIP: 10.96.%d.%d\n  selector: {app: %s}\n", 1 + int((i - 1) / 250), 1 + (i - 1) % 250, name
        printf "  ports:\n  - {name: http, port: 80, targetPort: 8080, protocol: TCP}\n"
        for (j = 1; j <= npod; j++) {
            ip = sprintf("10.244.%d.%d", 1 + int(k / 250), 1 + k % 250); k++
            printf "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s-%d, namespace: default, labels: {app: %s}}\n", name, j, name
            printf "spec:\n  nodeName: %s\n  containers:\n  - {name: c, image: filler}\n", node
            printf "status:\n  phase: Running\n  podIP: %s\n  podIPs:\n  - ip: %s\n", ip, ip
            printf "  conditions:\n  - {type: Ready, status: \"True\"}\n"
        }
    }
}' >"$LAB_TMP/.fillers.tmp" && mv "$LAB_TMP/.fillers.tmp" "$M/fillers.yaml"

# ---- svcd -----------------------------------------------------------------------
# shellcheck disable=SC2086  # PROP_SVCD_ARGS: extra svcd flags, split on spaces
svcd_start_lab --dns-listen 127.0.0.1:53 --log-level info ${PROP_SVCD_ARGS:-} || die "svcd did not start"
[[ -z ${PROP_SVCD_ARGS:-} ]] || echo "# extra svcd flags: $PROP_SVCD_ARGS"
if [[ $PIN == 1 && $(nproc) -ge 2 ]]; then
    taskset -a -p -c 0 "$SVCD_PID" >/dev/null
    BENCH_CPU=(taskset -c 1)
    echo "# svcd pinned to CPU 0, prop_bench to CPU 1 (podservers unpinned)"
else
    BENCH_CPU=()
fi

# Wait until all 1,000 Services are programmed and both live pods passed
# their first probe.
nsvc() { admin_get /api/services | jq '.items | length'; }
nft_svcs() { admin_get /metrics | awk '$1 == "svcd_nft_services" {print $2}'; }
live_h() { dns_ask live-h.default.svc.cluster.local A 127.0.0.1 | sort -V | tr '\n' ' '; }
ALL_LIVE=$(for i in $(seq "$LIVE"); do echo "${LAB_POD_IP4[$i]}"; done | sort -V | tr '\n' ' ')
# nftables syncs since the last call and their mean duration (svcd's own
# histogram) into SYNCS; not in $(...), it keeps its baseline in globals
_sum0=0 _cnt0=0 SYNCS=
sync_mean() {
    local m sum cnt
    m=$(admin_get /metrics)
    sum=$(awk '$1 == "svcd_nft_sync_duration_seconds_sum" {print $2}' <<<"$m")
    cnt=$(awk '$1 == "svcd_nft_sync_duration_seconds_count" {print $2}' <<<"$m")
    SYNCS=$(awk -v s="$sum" -v c="$cnt" -v s0="$_sum0" -v c0="$_cnt0" 'BEGIN {
        if (c > c0) printf "%d syncs, mean %.2f ms (svcd_nft_sync_duration_seconds)", c - c0, 1000 * (s - s0) / (c - c0);
        else printf "no syncs" }')
    _sum0=$sum _cnt0=$cnt
}
it_wait_eq 20 1000 nsvc || die "svcd has $IT_LAST Services, not 1000"
it_wait_eq 20 999 nft_svcs || die "svcd_nft_services is $IT_LAST, not 999 (1000 minus the headless one)"
it_wait_eq 10 "$ALL_LIVE" live_h || die "live-h answers '$IT_LAST', not '$ALL_LIVE'"
echo "# $(nsvc) Services ($(nft_svcs) with VIP rules), $(admin_get /api/pods | jq '.items | length') pods, store generation $(admin_generation)"
echo "# live VIP backends in nftables (nft list table inet svcd):"
lab_exec_node nft list table inet svcd 2>/dev/null | grep -o '10\.244\.0\.[0-9]*' | sort -V | uniq -c |
    awk '{printf "%s x%s  ", $2, $1} END {print ""}' | sed 's/^/#   /'
sync_mean; echo "# initial load: $SYNCS"
sleep 2
sync_mean; echo "# idle 2 s ($LIVE pods probed every 1 s, no readiness change): $SYNCS, store generation $(admin_generation)"

CSV=${PROP_CSV_DIR:-$LAB_TMP}
mkdir -p "$CSV"
rc=0

# Stall evidence: samples svcd's scheduler state and kernel wait channel
# every 20 ms (at most 12,000 samples, stops with svcd) into svcd-samples.txt.
(
    for ((k = 0; k < 12000; k++)); do
        [[ -r /proc/$SVCD_PID/stat ]] || break
        printf '%s %s %s\n' "$(date +%s.%N)" "$(awk '{print $3}' "/proc/$SVCD_PID/stat" 2>/dev/null)" \
            "$(cat "/proc/$SVCD_PID/wchan" 2>/dev/null)"
        sleep 0.02
    done >"$CSV/svcd-samples.txt"
) &
SAMPLER=$!

# ---- 1. manifest flips --------------------------------------------------------
"${BENCH_CPU[@]}" ip netns exec "$LAB_NODE_NS" "$SVCD_BUILD/prop_bench" --mode manifest \
    --name flip.default.svc.cluster.local --dns 127.0.0.1:53 \
    --file "$M/svc-flip.yaml" --content-a "$LAB_TMP/flip-a.yaml" --content-b "$LAB_TMP/flip-b.yaml" \
    --expect-a 10.96.200.1 --expect-b 10.96.200.2 \
    --count "$FLIPS" --timeout-ms 2000 --settle-ms 30 --max-seconds 40 \
    --csv "$CSV/manifest.csv" || rc=1
sync_mean; echo "# svcd during the manifest flips: $SYNCS"

# ---- 2. probe flips -------------------------------------------------------------
# Each flip fails or heals one live pod picked at random, after a random
# 0..1000/LIVE ms pause, so the flip lands at a random point of that pod's
# probe period (the pods' probes are spread over the period).
POD_ARGS=()
for i in $(seq "$LIVE"); do POD_ARGS+=(--pod "${LAB_POD_IP4[$i]}:$LAB_TMP/${LAB_PODS[$i]}.fail"); done
"${BENCH_CPU[@]}" ip netns exec "$LAB_NODE_NS" "$SVCD_BUILD/prop_bench" --mode probe \
    --name live-h.default.svc.cluster.local --dns 127.0.0.1:53 \
    "${POD_ARGS[@]}" --ifname br0 --jitter-ms $((1000 / LIVE)) \
    --count "$FLIPS" --timeout-ms 3000 --settle-ms 30 --max-seconds 150 \
    --csv "$CSV/probe.csv" || rc=1
sync_mean; echo "# svcd during the probe flips: $SYNCS"

# Sanity: prop_bench heals every pod at the end; all must be back.
rm -f "$LAB_TMP"/live-*.fail
if ! it_wait_eq 5 "$ALL_LIVE" live_h; then
    echo "# WARNING: live-h answers '$IT_LAST' after the run"; rc=1
fi
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the tails)"
echo "# svcd: $(admin_get /metrics | awk '$1 ~ /^svcd_nft_sync(s|_failures)_total$/ {printf "%s=%s ", $1, $2}')"
[[ -n ${PROP_CSV_DIR:-} ]] && echo "# per-flip CSV: $CSV/manifest.csv $CSV/probe.csv"
svcd_stop
kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null
echo "# svcd state samples (state wait-channel: count): $(awk '{print $2, $3}' "$CSV/svcd-samples.txt" | sort | uniq -c | sort -rn | head -6 | awk '{printf "%s %s: %s; ", $2, $3, $1}')"
[[ ${SVCD_EXIT:-0} == 0 ]] || { echo "# svcd exited with status $SVCD_EXIT"; rc=1; }
exit $rc
