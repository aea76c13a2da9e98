#!/usr/bin/env bash
# vip_affinity: sessionAffinity ClientIP. Every new connection of a client
# goes to the same endpoint while the affinity entry is younger than
# timeoutSeconds (refreshed on use); different clients spread; after the
# timeout a client is balanced again; when its endpoint goes away the client
# moves to another one and sticks there. NodePort affinity too.
#
# Timing: stickiness is checked on "sticky" (timeoutSeconds 300), so no
# machine is slow enough for an entry to expire between two connections of a
# round; the expiry itself is checked on "brief" (timeoutSeconds 2) by
# sleeping past the timeout, which only ever makes the check stricter.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 3 || it_fail "lab_up 3"
for i in "${!LAB_PODS[@]}"; do lab_exec_node bridge link set dev "vp$i" hairpin on; done
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  type: NodePort
  clusterIP: 10.96.0.60
  clusterIPs: [10.96.0.60, "fd00:10:96::60"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  ports:
  - {port: 80, targetPort: 80, nodePort: 30090}
---
apiVersion: v1
kind: Service
metadata: {name: brief}
spec:
  clusterIP: 10.96.0.62
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}
  ports:
  - {port: 80, targetPort: 80}
---
apiVersion: v1
kind: Service
metadata: {name: loose}
spec:
  clusterIP: 10.96.0.61
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 80}
YAML
svcd_start_lab || it_fail "svcd did not become ready"

# N requests on new connections from WHERE; prints the distinct answers
answers() { # WHERE URL N
    local i out=""
    for ((i = 0; i < $3; i++)); do
        case $1 in
        node) out+="$(node_curl "$2" -H 'Connection: close')"$'\n' ;;
        ext) out+="$(ext_curl "$2" -H 'Connection: close')"$'\n' ;;
        *) out+="$(pod_curl "$1" "$2" -H 'Connection: close')"$'\n' ;;
        esac
    done
    sort -u <<<"$out" | grep -v '^$' | tr '\n' ' '
}

a=$(answers node http://10.96.0.60/ 20); it_check "node: 20 connections, one endpoint ($a)" test "$(wc -w <<<"$a")" = 1
# read right after the node's connections: the entry is there for 300 s
t=$(lab_exec_node nft list table inet svcd)
it_assert_contains "$t" "update @aff4_" "affinity recorded by a dynamic set update"
it_assert_contains "$t" "$LAB_NODE_IP4 . 10.96.0.60 . tcp . 80 timeout 5m expires" \
    "the node's entry is in an affinity set with the Service's timeout"
a=$(answers web-2 http://10.96.0.60/ 20); it_check "pod: 20 connections, one endpoint ($a)" test "$(wc -w <<<"$a")" = 1
a=$(answers node "http://[fd00:10:96::60]/" 20); it_check "v6: one endpoint ($a)" test "$(wc -w <<<"$a")" = 1
a=$(answers ext "http://$LAB_NODEPORT_IP4:30090/" 20); it_check "NodePort: one endpoint ($a)" test "$(wc -w <<<"$a")" = 1
a=$(answers node http://10.96.0.61/ 20); it_check "without affinity the same client spreads ($a)" test "$(wc -w <<<"$a")" -gt 1

# timeout: after 2 s without new connections the client is balanced again.
# The sleep is the point of the check (time must pass beyond the timeout); a
# slower machine only sleeps longer. 10 tries over 3 endpoints all landing on
# one endpoint by chance: p = 3^-9.
seen=""
for i in $(seq 1 10); do
    sleep 2.3
    seen+=" $(node_curl http://10.96.0.62/ -H 'Connection: close')"
done
it_check "after the timeout the client is balanced again ($seen)" test "$(tr ' ' '\n' <<<"$seen" | sort -u | grep -c .)" -gt 1

# endpoint removed: the client moves to another one and sticks to it
cur=$(node_curl http://10.96.0.60/)
cip=${LAB_POD_IP4[$(lab_pod_index "$cur")]}
lab_del_pod "$cur"
gone() { ! admin_get /api/endpoints | grep -qF "\"$cip\""; }
it_check "svcd withdrew the deleted pod $cur" it_wait 15 gone
a=$(answers node http://10.96.0.60/ 10)
it_check "its endpoint gone, the client sticks to a new one ($cur -> $a)" \
    bash -c "[[ \$(wc -w <<<'$a') == 1 && '$a' != *'$cur'* ]]"
it_finish
