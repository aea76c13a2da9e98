#!/usr/bin/env bash
# vip_clusterip: ClusterIP Services through svcd's nftables rules, with real
# traffic in the lab: TCP and UDP, several ports per Service, targetPort by
# name and number, IPv4 / IPv6 / dual-stack, from the node (output hook) and
# from pods (prerouting), client source kept, hairpin (a pod reaching itself
# through its Service) masqueraded, and even load balancing: 1000 new
# connections over 3 endpoints land 33% +- 5% on each.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 3 || it_fail "lab_up 3"
# A kubelet puts pod bridge ports in hairpin mode (--hairpin-mode=hairpin-veth),
# otherwise a frame DNATed back to the pod it came from is never sent back
# out of its port.
for i in "${!LAB_PODS[@]}"; do lab_exec_node bridge link set dev "vp$i" hairpin on; done
lab_write_manifest svc-web.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:10:96::10"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: alt, port: 8081, targetPort: 8080}
  - {name: echo, port: 53, targetPort: echo, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: web6}
spec:
  clusterIP: "fd00:10:96::20"
  ipFamilies: [IPv6]
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 80}
YAML
svcd_start_lab --nft-table svcd || it_fail "svcd did not become ready"

vip=10.96.0.10 vip6=fd00:10:96::10
want_pods=" ${LAB_PODS[*]} "
in_pods() { [[ -n $1 && $want_pods == *" $1 "* ]]; }

# --- from the node (output hook) ---
r=$(node_curl "http://$vip/"); it_check "node -> v4 ClusterIP TCP:80 (targetPort by name) answered by a pod ($r)" in_pods "$r"
r=$(node_curl "http://$vip:8081/"); it_check "node -> v4 ClusterIP port 8081 -> targetPort 8080 ($r)" in_pods "$r"
r=$(node_curl "http://[$vip6]/"); it_check "node -> v6 ClusterIP of a dual-stack Service ($r)" in_pods "$r"
r=$(node_curl "http://[fd00:10:96::20]/"); it_check "node -> single-stack v6 Service ($r)" in_pods "$r"
r=$(udp_ask node "$vip" 53); it_check "node -> v4 ClusterIP UDP:53 -> echo port 5300 ($r)" in_pods "$r"
r=$(udp_ask node "$vip6" 53); it_check "node -> v6 ClusterIP UDP ($r)" in_pods "$r"

# --- from pods (prerouting) ---
r=$(pod_curl web-1 "http://$vip/"); it_check "pod -> v4 ClusterIP ($r)" in_pods "$r"
r=$(pod_curl web-2 "http://[$vip6]:8081/"); it_check "pod -> v6 ClusterIP port 8081 ($r)" in_pods "$r"
r=$(udp_ask web-3 "$vip" 53); it_check "pod -> UDP ClusterIP ($r)" in_pods "$r"

# --- client source kept for pod traffic; hairpin masqueraded ---
self=0 other=0
for i in $(seq 1 30); do
    c=$(pod_curl web-1 "http://$vip/clientip" -H 'Connection: close')
    if [[ $c == "${LAB_POD_IP4[1]}" ]]; then other=$((other + 1));
    elif [[ $c == "$LAB_NODE_IP4" ]]; then self=$((self + 1)); fi
done
it_check "pod -> other pods keeps the client IP ($other of 30)" test "$other" -gt 0
it_check "pod -> itself through the VIP works, masqueraded to the node IP ($self of 30)" test "$self" -gt 0
it_assert_eq "$((self + other))" 30 "every hairpin/non-hairpin answer has the expected source"
# hairpin path answered by the pod itself
hp=0
for i in $(seq 1 30); do
    [[ $(pod_curl web-2 "http://$vip/" -H 'Connection: close') == web-2 ]] && hp=$((hp + 1))
done
it_check "web-2 reached itself via its Service ($hp of 30)" test "$hp" -gt 0

# IPv6 hairpin too
self6=0 other6=0
for i in $(seq 1 30); do
    c=$(pod_curl web-1 "http://[$vip6]/clientip" -H 'Connection: close')
    if [[ $c == "${LAB_POD_IP6[1]}" ]]; then other6=$((other6 + 1));
    elif [[ $c == "$LAB_NODE_IP6" ]]; then self6=$((self6 + 1)); fi
done
it_check "v6: pod -> other pods keeps the client IP ($other6 of 30)" test "$other6" -gt 0
it_check "v6: hairpin masqueraded to the node's v6 address ($self6 of 30)" test "$self6" -gt 0
it_assert_eq "$((self6 + other6))" 30 "v6: every answer has the expected source"

# --- even balancing: 1000 new connections over 3 endpoints ---
cfg=$LAB_TMP/curl-lb.cfg
: >"$cfg"
for i in $(seq 1 1000); do
    printf 'url = "http://%s/"\nheader = "Connection: close"\noutput = "/dev/stdout"\n' "$vip" >>"$cfg"
done
dist=$(lab_exec_node timeout 120 curl -sS --max-time 2 -K "$cfg" | sort | uniq -c)
echo "$dist"
total=0
for i in "${!LAB_PODS[@]}"; do
    n=$(awk -v p="${LAB_PODS[$i]}" '$2 == p {print $1}' <<<"$dist")
    n=${n:-0}
    total=$((total + n))
    # 333 +- 4.5 standard deviations (sd 14.9): a fair random balancer
    # misses this range once in ~10^5 runs; a skewed one (e.g. 50/25/25) never
    # hits it
    it_check "${LAB_PODS[$i]} got $n of 1000 (expected 266..400)" test "$n" -ge 266 -a "$n" -le 400
done
it_assert_eq "$total" 1000 "all 1000 connections answered"

# --- the table is svcd's own, listable with nft ---
t=$(lab_exec_node nft list table inet svcd)
it_assert_contains "$t" "ip daddr . meta l4proto . th dport vmap @fe4" "nft list shows the dispatch rule"
it_assert_contains "$(lab_exec_node nft list map inet svcd fe4)" "10.96.0.10 . tcp . 80 : goto lb4_3" \
    "nft list shows the VIP dispatched to the 3-endpoint chain"
it_assert_contains "$t" "numgen random mod 3" "nft list shows the lb chain"
it_finish
