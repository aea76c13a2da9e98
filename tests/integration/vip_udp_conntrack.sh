#!/usr/bin/env bash
# vip_udp_conntrack: when a UDP endpoint leaves a Service, svcd deletes the
# conntrack entries NATed to it (ctnetlink), so a client that keeps sending
# from the same source port moves to a live endpoint at once instead of
# talking to the dead one until the UDP conntrack timeout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 2 || it_fail "lab_up 2"
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  clusterIP: 10.96.0.70
  selector: {app: web}
  ports:
  - {port: 53, targetPort: echo, protocol: UDP}
YAML
svcd_start_lab || it_fail "svcd did not become ready"

ask() { echo ping | lab_exec_node timeout 3 socat -T1 - UDP4:10.96.0.70:53,sourceport=40000,reuseaddr 2>/dev/null; }
first=$(ask)
it_check "UDP through the VIP answered ($first)" test -n "$first"
it_assert_eq "$(ask)" "$first" "same source port: same endpoint (conntrack)"
it_check "a conntrack entry exists" bash -c "ip netns exec $LAB_NODE_NS conntrack -L -p udp --dport 53 2>/dev/null | grep -q 10.96.0.70"
lab_del_pod "$first"
# The flow (same source port) moves once svcd has withdrawn the endpoint and
# deleted the flow's conntrack entry; until then its datagrams go nowhere.
second=
moved() { second=$(ask); [[ -n $second && $second != "$first" ]]; }
it_check "after its endpoint left, the same flow reaches another one" it_wait 15 moved
m=$(admin_get /metrics)
it_check "conntrack deletions counted" bash -c "grep -Eq '^svcd_nft_conntrack_deleted_total [1-9]' <<<'$m'"
it_finish
