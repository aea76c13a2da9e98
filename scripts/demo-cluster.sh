#!/usr/bin/env bash
# demo-cluster.sh (also: scripts/demo.sh --cluster): a 3-node svcd cluster on
# one machine, in network namespaces (tests/cluster/lab.sh): an etcd member and
# svcd on each node, two pods per node, Services written with svcctl apply.
#
#   sudo scripts/demo.sh --cluster [--once] [--no-build]
#
# Shows: the keys in etcd, each node's DNS answer for a headless Service (all
# six pods), and curl through the ClusterIP from node 1 reaching pods on every
# node. --once exits after that (CI smoke test); otherwise it waits for Ctrl-C
# and tears everything down. Nothing changes the machine's own namespace.
set -uo pipefail

once=0 build=1
for a in "$@"; do
    case $a in
    --once) once=1 ;;
    --no-build) build=0 ;;
    --no-deps|--cluster) ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo-cluster.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.." || exit 1
BUILD=${DEMO_BUILD:-build}
[[ $(id -u) == 0 ]] || { echo "demo-cluster.sh: run as root" >&2; exit 1; }
command -v etcd >/dev/null || { echo "demo-cluster.sh: etcd-server not installed" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
if [[ $build == 1 ]]; then
    step "build ($BUILD)"
    cmake -S . -B "$BUILD" >/dev/null && cmake --build "$BUILD" -j2 || exit 1
fi
CL_BUILD=$(cd "$BUILD" && pwd)
source tests/cluster/lab.sh

step "3 node namespaces, an etcd member on each, 2 pods per node"
cl_up 3 2 || exit 1
cl_etcd_wait 60 || { echo "etcd did not come up" >&2; exit 1; }
step "svcd on every node (--etcd-endpoints, --node-name n<i>, lease TTL $CL_TTL s)"
for i in 1 2 3; do cl_svcd_start "$i"; done
for i in 1 2 3; do
    for ((t = 0; t < 300; t++)); do [[ $(cl_readyz "$i") == 200 ]] && break; sleep 0.1; done
    echo "n$i /readyz: $(cl_readyz "$i")"
done
cat >"$CL_TMP/web.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
YAML
step "svcctl --etcd-endpoints ... apply -f web.yaml"
cl_svcctl 1 apply -f "$CL_TMP/web.yaml"
step "etcdctl get --prefix /svcd/ --keys-only"
cl_exec 1 etcdctl get --prefix /svcd/ --keys-only | grep .
VIP=$(cl_exec 1 etcdctl get /svcd/services/default/web --print-value-only | jq -r .spec.clusterIP)
for ((t = 0; t < 100; t++)); do
    [[ $(cl_dig 3 web-headless.default.svc.cluster.local | wc -l) == 6 ]] && break; sleep 0.1
done
for i in 1 2 3; do
    step "n$i: dig web-headless.default.svc.cluster.local"
    cl_dig "$i" web-headless.default.svc.cluster.local
done
step "n1: 12 x curl http://$VIP/ (web, ClusterIP)"
for ((k = 0; k < 12; k++)); do cl_exec 1 curl -s --max-time 2 "http://$VIP/"; echo; done | sort | uniq -c
ok=$(for ((k = 0; k < 12; k++)); do cl_exec 1 curl -s --max-time 2 "http://$VIP/"; echo; done | sort -u | grep -c web-n)
if [[ $once == 1 ]]; then
    step "done (--once): tearing down"
    [[ $ok -ge 2 ]] || { echo "demo-cluster.sh: the VIP did not reach several nodes' pods" >&2; exit 1; }
    exit 0
fi
step "try it (the lab is $CL; logs in $CL_TMP)"
cat <<EOT
  ip netns exec $CL-n1 curl http://$VIP/
  ip netns exec $CL-n2 dig @127.0.0.1 web-headless.default.svc.cluster.local +short
  ip netns exec $CL-n1 etcdctl get --prefix /svcd/pods/ --keys-only
  kill the svcd of n3 (pid ${CL_SVCD_PID[3]}) and watch its pods leave n1's DNS within ${CL_TTL} s
Ctrl-C tears everything down.
EOT
while :; do sleep 3600; done
