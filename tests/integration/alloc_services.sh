#!/usr/bin/env bash
# alloc_services: svcd does the API server's allocation for manifests.
# A Service without clusterIP gets one from --service-cidr (dig answers it,
# curl through it reaches a pod); restarting svcd with the same --state-dir
# keeps it; a NodePort Service without nodePort gets one from
# --node-port-range, reachable from outside; allocations are in the state
# file before they are served.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 2 || it_fail "lab_up 2"
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: auto}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: dual}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: np}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
YAML
state=$LAB_TMP/state
svcd_start_lab --dns-listen 127.0.0.1:53 --node-port-range 31000-31009 \
    || it_fail "svcd did not become ready"
all=" web-1 web-2 "
in_set() { [[ -n $2 && $1 == *" $2 "* ]]; }

it_wait 5 test -s "$state/allocations.json" || it_fail "no $state/allocations.json"
# the first dynamic address of 10.96.0.0/16 is above its lower band (256)
vip=$(dns_ask auto.default.svc.cluster.local A)
it_assert_eq "$vip" "10.96.1.0" "dig: the allocated VIP of a Service without clusterIP"
it_assert_contains "$(cat "$state/allocations.json")" "\"10.96.1.0\"" "it is in the state file"
r=$(node_curl "http://$vip/"); it_check "curl through the allocated VIP reaches a pod ($r)" in_set "$all" "$r"
it_assert_contains "$(svcctl_run get services auto)" "10.96.1.0" "svcctl get services shows it"
it_assert_contains "$(admin_get /api/services)" "10.96.1.0" "/api/services shows it"
dual=$(dns_ask dual.default.svc.cluster.local A)/$(dns_ask dual.default.svc.cluster.local AAAA)
it_assert_eq "$dual" "10.96.1.1/fd00:10:96::100" "PreferDualStack: one address of each family"
r=$(node_curl "http://[fd00:10:96::100]/"); it_check "curl through the IPv6 VIP ($r)" in_set "$all" "$r"

npvip=$(dns_ask np.default.svc.cluster.local A)
it_assert_eq "$npvip" "10.96.1.2" "NodePort Service: VIP"
nport=$(admin_get /api/services | jq -r '.items[] | select(.name == "np") | .ports[0].nodePort')
it_assert_eq "$nport" "31000" "nodePort allocated from --node-port-range"
r=$(ext_curl "http://$LAB_NODEPORT_IP4:$nport/"); it_check "ext -> allocated nodePort ($r)" in_set "$all" "$r"

# Restart with the same state dir: same addresses and ports, even after
# a new Service that sorts first takes the first free address.
svcd_stop
lab_write_manifest a-first.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: newcomer}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
YAML
svcd_start_lab --dns-listen 127.0.0.1:53 --node-port-range 31000-31009 \
    || it_fail "svcd did not restart"
it_assert_eq "$(dns_ask auto.default.svc.cluster.local A)" "10.96.1.0" "restart: same VIP"
it_assert_eq "$(dns_ask np.default.svc.cluster.local A)" "10.96.1.2" "restart: same NodePort VIP"
it_assert_eq "$(dns_ask newcomer.default.svc.cluster.local A)" "10.96.1.3" \
    "restart: a new Service gets a never-used address"
nport=$(admin_get /api/services | jq -r '.items[] | select(.name == "np") | .ports[0].nodePort')
it_assert_eq "$nport" "31000" "restart: same nodePort"
r=$(node_curl "http://10.96.1.0/"); it_check "curl through the VIP after the restart ($r)" in_set "$all" "$r"

# A deleted Service's address goes back, but is reused only when no
# never-used one is left.
rm -f "$LAB_MANIFESTS/a-first.yaml"
it_wait 5 bash -c "! grep -q default/newcomer '$state/allocations.json'" ||
    it_fail "the deleted Service's allocation is not released"
lab_write_manifest later.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: later}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
YAML
it_wait_eq 5 "10.96.1.4" dns_ask later.default.svc.cluster.local A
it_assert_eq "$IT_LAST" "10.96.1.4" "a new Service does not get the released 10.96.1.3"

svcd_stop
it_finish
