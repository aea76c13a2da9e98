#!/usr/bin/env bash
# vip_affinity_cleanup: the sessionAffinity state of a removed endpoint or a
# deleted Service goes with it (kube-proxy deletes the endpoint's affinity
# set). svcd's affinity sets are shared per slot; after the change it lists
# them and deletes the entries of the changed slots / frontends. Clients of
# endpoints that keep their slot keep their entry.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 3 || it_fail "lab_up 3"
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  clusterIP: 10.96.0.64
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports:
  - {port: 80, targetPort: 80}
YAML
svcd_start_lab || it_fail "svcd did not become ready"

# every affinity entry of the frontend, "client slot" per line
entries() {
    local k
    for k in 0 1 2; do
        lab_exec_node nft list set inet svcd "aff4_$k" 2>/dev/null |
            grep -o "[0-9.]* \. 10\.96\.0\.64 \. tcp \. 80" | awk -v k="$k" '{print $1, k}'
    done | sort
}
node_has_entry() { entries | grep -q "^$LAB_NODE_IP4 "; }
no_node_entry() { ! node_has_entry; }
entry_count_is() { [[ $(entries | grep -c .) == "$1" ]]; }
no_entries() { [[ -z $(entries) ]]; }

# the node and two pods connect once each: three clients with an entry
n1=$(node_curl http://10.96.0.64/ -H 'Connection: close')
pod_curl web-2 http://10.96.0.64/ -H 'Connection: close' >/dev/null
pod_curl web-3 http://10.96.0.64/ -H 'Connection: close' >/dev/null
it_wait 10 entry_count_is 3
it_assert_eq "$(entries | grep -c .)" 3 "three clients recorded ($(entries | tr '\n' ';'))"
# the endpoint the node sticks to goes away: the entries of its slot (and of
# the slot moved into it) go; no entry appears
before=$(entries)
lab_del_pod "$n1" || it_fail "lab_del_pod $n1"
it_wait 15 no_node_entry ||
    it_fail "the node's entry (slot of removed $n1) still there: $(entries | tr '\n' ';')"
it_pass "entry of the client of the removed endpoint $n1 deleted"
after=$(entries)
it_assert_eq "$(comm -13 <(echo "$before") <(echo "$after") | grep -c .)" 0 \
    "no entry added by the removal (before: $(tr '\n' ';' <<<"$before") after: $(tr '\n' ';' <<<"$after"))"
r=$(node_curl http://10.96.0.64/ -H 'Connection: close')
it_check "the node is balanced again to a live endpoint ($r)" test -n "$r" -a "$r" != "$n1"
it_wait 10 node_has_entry || it_fail "new entry for the node not recorded"
# the Service goes: all its entries go
rm -f "$LAB_MANIFESTS/svc.yaml"
it_wait 15 no_entries || it_fail "entries left after the Service was deleted: $(entries | tr '\n' ';')"
it_pass "all affinity entries of the deleted Service removed"
it_finish
