#!/usr/bin/env bash
# vip_masq: kube-proxy's packet-flow semantics (pkg/proxy/nftables
# proxier_test.go flow tables) with real clients. Sources: a pod, the node
# (from its primary address), an external host; targets: ClusterIP, NodePort,
# externalIP, LoadBalancer IP. Checks the source address the endpoint sees
# (podserver /clientip), traffic policies, drops and the NodePort addresses.
# The node's default route points at the external host's namespace (its
# uplink router), so --nodeport-addresses' default "primary" resolves to the
# node's uplink address.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 1 || it_fail "lab_up 1"                       # web-1 10.244.0.11: the client pod
lab_add_pod srv-1 app=srv || it_fail "srv-1"          # 10.244.0.12, this node
lab_add_pod srv-far app=srv || it_fail "srv-far"      # 10.244.0.13, "another node"
lab_add_pod far-1 app=far || it_fail "far-1"          # 10.244.0.14, "another node"
for p in srv-far far-1; do
    f=$LAB_MANIFESTS/pod-$p.yaml
    sed "s/nodeName: .*/nodeName: other-node/" "$f" | lab_write_manifest "pod-$p.yaml"
done
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: cl}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.70
  externalIPs: [192.0.2.70]
  selector: {app: srv}
  ports:
  - {port: 80, targetPort: 80, nodePort: 30070}
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.71}]
---
apiVersion: v1
kind: Service
metadata: {name: loc}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.72
  selector: {app: srv}
  externalTrafficPolicy: Local
  ports:
  - {port: 80, targetPort: 80, nodePort: 30072}
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.72}]
---
apiVersion: v1
kind: Service
metadata: {name: locfar}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.73
  selector: {app: far}
  externalTrafficPolicy: Local
  ports:
  - {port: 80, targetPort: 80, nodePort: 30073}
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.73}]
YAML
lab_exec_node ip route add default via "$LAB_EXT_IP4" dev ext0 || it_fail "node default route"
# the external host reaches the service range through the node
lab_exec_ext ip route add "$LAB_SERVICE_CIDR4" via "$LAB_NODEPORT_IP4" || it_fail "ext route"
svcd_start --manifests "$LAB_MANIFESTS" --node-name "$LAB_NODE_NAME" \
    --service-cidr "$LAB_SERVICE_CIDR4" --pod-cidr 10.244.0.0/16 --log-level debug ||
    it_fail "svcd did not become ready"
it_assert_contains "$(svcd_log)" "NodePorts accepted on $LAB_NODEPORT_IP4/32" \
    "nodeport-addresses primary: the address of the default route's interface"

NODE=$LAB_NODE_IP4 POD=10.244.0.11 EXT=$LAB_EXT_IP4 NP=$LAB_NODEPORT_IP4
pod() { pod_curl web-1 "$@" -H 'Connection: close'; }
node_src() { node_curl "$@" --interface "$NP" -H 'Connection: close'; }
ext() { ext_curl "$@" -H 'Connection: close'; }
# answers WHO URL N: the distinct pod names N connections reached
answers() {
    local who=$1 url=$2 n=$3 i out=""
    for ((i = 0; i < n; i++)); do out+=$'\n'$($who "$url"); done
    sort -u <<<"$out" | grep . | tr '\n' ' '
}

# --- ClusterIP (kube-proxy: masquerade traffic from outside the cluster CIDR)
it_assert_eq "$(pod http://10.96.0.70/clientip)" "$POD" "pod -> ClusterIP: pod address kept"
it_assert_eq "$(node_src http://10.96.0.70/clientip)" "$NODE" \
    "node (from $NP) -> ClusterIP: masqueraded"
it_assert_eq "$(ext http://10.96.0.70/clientip)" "$NODE" "external host -> ClusterIP: masqueraded"

# --- externalTrafficPolicy Cluster: external destinations always masqueraded
it_assert_eq "$(ext "http://$NP:30070/clientip")" "$NODE" "ext -> NodePort (Cluster): masqueraded"
it_assert_eq "$(pod "http://$NP:30070/clientip")" "$NODE" "pod -> NodePort (Cluster): masqueraded"
it_assert_eq "$(ext http://192.0.2.70/clientip)" "$NODE" "ext -> externalIP (Cluster): masqueraded"
it_assert_eq "$(ext http://192.0.2.71/clientip)" "$NODE" "ext -> LB IP (Cluster): masqueraded"
it_assert_eq "$(pod http://192.0.2.71/clientip)" "$NODE" "pod -> LB IP (Cluster): masqueraded"
a=$(answers ext http://192.0.2.71/ 30)
it_assert_contains "$a" "srv-far" "ext -> LB IP (Cluster) reaches endpoints of other nodes ($a)"

# --- externalTrafficPolicy Local: external clients keep their address, local endpoints only
it_assert_eq "$(ext http://192.0.2.72/clientip)" "$EXT" "ext -> LB IP (Local): client address kept"
it_assert_eq "$(ext "http://$NP:30072/clientip")" "$EXT" "ext -> NodePort (Local): client address kept"
a=$(answers ext http://192.0.2.72/ 30)
it_assert_eq "$a" "srv-1 " "ext -> LB IP (Local): only the local endpoint"
# ... pods and the node short-circuit to every endpoint
it_assert_eq "$(pod http://192.0.2.72/clientip)" "$POD" "pod -> LB IP (Local): pod address kept"
a=$(answers pod http://192.0.2.72/ 40)
it_assert_contains "$a" "srv-far" "pod -> LB IP (Local): short-circuit to all endpoints ($a)"
it_assert_eq "$(node_src http://192.0.2.72/clientip)" "$NODE" "node -> LB IP (Local): masqueraded"
a=$(answers node_src http://192.0.2.72/ 40)
it_assert_contains "$a" "srv-far" "node -> LB IP (Local): short-circuit to all endpoints ($a)"
# ... no local endpoint: external traffic dropped, pods still served
ext http://192.0.2.73/ >/dev/null 2>&1
it_assert_eq "$?" 28 "ext -> LB IP (Local, no local endpoint): dropped"
ext "http://$NP:30073/" >/dev/null 2>&1
it_assert_eq "$?" 28 "ext -> NodePort (Local, no local endpoint): dropped"
it_assert_eq "$(pod http://192.0.2.73/)" "far-1" "pod -> LB IP (Local, no local endpoint): short-circuit"

# --- NodePort addresses: only the primary address, never loopback
r=$(pod "http://$NODE:30070/" 2>&1); it_assert_not_contains "$r" "srv" "no NodePort on the bridge address"
r=$(node_curl "http://127.0.0.1:30070/" 2>&1); it_assert_not_contains "$r" "srv" "no NodePort on 127.0.0.1"

# --- service-cidr: an address no Service holds is dropped, not routed on
pod http://10.96.0.99/ >/dev/null 2>&1
it_assert_eq "$?" 28 "pod -> unallocated service address: dropped"
node_curl http://10.96.0.99/ >/dev/null 2>&1
it_assert_eq "$?" 28 "node -> unallocated service address: dropped"
pod http://10.96.0.70:81/ >/dev/null 2>&1
it_assert_eq "$?" 7 "pod -> ClusterIP, port it does not have: refused"

t=$(lab_exec_node nft list table inet svcd)
it_assert_contains "$t" "ip saddr != @pod4 meta mark set meta mark | 0x00004000" "ClusterIP chains mark non-pod sources"
it_assert_contains "$t" "masquerade fully-random" "marked packets are masqueraded"

# --- --masquerade-all
svcd_stop
svcd_start --manifests "$LAB_MANIFESTS" --node-name "$LAB_NODE_NAME" \
    --service-cidr "$LAB_SERVICE_CIDR4" --pod-cidr 10.244.0.0/16 --masquerade-all ||
    it_fail "svcd did not restart"
it_wait_eq 10 "$NODE" pod http://10.96.0.70/clientip || true
it_assert_eq "$(pod http://10.96.0.70/clientip)" "$NODE" "--masquerade-all: pod -> ClusterIP masqueraded"
it_finish
