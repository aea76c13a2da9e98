#!/usr/bin/env bash
# podman_e2e: Pods from real podman, end to end.
#
# podman's API service runs with its network inside the lab's node namespace
# (nsenter --net, so its podman0 bridge, veths and firewall rules stay there;
# `ip netns exec` cannot run podman: it remounts /sys). Two podman pods serve
# HTTP (busybox httpd, one with a podman healthcheck); Services from the
# manifest directory select them by label. Checked:
#   - /api/pods shows both pods (IPs on podman's bridge, Running, ready) and
#     /api/endpoints lists both behind the Service;
#   - dig: the ClusterIP name gives the VIP, the headless name both pod IPs;
#   - curl through the VIP reaches both pods;
#   - the healthcheck svcd runs turns unhealthy -> the pod leaves the
#     endpoints; healthy again -> back;
#   - a pod stopped: it leaves the endpoints, the headless DNS answer and the
#     VIP's backends at once;
#   - podman answers the events stream chunked, and every exchange parses
#     (no request errors, no malformed responses logged);
#   - podman's service restarted: svcd keeps its pods, reconnects, converges;
#   - a pod removed while svcd is down: after a restart the state is right.
# Skips only when podman/runc are not installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for c in podman runc nsenter; do
    if ! command -v "$c" >/dev/null 2>&1; then
        echo "SKIP: $IT_NAME: $c is not installed (apt-get install podman runc catatonit busybox-static)"
        exit 0
    fi
done
"$SVCD_SRC/tests/podman/setup.sh" >/dev/null || it_fail "tests/podman/setup.sh failed"
IMAGE=${SVCD_PODMAN_IMAGE:-localhost/svcd-bb:1}

lab_up 0 || it_fail "lab_up 0"
P=$LAB                          # unique prefix for pod names and labels
SEL=$LAB-web                    # the Services' selector value
SOCK=$LAB_TMP/podman.sock
PODMAN_PID=

pm() { timeout 60 nsenter --net="/run/netns/$LAB_NODE_NS" podman "$@"; }

# Our cleanup runs before the lab goes down (lab.sh calls lab_on_down).
eval "$(declare -f lab_on_down | sed '1s/lab_on_down/_podman_e2e_lab_on_down/')"
lab_on_down() {
    local rc=$1
    local p
    for p in "$P-web1" "$P-web2"; do
        pm pod rm --ignore -f -t 0 "$p" >/dev/null 2>>"$LAB_TMP/podman-cli.log" ||
            echo "podman_e2e: could not remove pod $p (see $LAB_TMP/podman-cli.log)" >&2
    done
    if [[ -n $PODMAN_PID ]]; then
        kill "$PODMAN_PID" 2>/dev/null
        wait "$PODMAN_PID" 2>/dev/null
    fi
    rm -f "$SOCK"
    _podman_e2e_lab_on_down "$rc"
}

podman_service_start() {
    nsenter --net="/run/netns/$LAB_NODE_NS" podman system service --time=0 "unix://$SOCK" \
        >>"$LAB_TMP/podman-service.log" 2>&1 &
    PODMAN_PID=$!
    it_wait 15 curl -sf --max-time 1 --unix-socket "$SOCK" http://d/v4.0.0/libpod/_ping -o /dev/null
}

podman_service_start || it_fail "podman system service did not come up"
it_pass "podman API service up on $SOCK (network in $LAB_NODE_NS)"
# svcd asks for the events stream as HTTP/1.1 with Connection: close; podman
# answers it chunked, so the de-chunking path is the one exercised below.
te=$(timeout 5 curl -s --max-time 1 --unix-socket "$SOCK" -H 'Connection: close' -D - -o /dev/null \
    'http://podman/v4.0.0/libpod/events?stream=true' | tr -d '\r' |
    awk -F': ' 'tolower($1) == "transfer-encoding" { print tolower($2) }')
it_assert_eq "$te" "chunked" "podman serves the events stream chunked to an HTTP/1.1 client"

# pod NAME HOSTNAME [healthcheck args]: a pod whose container serves its
# name over HTTP on 8080 (and /tmp/ready decides the healthcheck).
pod() {
    local name=$1 host=$2
    shift 2
    pm pod create --name "$P-$name" --hostname "$host" --label "app=$SEL" \
        --label svcd.io/namespace=default --label svcd.io/ports=http=8080 >/dev/null || return 1
    pm run -d --pod "$P-$name" --name "$P-$name-c" "$@" "$IMAGE" sh -c \
        "mkdir -p /www && echo $name > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www" \
        >/dev/null 2>>"$LAB_TMP/podman-cli.log"   # (podman complains there is no systemd for healthcheck timers)
}
pod web1 web1 --health-cmd 'test -f /tmp/ready' --health-interval 1s --health-retries 1 ||
    it_fail "podman could not create pod web1"
pod web2 web2 || it_fail "podman could not create pod web2"
ip1=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' "$(pm pod inspect -f '{{.InfraContainerID}}' "$P-web1")")
ip2=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' "$(pm pod inspect -f '{{.InfraContainerID}}' "$P-web2")")
[[ $ip1 == 10.88.* && $ip2 == 10.88.* ]] || it_fail "pods have no podman bridge IPs ($ip1, $ip2)"
it_pass "two podman pods running: $P-web1 $ip1, $P-web2 $ip2"
# the node reaches the pods directly (sanity of the podman network in the lab)
r=$(node_curl "http://$ip1:8080/")
it_assert_eq "$r" web1 "node -> pod web1 directly"

lab_write_manifest svc-podweb.yaml <<YAML
apiVersion: v1
kind: Service
metadata: {name: podweb, namespace: default}
spec:
  clusterIP: 10.96.0.77
  selector: {app: $SEL}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: podweb-h, namespace: default}
spec:
  clusterIP: None
  selector: {app: $SEL}
  ports:
  - {name: http, port: 8080, targetPort: 8080}
YAML

SVCD_ARGS=(--source "podman=unix://$SOCK" --manifests "$LAB_MANIFESTS"
    --node-name "$LAB_NODE_NAME" --dns-listen 127.0.0.1:5353
    --service-cidr 10.96.0.0/16 --admin-listen 127.0.0.1:9180 --log-level debug)
svcd_start "${SVCD_ARGS[@]}" || it_fail "svcd did not become ready"

pods_json() { admin_get /api/pods; }
pod_field() {   # pod_field NAME JQEXPR
    pods_json | jq -r --arg n "$1" ".items[] | select(.name == \$n) | $2"
}
ep_ips() {      # ready endpoint IPs of a Service, sorted, space-separated
    admin_get /api/endpoints |
        jq -r --arg s "$1" '[.items[] | select(.name == $s) | .endpoints[] |
            select(.ready) | .addresses[0]] | sort | join(" ")'
}
want2=$(printf '%s\n' "$ip1" "$ip2" | sort | tr '\n' ' ' | sed 's/ $//')

# --- /api/pods and /api/endpoints ---
both_ready() { echo "$(pod_field "$P-web1" .ready) $(pod_field "$P-web2" .ready)"; }
it_wait_eq 20 "true true" both_ready
it_assert_eq "$IT_LAST" "true true" "/api/pods: both podman pods ready"
it_assert_eq "$(pod_field "$P-web1" '.podIPs[0]')" "$ip1" "/api/pods: web1 IP from podman"
it_assert_eq "$(pod_field "$P-web1" '.phase')" "Running" "/api/pods: web1 Running"
it_assert_eq "$(pod_field "$P-web1" '.namespace')" "default" "/api/pods: namespace from label"
it_assert_eq "$(pod_field "$P-web1" '.hostname')" "web1" "/api/pods: hostname from podman"
it_assert_eq "$(pod_field "$P-web1" '.labels.app')" "$SEL" "/api/pods: labels from podman"
it_wait_eq 20 "$want2" ep_ips podweb
it_assert_eq "$IT_LAST" "$want2" "/api/endpoints: Service podweb has both pods"

# --- DNS ---
it_assert_eq "$(dns_ask podweb.default.svc.cluster.local A)" "10.96.0.77" \
    "dig podweb.default.svc.cluster.local -> the VIP"
headless_ips() { dns_ask podweb-h.default.svc.cluster.local A | sort | tr '\n' ' ' | sed 's/ $//'; }
it_wait_eq 20 "$want2" headless_ips
it_assert_eq "$IT_LAST" "$want2" "dig headless podweb-h -> both pod IPs"

# --- the VIP reaches both pods ---
vip_seen() {   # distinct answers of N requests to the VIP
    local n=$1 i out=""
    for ((i = 0; i < n; i++)); do
        out+="$(node_curl http://10.96.0.77/ -H 'Connection: close' 2>/dev/null)"$'\n'
    done
    printf '%s' "$out" | grep -v '^$' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
it_assert_eq "$(vip_seen 40)" "web1 web2" "curl http://10.96.0.77/ (40 times) reaches both pods"

# --- podman healthcheck run by svcd: unhealthy leaves, healthy returns ---
pm exec "$P-web1-c" rm -f /tmp/ready
it_wait_eq 15 "$ip2" ep_ips podweb
it_assert_eq "$IT_LAST" "$ip2" "web1 unhealthy (healthcheck svcd runs) -> out of the endpoints"
it_assert_eq "$(pod_field "$P-web1" '.ready')" "false" "/api/pods: web1 not ready while unhealthy"
pm exec "$P-web1-c" touch /tmp/ready
it_wait_eq 15 "$want2" ep_ips podweb
it_assert_eq "$IT_LAST" "$want2" "web1 healthy again -> back in the endpoints"

# --- stop one pod: it leaves the endpoints, DNS and the VIP ---
t0=$(date +%s%N)
pm pod stop -t 0 "$P-web2" >/dev/null
it_wait_eq 20 "$ip1" ep_ips podweb
it_assert_eq "$IT_LAST" "$ip1" "pod web2 stopped -> only web1 behind the Service"
t1=$(date +%s%N)
echo "# stop -> endpoint removed in $(((t1 - t0) / 1000000)) ms (includes podman pod stop)"
it_wait_eq 20 "$ip1" headless_ips
it_assert_eq "$IT_LAST" "$ip1" "dig headless after the stop -> only web1"
it_assert_eq "$(vip_seen 20)" "web1" "curl through the VIP after the stop -> only web1"
it_assert_ne "$(pod_field "$P-web2" '.phase')" "Running" "/api/pods: web2 no longer Running"

# every exchange so far parsed (HTTP/1.1, chunked stream and lists)
it_check "no request to podman failed (svcd_podman_errors_total 0)" bash -c \
    "ip netns exec $LAB_NODE_NS curl -s http://$SVCD_ADMIN/metrics | grep -q '^svcd_podman_errors_total 0\$'"
it_check "svcd read podman's events (svcd_podman_events_total > 0)" bash -c \
    "ip netns exec $LAB_NODE_NS curl -s http://$SVCD_ADMIN/metrics | grep -q '^svcd_podman_events_total [1-9]'"
it_check "no malformed HTTP response logged" bash -c "! grep -q 'bad HTTP response' '$SVCD_LOG'"

# --- podman's service restarts: svcd keeps its state and converges ---
kill "$PODMAN_PID"; wait "$PODMAN_PID" 2>/dev/null; PODMAN_PID=
pm pod start "$P-web2" >/dev/null     # changes while the API is down
it_assert_eq "$(ep_ips podweb)" "$ip1" "API down: svcd keeps its last known endpoints"
podman_service_start || it_fail "podman system service did not come back"
ip2=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' "$(pm pod inspect -f '{{.InfraContainerID}}' "$P-web2")")
want2=$(printf '%s\n' "$ip1" "$ip2" | sort | tr '\n' ' ' | sed 's/ $//')
it_wait_eq 15 "$want2" ep_ips podweb
it_assert_eq "$IT_LAST" "$want2" "API back: svcd reconnected, relisted, web2 back in"
it_check "svcd counted the reconnect" bash -c \
    "ip netns exec $LAB_NODE_NS curl -s http://$SVCD_ADMIN/metrics | grep -q '^svcd_podman_reconnects_total [1-9]'"

# --- remove a pod while svcd is down; restart svcd: the state is right ---
svcd_stop
pm pod rm -f -t 0 "$P-web2" >/dev/null
svcd_start "${SVCD_ARGS[@]}" || it_fail "svcd did not restart"
it_wait_eq 20 "$ip1" ep_ips podweb
it_assert_eq "$IT_LAST" "$ip1" "after restart: the removed pod is not behind the Service"
it_assert_eq "$(pod_field "$P-web2" .name)" "" "after restart: /api/pods has no web2"
it_assert_eq "$(headless_ips)" "$ip1" "after restart: dig headless -> only web1"
it_assert_eq "$(vip_seen 10)" "web1" "after restart: the VIP reaches web1"

it_finish
