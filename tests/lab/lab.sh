#!/usr/bin/env bash
# lab.sh: a one-node "cluster" built out of network namespaces, for svcd's
# integration tests and demo. Source it (bash library) or run it (CLI).
#
# Nothing is done in the machine's own namespace: every interface, address,
# route, sysctl and process lives in namespaces this file creates, named
# "${LAB}-*" where LAB is "svl" + 4 random hex digits (e.g. svl3fa2).
#
# Topology (default service range 10.96.0.0/16 and fd00:10:96::/112):
#
#   ${LAB}-ext  eth0 10.250.0.2/24 fd00:10:250::2/64, default via the node
#        |  veth ("external client", for NodePort / externalIPs tests)
#   ${LAB}-node ext0 10.250.0.1/24 fd00:10:250::1/64   <- the "node address"
#               br0  10.244.0.1/24 fd00:10:244::1/64   <- pod bridge, gateway
#               lo up; ip_forward=1; IPv6 forwarding=1; DAD off;
#               route 10.96.0.0/16 dev br0, fd00:10:96::/112 dev br0 (so a
#               DNAT in the output hook has a route to start from);
#               bridge-nf-call-ip{,6}tables=$LAB_BR_NETFILTER (default 1)
#        |  veth vp<i> (on br0)  <->  eth0 in the pod
#   ${LAB}-p<i> eth0 10.244.0.(10+i)/24 fd00:10:244::(10+i)/64 (same digits,
#               e.g. pod 1 = 10.244.0.11 and fd00:10:244::11), default
#               routes via 10.244.0.1 / fd00:10:244::1, lo up, DAD off,
#               running podserver --name <pod> (HTTP 80+8080, UDP 5300).
#               /etc/netns/${LAB}-p<i>/resolv.conf points at 10.244.0.1
#               (search <ns>.svc.cluster.local svc.cluster.local
#               cluster.local, ndots:5), as a kubelet would set it up.
#
# Library functions (return non-zero on failure, never exit):
#   lab_up NPODS [MANIFEST_DIR] [label=value ...]
#       Builds the node + ext namespaces and NPODS pods labelled as given
#       (default app=web), writes their Pod manifests into MANIFEST_DIR
#       (default $LAB_TMP/manifests) and installs traps on EXIT, INT and TERM
#       that run lab_down (the EXIT status is kept; INT exits 130, TERM 143).
#       If a function lab_on_down exists it is called first with the exit
#       status (lib.sh uses it to print the svcd log on failure).
#   lab_add_pod [NAME] [label=value ...]
#       Adds one pod (name default: <app label>-<n>, or pod-<n>); sets
#       LAB_LAST_POD to its name. Do not call it inside $(...): the pod's
#       server must be a child of your shell.
#   lab_del_pod NAME            stops and removes a pod and its manifest
#   lab_pod_stop NAME           stops the pod's podserver (SIGTERM, waits)
#   lab_pod_start NAME          starts it again (waits until it listens)
#   lab_pod_fail NAME / lab_pod_heal NAME
#                               /healthz answers 500 / 200 from now on
#   lab_pod_set_ready NAME true|false
#                               rewrites the manifest's Ready condition
#   lab_pod_index NAME          prints the pod's index i
#   lab_exec_node CMD...        runs CMD in the node namespace
#   lab_exec_pod NAME CMD...    runs CMD in the pod's namespace
#   lab_exec_ext CMD...         runs CMD in the external-client namespace
#   lab_write_manifest FILE     copies stdin to MANIFEST_DIR/FILE atomically
#                               (hidden temp + rename, as svcd expects)
#   lab_namespaces              prints the lab's namespaces that exist
#   lab_down                    kills every process in the lab's namespaces,
#                               deletes them, removes $LAB_TMP (unless
#                               LAB_KEEP_TMP=1) and /etc/netns/${LAB}-*.
#                               Idempotent.
#
# Variables set by lab_up (pod arrays are indexed by pod index i, 1-based,
# sparse after lab_del_pod; "${!LAB_PODS[@]}" lists the indices):
#   LAB                 lab name, e.g. svl3fa2
#   LAB_NODE_NS         ${LAB}-node      LAB_EXT_NS   ${LAB}-ext
#   LAB_NODE_NAME       node name used in spec.nodeName (= LAB_NODE_NS)
#   LAB_NODE_IP4/6      10.244.0.1 / fd00:10:244::1 (bridge, pod gateway)
#   LAB_NODEPORT_IP4/6  10.250.0.1 / fd00:10:250::1 (node address on ext0)
#   LAB_EXT_IP4/6       10.250.0.2 / fd00:10:250::2 (external client)
#   LAB_SERVICE_CIDR4/6 10.96.0.0/16 / fd00:10:96::/112
#   LAB_POD_CIDR4/6     10.244.0.0/24 / fd00:10:244::/64
#   LAB_MANIFESTS       the manifest directory (absolute)
#   LAB_TMP             scratch dir: podserver logs, pid files, svcd log
#   LAB_PODS[i]         pod name          LAB_POD_NS[i]   its namespace
#   LAB_POD_IP4[i]      10.244.0.(10+i)   LAB_POD_IP6[i]  fd00:10:244::(10+i)
#   LAB_POD_PID[i]      podserver pid (empty while stopped)
#   LAB_PODSERVER       podserver binary
# Knobs (set before lab_up): LAB_PODSERVER, LAB_POD_HTTP_PORTS ("80 8080"),
#   LAB_POD_UDP_PORTS ("5300"), LAB_POD_SCTP_PORT (""), LAB_POD_NAMESPACE
#   (default), LAB_SERVICE_CIDR4/6, LAB_BR_NETFILTER (1), LAB_POD_RESOLV (1),
#   LAB_QUIET (0), LAB_KEEP_TMP (0).
#
# CLI:
#   lab.sh up [-n NPODS] [-d MANIFEST_DIR] [--detach] [label=value ...]
#       brings a lab up and waits for Ctrl-C (then tears it down); with
#       --detach it prints the lab name and leaves it running.
#   lab.sh down LAB     tears down a (detached or leftover) lab by name
#   lab.sh list         lists labs whose namespaces exist
#   lab.sh env LAB      prints the variables of a running lab
#
# The podserver binary is looked for in $LAB_PODSERVER, $SVCD_BUILD, then
# build/ and build-lab/ of the source tree.

if [[ -n ${_LAB_SH_LOADED:-} ]]; then
    return 0 2>/dev/null || true
fi
_LAB_SH_LOADED=1
_LAB_SH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

: "${LAB_POD_HTTP_PORTS:=80 8080}"
: "${LAB_POD_UDP_PORTS:=5300}"
: "${LAB_POD_SCTP_PORT:=}"
: "${LAB_POD_NAMESPACE:=default}"
: "${LAB_SERVICE_CIDR4:=10.96.0.0/16}"
: "${LAB_SERVICE_CIDR6:=fd00:10:96::/112}"
: "${LAB_BR_NETFILTER:=1}"
: "${LAB_POD_RESOLV:=1}"
: "${LAB_QUIET:=0}"
: "${LAB_KEEP_TMP:=0}"
LAB_NODE_IP4=10.244.0.1
LAB_NODE_IP6=fd00:10:244::1
LAB_POD_CIDR4=10.244.0.0/24
LAB_POD_CIDR6=fd00:10:244::/64
LAB_NODEPORT_IP4=10.250.0.1
LAB_NODEPORT_IP6=fd00:10:250::1
LAB_EXT_IP4=10.250.0.2
LAB_EXT_IP6=fd00:10:250::2

declare -a LAB_PODS=() LAB_POD_NS=() LAB_POD_IP4=() LAB_POD_IP6=() LAB_POD_PID=()
declare -a _LAB_POD_LABELS=() _LAB_POD_READY=()
declare -A _LAB_NAME_COUNT=()
_LAB_NEXT_INDEX=1
LAB_UP=0

_lab_log() { [[ $LAB_QUIET == 1 ]] || echo "lab: $*" >&2; }
_lab_err() { echo "lab: error: $*" >&2; }

# Prints the podserver path, or fails.
_lab_find_podserver() {
    local c
    for c in "${LAB_PODSERVER:-}" "${SVCD_BUILD:+$SVCD_BUILD/podserver}" \
             "$_LAB_SH_DIR/../../build/podserver" "$_LAB_SH_DIR/../../build-lab/podserver"; do
        if [[ -n $c && -x $c ]]; then
            (cd "$(dirname "$c")" && echo "$(pwd)/$(basename "$c")")
            return 0
        fi
    done
    _lab_err "podserver not found (build it: cmake --build BUILD --target podserver; or set LAB_PODSERVER)"
    return 1
}

# 0 when we can make namespaces (root + ip netns).
lab_available() {
    [[ $(id -u) == 0 ]] || { echo "not root"; return 1; }
    command -v ip >/dev/null || { echo "no ip command"; return 1; }
    ip netns list >/dev/null 2>&1 || { echo "ip netns unavailable"; return 1; }
    return 0
}

lab_namespaces() {
    [[ -n ${LAB:-} ]] || return 0
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${LAB}-" || true
}

lab_exec_node() { ip netns exec "$LAB_NODE_NS" "$@"; }
lab_exec_ext() { ip netns exec "$LAB_EXT_NS" "$@"; }

lab_pod_index() {
    local i
    for i in "${!LAB_PODS[@]}"; do
        if [[ ${LAB_PODS[$i]} == "$1" ]]; then echo "$i"; return 0; fi
    done
    _lab_err "no pod named '$1'"
    return 1
}

lab_exec_pod() {
    local i
    i=$(lab_pod_index "$1") || return 1
    shift
    ip netns exec "${LAB_POD_NS[$i]}" "$@"
}

# Copies stdin to $LAB_MANIFESTS/FILE through a hidden temp file + rename.
lab_write_manifest() {
    local f=$1 tmp
    [[ -n ${LAB_MANIFESTS:-} ]] || { _lab_err "no manifest dir"; return 1; }
    tmp="$LAB_MANIFESTS/.${f##*/}.tmp.$$"
    cat >"$tmp" && mv -f "$tmp" "$LAB_MANIFESTS/$f"
}

# Writes pod-<name>.yaml for pod index i from the lab's arrays.
_lab_write_pod_manifest() {
    local i=$1 name=${LAB_PODS[$1]} kv ready=${_LAB_POD_READY[$1]}
    local cstatus=True
    [[ $ready == true ]] || cstatus=False
    {
        echo "# written by tests/lab/lab.sh for lab $LAB"
        echo "apiVersion: v1"
        echo "kind: Pod"
        echo "metadata:"
        echo "  name: $name"
        echo "  namespace: $LAB_POD_NAMESPACE"
        echo "  uid: $LAB-pod-$i"
        echo "  labels:"
        for kv in ${_LAB_POD_LABELS[$i]}; do
            echo "    ${kv%%=*}: \"${kv#*=}\""
        done
        echo "spec:"
        echo "  nodeName: $LAB_NODE_NAME"
        echo "  containers:"
        echo "  - name: server"
        echo "    image: svcd-lab/podserver"
        echo "    ports:"
        echo "    - {name: http, containerPort: 80, protocol: TCP}"
        echo "    - {name: alt, containerPort: 8080, protocol: TCP}"
        echo "    - {name: echo, containerPort: 5300, protocol: UDP}"
        echo "status:"
        echo "  phase: Running"
        echo "  hostIP: $LAB_NODE_IP4"
        echo "  podIP: ${LAB_POD_IP4[$i]}"
        echo "  podIPs:"
        echo "  - ip: ${LAB_POD_IP4[$i]}"
        echo "  - ip: ${LAB_POD_IP6[$i]}"
        echo "  conditions:"
        echo "  - type: Ready"
        echo "    status: \"$cstatus\""
        echo "  - type: ContainersReady"
        echo "    status: \"$cstatus\""
    } | lab_write_manifest "pod-$name.yaml"
}

# Starts pod i's podserver and waits (5 s) until it listens.
_lab_start_podserver() {
    local i=$1 name=${LAB_PODS[$1]} p t
    local -a args=(--name "$name" --pidfile "$LAB_TMP/$name.pid" --fail-file "$LAB_TMP/$name.fail")
    for p in $LAB_POD_HTTP_PORTS; do args+=(--http "$p"); done
    for p in $LAB_POD_UDP_PORTS; do args+=(--udp "$p"); done
    [[ -z $LAB_POD_SCTP_PORT ]] || args+=(--sctp "$LAB_POD_SCTP_PORT")
    rm -f "$LAB_TMP/$name.pid"
    ip netns exec "${LAB_POD_NS[$i]}" "$LAB_PODSERVER" "${args[@]}" \
        </dev/null >>"$LAB_TMP/$name.log" 2>&1 &
    LAB_POD_PID[$i]=$!
    # up to 30 s: a sanitizer build on a busy machine starts slowly
    for ((t = 0; t < 600; t++)); do
        [[ -s $LAB_TMP/$name.pid ]] && return 0
        if ! kill -0 "${LAB_POD_PID[$i]}" 2>/dev/null; then break; fi
        sleep 0.05
    done
    _lab_err "podserver of $name did not start; its log:"
    cat "$LAB_TMP/$name.log" >&2
    return 1
}

# True while pid runs (a zombie counts as gone).
_lab_pid_alive() {
    local st
    [[ -r /proc/$1/stat ]] || return 1
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

# Sends SIGTERM to pids, waits up to 3 s, then SIGKILL; reaps our children.
_lab_kill_pids() {
    local pid t alive
    [[ $# -gt 0 ]] || return 0
    kill -TERM "$@" 2>/dev/null
    for ((t = 0; t < 60; t++)); do
        alive=0
        for pid in "$@"; do _lab_pid_alive "$pid" && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.05
    done
    for pid in "$@"; do _lab_pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    for pid in "$@"; do wait "$pid" 2>/dev/null; done
    return 0
}

lab_pod_stop() {
    local i
    i=$(lab_pod_index "$1") || return 1
    [[ -n ${LAB_POD_PID[$i]:-} ]] || return 0
    _lab_kill_pids "${LAB_POD_PID[$i]}"
    LAB_POD_PID[$i]=
}

lab_pod_start() {
    local i
    i=$(lab_pod_index "$1") || return 1
    if [[ -n ${LAB_POD_PID[$i]:-} ]] && _lab_pid_alive "${LAB_POD_PID[$i]}"; then
        return 0
    fi
    _lab_start_podserver "$i"
}

lab_pod_fail() { lab_pod_index "$1" >/dev/null && : >"$LAB_TMP/$1.fail"; }
lab_pod_heal() { lab_pod_index "$1" >/dev/null && rm -f "$LAB_TMP/$1.fail"; }

lab_pod_set_ready() {
    local i
    i=$(lab_pod_index "$1") || return 1
    case $2 in true|false) ;; *) _lab_err "lab_pod_set_ready NAME true|false"; return 1 ;; esac
    _LAB_POD_READY[$i]=$2
    _lab_write_pod_manifest "$i"
}

lab_add_pod() {
    local name="" labels=() kv app="" i ns v4 v6 prefix
    [[ $LAB_UP == 1 ]] || { _lab_err "lab is not up"; return 1; }
    if [[ $# -gt 0 && $1 != *=* ]]; then name=$1; shift; fi
    for kv in "$@"; do
        [[ $kv == ?*=* && $kv != *[[:space:]]* ]] || { _lab_err "bad label '$kv'"; return 1; }
        labels+=("$kv")
        [[ ${kv%%=*} == app ]] && app=${kv#*=}
    done
    if [[ ${#labels[@]} == 0 ]]; then labels=(app=web); app=web; fi
    i=$_LAB_NEXT_INDEX
    if ((10 + i > 254)); then _lab_err "too many pods"; return 1; fi
    if [[ -z $name ]]; then
        prefix=${app:-pod}
        _LAB_NAME_COUNT[$prefix]=$(( ${_LAB_NAME_COUNT[$prefix]:-0} + 1 ))
        name=$prefix-${_LAB_NAME_COUNT[$prefix]}
    fi
    if lab_pod_index "$name" >/dev/null 2>&1; then _lab_err "pod $name exists"; return 1; fi
    _LAB_NEXT_INDEX=$((i + 1))
    ns=$LAB-p$i
    v4=10.244.0.$((10 + i))
    v6=fd00:10:244::$((10 + i))
    (
        set -e
        ip netns add "$ns"
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
            net.ipv6.conf.default.accept_dad=0
        ip -n "$ns" link set lo up
        ip -n "$LAB_NODE_NS" link add "vp$i" type veth peer name eth0 netns "$ns"
        ip -n "$LAB_NODE_NS" link set "vp$i" master br0 up
        # as kubelet's bridge does: a pod may reach itself through a VIP
        ip -n "$LAB_NODE_NS" link set "vp$i" type bridge_slave hairpin on
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
        ip -n "$ns" addr add "$v4/24" dev eth0
        ip -n "$ns" addr add "$v6/64" dev eth0 nodad
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add default via "$LAB_NODE_IP4"
        ip -n "$ns" -6 route add default via "$LAB_NODE_IP6"
        if [[ $LAB_POD_RESOLV == 1 ]]; then
            mkdir -p "/etc/netns/$ns"
            printf 'nameserver %s\nsearch %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' \
                "$LAB_NODE_IP4" "$LAB_POD_NAMESPACE" >"/etc/netns/$ns/resolv.conf"
        fi
    ) || { _lab_err "setting up pod namespace $ns failed"; return 1; }
    LAB_PODS[$i]=$name
    LAB_POD_NS[$i]=$ns
    LAB_POD_IP4[$i]=$v4
    LAB_POD_IP6[$i]=$v6
    LAB_POD_PID[$i]=
    _LAB_POD_LABELS[$i]="${labels[*]}"
    _LAB_POD_READY[$i]=true
    _lab_start_podserver "$i" || return 1
    _lab_write_pod_manifest "$i" || return 1
    # shellcheck disable=SC2034  # read by callers
    LAB_LAST_POD=$name
    _lab_log "pod $name: $ns $v4 $v6 (${labels[*]})"
}

lab_del_pod() {
    local i
    i=$(lab_pod_index "$1") || return 1
    lab_pod_stop "$1"
    rm -f "$LAB_MANIFESTS/pod-$1.yaml" "$LAB_TMP/$1.fail"
    ip netns del "${LAB_POD_NS[$i]}" 2>/dev/null
    rm -rf "/etc/netns/${LAB_POD_NS[$i]}"
    unset "LAB_PODS[$i]" "LAB_POD_NS[$i]" "LAB_POD_IP4[$i]" "LAB_POD_IP6[$i]" \
          "LAB_POD_PID[$i]" "_LAB_POD_LABELS[$i]" "_LAB_POD_READY[$i]"
}

# Builds the node and ext namespaces (lab variables already set).
_lab_setup_node() (
    set -e
    local node=$LAB_NODE_NS ext=$LAB_EXT_NS
    ip netns add "$node"
    # send_redirects=0: pods on the bridge reach each other through the node
    # (VIP DNAT); ICMP redirects would eat the per-host ICMP rate limit and
    # hide "port unreachable" answers.
    ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 \
        net.ipv6.conf.all.forwarding=1 net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0 net.ipv4.conf.all.send_redirects=0 \
        net.ipv4.conf.default.send_redirects=0
    ip -n "$node" link set lo up
    ip -n "$node" link add br0 type bridge forward_delay 0 stp_state 0
    ip -n "$node" addr add "$LAB_NODE_IP4/24" dev br0
    ip -n "$node" addr add "$LAB_NODE_IP6/64" dev br0 nodad
    ip -n "$node" link set br0 up
    ip -n "$node" route add "$LAB_SERVICE_CIDR4" dev br0
    ip -n "$node" -6 route add "$LAB_SERVICE_CIDR6" dev br0
    if ip netns exec "$node" test -d /proc/sys/net/bridge; then
        ip netns exec "$node" sysctl -qw \
            "net.bridge.bridge-nf-call-iptables=$LAB_BR_NETFILTER" \
            "net.bridge.bridge-nf-call-ip6tables=$LAB_BR_NETFILTER"
    fi
    ip netns add "$ext"
    ip netns exec "$ext" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0
    ip -n "$ext" link set lo up
    ip -n "$node" link add ext0 type veth peer name eth0 netns "$ext"
    ip -n "$node" addr add "$LAB_NODEPORT_IP4/24" dev ext0
    ip -n "$node" addr add "$LAB_NODEPORT_IP6/64" dev ext0 nodad
    ip -n "$node" link set ext0 up
    ip netns exec "$ext" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
    ip -n "$ext" addr add "$LAB_EXT_IP4/24" dev eth0
    ip -n "$ext" addr add "$LAB_EXT_IP6/64" dev eth0 nodad
    ip -n "$ext" link set eth0 up
    ip -n "$ext" route add default via "$LAB_NODEPORT_IP4"
    ip -n "$ext" -6 route add default via "$LAB_NODEPORT_IP6"
)

# Writes $LAB_TMP/lab.env (for `lab.sh env` and other shells).
_lab_write_env() {
    {
        declare -p LAB LAB_NODE_NS LAB_EXT_NS LAB_NODE_NAME LAB_NODE_IP4 LAB_NODE_IP6 \
            LAB_NODEPORT_IP4 LAB_NODEPORT_IP6 LAB_EXT_IP4 LAB_EXT_IP6 \
            LAB_SERVICE_CIDR4 LAB_SERVICE_CIDR6 LAB_POD_CIDR4 LAB_POD_CIDR6 \
            LAB_MANIFESTS LAB_TMP LAB_PODS LAB_POD_NS LAB_POD_IP4 LAB_POD_IP6
    } 2>/dev/null | sed 's/^declare -[-a-zA-Z]* //' >"$LAB_TMP/lab.env.tmp" &&
        mv -f "$LAB_TMP/lab.env.tmp" "$LAB_TMP/lab.env"
}

_lab_on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if declare -F lab_on_down >/dev/null; then lab_on_down "$rc" || true; fi
    lab_down
    exit "$rc"
}

_lab_on_signal() {
    local rc=$1
    trap - EXIT INT TERM
    _lab_log "interrupted; tearing down"
    if declare -F lab_on_down >/dev/null; then lab_on_down "$rc" || true; fi
    lab_down
    exit "$rc"
}

lab_up() {
    local npods=${1:-} mdir=${2:-} n why
    shift 2 2>/dev/null || shift $#
    [[ $npods =~ ^[0-9]+$ ]] || { _lab_err "usage: lab_up NPODS [MANIFEST_DIR] [label=value ...]"; return 1; }
    [[ $LAB_UP != 1 ]] || { _lab_err "lab $LAB is already up"; return 1; }
    why=$(lab_available) || { _lab_err "$why"; return 1; }
    LAB_PODSERVER=$(_lab_find_podserver) || return 1
    for ((n = 0; n < 20; n++)); do
        LAB=svl$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
        [[ -z $(lab_namespaces) ]] && ! compgen -G "/tmp/$LAB.*" >/dev/null && break
    done
    LAB_NODE_NS=$LAB-node
    LAB_EXT_NS=$LAB-ext
    LAB_NODE_NAME=$LAB_NODE_NS
    LAB_TMP=$(mktemp -d "/tmp/$LAB.XXXXXX") || return 1
    if [[ -z $mdir ]]; then mdir=$LAB_TMP/manifests; fi
    mkdir -p "$mdir" || return 1
    LAB_MANIFESTS=$(cd "$mdir" && pwd)
    LAB_PODS=() LAB_POD_NS=() LAB_POD_IP4=() LAB_POD_IP6=() LAB_POD_PID=()
    _LAB_POD_LABELS=() _LAB_POD_READY=() _LAB_NAME_COUNT=()
    _LAB_NEXT_INDEX=1
    trap _lab_on_exit EXIT
    trap '_lab_on_signal 130' INT
    trap '_lab_on_signal 143' TERM
    LAB_UP=1
    _lab_log "lab $LAB: node $LAB_NODE_NS, manifests $LAB_MANIFESTS, scratch $LAB_TMP"
    _lab_setup_node || { _lab_err "setting up the node namespace failed"; lab_down; return 1; }
    for ((n = 0; n < npods; n++)); do
        lab_add_pod "$@" || { lab_down; return 1; }
    done
    _lab_write_env
    export LAB LAB_NODE_NS LAB_EXT_NS LAB_NODE_NAME LAB_NODE_IP4 LAB_NODE_IP6 \
        LAB_NODEPORT_IP4 LAB_NODEPORT_IP6 LAB_EXT_IP4 LAB_EXT_IP6 \
        LAB_SERVICE_CIDR4 LAB_SERVICE_CIDR6 LAB_POD_CIDR4 LAB_POD_CIDR6 \
        LAB_MANIFESTS LAB_TMP
    return 0
}

lab_down() {
    local ns pid pids=() t
    [[ -n ${LAB:-} ]] || return 0
    for ((t = 0; t < 3; t++)); do
        pids=()
        for ns in $(lab_namespaces); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$pid"); done
        done
        [[ ${#pids[@]} == 0 ]] && break
        _lab_kill_pids "${pids[@]}"
    done
    for ns in $(lab_namespaces); do
        ip netns del "$ns" 2>/dev/null || _lab_err "could not delete namespace $ns"
        rm -rf "/etc/netns/$ns"
    done
    rm -rf /etc/netns/"$LAB"-* 2>/dev/null
    if [[ $LAB_KEEP_TMP != 1 && -n ${LAB_TMP:-} && $LAB_TMP == /tmp/"$LAB".* ]]; then
        rm -rf "$LAB_TMP"
    fi
    LAB_POD_PID=()
    [[ $LAB_UP == 1 ]] && _lab_log "lab $LAB: down"
    LAB_UP=0
    return 0
}

# ---------------------------------------------------------------- CLI ----
_lab_usage() {
    sed -n '/^# CLI:/,/^# The podserver/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

_lab_main() {
    local cmd=${1:-} npods=3 mdir="" detach=0 labels=() name
    shift || true
    case $cmd in
    up)
        while [[ $# -gt 0 ]]; do
            case $1 in
            -n) npods=$2; shift 2 ;;
            -d) mdir=$2; shift 2 ;;
            --detach) detach=1; shift ;;
            *=*) labels+=("$1"); shift ;;
            *) _lab_usage; return 2 ;;
            esac
        done
        lab_up "$npods" "$mdir" "${labels[@]}" || return 1
        cat "$LAB_TMP/lab.env"
        if [[ $detach == 1 ]]; then
            trap - EXIT INT TERM
            echo "lab $LAB is up; tear it down with: $0 down $LAB"
            return 0
        fi
        echo "lab $LAB is up; e.g.: ip netns exec $LAB_NODE_NS curl http://${LAB_POD_IP4[1]:-10.244.0.11}/"
        echo "press Ctrl-C to tear it down"
        while :; do sleep 3600 & wait $!; done
        ;;
    down)
        name=${1:-}
        [[ $name =~ ^svl[0-9a-f]{4}$ ]] || { _lab_err "usage: lab.sh down LAB (e.g. svl3fa2)"; return 2; }
        LAB=$name
        LAB_TMP=$(compgen -G "/tmp/$LAB.*" | head -n1)
        LAB_UP=1
        lab_down
        ;;
    list)
        ip netns list | awk '{print $1}' | sed -n 's/^\(svl[0-9a-f]\{4\}\)-.*/\1/p' | sort -u
        ;;
    env)
        name=${1:-}
        [[ $name =~ ^svl[0-9a-f]{4}$ ]] || { _lab_err "usage: lab.sh env LAB"; return 2; }
        cat /tmp/"$name".*/lab.env
        ;;
    *)
        _lab_usage
        return 2
        ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    _lab_main "$@"
    exit $?
fi
