#!/usr/bin/env bash
# bench/cluster/run.sh: cluster mode at scale, in namespaces (tests/cluster/lab.sh).
#
#   sudo bench/cluster/run.sh [SERVICES [ENDPOINTS [FLIPS]]]   (default 10000 10 40)
#
# 3 nodes, each with an etcd member and svcd (nftables on). SERVICES Services
# (applied with svcctl into etcd first), each selecting ENDPOINTS Pods spread
# round-robin over the nodes (Pods come from each node's manifests; no pod
# processes). Prints:
#   - svcctl apply time for all Services (one txn per Service, allocation included)
#   - converge: time from starting the three svcd until every node has every
#     endpoint ready in its store and its nftables synced (/readyz 200)
#   - propagation: FLIPS times, one Pod on node 1 flips Ready in its manifest;
#     from node 1's "loaded" log line to the other nodes' nftables sync *and*
#     DNS zone update of that generation (log timestamps, one clock); p50/p99
#   - etcd traffic per change: svcd_etcd_{sent,received}_bytes over the flips,
#     summed over the nodes, divided by FLIPS
# Figures only; nothing is asserted. Needs root, etcd, jq.
set -uo pipefail
N_SVC=${1:-10000}
N_EP=${2:-10}
FLIPS=${3:-40}
cd "$(dirname "$0")/../.." || exit 1
: "${CL_BUILD:=$(pwd)/build}"
export SVCD_BUILD=$CL_BUILD
CL_TTL=10
source tests/cluster/lab.sh
now_ms() { date +%s%3N; }
metric() { cl_exec "$1" curl -s --max-time 10 http://127.0.0.1:9180/metrics | awk -v m="$2" '$1 == m { print $2 }'; }

cl_up 3 0 || exit 1
cl_etcd_wait 60 || { echo "etcd did not start"; exit 1; }

echo "generating $N_SVC Services x $N_EP endpoints"
python3 - "$N_SVC" "$N_EP" "$CL_TMP" <<'EOF'
import sys
n_svc, n_ep, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
files = {i: open(f"{tmp}/m{i}/pods.yaml", "w") for i in (1, 2, 3)}
with open(f"{tmp}/services.yaml", "w") as f:
    for s in range(n_svc):
        f.write(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{s}}}\n"
                f"spec:\n  selector: {{app: s{s}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n")
idx = 0
for s in range(n_svc):
    for e in range(n_ep):
        node = e % 3 + 1
        if s == 0 and e == 0:
            idx += 1
            continue                          # the flip pod lives in its own file
        ip = f"10.{128 + (idx >> 16)}.{(idx >> 8) & 255}.{idx & 255}"
        files[node].write(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{s}-{e}, labels: {{app: s{s}}}}}\n"
                          f"spec: {{nodeName: n{node}, containers: [{{name: c}}]}}\n"
                          f"status: {{phase: Running, podIP: {ip}}}\n")
        idx += 1
EOF
flip_pod() {   # flip_pod True|False
    cat >"$CL_TMP/m1/.flip.tmp" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: p0-0, labels: {app: s0}}
spec: {nodeName: n1, containers: [{name: c}]}
status: {phase: Running, podIP: 10.128.0.0, conditions: [{type: Ready, status: "$1"}]}
EOF
    mv "$CL_TMP/m1/.flip.tmp" "$CL_TMP/m1/flip.yaml"
}
flip_pod True

t0=$(now_ms)
cl_svcctl 1 apply -f "$CL_TMP/services.yaml" >/dev/null || { echo "svcctl apply failed"; exit 1; }
t1=$(now_ms)
echo "svcctl apply: $N_SVC Services in $((t1 - t0)) ms ($(( (t1 - t0) * 1000 / N_SVC )) us per Service)"

total=$((N_SVC * N_EP))
t0=$(now_ms)
for i in 1 2 3; do cl_svcd_start "$i" --log-level debug; done
for i in 1 2 3; do
    for ((k = 0; k < 6000; k++)); do
        r=$(metric "$i" 'svcd_endpoints{condition="ready"}')
        [[ ${r%.*} == "$total" && $(cl_readyz "$i") == 200 ]] && break
        sleep 0.1
    done
    echo "converge: node n$i has $r/$total ready endpoints, rules synced, after $(( $(now_ms) - t0 )) ms"
done

# Propagation of one endpoint change.
declare -a lat=()
tx0=0 rx0=0
for i in 1 2 3; do
    tx0=$((tx0 + $(metric "$i" svcd_etcd_sent_bytes | cut -d. -f1)))
    rx0=$((rx0 + $(metric "$i" svcd_etcd_received_bytes | cut -d. -f1)))
done
ts() { # ts LOGLINE -> ms since epoch
    date -d "$(echo "$1" | cut -c1-23 | tr T ' ')Z" +%s%3N
}
state=True
for ((f = 0; f < FLIPS; f++)); do
    [[ $state == True ]] && state=False || state=True
    declare -A base=()
    for i in 2 3; do base[$i]=$(wc -l <"$CL_TMP/svcd$i.log"); done
    b1=$(wc -l <"$CL_TMP/svcd1.log")
    flip_pod "$state"
    # wait until node 1 loaded it and both others logged a DNS zone and an nft sync after it
    for ((k = 0; k < 200; k++)); do
        l1=$(tail -n +$((b1 + 1)) "$CL_TMP/svcd1.log" | grep -m1 'flip.yaml: loaded')
        ok=1
        for i in 2 3; do
            tail -n +$((base[$i] + 1)) "$CL_TMP/svcd$i.log" | grep -q 'nft: incremental sync' || ok=0
            tail -n +$((base[$i] + 1)) "$CL_TMP/svcd$i.log" | grep -q 'dns: zone at generation' || ok=0
        done
        [[ -n $l1 && $ok == 1 ]] && break
        sleep 0.05
    done
    [[ -n $l1 ]] || { echo "flip $f: node 1 did not load the file"; continue; }
    t_src=$(ts "$l1")
    for i in 2 3; do
        a=$(tail -n +$((base[$i] + 1)) "$CL_TMP/svcd$i.log" | grep -m1 'nft: incremental sync')
        b=$(tail -n +$((base[$i] + 1)) "$CL_TMP/svcd$i.log" | grep -m1 'dns: zone at generation')
        [[ -n $a && -n $b ]] || continue
        ta=$(ts "$a") tb=$(ts "$b")
        t=$((ta > tb ? ta : tb))
        lat+=($((t - t_src)))
    done
    sleep 0.2
done
tx1=0 rx1=0
for i in 1 2 3; do
    tx1=$((tx1 + $(metric "$i" svcd_etcd_sent_bytes | cut -d. -f1)))
    rx1=$((rx1 + $(metric "$i" svcd_etcd_received_bytes | cut -d. -f1)))
done
if ((${#lat[@]})); then
    sorted=$(printf '%s\n' "${lat[@]}" | sort -n)
    n=${#lat[@]}
    p50=$(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p")
    p99=$(echo "$sorted" | sed -n "$(( (n * 99 + 99) / 100 ))p")
    echo "propagation (node 1 file loaded -> nodes 2,3 rules and DNS): $n samples, p50 ${p50} ms, p99 ${p99} ms, max $(echo "$sorted" | tail -1) ms"
fi
echo "etcd traffic per change (3 nodes, bodies incl. keepalives over the period): sent $(( (tx1 - tx0) / FLIPS )) B, received $(( (rx1 - rx0) / FLIPS )) B"
