#!/usr/bin/env bash
# chaos_admin: 5,000 idle connections to the admin port. svcd runs with an
# open-file limit of 1024 (prlimit); the admin API keeps at most
# --admin-max-conns connections (the least recently active is closed to make
# room), so descriptors are never exhausted: DNS keeps answering every
# 10 ms, the pod's readiness probe keeps succeeding and its endpoint stays
# ready (traffic through the VIP works), /readyz still answers on a fresh
# connection, and the log does not fill with accept errors. A connection
# that never completes its request head is closed after
# --admin-header-timeout-ms (3 s here).
set -u
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || { echo "SKIP: chaos_admin: no dig"; exit 0; }
command -v prlimit >/dev/null || { echo "SKIP: chaos_admin: no prlimit"; exit 0; }

lab_up 1 "" app=web || it_fail "lab_up 1"
P1=${LAB_PODS[1]}
f="$LAB_MANIFESTS/pod-$P1.yaml"
awk '{ print } /containerPort: 5300/ {
    print "    readinessProbe:"
    print "      httpGet: {path: /healthz, port: 80}"
    print "      periodSeconds: 1"
    print "      failureThreshold: 1"
    print "      timeoutSeconds: 1" }' "$f" | lab_write_manifest "pod-$P1.yaml"
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

SVCD_PREFIX="prlimit --nofile=1024:1024 --"
svcd_start_lab --dns-listen 127.0.0.1:5353 --admin-max-conns 200 \
    --admin-header-timeout-ms 3000 || it_fail "svcd did not become ready"
ready_eps() { admin_get '/api/endpoints?name=web' | jq '[.items[0].endpoints[] | select(.ready)] | length'; }
it_check "the probed pod's endpoint is ready" it_wait_eq 10 1 ready_eps
probe_runs() {
    admin_get /metrics | awk '/^svcd_probe_total\{probe="readiness",kind="http",result="success"\}/ { print $2 }'
}
probe_bad() {
    admin_get /metrics | awk '/^svcd_probe_total\{probe="readiness"/ && !/result="success"/ { s += $2 } END { print s + 0 }'
}
bad0=$(probe_bad)

N=5000
port=${SVCD_ADMIN##*:}
chaos_gap_start web.default.svc.cluster.local
# N idle connections held open for (at most) 8 s; prints how many connected
# and how many svcd closed.
lab_exec_node timeout 60 /usr/bin/python3 - "$port" "$N" "$LAB_TMP/flood.ready" >"$LAB_TMP/flood.out" 2>&1 <<'PY' &
import resource, select, socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = []
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
open(ready, "w").close()
p = select.epoll()
for s in socks:
    p.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
closed = set()
end = time.time() + 12
while time.time() < end:
    for fd, ev in p.poll(0.2):
        if ev & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
            closed.add(fd)
            p.unregister(fd)
print("opened=%d closed_by_server=%d" % (len(socks), len(closed)))
PY
FLOOD=$!
it_check "the client opened its $N connections" it_wait 40 test -e "$LAB_TMP/flood.ready"
# (admin requests during the flood compete with 5,000 SYNs for the listen
# queue: each check may need a retry, hence it_wait)
it_check "/readyz answers on a new connection during the flood" it_wait_eq 5 200 admin_status /readyz
runs0=$IT_LAST
probe_runs_grew() { local r; r=$(probe_runs) && [[ -n $r ]] && ((r > runs0)); }
runs0=$(probe_runs)
it_check "the endpoint stays ready during the flood" it_wait_eq 5 1 ready_eps
it_check "traffic through the VIP works during the flood" it_wait 5 node_curl http://10.96.0.10/
it_check "the readiness probe keeps succeeding" it_wait 10 probe_runs_grew
conns=$(admin_get /metrics | awk '/^svcd_admin_connections / { print $2 }')
it_check "admin connections stay bounded ($conns <= 200 + 32)" test "${conns:-9999}" -le 232
wait "$FLOOD"
echo "# flood: $(cat "$LAB_TMP/flood.out")"
it_check "the admin API answers after the flood" it_wait_eq 5 200 admin_status /readyz
admin_get /metrics | grep '^svcd_admin_conn' | sed 's/^/# /'
chaos_assert_gap 100 "$N idle admin connections"
it_assert_eq "$(probe_bad)" "$bad0" "no readiness probe failed or errored"
limit=$(admin_get /metrics | awk '/^svcd_admin_connections_closed_total\{reason="limit"\}/ { print $2 }')
it_check "closed to make room are counted ($limit)" test "${limit:-0}" -gt 0
noisy=$(grep -c -i -E 'too many open files|accept' "$SVCD_LOG")
it_check "no flood of accept errors in the log ($noisy lines)" test "$noisy" -lt 50

# A connection that sends half a request head is closed after 3 s.
out=$(lab_exec_node timeout 20 /usr/bin/python3 - "$port" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
s.settimeout(10)
t = time.time()
try:
    data = s.recv(100)
except socket.timeout:
    data = None
print("closed" if data == b"" else "open", "%.1f" % (time.time() - t))
PY
)
it_assert_contains "$out" closed "a slow request head is closed by the header timeout ($out)"
ht=$(admin_get /metrics | awk '/^svcd_admin_connections_closed_total\{reason="header_timeout"\}/ { print $2 }')
it_check "header timeouts are counted ($ht)" test "${ht:-0}" -gt 0
it_finish
