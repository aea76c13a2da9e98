#!/usr/bin/env bash
# vip_external: traffic from outside the node. NodePort on the node's
# primary addresses (--node-ip; not on other addresses, not on 127.0.0.1),
# externalIPs, LoadBalancer ingress IPs, externalTrafficPolicy: Local (only
# this node's endpoints; none -> dropped) and internalTrafficPolicy: Local.
# (Source addresses and masquerading: vip_masq.sh.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 2 || it_fail "lab_up 2"
# a pod of the "web" app that runs on another node, and one "far" pod there
lab_add_pod web-far app=web
lab_add_pod far-1 app=far
for p in web-far far-1; do
    f=$LAB_MANIFESTS/pod-$p.yaml
    sed "s/nodeName: .*/nodeName: other-node/" "$f" | lab_write_manifest "pod-$p.yaml"
done
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: np}
spec:
  type: NodePort
  clusterIP: 10.96.0.50
  clusterIPs: [10.96.0.50, "fd00:10:96::50"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  externalIPs: [192.0.2.10]
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: echo, port: 53, targetPort: echo, protocol: UDP, nodePort: 30053}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.51
  selector: {app: web}
  externalTrafficPolicy: Local
  ports:
  - {port: 80, targetPort: 80, nodePort: 30081}
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.20}]
---
apiVersion: v1
kind: Service
metadata: {name: farlocal}
spec:
  type: NodePort
  clusterIP: 10.96.0.52
  selector: {app: far}
  externalTrafficPolicy: Local
  ports:
  - {port: 80, targetPort: 80, nodePort: 30082}
---
apiVersion: v1
kind: Service
metadata: {name: npempty}
spec:
  type: NodePort
  clusterIP: 10.96.0.55
  selector: {app: nothing}
  ports:
  - {port: 80, targetPort: 80, nodePort: 30083}
---
apiVersion: v1
kind: Service
metadata: {name: itp}
spec:
  clusterIP: 10.96.0.53
  selector: {app: web}
  internalTrafficPolicy: Local
  ports:
  - {port: 80, targetPort: 80}
---
apiVersion: v1
kind: Service
metadata: {name: itpfar}
spec:
  clusterIP: 10.96.0.54
  selector: {app: far}
  internalTrafficPolicy: Local
  ports:
  - {port: 80, targetPort: 80}
YAML
# hairpin mode on the pod ports, as a kubelet sets it (a pod may be sent to itself)
for i in "${!LAB_PODS[@]}"; do lab_exec_node bridge link set dev "vp$i" hairpin on; done
svcd_start_lab || it_fail "svcd did not become ready"
all=" web-1 web-2 web-far "
local_pods=" web-1 web-2 "
in_set() { [[ -n $2 && $1 == *" $2 "* ]]; }

np4=$LAB_NODEPORT_IP4 np6=$LAB_NODEPORT_IP6
r=$(ext_curl "http://$np4:30080/"); it_check "ext -> NodePort v4 on the node address ($r)" in_set "$all" "$r"
r=$(ext_curl "http://[$np6]:30080/"); it_check "ext -> NodePort v6 ($r)" in_set "$all" "$r"
r=$(udp_ask ext "$np4" 30053); it_check "ext -> UDP NodePort ($r)" in_set "$all" "$r"
r=$(node_curl "http://$np4:30080/"); it_check "node -> its own address:NodePort ($r)" in_set "$all" "$r"
r=$(node_curl "http://$LAB_NODE_IP4:30080/" 2>&1)
it_assert_not_contains "$r" "web-" "NodePort is not served on a non-primary address (the bridge)"
r=$(node_curl "http://127.0.0.1:30080/" 2>&1)
it_assert_not_contains "$r" "web-" "NodePort is not served on 127.0.0.1"
c=$(ext_curl "http://$np4:30080/clientip")
it_assert_eq "$c" "$LAB_NODE_IP4" "NodePort, externalTrafficPolicy Cluster: client masqueraded"
c=$(ext_curl "http://$np4:30081/clientip")
it_assert_eq "$c" "$LAB_EXT_IP4" "NodePort, externalTrafficPolicy Local: client address kept"
r=$(ext_curl "http://192.0.2.10/"); it_check "ext -> externalIP ($r)" in_set "$all" "$r"
r=$(pod_curl web-1 "http://192.0.2.10/" -H 'Connection: close'); it_check "pod -> externalIP ($r)" in_set "$all" "$r"
r=$(ext_curl "http://192.0.2.10:81/" 2>&1)
it_assert_not_contains "$r" "web-" "externalIP: only the Service's ports"
r=$(ext_curl "http://192.0.2.20/"); it_check "ext -> LoadBalancer ingress IP ($r)" in_set "$local_pods" "$r"

# a NodePort without endpoints is refused at once (RST), not left to time out
t0=$(date +%s%N)
ext_curl "http://$np4:30083/" >/dev/null 2>&1
rc=$? t1=$(date +%s%N)
it_assert_eq "$rc/$(( (t1 - t0) / 1000000 < 1000 ))" "7/1" "NodePort without endpoints: connection refused at once"
it_assert_contains "$(lab_exec_node nft list map inet svcd np_noep4)" "tcp . 30083 : goto do_reject" \
    "... by svcd's reject rule (np_noep4)"

# externalTrafficPolicy: Local -> only this node's endpoints
ok=1 n=0
for i in $(seq 1 30); do
    r=$(ext_curl "http://$np4:30081/" -H 'Connection: close')
    in_set "$local_pods" "$r" || { ok=0; echo "  got '$r'"; }
done
it_assert_eq "$ok" 1 "ETP Local NodePort: 30 of 30 answers from local pods"
ok=1
for i in $(seq 1 30); do
    r=$(ext_curl "http://192.0.2.20/" -H 'Connection: close')
    in_set "$local_pods" "$r" || ok=0
done
it_assert_eq "$ok" 1 "ETP Local LB IP: only local pods"
# ... while its ClusterIP uses every endpoint
seen=""
for i in $(seq 1 40); do seen+=" $(node_curl http://10.96.0.51/ -H 'Connection: close')"; done
it_assert_contains "$seen" "web-far" "ETP Local does not restrict the ClusterIP"
# no local endpoint: dropped (timeout, curl exit 28), not refused
ext_curl "http://$np4:30082/" >/dev/null 2>&1
it_assert_eq "$?" 28 "ETP Local without local endpoints: NodePort traffic dropped"
r=$(node_curl http://10.96.0.52/); it_assert_eq "$r" far-1 "... its ClusterIP still reaches the remote endpoint"

# internalTrafficPolicy: Local
ok=1
for i in $(seq 1 30); do in_set "$local_pods" "$(node_curl http://10.96.0.53/ -H 'Connection: close')" || ok=0; done
it_assert_eq "$ok" 1 "ITP Local: ClusterIP only reaches local endpoints"
node_curl http://10.96.0.54/ >/dev/null 2>&1
it_assert_eq "$?" 28 "ITP Local without local endpoints: dropped"
it_finish
