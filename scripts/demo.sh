#!/usr/bin/env bash
# demo.sh: svcd end to end on one machine, in network namespaces.
#
#   sudo scripts/demo.sh            build, start a lab + svcd, show it, wait
#                                   for Ctrl-C, tear everything down
#   sudo scripts/demo.sh --once     same, but exit after showing the output
#                                   (CI smoke test: exit 1 when svcd does not
#                                   start or svcctl cannot list services)
#   --cluster      a 3-node cluster through etcd instead (scripts/demo-cluster.sh)
#   --no-deps      skip scripts/install-deps.sh
#   --no-build     use the existing build directory as it is
#   DEMO_BUILD=dir build directory (default build)
#
# What it builds (see tests/lab/README.md for the lab itself):
#   - a node namespace with a pod bridge 10.244.0.0/24, five pod namespaces
#     running podserver: web-1..3 (app=web) and db-1..2 (app=db);
#   - an "upstream" DNS server (dnsmasq, example.com -> 192.0.2.1) in the
#     external-client namespace at 10.250.0.2:53;
#   - Services: web (ClusterIP 10.96.0.10, 80 -> http, 8080 named alt) and
#     db (headless, 5300/UDP named echo);
#   - svcd in the node namespace: DNS on 127.0.0.1:53 and 10.244.0.1:53,
#     admin API on 127.0.0.1:9180, service CIDR 10.96.0.0/16.
# Nothing runs in, or changes, the machine's own network namespace.
set -uo pipefail

once=0 deps=1 build=1
for a in "$@"; do
    [[ $a != --cluster ]] || exec "$(dirname "$0")/demo-cluster.sh" "$@"
done
for a in "$@"; do
    case $a in
    --once) once=1 ;;
    --no-deps) deps=0 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
BUILD=${DEMO_BUILD:-build}
# How to call svcctl in the printed commands (relative builds from this directory).
case $BUILD in /*) CTL=$BUILD/svcctl ;; *) CTL=./$BUILD/svcctl ;; esac

if [[ $(id -u) != 0 ]]; then
    echo "demo.sh: run as root (it creates network namespaces)" >&2
    exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [[ $deps == 1 && -x scripts/install-deps.sh ]]; then
    step "install dependencies"
    scripts/install-deps.sh || echo "demo.sh: install-deps failed; continuing with what is installed" >&2
fi

if [[ $build == 1 ]]; then
    step "build ($BUILD)"
    cmake -S . -B "$BUILD" >/dev/null || exit 1
    cmake --build "$BUILD" -j2 || exit 1
fi
for b in svcd svcctl podserver; do
    [[ -x $BUILD/$b ]] || { echo "demo.sh: $BUILD/$b missing" >&2; exit 1; }
done

SVCD_SRC=$REPO
SVCD_BUILD=$(cd "$BUILD" && pwd)
export SVCD_SRC SVCD_BUILD
# lib.sh brings lab.sh and svcd_start/svcd_stop; its traps tear down the lab
# (and print svcd's log if the demo fails) on exit, Ctrl-C or kill.
source "$REPO/tests/integration/lib.sh"

step "lab: node + 3 web pods + 2 db pods"
lab_up 3 "" app=web || exit 1
lab_add_pod app=db || exit 1
lab_add_pod app=db || exit 1
for i in "${!LAB_PODS[@]}"; do
    printf '  %-6s %-12s %-18s ns %s\n' "${LAB_PODS[$i]}" "${LAB_POD_IP4[$i]}" \
        "${LAB_POD_IP6[$i]}" "${LAB_POD_NS[$i]}"
done

upstream=()
if command -v dnsmasq >/dev/null; then
    step "upstream DNS (dnsmasq in $LAB_EXT_NS, example.com -> 192.0.2.1)"
    ip netns exec "$LAB_EXT_NS" dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --no-resolv --no-hosts --bind-interfaces --listen-address="$LAB_EXT_IP4" \
        --port=53 --pid-file= --user=root --address=/example.com/192.0.2.1 \
        </dev/null >>"$LAB_TMP/dnsmasq.log" 2>&1 &
    upstream=(--upstream "$LAB_EXT_IP4:53")
fi

step "Service manifests in $LAB_MANIFESTS"
lab_write_manifest svc-web.yaml <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: ClusterIP
  clusterIP: 10.96.0.10
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
    protocol: TCP
  - name: alt
    port: 8080
    targetPort: alt
    protocol: TCP
EOF
lab_write_manifest svc-db.yaml <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: default
spec:
  clusterIP: None
  selector:
    app: db
  ports:
  - name: echo
    port: 5300
    targetPort: echo
    protocol: UDP
EOF
ls -1 "$LAB_MANIFESTS"

step "svcd in $LAB_NODE_NS"
svcd_args=(--manifests "$LAB_MANIFESTS" --node-name "$LAB_NODE_NAME"
    --dns-listen 127.0.0.1:53 --dns-listen "$LAB_NODE_IP4:53"
    --admin-listen 127.0.0.1:9180 --service-cidr 10.96.0.0/16 "${upstream[@]}")
echo "  svcd ${svcd_args[*]}"
if ! svcd_start "${svcd_args[@]}"; then
    echo "demo.sh: svcd did not become ready" >&2
    exit 1
fi
echo "  ready; log: $SVCD_LOG"
# give the first sync a moment (endpoints, rules, DNS zone)
it_wait 3 bash -c "ip netns exec $LAB_NODE_NS $SVCD_BUILD/svcctl get endpoints 2>/dev/null | grep -q web" || true

N=$LAB_NODE_NS
P=${LAB_POD_NS[1]}
demo_cmds=(
    "ip netns exec $N $CTL get services"
    "ip netns exec $N $CTL get endpoints -o wide"
    "ip netns exec $N $CTL get pods -o wide"
    "ip netns exec $N dig +time=1 +tries=1 +noall +answer @127.0.0.1 web.default.svc.cluster.local"
    "ip netns exec $N dig +time=1 +tries=1 +noall +answer @127.0.0.1 db.default.svc.cluster.local"
    "ip netns exec $N dig +time=1 +tries=1 +noall +answer @127.0.0.1 _http._tcp.web.default.svc.cluster.local SRV"
    "ip netns exec $N dig +time=1 +tries=1 +noall +answer @127.0.0.1 example.com"
    "ip netns exec $N curl -sS --max-time 2 http://10.96.0.10/"
    "ip netns exec $N curl -sS --max-time 2 http://10.96.0.10:8080/"
    "ip netns exec $P curl -sS --max-time 2 http://web/"
    "ip netns exec $P curl -sS --max-time 2 http://web.default.svc.cluster.local:8080/"
    "ip netns exec $N nft list ruleset"
)

step "try it (from $REPO, as root)"
for c in "${demo_cmds[@]}"; do echo "  $c"; done
echo "  (curl 10.96.0.10 a few times: the answering pod changes)"

step "running them once"
smoke_fail=0
for c in "${demo_cmds[@]}"; do
    printf '\n\033[36m$ %s\033[0m\n' "$c"
    if [[ $c == *" nft list ruleset" ]]; then
        out=$(bash -c "$c" 2>&1)
        rc=$?
        head -n 60 <<<"$out"
        (($(wc -l <<<"$out") <= 60)) || echo "... ($(wc -l <<<"$out") lines)"
    else
        bash -c "$c" 2>&1
        rc=$?
    fi
    if [[ $rc != 0 ]]; then
        echo "(exit status $rc)"
        [[ $c == *"svcctl get services"* ]] && smoke_fail=1
    fi
done

printf '\n\033[36m$ for i in 1 2 3 4 5 6; do curl -s http://10.96.0.10/; done\033[0m\n'
for _ in 1 2 3 4 5 6; do
    ip netns exec "$N" curl -sS --max-time 1 http://10.96.0.10/ 2>&1
done

if [[ $once == 1 ]]; then
    step "done (--once): tearing down"
    svcd_stop
    if [[ $smoke_fail == 1 ]]; then
        echo "demo.sh: svcctl get services failed" >&2
        # shellcheck disable=SC2034  # read by lib.sh's exit trap (prints the log)
        IT_FAILED=1
        exit 1
    fi
    exit 0
fi

step "lab $LAB is up; press Ctrl-C to tear it down"
echo "  svcd log: tail -f $SVCD_LOG"
echo "  change Services: edit or add files in $LAB_MANIFESTS (svcd follows the directory)"
echo "  stop a pod's server: kill \$(cat $LAB_TMP/web-2.pid)"
echo "  list things: ip netns exec $N $CTL get endpoints -o wide"
while :; do
    sleep 3600 &
    wait $!
done
