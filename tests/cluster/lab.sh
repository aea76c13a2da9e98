#!/usr/bin/env bash
# tests/cluster/lab.sh: a multi-node svcd cluster in network namespaces.
# Source it (bash); nothing is changed in the machine's own namespace.
#
#   ${CL}-hub     bridge br0: the "node network" 10.250.1.0/24
#     | veth
#   ${CL}-n<i>    eth0 10.250.1.<i>          node i; runs etcd member e<i> on
#                                            10.250.1.<i>:2379 (client) / :2380 (peer)
#                 br0  10.244.<i>.1/24       pod bridge of node i
#                 routes: 10.244.<k>.0/24 via 10.250.1.<k> (host routes between
#                 pod subnets), 10.96.0.0/16 dev br0 (service range)
#     | veth
#   ${CL}-n<i>p<j> eth0 10.244.<i>.(10+j)    pod web-n<i>-<j> (podserver, HTTP 80)
#
# Functions:
#   cl_up NODES PODS_PER_NODE     namespaces, etcd members (started), pods and
#                                 their manifests (svcd not started); EXIT trap
#                                 tears everything down
#   cl_down                       kills every process in the namespaces, deletes them
#   cl_exec I CMD...              runs CMD in node I's namespace
#   cl_etcd_start I / cl_etcd_stop I   etcd member I (stop = SIGKILL)
#   cl_etcd_wait SECONDS          waits until the etcd cluster answers
#   cl_endpoints I                the --etcd-endpoints list for node I (its
#                                 own member first)
#   cl_svcd_start I [ARGS...]     svcd on node I (log $CL_TMP/svcd<I>.log)
#   cl_svcd_kill I                SIGKILL (no goodbye: the lease must expire)
#   cl_add_pod I J [LABELS]       pod web-n<I>-<J> with labels (default app=web)
#   cl_del_pod I J                removes its manifest and stops it
#   cl_readyz I                   HTTP status of node I's /readyz
#   cl_dig I NAME [TYPE]          dig +short at node I's svcd (sorted)
#   cl_svcctl I ARGS...           svcctl with node I's etcd endpoints
# Variables: CL (prefix), CL_TMP, CL_NODES, CL_TTL (lease TTL, default 3),
# CL_BUILD (default $SVCD_BUILD or ../../build).

_CL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${CL_BUILD:=${SVCD_BUILD:-$_CL_DIR/../../build}}"
: "${CL_TTL:=3}"
CL=
CL_TMP=
CL_NODES=0
declare -A CL_SVCD_PID=() CL_ETCD_PID=() CL_POD_PID=()

_cl_log() { echo "cluster-lab: $*" >&2; }

cl_exec() { local i=$1; shift; ip netns exec "$CL-n$i" "$@"; }

cl_endpoints() {
    local i=$1 k list="http://10.250.1.$1:2379"
    for ((k = 1; k <= CL_NODES; k++)); do
        [[ $k == "$i" ]] || list+=",http://10.250.1.$k:2379"
    done
    echo "$list"
}

cl_etcd_start() {
    local i=$1 k initial=""
    for ((k = 1; k <= CL_NODES; k++)); do
        initial+="${initial:+,}e$k=http://10.250.1.$k:2380"
    done
    # ip netns exec directly (not through a function): $! must be etcd's pid.
    ip netns exec "$CL-n$i" etcd --name "e$i" --data-dir "$CL_TMP/etcd$i" \
        --listen-client-urls "http://10.250.1.$i:2379,http://127.0.0.1:2379" \
        --advertise-client-urls "http://10.250.1.$i:2379" \
        --listen-peer-urls "http://10.250.1.$i:2380" \
        --initial-advertise-peer-urls "http://10.250.1.$i:2380" \
        --initial-cluster "$initial" --initial-cluster-state new \
        --initial-cluster-token "$CL" \
        </dev/null >>"$CL_TMP/etcd$i.log" 2>&1 &
    CL_ETCD_PID[$i]=$!
}

cl_etcd_stop() {
    local pid=${CL_ETCD_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    CL_ETCD_PID[$1]=
}

# The cluster answers a linearizable read through node I's member list.
cl_etcd_ok() {
    cl_exec "${1:-1}" etcdctl --endpoints "$(cl_endpoints "${1:-1}")" --dial-timeout 1s \
        --command-timeout 2s get /svcd-probe >/dev/null 2>&1
}

cl_etcd_wait() {
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do
        cl_etcd_ok 1 && return 0
        sleep 0.2
    done
    return 1
}

cl_svcd_start() {
    local i=$1
    shift
    ip netns exec "$CL-n$i" "$CL_BUILD/svcd" --manifests "$CL_TMP/m$i" --node-name "n$i" \
        --node-ip "10.250.1.$i" --etcd-endpoints "$(cl_endpoints "$i")" \
        --etcd-lease-ttl "$CL_TTL" --dns-listen 127.0.0.1:53 --admin-listen 127.0.0.1:9180 \
        --service-cidr 10.96.0.0/16 --pod-cidr 10.244.0.0/16 --upstream 127.0.0.1:5399 \
        --log-level debug "$@" </dev/null >>"$CL_TMP/svcd$i.log" 2>&1 &
    CL_SVCD_PID[$i]=$!
}

cl_svcd_kill() {
    local pid=${CL_SVCD_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    CL_SVCD_PID[$1]=
}

cl_readyz() {
    cl_exec "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:9180/readyz
}

cl_dig() {
    cl_exec "$1" dig +short +time=2 +tries=1 @127.0.0.1 "$2" "${3:-A}" 2>/dev/null | sort
}

cl_svcctl() {
    local i=$1
    shift
    cl_exec "$i" "$CL_BUILD/svcctl" --etcd-endpoints "$(cl_endpoints "$i")" "$@"
}

cl_add_pod() {
    local i=$1 j=$2 labels=${3:-app=web} name="web-n$1-$2" ns="$CL-n$1p$2"
    local ip="10.244.$1.$((10 + $2))" lab k v
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$CL-n$i" link add "vp$j" type veth peer name eth0 netns "$ns"
    ip -n "$CL-n$i" link set "vp$j" master br0 up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "10.244.$i.1"
    rm -f "$CL_TMP/$name.pid"
    ip netns exec "$ns" "$CL_BUILD/podserver" --name "$name" --http 80 \
        --pidfile "$CL_TMP/$name.pid" </dev/null >>"$CL_TMP/$name.log" 2>&1 &
    CL_POD_PID[$name]=$!
    lab=""
    for kv in ${labels//,/ }; do
        k=${kv%%=*} v=${kv#*=}
        lab+="${lab:+, }$k: $v"
    done
    cat >"$CL_TMP/m$i/.pod-$name.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: default, labels: {$lab}}
spec:
  nodeName: n$i
  containers: [{name: c, ports: [{name: http, containerPort: 80}]}]
status:
  phase: Running
  podIP: $ip
  conditions: [{type: Ready, status: "True"}]
EOF
    mv "$CL_TMP/m$i/.pod-$name.yaml" "$CL_TMP/m$i/pod-$name.yaml"
    local t
    for ((t = 0; t < 200; t++)); do
        [[ -s $CL_TMP/$name.pid ]] && return 0
        sleep 0.05
    done
    _cl_log "podserver $name did not start"
    return 1
}

cl_del_pod() {
    local name="web-n$1-$2"
    rm -f "$CL_TMP/m$1/pod-$name.yaml"
    kill "${CL_POD_PID[$name]:-}" 2>/dev/null
    ip netns del "$CL-n$1p$2" 2>/dev/null
    return 0
}

_cl_setup_node() (
    set -e
    local i=$1 k
    local ns="$CL-n$i"
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
        net.ipv4.conf.default.send_redirects=0
    ip -n "$ns" link set lo up
    ip -n "$CL-hub" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$CL-hub" link set "v$i" master br0 up
    ip -n "$ns" addr add "10.250.1.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link add br0 type bridge forward_delay 0 stp_state 0
    ip -n "$ns" addr add "10.244.$i.1/24" dev br0
    ip -n "$ns" link set br0 up
    ip -n "$ns" route add 10.96.0.0/16 dev br0
    for ((k = 1; k <= CL_NODES; k++)); do
        [[ $k == "$i" ]] || ip -n "$ns" route add "10.244.$k.0/24" via "10.250.1.$k"
    done
    mkdir -p "$CL_TMP/m$i"
)

cl_namespaces() {
    [[ -n $CL ]] || return 0
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${CL}-" || true
}

cl_down() {
    local ns pid t pids
    [[ -n $CL ]] || return 0
    for ((t = 0; t < 3; t++)); do
        pids=()
        for ns in $(cl_namespaces); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$pid"); done
        done
        ((${#pids[@]})) || break
        kill -KILL "${pids[@]}" 2>/dev/null
        sleep 0.2
    done
    wait 2>/dev/null
    for ns in $(cl_namespaces); do ip netns del "$ns" 2>/dev/null; done
    if [[ ${CL_KEEP_TMP:-0} != 1 && -n $CL_TMP && $CL_TMP == /tmp/"$CL".* ]]; then
        rm -rf "$CL_TMP"
    fi
    CL=
}

_cl_on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if declare -F cl_on_down >/dev/null; then cl_on_down "$rc" || true; fi
    cl_down
    exit "$rc"
}

cl_up() {
    local nodes=$1 pods=$2 i j
    command -v etcd >/dev/null || { _cl_log "etcd not installed"; return 1; }
    CL=svc$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
    CL_TMP=$(mktemp -d "/tmp/$CL.XXXXXX")
    CL_NODES=$nodes
    trap _cl_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    ip netns add "$CL-hub"
    ip -n "$CL-hub" link set lo up
    ip -n "$CL-hub" link add br0 type bridge forward_delay 0 stp_state 0
    ip -n "$CL-hub" link set br0 up
    for ((i = 1; i <= nodes; i++)); do
        _cl_setup_node "$i" || { _cl_log "node $i setup failed"; return 1; }
    done
    for ((i = 1; i <= nodes; i++)); do cl_etcd_start "$i"; done
    for ((i = 1; i <= nodes; i++)); do
        for ((j = 1; j <= pods; j++)); do cl_add_pod "$i" "$j" || return 1; done
    done
    _cl_log "cluster lab $CL: $nodes nodes, $pods pods each, scratch $CL_TMP"
}
