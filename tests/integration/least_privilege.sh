#!/usr/bin/env bash
# least_privilege: once started, svcd keeps only the capabilities it needs
# (effective, permitted and bounding sets; nothing inheritable), and still
# does everything: programs nftables for a Service added later, answers DNS
# on a port below 1024, and runs an exec readiness probe inside the pod's
# network namespace as uid 65534.
set -u
source "$(dirname "$0")/lib.sh"
command -v capsh >/dev/null || { echo "SKIP: least_privilege: no capsh"; exit 0; }

lab_up 1 "" app=web || it_fail "lab_up"
P1=${LAB_PODS[1]}
f="$LAB_MANIFESTS/pod-$P1.yaml"
awk -v ns="svcd.io/netns: /run/netns/${LAB}-p1" '{ print }
    /^  uid:/ { print "  annotations:"; print "    " ns }
    /containerPort: 5300/ {
    print "    readinessProbe:"
    print "      exec:"
    print "        command: [curl, -sf, --max-time, \"1\", \"http://127.0.0.1:8080/healthz\"]"
    print "      periodSeconds: 1" }' "$f" | lab_write_manifest "pod-$P1.yaml"
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
svcd_start_lab --dns-listen 127.0.0.1:53 || it_fail "svcd did not become ready"

caps() { capsh --decode="$(awk -v f="$1" '$1 == f":" { print $2 }' "/proc/$SVCD_PID/status")" | sed 's/.*=//'; }
want="cap_kill,cap_setgid,cap_setuid,cap_net_bind_service,cap_net_admin,cap_sys_ptrace,cap_sys_admin"
want_dac="cap_dac_read_search,$want"
it_assert_eq "$(caps CapEff)" "$want_dac" "effective capabilities"
it_assert_eq "$(caps CapPrm)" "$want_dac" "permitted capabilities"
it_assert_eq "$(caps CapBnd)" "$want_dac" "bounding set"
it_assert_eq "$(caps CapInh)" "" "nothing inheritable"

ready_eps() { admin_get '/api/endpoints?name=web' | jq '[.items[0].endpoints[] | select(.ready)] | length'; }
it_check "the exec probe (pod netns, uid 65534) makes the pod ready" it_wait_eq 15 1 ready_eps
it_check "traffic through the VIP" it_wait 10 node_curl http://10.96.0.10/
it_assert_eq "$(dns_ask web.default.svc.cluster.local A 127.0.0.1)" 10.96.0.10 "DNS on port 53"
lab_write_manifest svc-late.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: late, namespace: default}
spec:
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 80}
YAML
it_check "a Service added after the drop is programmed in nftables" it_wait 10 node_curl http://10.96.0.20/
it_finish
