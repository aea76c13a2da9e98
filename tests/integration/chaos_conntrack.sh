#!/usr/bin/env bash
# chaos_conntrack: 10 UDP Services are removed while conntrack holds 100k
# entries. svcd deletes the entries NATed to their endpoints through one
# non-blocking ctnetlink socket (kernel-filtered dumps, batched deletes) in
# slices between other events: DNS keeps answering every 10 ms, the
# Services leave DNS and their NATed entries are gone within a second,
# while the 100k unrelated entries and direct flows to the pods stay.
set -u
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || { echo "SKIP: chaos_conntrack: no dig"; exit 0; }
command -v conntrack >/dev/null || { echo "SKIP: chaos_conntrack: no conntrack"; exit 0; }

lab_up 2 "" app=udp || it_fail "lab_up 2"
P1=10.244.0.11 P2=10.244.0.12
{
    for i in $(seq 0 9); do
        cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: u$i, namespace: default}
spec:
  clusterIP: 10.96.0.$((70 + i))
  selector: {app: udp}
  ports:
  - {port: 53, targetPort: 5300, protocol: UDP}
YAML
    done
} | lab_write_manifest svc-udp.yaml
lab_write_manifest svc-keep.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: keep, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {port: 80}
YAML
svcd_start_lab --dns-listen 127.0.0.1:5353 || it_fail "svcd did not become ready"
it_check "u9 resolves" it_wait_eq 10 10.96.0.79 dns_ask u9.default.svc.cluster.local

# 100,000 unrelated UDP entries, 2,000 NATed to the two endpoints through
# the 10 VIPs (100 per VIP and pod), 100 direct flows to a pod.
python3 - "$P1" "$P2" >"$LAB_TMP/ct.txt" <<'PY'
import sys
p1, p2 = sys.argv[1], sys.argv[2]
out = []
for i in range(100000):
    a, b, c, sp = 10 + i // 60000, (i // 250) % 240, i % 250 + 1, 1024 + i % 60000
    out.append(f"-I -p udp -s 10.9.{b}.{c} -d 10.8.0.{a} --sport {sp} --dport 53 "
               f"-r 10.8.0.{a} -q 10.9.{b}.{c} --reply-port-src 53 --reply-port-dst {sp} -t 600")
for v in range(10):
    for k, pod in enumerate((p1, p2)):
        for j in range(100):
            sp = 20000 + v * 1000 + k * 100 + j
            out.append(f"-I -p udp -s 10.244.0.1 -d 10.96.0.{70 + v} --sport {sp} --dport 53 "
                       f"-r {pod} -q 10.244.0.1 --reply-port-src 5300 --reply-port-dst {sp} -t 600")
for j in range(100):
    sp = 40000 + j
    out.append(f"-I -p udp -s 10.244.0.1 -d {p1} --sport {sp} --dport 5300 "
               f"-r {p1} -q 10.244.0.1 --reply-port-src 5300 --reply-port-dst {sp} -t 600")
print("\n".join(out))
PY
lab_exec_node conntrack -R "$LAB_TMP/ct.txt" >/dev/null 2>&1
total=$(lab_exec_node conntrack -C)
it_check "conntrack holds the 102,100 entries ($total)" test "$total" -ge 102100
natted() { lab_exec_node conntrack -L -p udp 2>/dev/null | grep -c 'dst=10\.96\.0\.[78][0-9] '; }
direct() { lab_exec_node conntrack -L -p udp -d "$P1" 2>/dev/null | grep -c 'dport=5300'; }
it_assert_eq "$(natted)" 2000 "2,000 entries NATed to the endpoints"

chaos_gap_start keep.default.svc.cluster.local
rm -f "$LAB_MANIFESTS/svc-udp.yaml"
it_check "the removed Services leave DNS within 1 s" \
    it_wait_eq "$(chaos_scale)" "" dns_ask u9.default.svc.cluster.local
it_check "their NATed conntrack entries are gone within 1 s" \
    it_wait_eq "$(chaos_scale)" 0 natted
chaos_assert_gap 100 "10 UDP Services removed with 100k conntrack entries"
it_assert_eq "$(direct)" 100 "direct flows to the pod stay"
total=$(lab_exec_node conntrack -C)
it_check "the 100,000 unrelated entries stay ($total)" test "$total" -ge 100100
deleted=$(admin_get /metrics | awk '/^svcd_nft_conntrack_deleted_total / { print $2 }')
it_assert_eq "$deleted" 2000 "svcd_nft_conntrack_deleted_total"
it_finish
