#!/usr/bin/env bash
# lab_selftest: the test lab itself works, so that other integration tests
# can trust it: a 3-pod lab answers HTTP (v4+v6) and UDP with each pod's
# name, pods stop/start, probes see /healthz flip, pods can be added and
# removed, and lab_down (explicit, or from a SIGINT/SIGTERM trap) leaves
# no namespace behind. Needs no svcd.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 3 || it_fail "lab_up 3"
it_assert_eq "${#LAB_PODS[@]}" 3 "three pods"
it_assert_eq "$(lab_namespaces | wc -l)" 5 "node + ext + 3 pod namespaces"
it_assert_eq "${LAB_PODS[*]}" "web-1 web-2 web-3" "default pod names"
it_assert_eq "${LAB_POD_IP4[2]}" 10.244.0.12 "pod 2 IPv4"
it_assert_eq "${LAB_POD_IP6[2]}" fd00:10:244::12 "pod 2 IPv6"

for i in "${!LAB_PODS[@]}"; do
    name=${LAB_PODS[$i]}
    it_assert_eq "$(node_curl "http://${LAB_POD_IP4[$i]}/")" "$name" "$name: HTTP v4 :80"
    it_assert_eq "$(node_curl "http://[${LAB_POD_IP6[$i]}]:8080/")" "$name" "$name: HTTP v6 :8080"
    it_assert_eq "$(udp_ask node "${LAB_POD_IP4[$i]}" 5300)" "$name" "$name: UDP v4"
    it_assert_eq "$(udp_ask node "${LAB_POD_IP6[$i]}" 5300)" "$name" "$name: UDP v6"
    f=$LAB_MANIFESTS/pod-$name.yaml
    it_check "$name: manifest written" test -s "$f"
    m=$(cat "$f" 2>/dev/null)
    it_assert_contains "$m" "podIP: ${LAB_POD_IP4[$i]}" "$name: manifest podIP"
    it_assert_contains "$m" "- ip: ${LAB_POD_IP6[$i]}" "$name: manifest podIPs v6"
    it_assert_contains "$m" "nodeName: $LAB_NODE_NAME" "$name: manifest nodeName"
done
hdr=$(node_curl "http://${LAB_POD_IP4[1]}/" -D - -o /dev/null | tr -d '\r')
it_assert_contains "$hdr" "X-Pod-Name: web-1" "X-Pod-Name header"

# manifests parse as YAML with the expected fields (python3 yaml if present)
if python3 -c 'import yaml' 2>/dev/null; then
    got=$(python3 - "$LAB_MANIFESTS/pod-web-1.yaml" <<'EOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(d["kind"], d["metadata"]["labels"]["app"], d["status"]["phase"],
      d["status"]["conditions"][0]["status"],
      ",".join(p["name"] + "/" + str(p["containerPort"]) + "/" + p["protocol"]
               for p in d["spec"]["containers"][0]["ports"]))
EOF
)
    it_assert_eq "$got" "Pod web Running True http/80/TCP,alt/8080/TCP,echo/5300/UDP" "manifest YAML fields"
fi

# pod -> pod, external client -> pod (source address kept, no NAT in the lab)
it_assert_eq "$(pod_curl web-1 "http://${LAB_POD_IP4[2]}/clientip")" "${LAB_POD_IP4[1]}" "pod->pod, client ip seen"
it_assert_eq "$(pod_curl web-1 "http://[${LAB_POD_IP6[3]}]/")" web-3 "pod->pod v6"
it_assert_eq "$(ext_curl "http://${LAB_POD_IP4[3]}/clientip")" "$LAB_EXT_IP4" "ext->pod routed via node"
it_assert_eq "$(ext_curl "http://[${LAB_POD_IP6[3]}]/clientip")" "$LAB_EXT_IP6" "ext->pod v6"
it_assert_eq "$(lab_exec_ext ip route get 10.96.0.10 | head -n1 | awk '{print $3}')" \
    "$LAB_NODEPORT_IP4" "ext reaches the service range via the node"
it_check "node has a route for the service CIDR on br0" \
    bash -c "ip -n $LAB_NODE_NS route show $LAB_SERVICE_CIDR4 | grep -q 'dev br0'"
it_check "node has a v6 route for the service CIDR on br0" \
    bash -c "ip -n $LAB_NODE_NS -6 route show $LAB_SERVICE_CIDR6 | grep -q 'dev br0'"
it_assert_eq "$(lab_exec_node sysctl -n net.ipv4.ip_forward)" 1 "node forwards"
it_assert_contains "$(lab_exec_pod web-1 cat /etc/resolv.conf)" "nameserver $LAB_NODE_IP4" "pod resolv.conf"

# the lab carries the paths a Service needs: a hand-written DNAT in the node
# namespace (what svcd will program) reaches pods from the node (output
# hook), from another pod across the bridge (prerouting; the reply is
# bridged and needs bridge-nf-call-iptables) and from the external client
# through the node address (NodePort style).
if command -v nft >/dev/null; then
    lab_exec_node nft -f - <<EOF || _it_count_fail "loading the test ruleset"
table ip svlabtest {
    chain pre { type nat hook prerouting priority dstnat;
        ip daddr 10.96.0.99 tcp dport 80 dnat to ${LAB_POD_IP4[2]}:80
        ip daddr $LAB_NODEPORT_IP4 tcp dport 30080 dnat to ${LAB_POD_IP4[3]}:80
    }
    chain out { type nat hook output priority -100;
        ip daddr 10.96.0.99 tcp dport 80 dnat to ${LAB_POD_IP4[2]}:80
    }
}
table ip6 svlabtest {
    chain pre { type nat hook prerouting priority dstnat;
        ip6 daddr fd00:10:96::99 tcp dport 80 dnat to [${LAB_POD_IP6[2]}]:80
    }
    chain out { type nat hook output priority -100;
        ip6 daddr fd00:10:96::99 tcp dport 80 dnat to [${LAB_POD_IP6[2]}]:80
    }
}
EOF
    it_assert_eq "$(node_curl http://10.96.0.99/)" web-2 "DNAT: node -> VIP -> pod"
    it_assert_eq "$(node_curl 'http://[fd00:10:96::99]/')" web-2 "DNAT: node -> VIP -> pod (v6)"
    it_assert_eq "$(pod_curl web-1 http://10.96.0.99/)" web-2 "DNAT: pod -> VIP -> pod over the bridge"
    it_assert_eq "$(pod_curl web-1 'http://[fd00:10:96::99]/')" web-2 "DNAT: pod -> VIP -> pod (v6)"
    it_assert_eq "$(ext_curl "http://$LAB_NODEPORT_IP4:30080/")" web-3 "DNAT: ext -> node address:30080 -> pod"
    lab_exec_node nft delete table ip svlabtest
    lab_exec_node nft delete table ip6 svlabtest
fi

# probes: /healthz flips with the fail file; /hang never answers
it_assert_eq "$(node_curl "http://${LAB_POD_IP4[1]}/healthz" -o /dev/null -w '%{http_code}')" 200 "healthz 200"
lab_pod_fail web-1
it_assert_eq "$(node_curl "http://${LAB_POD_IP4[1]}/healthz" -o /dev/null -w '%{http_code}' 2>/dev/null)" 500 "healthz 500 when failing"
lab_pod_heal web-1
it_assert_eq "$(node_curl "http://${LAB_POD_IP4[1]}/healthz" -o /dev/null -w '%{http_code}')" 200 "healthz 200 again"
lab_exec_node curl -s --max-time 1 "http://${LAB_POD_IP4[1]}/hang" >/dev/null
it_assert_eq "$?" 28 "/hang times out"

# stop / start
lab_pod_stop web-2
node_curl "http://${LAB_POD_IP4[2]}/" >/dev/null 2>&1
it_assert_eq "$?" 7 "stopped pod refuses connections (curl exit 7)"
it_assert_eq "$(node_curl "http://${LAB_POD_IP4[1]}/")" web-1 "other pods unaffected"
lab_pod_start web-2 || it_fail "lab_pod_start web-2"
it_assert_eq "$(node_curl "http://${LAB_POD_IP4[2]}/")" web-2 "restarted pod answers"
it_assert_eq "$(udp_ask node "${LAB_POD_IP4[2]}" 5300)" web-2 "restarted pod answers UDP"

# readiness in the manifest
lab_pod_set_ready web-3 false
it_assert_contains "$(cat "$LAB_MANIFESTS/pod-web-3.yaml")" 'status: "False"' "set_ready false"
lab_pod_set_ready web-3 true
it_assert_not_contains "$(cat "$LAB_MANIFESTS/pod-web-3.yaml")" 'status: "False"' "set_ready true"

# add / delete
lab_add_pod app=db || it_fail "lab_add_pod"
it_assert_eq "$LAB_LAST_POD" db-1 "added pod named from its app label"
it_assert_eq "$(node_curl http://10.244.0.14/)" db-1 "added pod answers on the next address"
it_assert_contains "$(cat "$LAB_MANIFESTS/pod-db-1.yaml")" 'app: "db"' "added pod's labels"
lab_del_pod web-2
it_assert_eq "${LAB_PODS[*]}" "web-1 web-3 db-1" "pod list after delete"
it_check "deleted pod's manifest removed" test ! -e "$LAB_MANIFESTS/pod-web-2.yaml"
it_check "deleted pod's namespace removed" bash -c "! ip netns list | grep -q '^$LAB-p2 '"

# lab_down leaves nothing
lab=$LAB tmp=$LAB_TMP
lab_down
it_assert_eq "$(ip netns list | grep -c "^$lab-")" 0 "lab_down removed every namespace"
it_check "lab_down removed the scratch dir" test ! -e "$tmp"
it_check "lab_down removed /etc/netns entries" bash -c "! compgen -G '/etc/netns/$lab-*' >/dev/null"
lab_down
it_pass "lab_down is idempotent"

# the traps: a script that brings a lab up and gets SIGINT / SIGTERM / exits
# with an error must leave nothing behind
child=$(mktemp /tmp/svl-selftest.XXXXXX)
cat >"$child" <<EOF
source "$SVCD_SRC/tests/lab/lab.sh"
LAB_QUIET=1
lab_up 1 || exit 3
echo "\$LAB" >"\$1"
[[ \${2:-} == fail ]] && exit 7
for ((n = 0; n < 240; n++)); do sleep 1 & wait \$!; done   # until signalled (bounded)
exit 0
EOF
for how in INT TERM fail; do
    namefile=$(mktemp /tmp/svl-selftest-name.XXXXXX)
    # a background job starts with SIGINT ignored; give it the default back
    env --default-signal=INT,TERM bash "$child" "$namefile" "$how" &
    cpid=$!
    if ! it_wait 120 test -s "$namefile"; then   # netns creation waits for the kernel's cleanup of deleted ones
        kill -TERM "$cpid" 2>/dev/null; wait "$cpid"
        it_fail "child lab did not come up ($how)"
    fi
    clab=$(cat "$namefile")
    [[ $how == fail ]] || kill -"$how" "$cpid"
    wait "$cpid"
    rc=$?
    case $how in INT) want=130 ;; TERM) want=143 ;; fail) want=7 ;; esac
    it_assert_eq "$rc" "$want" "child lab exit status on $how"
    it_assert_eq "$(ip netns list | grep -c "^$clab-")" 0 "no namespace left after $how"
    it_check "no scratch dir left after $how" bash -c "! compgen -G '/tmp/$clab.*' >/dev/null"
    rm -f "$namefile"
done
rm -f "$child"

# lab.sh CLI: up --detach, list, down
out=$(bash "$SVCD_SRC/tests/lab/lab.sh" up -n 1 --detach 2>/dev/null)
clab=$(sed -n 's/^lab \(svl[0-9a-f]*\) is up.*/\1/p' <<<"$out")
it_check "CLI up --detach printed a lab name" test -n "$clab"
if [[ -n $clab ]]; then
    it_assert_contains "$(bash "$SVCD_SRC/tests/lab/lab.sh" list)" "$clab" "CLI list shows it"
    it_assert_contains "$(ip netns exec "$clab-node" curl -sS --max-time 2 http://10.244.0.11/)" \
        web-1 "detached lab's pod answers"
    bash "$SVCD_SRC/tests/lab/lab.sh" down "$clab" 2>/dev/null
    it_assert_eq "$(ip netns list | grep -c "^$clab-")" 0 "CLI down removed it"
fi

it_finish
