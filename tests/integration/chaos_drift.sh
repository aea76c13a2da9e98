#!/usr/bin/env bash
# chaos_drift: svcd's nftables table is changed from outside while svcd runs
# (`nft delete table inet svcd`, then `nft flush chain` of one of its
# chains). svcd notices from the nftables event stream and restores its
# rules at once: traffic through the VIP works again within 1 s, the rules
# are as before, the repair is counted (svcd_nft_drift_repairs_total) and
# logged, and DNS keeps answering every 10 ms meanwhile.
set -u
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || { echo "SKIP: chaos_drift: no dig"; exit 0; }
command -v nft >/dev/null || { echo "SKIP: chaos_drift: no nft"; exit 0; }

lab_up 1 || it_fail "lab_up 1"
lab_write_manifest svc-web.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 80}
YAML
svcd_start_lab --dns-listen 127.0.0.1:5353 || it_fail "svcd did not become ready"
it_check "the VIP answers" it_wait 10 node_curl http://10.96.0.10/
ruleset() { lab_exec_node nft list table inet svcd 2>/dev/null | md5sum; }
before=$(ruleset)
repairs() { admin_get /metrics | awk '/^svcd_nft_drift_repairs_total / { print $2 }'; }

chaos_gap_start web.default.svc.cluster.local
lab_exec_node nft delete table inet svcd
it_check "the deleted table is restored within 1 s" it_wait_eq "$(chaos_scale)" "$before" ruleset
it_check "the VIP answers again" it_wait 5 node_curl http://10.96.0.10/
chaos_assert_gap 100 "table deleted from outside"
it_assert_eq "$(repairs)" 1 "the repair is counted"
it_check "the repair is logged" grep -q "table svcd table deleted by pid" "$SVCD_LOG"
it_check "/readyz is ok after the repair" it_wait_eq 5 200 admin_status /readyz

chain=$(lab_exec_node nft list table inet svcd | awk '$1 == "chain" && $2 != "" { print $2; exit }')
chaos_gap_start web.default.svc.cluster.local
lab_exec_node nft flush chain inet svcd "$chain"
it_check "the flushed chain $chain is restored within 1 s" it_wait_eq "$(chaos_scale)" "$before" ruleset
chaos_assert_gap 100 "chain flushed from outside"
it_check "the second repair is counted" it_wait_eq 5 2 repairs
it_assert_eq "$(admin_status /readyz)" 200 "/readyz is ok"
it_finish
