#!/usr/bin/env bash
# svcctl against the real svcd (--no-nft) in a lab node namespace: exact
# kubectl-style tables (services, pods, endpoints; -A, -n, -o wide/json/name),
# AGE with a fixed clock (SVCCTL_NOW), "No resources found", NotFound, usage
# errors (exit 2), an unreachable daemon (exit 1), $SVCD_SERVER, version,
# and a manifest change showing up in the next `svcctl get`.
set -u
source "$(dirname "$0")/lib.sh"

[[ -x $SVCD_BUILD/svcctl ]] || it_fail "no $SVCD_BUILD/svcctl"
lab_up 0 || it_fail "lab_up"

# now = 2026-01-04T04:00:00Z; every object has a fixed creationTimestamp.
export SVCCTL_NOW=1767499200

svc() { # file name ns created spec-yaml
    printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\n  creationTimestamp: "%s"\nspec:\n%s\n' \
        "$2" "$3" "$4" "$5" | lab_write_manifest "$1"
}
pod() { # file name ns created labels ip(s) ready node containers-yaml
    local ips="" ip first=""
    for ip in $6; do ips+="  - {ip: $ip}"$'\n'; [[ -n $first ]] || first=$ip; done
    printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n  creationTimestamp: "%s"\n  labels: %s\nspec:\n%s  containers:\n%s\nstatus:\n  phase: Running\n  podIP: %s\n  podIPs:\n%s  conditions: [{type: Ready, status: "%s"}]\n' \
        "$2" "$3" "$4" "$5" "${8:+  nodeName: $8$'\n'}" "$9" "$first" "$ips" "$7" | lab_write_manifest "$1"
}
C1='  - name: c
    ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]'
C2='  - name: c1
    ports: [{name: http, containerPort: 8080}]
  - name: c2
    ports: [{name: dns, containerPort: 5353, protocol: UDP}]'
C0='  - name: c'

svc svc-web.yaml web default 2026-01-01T00:00:00Z '  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, targetPort: dns, protocol: UDP}'
svc svc-np.yaml np default 2026-01-04T00:00:00Z '  type: NodePort
  clusterIP: 10.96.0.11
  selector: {app: web}
  externalIPs: [10.250.0.100]
  ports: [{port: 80, nodePort: 30080}]'
svc svc-db.yaml db default 2026-01-04T03:57:00Z '  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]'
svc svc-ext.yaml ext default 2026-01-04T03:59:15Z '  type: ExternalName
  externalName: example.org'
svc svc-api.yaml api prod 2025-12-01T00:00:00Z '  clusterIP: 10.96.0.20
  selector: {app: api}
  ports: [{name: https, port: 443, targetPort: 8443}]'
pod pod-web-1.yaml web-1 default 2026-01-04T03:59:15Z '{app: web}' 10.244.0.11 True n1 "$C1"
pod pod-web-2.yaml web-2 default 2026-01-04T03:55:00Z '{app: web}' 10.244.0.12 True n1 "$C2"
pod pod-web-3.yaml web-3 default 2026-01-04T01:00:00Z '{app: web}' 10.244.0.13 False n1 "$C1"
pod pod-web-4.yaml web-4 default 2026-01-02T04:00:00Z '{app: web}' 10.244.0.14 True n1 "$C1"
pod pod-db-0.yaml db-0 default 2026-01-04T00:30:00Z '{app: db}' 10.244.0.21 True "" "$C0"
pod pod-api-1.yaml api-1 prod 2026-01-04T03:59:50Z '{app: api}' "10.244.1.5 fd00::5" True n1 "$C0"
# namespace ops: a terminating pod, and one whose exec readiness probe fails
# (run by svcd as nobody in the node namespace; no traffic).
lab_write_manifest pod-ops.yaml <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: old-0
  namespace: ops
  creationTimestamp: "2026-01-04T03:00:00Z"
  deletionTimestamp: "2026-01-04T03:59:00Z"
spec:
  containers: [{name: c}]
status:
  phase: Running
  podIP: 10.244.2.1
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata:
  name: chk-0
  namespace: ops
  creationTimestamp: "2026-01-04T02:00:00Z"
spec:
  containers:
  - name: c
    readinessProbe:
      exec: {command: [/bin/sh, -c, 'echo db down; exit 1']}
      periodSeconds: 1
      failureThreshold: 1
status:
  phase: Running
  podIP: 10.244.2.2
  conditions: [{type: Ready, status: "True"}]
EOF

svcd_start --manifests "$LAB_MANIFESTS" --no-nft --admin-listen 127.0.0.1:9180 --log-level debug ||
    it_fail "svcd did not start"
pod_count() { admin_get /api/pods | jq '.items | length'; }
it_wait_eq 20 8 pod_count ||
    it_fail "pods not loaded: $IT_LAST"

# expect_out MSG EXPECTED_STDOUT ARGS...: exact stdout and exit 0
expect_out() {
    local msg=$1 want=$2 got rc
    shift 2
    got=$(svcctl_run "$@" 2>/tmp/svcctl_err.$$); rc=$?
    if [[ $rc == 0 && $got == "$want" ]]; then
        it_pass "$msg"
    else
        _it_count_fail "$msg (exit $rc, stderr: $(cat /tmp/svcctl_err.$$))"
        diff <(echo "$want") <(echo "$got") | sed 's/^/    /'
    fi
    rm -f /tmp/svcctl_err.$$
}
# expect_err MSG RC STDERR ARGS...: exact exit status and stderr, empty stdout
expect_err() {
    local msg=$1 want_rc=$2 want=$3 out err rc
    shift 3
    out=$("$@" 2>/tmp/svcctl_err.$$); rc=$?
    err=$(cat /tmp/svcctl_err.$$); rm -f /tmp/svcctl_err.$$
    if [[ $rc == "$want_rc" && $err == "$want" && -z $out ]]; then
        it_pass "$msg"
    else
        _it_count_fail "$msg: exit $rc (want $want_rc), stderr '$err' (want '$want'), stdout '$out'"
    fi
}

# ---------------------------------------------------------------- tables
expect_out "get services (default namespace)" \
"NAME   TYPE           CLUSTER-IP   EXTERNAL-IP    PORT(S)         AGE
db     ClusterIP      None         <none>         5432/TCP        3m
ext    ExternalName   <none>       example.org    <none>          45s
np     NodePort       10.96.0.11   10.250.0.100   80:30080/TCP    4h
web    ClusterIP      10.96.0.10   <none>         80/TCP,53/UDP   3d4h" get services

expect_out "get svc -o wide adds SELECTOR" \
"NAME   TYPE           CLUSTER-IP   EXTERNAL-IP    PORT(S)         AGE    SELECTOR
db     ClusterIP      None         <none>         5432/TCP        3m     app=db
ext    ExternalName   <none>       example.org    <none>          45s    <none>
np     NodePort       10.96.0.11   10.250.0.100   80:30080/TCP    4h     app=web
web    ClusterIP      10.96.0.10   <none>         80/TCP,53/UDP   3d4h   app=web" get svc -o wide

expect_out "get svc -A adds NAMESPACE, sorted by namespace" \
"NAMESPACE   NAME   TYPE           CLUSTER-IP   EXTERNAL-IP    PORT(S)         AGE
default     db     ClusterIP      None         <none>         5432/TCP        3m
default     ext    ExternalName   <none>       example.org    <none>          45s
default     np     NodePort       10.96.0.11   10.250.0.100   80:30080/TCP    4h
default     web    ClusterIP      10.96.0.10   <none>         80/TCP,53/UDP   3d4h
prod        api    ClusterIP      10.96.0.20   <none>         443/TCP         34d" get svc -A

expect_out "get svc -n prod" \
"NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE
api    ClusterIP   10.96.0.20   <none>        443/TCP   34d" get svc -n prod

expect_out "get svc NAME" \
"NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)         AGE
web    ClusterIP   10.96.0.10   <none>        80/TCP,53/UDP   3d4h" get svc web

expect_out "get pods" \
"NAME    READY   STATUS    RESTARTS-NEEDED   LAST-PROBE   AGE
db-0    1/1     Running   0                 <none>       3h30m
web-1   1/1     Running   0                 <none>       45s
web-2   2/2     Running   0                 <none>       5m
web-3   0/1     Running   0                 <none>       3h
web-4   1/1     Running   0                 <none>       2d" get po

expect_out "get pods -n prod -o wide (all IPs)" \
"NAME    READY   STATUS    RESTARTS-NEEDED   LAST-PROBE   AGE   IP           NODE   IPS                  PROBE-REASON
api-1   1/1     Running   0                 <none>       10s   10.244.1.5   n1     10.244.1.5,fd00::5   <none>" get pods --namespace prod -o wide

EP_WEB="10.244.0.11:8080,10.244.0.12:8080,10.244.0.14:8080 + 3 more..."
expect_out "get endpoints (ready only, 3 shown + N more)" \
"$(printf '%-4s   %-62s   %s\n' NAME ENDPOINTS AGE db 10.244.0.21:5432 3m \
   np 10.244.0.11:80,10.244.0.12:80,10.244.0.14:80 4h web "$EP_WEB" 3d4h | sed 's/ *$//')" get ep
[[ ${#EP_WEB} == 62 ]] || _it_count_fail "test bug: EP_WEB length ${#EP_WEB}"

expect_out "get ep -A" \
"$(printf '%-9s   %-4s   %-62s   %s\n' NAMESPACE NAME ENDPOINTS AGE default db 10.244.0.21:5432 3m \
   default np 10.244.0.11:80,10.244.0.12:80,10.244.0.14:80 4h default web "$EP_WEB" 3d4h \
   prod api 10.244.1.5:8443 34d)" get endpoints -A

expect_out "-o name" "service/db
service/ext
service/np
service/web" get svc -o name

# ---------------------------------------------------------------- json
n=$(svcctl_run get svc -o json | jq '.items | length')
it_assert_eq "$n" 4 "-o json lists the 4 default Services"
ip=$(svcctl_run get svc web -o json | jq -r '.clusterIPs[0]')
it_assert_eq "$ip" 10.96.0.10 "-o json NAME prints the item"
np=$(svcctl_run get svc np -o json | jq -r '.ports[0].nodePort')
it_assert_eq "$np" 30080 "-o json nodePort"
eps=$(svcctl_run get ep web -o json | jq -c '[.endpoints[] | select(.ready) | .podName]')
it_assert_eq "$eps" '["web-1","web-2","web-4"]' "-o json ready endpoints"
n=$(svcctl_run get pods -A -o json | jq '.items | length')
it_assert_eq "$n" 8 "-A -o json lists all pods"

# ---------------------------------------------------------------- probes
# A failing probe: READY 0/1 (status said True; the probe decides), the last
# probe in LAST-PROBE, its output as PROBE-REASON with -o wide. The real
# clock is used here (SVCCTL_NOW empty), so AGE is not compared.
chk_row() { SVCCTL_NOW= svcctl_run get po chk-0 -n ops | tail -n 1 | awk '{print $2, $3, $4, $5, $6, $7}'; }
it_wait_eq 20 "0/1 Running 0 readiness exec failure" chk_row &&
    it_pass "failing exec probe: READY 0/1 and LAST-PROBE" || _it_count_fail "chk-0 row: '$IT_LAST'"
row=$(SVCCTL_NOW= svcctl_run get po chk-0 -n ops | tail -n 1)
[[ $row =~ readiness\ exec\ failure\ [0-9]+s\ ago ]] &&
    it_pass "LAST-PROBE says how long ago ($row)" || _it_count_fail "LAST-PROBE age: '$row'"
row=$(SVCCTL_NOW= svcctl_run get po chk-0 -n ops -o wide | tail -n 1)
[[ $row == *"   10.244.2.2   <none>   10.244.2.2   db down" ]] &&
    it_pass "-o wide PROBE-REASON is the probe's output" || _it_count_fail "wide row: '$row'"
old_row() { svcctl_run get po old-0 -n ops | tail -n 1; }
it_assert_eq "$(old_row)" "old-0   1/1     Terminating   0                 <none>       60m" \
    "STATUS Terminating for a pod with a deletionTimestamp"
r=$(admin_get "/api/probes?namespace=ops" | jq -r '[.items[] | .name + ":" + .lastProbe.reason] | join(",")')
it_assert_eq "$r" "chk-0:db down" "/api/probes lists only the probed pod"

# ---------------------------------------------------------------- errors
expect_err "empty namespace" 0 "No resources found in empty namespace." \
    svcctl_run get pods -n empty
expect_err "NotFound" 1 'Error from server (NotFound): services "nope" not found' \
    svcctl_run get svc nope
expect_err "unreachable daemon" 1 \
    "svcctl: cannot reach svcd at 127.0.0.1:1: Connection refused" \
    lab_exec_node "$SVCD_BUILD/svcctl" --server 127.0.0.1:1 get svc
USAGE="See 'svcctl --help' for usage."
expect_err "unknown resource" 2 "svcctl: the server doesn't have a resource type \"foo\"
$USAGE" svcctl_run get foo
expect_err "missing resource" 2 "svcctl: get needs a resource type: services, pods or endpoints
$USAGE" svcctl_run get
expect_err "bad output format" 2 "svcctl: unknown output format \"xml\" (use wide, json, yaml or name)
$USAGE" svcctl_run get svc -o xml
expect_err "unknown option" 2 "svcctl: unknown option --bogus
$USAGE" svcctl_run get svc --bogus
expect_err "bad server" 2 "svcctl: bad server address \"nohost:99999\" (want ADDR:PORT)
$USAGE" lab_exec_node "$SVCD_BUILD/svcctl" --server nohost:99999 get svc

out=$(lab_exec_node env SVCD_SERVER=127.0.0.1:9180 "$SVCD_BUILD/svcctl" get svc -o name -n prod)
it_assert_eq "$out" "service/api" "SVCD_SERVER is used without --server"
out=$(svcctl_run version)
it_assert_eq "$out" "Client Version: 0.1.0
Server Version: 0.1.0" "version"
out=$(svcctl_run --help)
it_assert_contains "$out" "svcctl [--server ADDR:PORT] get RESOURCE" "--help"

# ---------------------------------------------------------------- changes
svc svc-web.yaml web default 2026-01-01T00:00:00Z '  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, targetPort: dns, protocol: UDP}
  - {name: https, port: 443, targetPort: 8443}'
want="web    ClusterIP   10.96.0.10   <none>        80/TCP,53/UDP,443/TCP   3d4h"
web_row() { svcctl_run get svc web | tail -n 1; }
it_wait_eq 20 "$want" web_row &&
    it_pass "changed Service shows in svcctl" || _it_count_fail "changed Service: '$IT_LAST'"
rm -f "$LAB_MANIFESTS/pod-web-1.yaml"
np_row() { svcctl_run get ep np | tail -n 1; }
it_wait_eq 20 "np     10.244.0.12:80,10.244.0.14:80   4h" np_row &&
    it_pass "deleted pod leaves the endpoints" || _it_count_fail "deleted pod: '$IT_LAST'"

svcd_stop
expect_err "daemon gone" 1 "svcctl: cannot reach svcd at 127.0.0.1:9180: Connection refused" \
    svcctl_run get svc
it_finish
