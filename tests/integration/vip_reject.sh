#!/usr/bin/env bash
# vip_reject: what happens without usable endpoints, as kube-proxy does it.
#  - no endpoint at all: TCP is refused at once (RST), UDP gets ICMP port
#    unreachable (reject in svcd's filter chains);
#  - a port the ClusterIP does not have: refused as well;
#  - no ready endpoint but a serving+terminating one: traffic goes there;
#  - endpoints appearing / disappearing take effect within the sync delay.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 2 || it_fail "lab_up 2"
# The lab routes the service range back out of br0, so the node would send
# ICMP redirects to pods, which use up the per-host ICMP rate limit before
# the port-unreachable; a real node has no such route. Turn them off.
lab_exec_node sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.br0.send_redirects=0
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:10:96::10"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: 10.96.0.30
  clusterIPs: [10.96.0.30, "fd00:10:96::30"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  selector: {app: nothing}
  ports:
  - {name: http, port: 80}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: term}
spec:
  clusterIP: 10.96.0.40
  selector: {app: term}
  ports:
  - {port: 80, targetPort: 80}
YAML
svcd_start_lab || it_fail "svcd did not become ready"

# refused, not dropped: curl exit 7 ("Couldn't connect")
refused_fast() { # WHERE URL
    # curl exit 7 = the connection was refused (RST or ICMP unreachable);
    # a drop would time out instead (exit 28), so no clock is needed
    if [[ $1 == node ]]; then node_curl "$2" >/dev/null 2>&1; else pod_curl "$1" "$2" >/dev/null 2>&1; fi
    [[ $? == 7 ]]
}
udp_refused() { # WHERE HOST PORT
    local out p=UDP4 h=$2
    [[ $h == *:* ]] && { p=UDP6; h="[$h]"; }
    if [[ $1 == node ]]; then
        # stdin stays open 2 s so that socat is still there to read the ICMP error
        out=$( (echo ping; sleep 2) | lab_exec_node timeout 5 socat -T3 - "$p:$h:$3" 2>&1)
        # locally generated: the rejected send() itself fails (EPERM), and
        # the ICMP error follows
        [[ $out == *"Connection refused"* || $out == *"Operation not permitted"* ]]
    else
        out=$( (echo ping; sleep 2) | lab_exec_pod "$1" timeout 5 socat -T3 - "$p:$h:$3" 2>&1)
        [[ $out == *"Connection refused"* ]]
    fi
}

it_check "no endpoints: node -> TCP refused at once" refused_fast node http://10.96.0.30/
it_check "no endpoints: pod -> TCP refused at once" refused_fast web-1 http://10.96.0.30/
it_check "no endpoints: v6 TCP refused at once" refused_fast node "http://[fd00:10:96::30]/"
it_check "no endpoints: node -> UDP gets port unreachable" udp_refused node 10.96.0.30 53
it_check "no endpoints: pod -> UDP gets port unreachable" udp_refused web-2 10.96.0.30 53
it_check "ClusterIP port it does not have: refused (node)" refused_fast node http://10.96.0.10:9999/
it_check "ClusterIP port it does not have: refused (pod)" refused_fast web-1 http://10.96.0.10:9999/
it_check "v6 ClusterIP port it does not have: refused" refused_fast node "http://[fd00:10:96::10]:9999/"
r=$(node_curl http://10.96.0.10/)
it_check "the Service's real port still works ($r)" test -n "$r"

# endpoints appear: a pod labelled app=nothing joins "empty"
lab_add_pod extra app=nothing
if it_wait 15 bash -c "[[ \$(ip netns exec $LAB_NODE_NS curl -s --max-time 3 http://10.96.0.30/) == extra ]]"; then
    it_pass "endpoint added: the Service answers"
else
    _it_count_fail "endpoint added: the Service answers"
fi
lab_del_pod extra
it_check "endpoint removed: refused again" it_wait 15 refused_fast node http://10.96.0.30/

# terminating fallback: the only pod of "term" is terminating but serving
lab_add_pod term-1 app=term
it_check "term-1 serves while ready" it_wait 15 bash -c "[[ \$(ip netns exec $LAB_NODE_NS curl -s --max-time 3 http://10.96.0.40/) == term-1 ]]"
f=$LAB_MANIFESTS/pod-term-1.yaml
sed 's/^metadata:$/metadata:\n  deletionTimestamp: "2026-01-01T00:00:00Z"/' "$f" | lab_write_manifest pod-term-1.yaml
it_check "manifest marks term-1 terminating" grep -q deletionTimestamp "$f"
term_seen() { admin_get /metrics | grep -Eq '^svcd_endpoints\{condition="terminating"\} [1-9]'; }
it_check "svcd sees term-1 terminating" it_wait 15 term_seen
r=$(node_curl http://10.96.0.40/)
it_assert_eq "$r" term-1 "no ready endpoint: the serving+terminating one is used"
# a ready pod joins: traffic goes to it only
lab_add_pod term-2 app=term
ok=1
it_wait 15 bash -c "[[ \$(ip netns exec $LAB_NODE_NS curl -s --max-time 3 http://10.96.0.40/) == term-2 ]]" || ok=0
for i in $(seq 1 20); do [[ $(node_curl http://10.96.0.40/) == term-2 ]] || ok=0; done
it_assert_eq "$ok" 1 "ready endpoints win over terminating ones"
it_finish
