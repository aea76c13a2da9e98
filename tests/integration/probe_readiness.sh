#!/usr/bin/env bash
# Probes end to end: the real svcd in the lab decides pod readiness from
# readinessProbes (httpGet by port name, exec inside the pod's netns via the
# svcd.io/netns annotation) and the Service's endpoints follow:
#   - a stopped pod server leaves the ready endpoints after
#     failureThreshold x periodSeconds (not at the first failure), and is
#     back after successThreshold successes once started again;
#   - /healthz answering 500 does the same, and the reason is logged;
#   - an exec probe runs in the pod's network namespace (it curls
#     127.0.0.1 there, which only that pod's server answers);
#   - a failing livenessProbe marks its pod not ready and counts
#     "restarts needed" (svcd cannot restart containers); healed, it is back;
#   - probe metrics count runs by probe type, kind and result;
#   - `svcctl get pods` shows READY 0/1 with the failing last probe, 1/1
#     once back, RESTARTS-NEEDED after a liveness failure, and /api/probes
#     has the same status as JSON.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SVC=web
PERIOD=1
FAILS=2

lab_up 4 "" app=web || it_fail "lab_up"
P1=${LAB_PODS[1]} P2=${LAB_PODS[2]} P3=${LAB_PODS[3]} P4=${LAB_PODS[4]}

# Adds probes to the lab's pod manifest of pod index $1 (lines after the
# ports list of container "server"), with an optional annotation.
add_probe() {
    local i=$1 probe=$2 annotation=${3:-} f="$LAB_MANIFESTS/pod-${LAB_PODS[$1]}.yaml"
    [[ -f $f ]] || it_fail "no manifest $f"
    awk -v probe="$probe" -v ann="$annotation" '
        { print }
        /^  uid:/ && ann != "" { print "  annotations:"; print "    " ann }
        /containerPort: 5300/ { print probe }
    ' "$f" | lab_write_manifest "pod-${LAB_PODS[$i]}.yaml"
}

HTTP_PROBE="    readinessProbe:
      httpGet: {path: /healthz, port: alt}
      periodSeconds: $PERIOD
      failureThreshold: $FAILS
      successThreshold: 1
      timeoutSeconds: 1"
EXEC_PROBE="    readinessProbe:
      exec:
        command: [curl, -sf, --max-time, '1', 'http://127.0.0.1:8080/healthz']
      periodSeconds: $PERIOD
      failureThreshold: $FAILS
      timeoutSeconds: 2"
add_probe 1 "$HTTP_PROBE"
add_probe 2 "$HTTP_PROBE"
add_probe 3 "$EXEC_PROBE" "svcd.io/netns: /run/netns/${LAB}-p3"
LIVE_PROBE="    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: $PERIOD
      failureThreshold: $FAILS"
add_probe 4 "$LIVE_PROBE"

lab_write_manifest svc-web.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: $SVC, namespace: default}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
EOF

svcd_start_lab --no-nft || it_fail "svcd did not start"

ready_pods() {
    admin_get "/api/endpoints?namespace=default&name=$SVC" |
        jq -r '[.items[0].endpoints[] | select(.ready) | .podName] | sort | join(" ")'
}
all_pods() {
    admin_get "/api/endpoints?namespace=default&name=$SVC" |
        jq -r '[.items[0].endpoints[] | .podName] | sort | join(" ")'
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# svcctl get pods row of pod $1: "READY STATUS RESTARTS-NEEDED TYPE KIND RESULT"
# (LAST-PROBE is "TYPE KIND RESULT AGO ago").
pod_row() { svcctl_run get po "$1" | tail -n 1 | awk '{print $2, $3, $4, $5, $6, $7}'; }
# /api/probes item of pod $1 through a jq filter $2.
probe_jq() { admin_get "/api/probes?namespace=default&name=$1" | jq -r ".items[0] | $2"; }
# The sorted pod list without $1.
all_but() { printf '%s\n' "$P1" "$P2" "$P3" "$P4" | grep -vx "$1" | sort | tr '\n' ' ' | sed 's/ $//'; }

ALL=$(printf '%s\n' "$P1" "$P2" "$P3" "$P4" | sort | tr '\n' ' ' | sed 's/ $//')
it_wait_eq 20 "$ALL" ready_pods || it_fail "pods never became ready: '$IT_LAST'"
it_pass "all four pods ready through their probes"

# 1. HTTP server stopped: out after FAILS x PERIOD, not at the first failure.
lab_pod_stop "$P1" || it_fail "lab_pod_stop"
t0=$(now_ms)
WANT=$(all_but "$P1")
it_wait_eq 20 "$WANT" ready_pods || it_fail "stopped pod still ready: '$IT_LAST'"
dt=$(( $(now_ms) - t0 ))
echo "# stopped pod left the ready endpoints after ${dt} ms (threshold ${FAILS} x ${PERIOD}s)"
# A lower bound only: a slow machine makes dt longer, never shorter.
it_check "left after >= (FAILS-1) periods (${dt} ms)" test "$dt" -ge $(( (FAILS - 1) * PERIOD * 1000 - 100 ))
cf=$(probe_jq "$P1" '.containers[0].probes.readiness.consecutiveFailures')
it_check "the verdict came from FAILS failures in a row (consecutiveFailures $cf >= $FAILS)" test "${cf:-0}" -ge "$FAILS"
it_assert_eq "$(all_pods)" "$ALL" "not-ready pod is still listed as an endpoint (ready=false)"
it_wait_eq 20 "0/1 Running 0 readiness http failure" pod_row "$P1" &&
    it_pass "svcctl: stopped pod is 0/1 with a failing readiness http probe" ||
    _it_count_fail "svcctl row of stopped pod: '$IT_LAST'"
row=$(svcctl_run get po "$P1" -o wide | tail -n 1)
it_assert_contains "$row" "connect: connection refused" "svcctl -o wide shows the probe's reason"
it_assert_eq "$(probe_jq "$P1" '[.ready, .conditions[0].status, .conditions[0].reason, .lastProbe.type, .lastProbe.kind, .lastProbe.result] | map(tostring) | join(" ")')" \
    "false False ContainersNotReady readiness http failure" "/api/probes: stopped pod not ready, last probe failed"
it_assert_contains "$(probe_jq "$P1" '.conditions[0].message')" "readiness probe failed" \
    "/api/probes: Ready message names the failing probe"
it_assert_eq "$(admin_get "/api/pods?namespace=default&name=$P1" | jq -r '.items[0].probes.lastProbe.result')" \
    failure "/api/pods item carries the probe status"

lab_pod_start "$P1" || it_fail "lab_pod_start"
t0=$(now_ms)
it_wait_eq 20 "$ALL" ready_pods || it_fail "restarted pod not back: '$IT_LAST'"
dt=$(( $(now_ms) - t0 ))
echo "# restarted pod was ready again after ${dt} ms"
it_check "back within PERIOD + 1.5 s (${dt} ms)" test "$dt" -le $(( PERIOD * 1000 + 1500 ))
it_wait_eq 20 "1/1 Running 0 readiness http success" pod_row "$P1" &&
    it_pass "svcctl: restarted pod is 1/1 with a successful probe" ||
    _it_count_fail "svcctl row of restarted pod: '$IT_LAST'"
it_assert_eq "$(probe_jq "$P1" '[.ready, .conditions[0].status, .lastProbe.result] | map(tostring) | join(" ")')" \
    "true True success" "/api/probes: restarted pod ready"

# 2. /healthz answers 500: out, with the reason in the log; healed: back.
lab_pod_fail "$P2"
WANT=$(all_but "$P2")
it_wait_eq 20 "$WANT" ready_pods || it_fail "failing pod still ready: '$IT_LAST'"
it_check "log names the failing probe" grep -q "pod default/$P2 is not ready: .*HTTP probe failed with statuscode: 500" "$SVCD_LOG"
lab_pod_heal "$P2"
it_wait_eq 20 "$ALL" ready_pods || it_fail "healed pod not back: '$IT_LAST'"
it_pass "healthz 500 -> not ready -> healed -> ready"

# 3. exec probe inside the pod's netns: stopping that pod's server fails it.
lab_pod_stop "$P3"
WANT=$(all_but "$P3")
it_wait_eq 20 "$WANT" ready_pods || it_fail "exec probe did not see pod 3 stop: '$IT_LAST'"
lab_pod_start "$P3"
it_wait_eq 20 "$ALL" ready_pods || it_fail "exec probe did not see pod 3 back: '$IT_LAST'"
it_pass "exec probe runs in the pod's network namespace"

# 4. liveness failing: not ready, restarts needed counted; healed: back.
lab_pod_fail "$P4"
it_wait_eq 20 "$(all_but "$P4")" ready_pods || it_fail "liveness failure did not unready pod 4: '$IT_LAST'"
it_check "restart needed logged" grep -q "pod default/$P4 container server: liveness probe failed $FAILS times, restart needed" "$SVCD_LOG"
M=$(admin_get /metrics)
it_check "restarts metric counts" bash -c "grep -Eq '^svcd_probe_restarts_needed_total [1-9]' <<<\"\$1\"" _ "$M"
row=$(pod_row "$P4")
read -r rd_ st_ rn_ _ <<<"$row"
it_check "svcctl: liveness-failed pod 0/1 with RESTARTS-NEEDED >= 1 ('$row')" \
    test "$rd_ $st_" == "0/1 Running" -a "${rn_:-0}" -ge 1
it_check "/api/probes: restartsNeeded >= 1" \
    test "$(probe_jq "$P4" '.restartsNeeded')" -ge 1
it_assert_eq "$(probe_jq "$P4" '.containers[0].probes.liveness.result')" failure \
    "/api/probes: the container's liveness probe failed"
lab_pod_heal "$P4"
it_wait_eq 20 "$ALL" ready_pods || it_fail "healed liveness pod not back: '$IT_LAST'"
it_pass "liveness failure -> not ready + restart needed -> healed -> ready"
p4_ready() { pod_row "$P4" | awk '{print $1, ($3 >= 1) ? "restarts>=1" : "restarts=0"}'; }
it_wait_eq 20 "1/1 restarts>=1" p4_ready &&
    it_pass "svcctl: healed pod 1/1, RESTARTS-NEEDED kept" || _it_count_fail "healed P4 row: '$IT_LAST'"
n=$(admin_get /api/probes | jq '[.items[] | select(.namespace == "default")] | length')
it_assert_eq "$n" 4 "/api/probes lists the four probed pods"
n=$(admin_get "/api/probes?namespace=nope" | jq '.items | length')
it_assert_eq "$n" 0 "/api/probes?namespace= filters"

# 5. metrics
M=$(admin_get /metrics)
it_assert_contains "$M" 'svcd_probe_total{probe="readiness",kind="http",result="success"}' "http success counter"
it_assert_contains "$M" 'svcd_probe_total{probe="readiness",kind="http",result="failure"}' "http failure counter"
it_assert_contains "$M" 'svcd_probe_total{probe="readiness",kind="exec",result="success"}' "exec success counter"
it_assert_contains "$M" 'svcd_probe_total{probe="liveness",kind="http",result="failure"}' "liveness failure counter"
it_assert_contains "$M" 'svcd_probe_pods 4' "probed pods gauge"

it_finish
