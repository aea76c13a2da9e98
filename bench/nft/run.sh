#!/usr/bin/env bash
# bench/nft/run.sh: one command for the nftables data-plane figures.
#
#   bench/nft/run.sh [--kube-proxy-10k] [--sizes "1000 2000 10000 50000"]
#
# Everything runs in network namespaces created here (nftb<pid>-*) and
# deleted on exit: nothing touches the machine's own nftables.
#  1. svcd (bench_nft sync): full sync of N Services x 10 endpoints (wall
#     time incl. kernel commit), then 200 single-endpoint changes at that
#     size (store commit -> kernel commit, median / p99), RSS.
#  2. the reference: `nft -f` of the same Services in kube-proxy's nftables
#     layout (vmap -> chain per Service -> numgen vmap -> chain per
#     endpoint), 1k and 2k Services (10k only with --kube-proxy-10k: ~4 min).
#  3. per-connection latency through a VIP with 1 and with 10k Services
#     (connect + HTTP request + answer, median of 3000, to a pod namespace).
# Needs: root, a build with bench_nft and podserver (SVCD_BUILD, default
# build-nft then build).
set -u
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${SVCD_BUILD:-}
[[ -n $BUILD ]] || for b in "$SRC/build-nft" "$SRC/build"; do [[ -x $b/bench_nft ]] && { BUILD=$b; break; }; done
[[ -x ${BUILD:-}/bench_nft && -x $BUILD/podserver ]] || { echo "run.sh: need bench_nft and podserver (set SVCD_BUILD)" >&2; exit 2; }
KP10K=0
SIZES="1000 2000 10000 50000"
while [[ $# -gt 0 ]]; do
    case $1 in
    --kube-proxy-10k) KP10K=1 ;;
    --sizes) SIZES=$2; shift ;;
    *) echo "usage: $0 [--kube-proxy-10k] [--sizes \"N ...\"]" >&2; exit 2 ;;
    esac
    shift
done
[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (network namespaces)" >&2; exit 2; }

P=nftb$$
TMP=$(mktemp -d /tmp/nftbench.XXXXXX)
cleanup() {
    [[ -n ${SRV_PID:-} ]] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    for ns in "$P-node" "$P-pod" "$P-kp"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$P-node" && ip netns add "$P-pod" && ip netns add "$P-kp" || exit 1
for ns in "$P-node" "$P-pod" "$P-kp"; do ip -n "$ns" link set lo up; done
ip -n "$P-node" link add veth0 type veth peer name eth0 netns "$P-pod"
ip -n "$P-node" addr add 10.250.9.1/24 dev veth0
ip -n "$P-node" link set veth0 up
ip -n "$P-pod" addr add 10.250.9.2/24 dev eth0
ip -n "$P-pod" link set eth0 up
ip -n "$P-node" route add 10.96.0.0/12 dev veth0    # a route for the VIPs (output DNAT)
ip netns exec "$P-pod" "$BUILD/podserver" --name pod --http 8080 >"$TMP/podserver.log" 2>&1 &
SRV_PID=$!
for i in $(seq 1 50); do ip netns exec "$P-node" bash -c 'exec 3<>/dev/tcp/10.250.9.2/8080' 2>/dev/null && break; sleep 0.1; done

echo "== svcd: full sync and single-endpoint change (N Services x 10 endpoints)"
echo "   machine load: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; other work on the machine skews wall times)"
# shellcheck disable=SC2086
timeout 600 ip netns exec "$P-node" "$BUILD/bench_nft" sync $SIZES

echo
echo "== reference: nft -f, kube-proxy nftables layout (chain per Service + per endpoint)"
kp_gen() { # N -> file
    awk -v n="$1" 'BEGIN {
        print "table ip kube-proxy {"
        print "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }"
        print "  chain mark-for-masquerade { meta mark set meta mark or 0x4000; }"
        for (i = 0; i < n; i++) for (e = 0; e < 10; e++) {
            ip = sprintf("10.%d.%d.%d", 128 + int((i*10+e+1)/65536), int((i*10+e+1)/256)%256, (i*10+e+1)%256)
            printf "  chain endpoint-%d-%d { ip saddr %s jump mark-for-masquerade; meta l4proto tcp dnat to %s:8080; }\n", i, e, ip, ip
        }
        for (i = 0; i < n; i++) {
            printf "  chain service-%d { numgen random mod 10 vmap { ", i
            for (e = 0; e < 10; e++) printf "%d : goto endpoint-%d-%d%s", e, i, e, e < 9 ? ", " : ""
            print " }; }"
        }
        print "  chain services { ip daddr . meta l4proto . th dport vmap @service-ips; }"
        print "  chain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }"
        print "  chain nat-output { type nat hook output priority -100; policy accept; jump services; }"
        print "}"
        for (i = 0; i < n; i++) {
            v = (10*16777216 + 96*65536) + 1 + i
            printf "add element ip kube-proxy service-ips { %d.%d.%d.%d . tcp . 80 : goto service-%d }\n", int(v/16777216), int(v/65536)%256, int(v/256)%256, v%256, i
        }
    }' >"$2"
}
KP_SIZES="1000 2000"
[[ $KP10K == 1 ]] && KP_SIZES="1000 2000 10000"
for n in $KP_SIZES; do
    kp_gen "$n" "$TMP/kp.nft"
    s=$(date +%s%N)
    if timeout 900 ip netns exec "$P-kp" nft -f "$TMP/kp.nft"; then
        e=$(date +%s%N)
        echo "kube-proxy layout, $n Services x 10 endpoints: nft -f $(( (e - s) / 1000000 )) ms"
    else
        echo "kube-proxy layout, $n Services: nft -f failed"
    fi
    ip netns exec "$P-kp" nft delete table ip kube-proxy 2>/dev/null
done
[[ $KP10K == 1 ]] || echo "(10k in this layout: run with --kube-proxy-10k; the growth from 1k to 2k shows the shape)"

echo
echo "== per-connection latency through a VIP (connect + request + answer), 3000 connections"
echo "   (alternating runs; the median of each is printed)"
for n in 1 10000 1 10000; do
    timeout 300 ip netns exec "$P-node" "$BUILD/bench_nft" latency 10.250.9.2 8080 "$n" 3000
done
