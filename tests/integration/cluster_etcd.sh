#!/usr/bin/env bash
# cluster_etcd: three svcd nodes sharing Services and Pods through a
# three-member etcd cluster (tests/cluster/lab.sh): cross-node VIP
# balancing, headless DNS across nodes, one etcd member down, all members
# down (keeps serving, /readyz degraded), node kill (its pods withdrawn
# after the lease TTL) and return, concurrent svcctl apply without
# duplicate allocation, delete.
source "$(dirname "$0")/lib.sh"
source "$SVCD_SRC/tests/cluster/lab.sh"

command -v etcd >/dev/null || { echo "SKIP: cluster_etcd: etcd not installed"; exit 0; }

cl_on_down() {
    local i
    if [[ $1 != 0 && $1 != 130 ]] || ((IT_FAILED > 0)); then
        for ((i = 1; i <= CL_NODES; i++)); do
            echo "----- svcd n$i (last 60 lines) -----"
            tail -n 60 "$CL_TMP/svcd$i.log" 2>/dev/null
        done
        echo "----- etcd e1 (last 20 lines) -----"
        tail -n 20 "$CL_TMP/etcd1.log" 2>/dev/null
    fi
}

cl_up 3 2 || it_fail "cluster lab setup"
it_wait 60 cl_etcd_ok 1 || it_fail "etcd cluster of 3 members up"
it_pass "etcd cluster of 3 members up"
for i in 1 2 3; do cl_svcd_start "$i"; done
for i in 1 2 3; do
    it_wait 60 eval '[[ $(cl_readyz '"$i"') == 200 ]]' || it_fail "svcd n$i ready"
done
it_pass "three svcd nodes joined"

cat >"$CL_TMP/web.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
EOF
out=$(cl_svcctl 1 apply -f "$CL_TMP/web.yaml" 2>&1)
it_assert_eq "$out" $'service/web created\nservice/web-headless created' "svcctl apply creates"
out=$(cl_svcctl 2 apply -f "$CL_TMP/web.yaml" 2>&1)
it_assert_eq "$out" $'service/web unchanged\nservice/web-headless unchanged' "re-apply unchanged"
VIP=$(cl_exec 1 etcdctl get /svcd/services/default/web --print-value-only | jq -r .spec.clusterIP)
[[ $VIP == 10.96.* ]] || it_fail "web got a ClusterIP from 10.96.0.0/16 (got '$VIP')"
it_pass "web has ClusterIP $VIP"
it_assert_eq "$(cl_exec 1 etcdctl get /svcd/alloc/clusterip/"$VIP" --print-value-only)" \
    "default/web" "allocation key names its owner"

ALL6=$(printf '%s\n' 10.244.1.11 10.244.1.12 10.244.2.11 10.244.2.12 10.244.3.11 10.244.3.12)
for i in 1 2 3; do
    it_wait_eq 30 "$ALL6" cl_dig "$i" web-headless.default.svc.cluster.local ||
        it_fail "n$i: headless DNS lists every node's pods (got: $IT_LAST)"
done
it_pass "headless DNS lists all six pods on every node"
it_assert_eq "$(cl_dig 3 web.default.svc.cluster.local)" "$VIP" "n3 answers the ClusterIP"

# Cross-node balancing: from node 1 and from a pod on node 1, the VIP
# reaches pods on nodes 2 and 3.
seen_from() {   # seen_from CMD... : names answered over up to 60 tries
    local names="" n
    for ((t = 0; t < 60; t++)); do
        n=$("$@" 2>/dev/null) || continue
        [[ " $names " == *" $n "* ]] || names+=" $n"
        [[ $names == *web-n2-* && $names == *web-n3-* && $names == *web-n1-* ]] && break
    done
    echo "$names"
}
names=$(seen_from cl_exec 1 curl -s --max-time 3 "http://$VIP/")
it_assert_contains "$names" "web-n2-" "node 1 reaches node 2's pods through the VIP"
it_assert_contains "$names" "web-n3-" "node 1 reaches node 3's pods through the VIP"
names=$(seen_from ip netns exec "$CL-n1p1" curl -s --max-time 3 "http://$VIP/")
it_assert_contains "$names" "web-n3-" "a pod on node 1 reaches node 3's pods through the VIP"
it_check "n2 programs node 1's pods into nftables" \
    eval 'cl_exec 2 nft list table inet svcd | grep -q 10.244.1.11'

# One etcd member down: changes still flow, the nodes stay ready.
cl_etcd_stop 2
cl_add_pod 1 3
ALL7=$(printf '%s\n' 10.244.1.11 10.244.1.12 10.244.1.13 10.244.2.11 10.244.2.12 10.244.3.11 10.244.3.12)
for i in 2 3; do
    it_wait_eq 40 "$ALL7" cl_dig "$i" web-headless.default.svc.cluster.local ||
        it_fail "member e2 down: n$i sees the new pod on n1 (got: $IT_LAST)"
done
it_pass "one member down: a new pod on n1 reaches n2 and n3"
for i in 1 2 3; do
    it_wait 40 eval '[[ $(cl_readyz '"$i"') == 200 ]]' || it_fail "member e2 down: n$i ready"
done
it_pass "one member down: every node ready"
cl_etcd_start 2

# All members down: every node keeps serving what it had; /readyz says why.
for i in 1 2 3; do cl_etcd_stop "$i"; done
it_wait 40 eval '[[ $(cl_readyz 1) == 503 ]]' || it_fail "all members down: n1 /readyz 503"
body=$(cl_exec 1 curl -s --max-time 5 http://127.0.0.1:9180/readyz)
it_assert_contains "$body" "etcd degraded" "/readyz names the degraded etcd"
it_assert_eq "$(cl_dig 2 web-headless.default.svc.cluster.local)" "$ALL7" \
    "all members down: n2 still answers every pod"
names=$(seen_from cl_exec 1 curl -s --max-time 3 "http://$VIP/")
it_assert_contains "$names" "web-n3-" "all members down: the VIP still reaches node 3"
for i in 1 2 3; do cl_etcd_start "$i"; done
for i in 1 2 3; do
    it_wait 90 eval '[[ $(cl_readyz '"$i"') == 200 ]]' || it_fail "members back: n$i ready again"
done
it_pass "members back: every node reconnected"
it_wait_eq 30 "$ALL7" cl_dig 1 web-headless.default.svc.cluster.local ||
    it_fail "members back: n1 still lists every pod (got: $IT_LAST)"

# Node kill: node 3's svcd dies; its pods leave the other nodes after the TTL.
cl_svcd_kill 3
NO3=$(printf '%s\n' 10.244.1.11 10.244.1.12 10.244.1.13 10.244.2.11 10.244.2.12)
for i in 1 2; do
    it_wait_eq 40 "$NO3" cl_dig "$i" web-headless.default.svc.cluster.local ||
        it_fail "n3 killed: its pods withdrawn on n$i (got: $IT_LAST)"
done
it_wait 20 eval '! cl_exec 1 nft list table inet svcd | grep -q 10.244.3.11' ||
    it_fail "n3 killed: n1's rules drop n3's pods"
it_pass "node kill: its pods withdrawn from DNS and rules"
cl_svcd_start 3
for i in 1 2; do
    it_wait_eq 40 "$ALL7" cl_dig "$i" web-headless.default.svc.cluster.local ||
        it_fail "n3 back: n$i lists its pods again (got: $IT_LAST)"
done
it_pass "node return: its pods republished"

# Concurrent apply from two nodes into a small range: no address twice.
for f in a b; do
    for k in 1 2 3 4 5 6; do
        printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s%s}\nspec:\n  selector: {app: %s}\n  ports: [{port: 80}]\n---\n' \
            "$f" "$k" "$f"
    done >"$CL_TMP/$f.yaml"
done
cp "$CL_TMP/web.yaml" "$CL_TMP/same.yaml"
sed -i 's/name: web}/name: same}/; s/name: web-headless}/name: same-headless}/' "$CL_TMP/same.yaml"
cl_svcctl 2 --service-cidr 10.97.0.0/28 apply -f "$CL_TMP/a.yaml" >"$CL_TMP/apply-a.out" 2>&1 &
pa=$!
cl_svcctl 3 --service-cidr 10.97.0.0/28 apply -f "$CL_TMP/b.yaml" >"$CL_TMP/apply-b.out" 2>&1 &
pb=$!
cl_svcctl 2 --service-cidr 10.97.0.0/28 apply -f "$CL_TMP/same.yaml" >"$CL_TMP/apply-s2.out" 2>&1 &
ps2=$!
cl_svcctl 3 --service-cidr 10.97.0.0/28 apply -f "$CL_TMP/same.yaml" >"$CL_TMP/apply-s3.out" 2>&1 &
ps3=$!
for p in $pa $pb $ps2 $ps3; do
    wait "$p" || it_fail "concurrent apply failed: $(cat "$CL_TMP"/apply-*.out)"
done
ips=$(for s in a1 a2 a3 a4 a5 a6 b1 b2 b3 b4 b5 b6 same; do
    cl_exec 1 etcdctl get "/svcd/services/default/$s" --print-value-only | jq -r .spec.clusterIP
done | sort)
it_assert_eq "$(echo "$ips" | grep -c '^10\.97\.0\.')" 13 "13 Services got an address in 10.97.0.0/28"
it_assert_eq "$(echo "$ips" | sort -u | wc -l)" 13 "no address handed out twice"
it_assert_eq "$(cl_exec 1 etcdctl get --prefix /svcd/alloc/clusterip/10.97.0. --keys-only | grep -c .)" \
    13 "one allocation key per Service"
it_assert_eq "$(cl_exec 1 etcdctl get --prefix /svcd/alloc/clusterip/ --print-value-only | grep -c '^default/same$')" \
    1 "the Service applied from two nodes at once holds one address"
SAMEIP=$(cl_exec 1 etcdctl get /svcd/services/default/same --print-value-only | jq -r .spec.clusterIP)
it_wait_eq 30 "$SAMEIP" cl_dig 2 same.default.svc.cluster.local ||
    it_fail "n2 answers same's address (got: $IT_LAST)"

# Delete: gone from every node, its address released.
out=$(cl_svcctl 3 delete -f "$CL_TMP/web.yaml" 2>&1)
it_assert_eq "$out" $'service "web" deleted\nservice "web-headless" deleted' "svcctl delete"
for i in 1 2 3; do
    it_wait_eq 30 "" cl_dig "$i" web.default.svc.cluster.local ||
        it_fail "n$i: web gone from DNS (got: $IT_LAST)"
    it_wait 30 eval '! cl_exec '"$i"' nft list table inet svcd | grep -qF "$VIP"' ||
        it_fail "n$i: VIP $VIP gone from nftables"
done
it_pass "deleted Service gone from DNS and rules on every node"
it_assert_eq "$(cl_exec 1 etcdctl get /svcd/alloc/clusterip/"$VIP" --print-value-only)" "" \
    "its allocation key released"
out=$(cl_svcctl 1 delete -f "$CL_TMP/web.yaml" 2>&1)
it_assert_contains "$out" 'services "web" not found' "deleting again says NotFound"

it_finish
