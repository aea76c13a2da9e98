#!/usr/bin/env bash
# Readiness and metrics that tell the truth, with real causes:
#  - a missing manifest directory: svcd runs, /readyz 503 "[-]manifests failed:
#    cannot watch DIR: No such file or directory"; the directory appearing
#    makes it ready; removing it again is 503 while the objects stay;
#  - an unreachable podman socket: "[-]podman failed: ... unreachable";
#  - nftables programming failing (svcd started without CAP_NET_ADMIN):
#    "[-]nftables failed: sync failed: ..." while svcd keeps running;
#  - /readyz?verbose lists every check as the Kubernetes components do;
#  - /metrics: process_* with values that match the process, last-sync
#    timestamps, and DNS duration histograms counted by qtype and rcode.
set -u
source "$(dirname "$0")/lib.sh"

lab_up 0 || it_fail "lab_up"
# Starts svcd in the node namespace without waiting for /readyz 200 (these
# starts are not ready on purpose); PREFIX... before "--" runs svcd under it.
svcd_spawn() {
  local pre=()
  while [[ $# -gt 0 && $1 != -- ]]; do pre+=("$1"); shift; done
  shift
  SVCD_LOG=$LAB_TMP/svcd.log
  SVCD_ADMIN=127.0.0.1:9180
  echo "+ ${pre[*]} svcd $*" >>"$SVCD_LOG"
  ip netns exec "$LAB_NODE_NS" "${pre[@]}" "$SVCD_BUILD/svcd" "$@" </dev/null >>"$SVCD_LOG" 2>&1 &
  SVCD_PID=$!
  it_wait 30 bash -c "ip netns exec $LAB_NODE_NS curl -s -o /dev/null --max-time 2 http://$SVCD_ADMIN/healthz" \
    || it_fail "svcd $* did not answer /healthz"
}
dir=$LAB_TMP/mdir
t_start=$(date +%s)

# ---- missing manifest directory ----
svcd_spawn env -- --manifests "$dir" --node-name n1 --service-cidr 10.96.0.0/16 \
  --dns-listen 127.0.0.1:5353 --log-level debug
SVCD_DNS=127.0.0.1:5353
it_pass "svcd runs with a missing manifest directory"
it_wait_eq 20 503 admin_status /readyz || it_fail "readyz: want 503, got $IT_LAST"
# (nftables is pending until its first sync, about a second after start)
it_wait_eq 20 "[-]manifests failed: cannot watch $dir: No such file or directory
readyz check failed" lab_exec_node curl -s --max-time 2 "http://$SVCD_ADMIN/readyz"
it_assert_eq "$IT_LAST" "[-]manifests failed: cannot watch $dir: No such file or directory
readyz check failed" "readyz names the missing directory"
it_wait_eq 20 "[-]manifests failed: cannot watch $dir: No such file or directory
[+]nftables ok
readyz check failed" lab_exec_node curl -s --max-time 2 "http://$SVCD_ADMIN/readyz?verbose"
it_assert_eq "$IT_LAST" "[-]manifests failed: cannot watch $dir: No such file or directory
[+]nftables ok
readyz check failed" "readyz?verbose lists each check"

mkdir -p "$dir"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n' >"$dir/web.yaml"
it_check "directory appears: ready" it_wait 20 _svcd_ready
it_assert_eq "$(lab_exec_node curl -s --max-time 2 "http://$SVCD_ADMIN/readyz?verbose")" \
  "[+]manifests ok
[+]nftables ok
readyz check passed" "readyz?verbose all ok"
it_assert_eq "$(lab_exec_node curl -s --max-time 2 "http://$SVCD_ADMIN/readyz")" ok "readyz ok"
it_check "the directory's Service is loaded" \
  it_wait 20 bash -c "ip netns exec $LAB_NODE_NS curl -s http://$SVCD_ADMIN/api/services | grep -q '\"name\":\"web\"'"

mv "$dir" "$dir.away"
it_check "directory moved away: 503" it_wait_eq 20 503 admin_status /readyz
it_assert_contains "$(lab_exec_node curl -s --max-time 2 "http://$SVCD_ADMIN/readyz")" \
  "[-]manifests failed: $dir was moved or removed" "readyz says the directory went"
it_assert_contains "$(admin_get /api/services)" '"name":"web"' "objects stay while the directory is away"
mv "$dir.away" "$dir"
it_check "directory back: ready again" it_wait 20 _svcd_ready

# ---- metrics: process_*, last sync, DNS histograms ----
metric() { admin_get /metrics | awk -v k="$1" '$1 == k { print $2 }'; }
m=$(admin_get /metrics)
for name in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
            process_open_fds process_max_fds process_start_time_seconds; do
  it_assert_contains "$m" "
$name " "metric $name"
done
it_assert_contains "$m" "# TYPE process_cpu_seconds_total counter" "process_cpu_seconds_total is a counter"
start=$(metric process_start_time_seconds)
it_check "process_start_time_seconds is svcd's start ($start vs $t_start)" \
  awk -v s="$start" -v t="$t_start" 'BEGIN { exit !(s >= t - 5 && s <= t + 60) }'
fds=$(ls /proc/"$SVCD_PID"/fd | wc -l)
it_check "process_open_fds ($(metric process_open_fds)) near the real count ($fds)" \
  awk -v a="$(metric process_open_fds)" -v b="$fds" 'BEGIN { d = a - b; exit !(d >= -3 && d <= 3) }'
it_assert_eq "$(metric process_max_fds)" "$(awk '/Max open files/ { print $4 }' /proc/"$SVCD_PID"/limits)" \
  "process_max_fds is the soft limit"
rss_kb=$(awk '/VmRSS/ { print $2 }' /proc/"$SVCD_PID"/status)
it_check "process_resident_memory_bytes ($(metric process_resident_memory_bytes)) near VmRSS (${rss_kb} kB)" \
  awk -v a="$(metric process_resident_memory_bytes)" -v b="$rss_kb" 'BEGIN { r = a / (b * 1024); exit !(r > 0.5 && r < 2) }'
ms=$(metric 'svcd_source_last_sync_timestamp_seconds{source="manifests"}')
it_check "manifests last sync timestamp ($ms) after start" \
  awk -v s="$ms" -v t="$t_start" 'BEGIN { exit !(s >= t - 1) }'
ns=$(metric svcd_nft_last_sync_timestamp_seconds)
it_check "nftables last sync timestamp ($ns) after start" \
  awk -v s="$ns" -v t="$t_start" 'BEGIN { exit !(s >= t - 1) }'

dig1() { lab_exec_node dig +short +tries=1 +time=2 @127.0.0.1 -p 5353 "$@"; }
it_assert_eq "$(dig1 web.default.svc.cluster.local A)" 10.96.0.10 "dig A web"
dig1 web.default.svc.cluster.local A >/dev/null
dig1 nope.default.svc.cluster.local A >/dev/null
dig1 web.default.svc.cluster.local AAAA >/dev/null
h='svcd_dns_request_duration_seconds'
it_assert_eq "$(metric "${h}_count{qtype=\"A\",rcode=\"NOERROR\"}")" 2 "A NOERROR counted twice"
it_assert_eq "$(metric "${h}_count{qtype=\"A\",rcode=\"NXDOMAIN\"}")" 1 "A NXDOMAIN counted once"
it_assert_eq "$(metric "${h}_count{qtype=\"AAAA\",rcode=\"NOERROR\"}")" 1 "AAAA NOERROR counted once"
it_assert_eq "$(metric "${h}_bucket{qtype=\"A\",rcode=\"NOERROR\",le=\"+Inf\"}")" 2 "+Inf bucket = count"
it_assert_contains "$(admin_get /metrics)" "# TYPE $h histogram" "duration is a histogram"
svcd_stop

# ---- unreachable podman socket ----
svcd_spawn env -- --source podman=unix://"$LAB_TMP/no-podman.sock" --manifests "$dir" --no-nft \
  --node-name n1
it_check "unreachable podman: 503" it_wait_eq 30 503 admin_status /readyz
it_check "readyz names the podman socket" it_wait 30 bash -c \
  "ip netns exec $LAB_NODE_NS curl -s http://$SVCD_ADMIN/readyz | grep -q '^\[-\]podman failed: podman API at $LAB_TMP/no-podman.sock unreachable'"
it_assert_contains "$(lab_exec_node curl -s --max-time 2 "http://$SVCD_ADMIN/readyz?verbose")" \
  "[+]manifests ok" "manifests still ok"
svcd_stop

# ---- nftables programming fails: no CAP_NET_ADMIN ----
svcd_spawn setpriv --inh-caps=-net_admin --bounding-set=-net_admin -- \
  --manifests "$dir" --node-name n1 --service-cidr 10.96.0.0/16
it_check "without CAP_NET_ADMIN: 503" it_wait_eq 30 503 admin_status /readyz
it_check "readyz: nftables sync failed" it_wait 30 bash -c \
  "ip netns exec $LAB_NODE_NS curl -s http://$SVCD_ADMIN/readyz | grep -q '^\[-\]nftables failed: sync failed: .*Operation not permitted'"
it_check "svcd keeps running" kill -0 "$SVCD_PID"
svcd_stop
it_finish
