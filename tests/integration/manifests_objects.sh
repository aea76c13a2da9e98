#!/usr/bin/env bash
# manifests_objects: errors cost one object, not the file. A Service whose
# clusterIP is outside --service-cidr (or held by another Service) is
# rejected on its own: the file's other Service is served, the rejected
# one's last good version stays, `svcctl status` and a metric name it.
# Workload kinds get one warning naming them; a Pod without status shows
# why it is no endpoint; subdirectories are read and watched (kubectl -R).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 2 || it_fail "lab_up 2"
svc() { # NAME [clusterIP line]
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n%s  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}\n' "$1" "${2:+  clusterIP: $2
}"
}
{ svc good 10.96.0.20; echo ---; svc edited 10.96.0.21; } | lab_write_manifest two.yaml
svcd_start_lab --dns-listen 127.0.0.1:53 || it_fail "svcd did not become ready"
all=" web-1 web-2 "
status_has() { svcctl_run status 2>/dev/null | grep -qF -- "$1"; }
in_set() { [[ -n $2 && $1 == *" $2 "* ]]; }

it_assert_eq "$(dns_ask edited.default.svc.cluster.local A)" "10.96.0.21" "edited: first version served"

# The second Service now claims an address outside the range; a third one
# in the same file is fine: the file is not lost, one object is.
{ svc good 10.96.0.20; echo ---; svc edited 192.168.7.7; echo ---; svc third; } |
    lab_write_manifest two.yaml
it_wait_eq 20 "10.96.1.0" dns_ask third.default.svc.cluster.local A
it_assert_eq "$IT_LAST" "10.96.1.0" "the file's other new Service is served (allocated VIP)"
it_assert_eq "$(dns_ask good.default.svc.cluster.local A)" "10.96.0.20" "its unchanged Service stays"
it_assert_eq "$(dns_ask edited.default.svc.cluster.local A)" "10.96.0.21" \
    "the rejected Service keeps its last good version"
r=$(node_curl "http://10.96.0.21/"); it_check "... which still carries traffic ($r)" in_set "$all" "$r"
st=$(svcctl_run status)
it_assert_contains "$st" "Service default/edited" "svcctl status names the object"
it_assert_contains "$st" "two.yaml" "... and the file"
it_assert_contains "$st" "spec.clusterIP: 192.168.7.7 is not in --service-cidr" "... and the field"
it_assert_contains "$(cat "$SVCD_LOG")" "two.yaml: Service default/edited: spec.clusterIP: 192.168.7.7" \
    "the log names file, object and field"
it_assert_contains "$(admin_get /metrics)" 'svcd_manifest_rejected_objects{reason="allocation"} 1' \
    "counted in svcd_manifest_rejected_objects"

# A clusterIP another Service holds is rejected the same way.
svc thief 10.96.0.20 | lab_write_manifest thief.yaml
it_wait 20 status_has "Service default/thief" || it_fail "thief.yaml not reported"
it_assert_contains "$(svcctl_run status)" "10.96.0.20 is already allocated to Service default/good" \
    "a clusterIP held by another Service is rejected"
it_assert_eq "$(dns_ask thief.default.svc.cluster.local A)" "" "... and not served"
it_assert_eq "$(dns_ask good.default.svc.cluster.local A)" "10.96.0.20" "... the holder keeps it"

# An invalid field: same, per object.
{ svc good 10.96.0.20; echo ---; svc edited 10.96.0.21; echo ---; svc third
  printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: badport}\nspec: {ports: [{port: 0}]}\n'; } |
    lab_write_manifest two.yaml
it_wait 20 status_has "Service default/badport" || it_fail "badport not reported"
st=$(svcctl_run status)
it_assert_not_contains "$st" "Service default/edited" "edited is valid again: no longer listed"
it_assert_contains "$st" "Service default/badport" "an invalid object is listed"
it_assert_contains "$st" "spec.ports[0].port: must be 1-65535" "... with its field"
it_assert_eq "$(dns_ask third.default.svc.cluster.local A)" "10.96.1.0" "the others stay served"

# Workloads: one warning naming the object, not repeated when the file is rewritten.
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-deploy}\nspec: {replicas: 2}\n' |
    lab_write_manifest deploy.yaml
it_wait 20 grep -q "Deployment default/web-deploy: svcd does not run workloads" "$SVCD_LOG" ||
    it_fail "no warning for the Deployment"
it_assert_contains "$(cat "$SVCD_LOG")" "podman kube play" "the warning says what to do"
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-deploy}\nspec: {replicas: 3}\n' |
    lab_write_manifest deploy.yaml
svc marker 10.96.0.30 | lab_write_manifest marker.yaml   # a later round: the rewrite was read
it_wait_eq 20 "10.96.0.30" dns_ask marker.default.svc.cluster.local A
it_assert_eq "$(grep -c 'Deployment default/web-deploy: svcd does not run' "$SVCD_LOG")" 1 \
    "one warning per workload"

# A Pod without status: svcctl shows why it is not an endpoint.
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: nostatus, labels: {app: web}}\nspec: {containers: [{name: c}]}\n' |
    lab_write_manifest nostatus.yaml
it_wait 20 svcctl_run get pods nostatus >/dev/null 2>&1 || it_fail "pod nostatus not loaded"
it_assert_contains "$(svcctl_run get pods nostatus)" "NoPodIP" "svcctl get pods: STATUS NoPodIP"
it_assert_contains "$(svcctl_run get pods nostatus -o wide)" "no status.podIP: svcd does not run pods" \
    "-o wide says why"

# Subdirectories: read recursively, and a new one is watched.
mkdir -p "$LAB_MANIFESTS/team-a/deeper"
svc sub 10.96.0.40 | lab_write_manifest team-a/deeper/sub.yaml
it_wait_eq 20 "10.96.0.40" dns_ask sub.default.svc.cluster.local A
it_assert_eq "$IT_LAST" "10.96.0.40" "a Service in a new subdirectory is served"
r=$(node_curl "http://10.96.0.40/"); it_check "curl through it ($r)" in_set "$all" "$r"
svc sub2 10.96.0.41 | lab_write_manifest team-a/deeper/sub2.yaml
it_wait_eq 20 "10.96.0.41" dns_ask sub2.default.svc.cluster.local A
it_assert_eq "$IT_LAST" "10.96.0.41" "a file written later in that subdirectory is read (watched)"
rm -rf "$LAB_MANIFESTS/team-a"
it_wait_eq 20 "" dns_ask sub.default.svc.cluster.local A
it_assert_eq "$IT_LAST" "" "removing the subdirectory removes its Services"

# Restart: a subdirectory present at start is read too.
mkdir -p "$LAB_MANIFESTS/team-b"
svc atstart 10.96.0.42 >"$LAB_MANIFESTS/team-b/s.yaml"
svcd_stop
svcd_start_lab --dns-listen 127.0.0.1:53 || it_fail "svcd did not restart"
it_assert_eq "$(dns_ask atstart.default.svc.cluster.local A)" "10.96.0.42" "subdirectory read at start"
it_assert_eq "$(dns_ask third.default.svc.cluster.local A)" "10.96.1.0" "allocations kept over the restart"

svcd_stop
it_finish
