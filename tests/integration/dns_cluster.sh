#!/usr/bin/env bash
# dns_cluster: the real svcd answering cluster DNS in the lab, checked with
# dig over UDP and TCP: Service A/AAAA, NODATA vs NXDOMAIN (with SOA),
# headless, endpoint hostnames, SRV, PTR, dns-version, pod records,
# ExternalName CNAME chased through the forwarder, forwarding to an
# upstream (dnsmasq in the ext namespace), REFUSED for clients that may not
# recurse, EDNS/truncation, TCP pipelining, pods resolving through their
# search path, and a live Service change.
set -u
source "$(dirname "$0")/lib.sh"

command -v dig >/dev/null || { echo "SKIP: dns_cluster: no dig"; exit 0; }
command -v dnsmasq >/dev/null || { echo "SKIP: dns_cluster: no dnsmasq"; exit 0; }

lab_up 2

# upstream resolver in the ext namespace (stopped before the lab goes down)
UP_PID=
eval "$(declare -f lab_on_down | sed '1s/lab_on_down/_dns_lab_on_down_orig/')"
lab_on_down() {
    [[ -z $UP_PID ]] || kill "$UP_PID" 2>/dev/null
    _dns_lab_on_down_orig "$@"
}
lab_exec_ext dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$LAB_EXT_IP4" --port 53 --address=/example.test/10.250.0.99 \
    --address=/www.example.test/10.250.0.98 --pid-file= --log-facility=- \
    $(for i in $(seq 1 60); do printf -- '--host-record=many.example.test,10.250.1.%d ' "$i"; done) \
    >"$LAB_TMP/dnsmasq.log" 2>&1 &
UP_PID=$!

lab_write_manifest svc-dns.yaml <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: web-hl, namespace: default}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {name: pg, port: 5432, protocol: TCP}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: default, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  containers:
  - name: db
    ports: [{name: pg, containerPort: 5432}]
status:
  phase: Running
  podIP: 10.244.0.200
  podIPs: [{ip: 10.244.0.200}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  type: ExternalName
  externalName: www.example.test
---
apiVersion: v1
kind: Service
metadata: {name: big, namespace: default}
spec:
  clusterIP: None
  ports:
  - {name: http, port: 80, protocol: TCP}
EOF
{
    echo "apiVersion: discovery.k8s.io/v1"
    echo "kind: EndpointSlice"
    echo "metadata: {name: big-1, namespace: default, labels: {kubernetes.io/service-name: big}}"
    echo "addressType: IPv4"
    echo "ports: [{name: http, port: 80, protocol: TCP}]"
    echo "endpoints:"
    for i in $(seq 1 60); do
        echo "- {addresses: [\"10.244.1.$i\"], conditions: {ready: true}}"
    done
} | lab_write_manifest slice-big.yaml

svcd_start_lab --no-nft --admin-listen 127.0.0.1:9180 \
    --dns-listen 127.0.0.1:53 --dns-listen "$LAB_NODE_IP4:53" \
    --dns-listen "$LAB_NODEPORT_IP4:53" --dns-listen 0.0.0.0:5353 --dns-listen '[::]:5353' \
    --upstream "$LAB_EXT_IP4:53" --pod-cidr "$LAB_POD_CIDR4" \
    --dns-tcp-idle-ms 3000 --dns-tcp-max-conns 8 || it_fail "svcd did not start"

D="@127.0.0.1"
q() { lab_exec_node dig +time=3 +tries=1 "$D" "$@"; }
short() { lab_exec_node dig +short +time=3 +tries=1 "$D" "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
count() { local f=$1; shift; q "$@" | sed -n "s/.*, $f: \([0-9]*\).*/\1/p" | head -1; }
# answer/additional lines with whitespace squeezed: "owner ttl IN TYPE data"
lines() { q +noall "$@" | tr -s ' \t' ' '; }

it_wait_eq 15 "10.96.0.10" short web.default.svc.cluster.local A ||
    it_fail "web A: got '$IT_LAST'"
it_pass "ClusterIP A over UDP"
it_assert_eq "$(short +tcp web.default.svc.cluster.local A)" "10.96.0.10" "ClusterIP A over TCP"
it_assert_eq "$(short WeB.DeFault.svc.cluster.local A)" "10.96.0.10" "case-insensitive"
it_assert_eq "$(lines +answer WeB.DeFault.svc.cluster.local A)" "WeB.DeFault.svc.cluster.local. 5 IN A 10.96.0.10" \
    "question case echoed, TTL 5"
it_assert_contains "$(q web.default.svc.cluster.local A)" "flags: qr aa rd ra" "AA set"

# NODATA vs NXDOMAIN, both with SOA (MINIMUM 5)
it_assert_eq "$(status web.default.svc.cluster.local AAAA)" "NOERROR" "AAAA on v4 service: NOERROR"
it_assert_eq "$(count AUTHORITY web.default.svc.cluster.local AAAA)" "1" "NODATA has SOA"
it_assert_eq "$(count ANSWER web.default.svc.cluster.local AAAA)" "0" "NODATA has no answer"
it_assert_eq "$(status nope.default.svc.cluster.local A)" "NXDOMAIN" "unknown service NXDOMAIN"
it_assert_contains "$(q nope.default.svc.cluster.local A)" \
    "cluster.local.		5	IN	SOA	ns.dns.cluster.local. hostmaster.cluster.local." "SOA in NXDOMAIN"
it_assert_eq "$(status default.svc.cluster.local A)" "NOERROR" "namespace name is NODATA"
it_assert_eq "$(short dns-version.cluster.local TXT)" '"1.1.0"' "dns-version TXT"

# headless, hostnames, SRV, PTR
it_assert_eq "$(short web-hl.default.svc.cluster.local A)" \
    "${LAB_POD_IP4[1]} ${LAB_POD_IP4[2]}" "headless A = ready pod IPs"
it_assert_eq "$(short web-hl.default.svc.cluster.local AAAA)" \
    "${LAB_POD_IP6[1]} ${LAB_POD_IP6[2]}" "headless AAAA"
it_assert_eq "$(short db-0.db.default.svc.cluster.local A)" "10.244.0.200" "pod hostname.subdomain"
it_assert_eq "$(short _pg._tcp.db.default.svc.cluster.local SRV)" \
    "0 100 5432 db-0.db.default.svc.cluster.local." "headless SRV"
it_assert_eq "$(lines +additional _pg._tcp.db.default.svc.cluster.local SRV)" \
    "db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.200" "SRV target A in additional"
it_assert_eq "$(short _http._tcp.web.default.svc.cluster.local SRV)" \
    "0 100 80 web.default.svc.cluster.local." "ClusterIP SRV"
it_assert_eq "$(short -x 10.96.0.10)" "web.default.svc.cluster.local." "PTR of ClusterIP"
it_assert_eq "$(short -x 10.244.0.200)" "db-0.db.default.svc.cluster.local." "PTR of headless pod"
it_assert_eq "$(status -x 10.96.0.99)" "NXDOMAIN" "unknown service IP: NXDOMAIN locally"
pod1_dash=${LAB_POD_IP4[1]//./-}
it_assert_eq "$(short "$pod1_dash.default.pod.cluster.local" A)" "${LAB_POD_IP4[1]}" "pod A record"
it_assert_eq "$(status "$pod1_dash.other.pod.cluster.local" A)" "NXDOMAIN" "pod record wrong namespace"

# ExternalName, forwarding
it_assert_eq "$(short ext.default.svc.cluster.local A)" "10.250.0.98 www.example.test." \
    "ExternalName CNAME chased upstream"
it_assert_eq "$(short example.test A)" "10.250.0.99" "forwarded to upstream"
it_assert_eq "$(short +tcp example.test A)" "10.250.0.99" "forwarded over TCP"
ext_status=$(lab_exec_ext dig +time=3 +tries=1 "@$LAB_NODEPORT_IP4" example.test A |
    sed -n 's/.*status: \([A-Z]*\).*/\1/p')
it_assert_eq "$ext_status" "REFUSED" "outside client may not recurse"
it_assert_eq "$(q +ignore +noedns many.example.test A | grep -c 'flags:.* tc.*ANSWER: 0,')" "1" \
    "forwarded answer too big for 512 bytes: TC=1, no partial answer"
it_assert_eq "$(count ANSWER many.example.test A)" "60" "forwarded 60 A records (TC, then TCP)"
ext_short=$(lab_exec_ext dig +short +time=3 +tries=1 "@$LAB_NODEPORT_IP4" web.default.svc.cluster.local A)
it_assert_eq "$ext_short" "10.96.0.10" "outside client gets cluster names"

# protocol
axfr=$(lab_exec_node dig +time=3 +tries=1 "$D" cluster.local AXFR 2>&1)
it_assert_contains "$axfr" "Transfer failed" "AXFR refused"
it_assert_contains "$(q +ignore +noedns big.default.svc.cluster.local A)" "flags: qr aa tc" \
    "60 A records without EDNS: TC=1"
it_assert_eq "$(count ANSWER +tcp big.default.svc.cluster.local A)" "60" "all 60 over TCP"
it_assert_eq "$(count ANSWER +ignore +noedns big.default.svc.cluster.local A)" "29" \
    "512-byte UDP answer holds 29 whole records"
it_assert_contains "$(q +edns=1 web.default.svc.cluster.local A)" "BADVERS" "EDNS version 1: BADVERS"
it_assert_contains "$(q +bufsize=4096 web.default.svc.cluster.local A)" "udp: 1232" \
    "OPT echoed with our cap"

# TCP pipelining: three queries in one write, three answers back
pipelined=$(lab_exec_node python3 - <<'PY'
import socket, struct
def q(i, name):
    hdr = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0)
    qn = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    m = hdr + qn + struct.pack(">HH", 1, 1)
    return struct.pack(">H", len(m)) + m
s = socket.create_connection(("127.0.0.1", 53), timeout=2)
s.sendall(q(1, "web.default.svc.cluster.local") + q(2, "example.test") + q(3, "nope.default.svc.cluster.local"))
buf = b""; got = {}
while len(got) < 3:
    d = s.recv(65535)
    if not d: break
    buf += d
    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
        n = struct.unpack(">H", buf[:2])[0]; m = buf[2:2+n]; buf = buf[2+n:]
        ident, flags = struct.unpack(">HH", m[:4]); got[ident] = flags & 0xf
print(" ".join("%d:%d" % (k, got[k]) for k in sorted(got)))
PY
)
it_assert_eq "$pipelined" "1:0 2:0 3:3" "TCP pipelining: 3 answers on one connection"

# pods resolve through their search path
it_assert_eq "$(lab_exec_pod "${LAB_PODS[1]}" dig +short +search +time=3 +tries=1 web A)" \
    "10.96.0.10" "pod resolves 'web' via its search path"

# autopath: the pod's first search-path query is answered in one step
ap=$(lab_exec_pod "${LAB_PODS[1]}" dig +search +noall +answer +time=3 +tries=1 example.test A |
    tr -s ' \t' ' ')
it_assert_eq "$ap" "example.test.default.svc.cluster.local. 5 IN CNAME example.test.
example.test. 0 IN A 10.250.0.99" "autopath: CNAME + upstream answer in one reply"
ap=$(lab_exec_pod "${LAB_PODS[1]}" dig +search +noall +answer +time=3 +tries=1 web.default A |
    tr -s ' \t' ' ')
it_assert_eq "$ap" "web.default.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.
web.default.svc.cluster.local. 5 IN A 10.96.0.10" "autopath: CNAME to <name>.svc.<zone>"

# live change: a new Service appears within a second or two
lab_write_manifest svc-new.yaml <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: fresh, namespace: team}
spec:
  clusterIP: 10.96.0.77
  ports: [{port: 80}]
EOF
it_check "new Service answered" it_wait_eq 15 "10.96.0.77" short fresh.team.svc.cluster.local A
lab_write_manifest svc-new.yaml <<'EOF'
# removed
EOF
rm -f "$LAB_MANIFESTS/svc-new.yaml"
it_check "deleted Service NXDOMAIN" it_wait_eq 15 "NXDOMAIN" status fresh.team.svc.cluster.local A

# wildcard listeners answer from the address each query was sent to
lab_exec_node ip addr add 10.250.0.3/24 dev ext0
lab_exec_node ip addr add fd00:10:250::3/64 dev ext0 nodad
w4=$(lab_exec_ext dig +short +time=3 +tries=1 -p 5353 @10.250.0.3 web.default.svc.cluster.local A 2>&1)
it_assert_eq "$w4" "10.96.0.10" "0.0.0.0 listener replies from the queried address"
w6=$(lab_exec_ext dig +short +time=3 +tries=1 -p 5353 @fd00:10:250::3 web.default.svc.cluster.local A 2>&1)
it_assert_eq "$w6" "10.96.0.10" "[::] listener replies from the queried address"

# TCP: idle connections closed after --dns-tcp-idle-ms; at the cap the
# oldest idle one makes room. The idle time (3 s) only has to outlast the
# few connects of the cap check; the waits for a close are generous.
tcpres=$(lab_exec_node python3 - <<'PY'
import socket, struct, time
def q(i):
    n = b"\x03web\x07default\x03svc\x07cluster\x05local\x00"
    m = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + n + struct.pack(">HH", 1, 1)
    return struct.pack(">H", len(m)) + m
def closed(s, wait):
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
out = []
s = socket.create_connection(("127.0.0.1", 53), timeout=2)
out.append("open" if not closed(s, 0.3) else "early-close")
out.append("idle-closed" if closed(s, 15) else "idle-kept")
conns = []
for i in range(8):
    conns.append(socket.create_connection(("127.0.0.1", 53), timeout=2))
    time.sleep(0.05)   # distinct ages, so "oldest" is well defined
extra = socket.create_connection(("127.0.0.1", 53), timeout=2)
extra.sendall(q(7))
r = extra.recv(4096)
out.append("9th-answered" if len(r) > 14 and r[2:4] == b"\x00\x07" else "9th-failed")
out.append("oldest-closed" if closed(conns[0], 5) else "oldest-kept")
out.append("newest-kept" if not closed(conns[7], 0.2) else "newest-closed")
print(" ".join(out))
PY
)
it_assert_eq "$tcpres" "open idle-closed 9th-answered oldest-closed newest-kept" \
    "TCP idle timeout and connection cap"

# metrics
metrics=$(admin_get /metrics 2>/dev/null)
it_assert_contains "$metrics" 'svcd_dns_queries_total{transport="udp"}' "queries metric"
it_assert_contains "$metrics" 'svcd_dns_responses_total{rcode="NXDOMAIN"}' "rcode metric"

it_finish
