#!/usr/bin/env bash
# bench/nft-dispatch/run.sh: nftables CPU per new connection, svcd's layout
# next to kube-proxy's nftables layout, for the same 2,000 Services (200
# distinct endpoint counts; bench/nft-dispatch/gen.py).
#
#   bench/nft-dispatch/run.sh [--count N] [--reps R] [--old-svcd PATH]
#
# Three network namespaces (nfd<pid>-svcd, -kp, -base), each with a veth to
# its own sink namespace that drops everything. svcd programs its table in
# the first (then stops; the rules stay), `nft -f` loads kube-proxy's layout
# (table ip kube-proxy) in the second, the third has empty nat chains only
# (conntrack + NAT core: the baseline). In each, nftpkt sends COUNT UDP
# packets, each a new connection (new source port), to: the VIP of the
# first-created Service (1 endpoint), the last-created (200 endpoints), and
# an address that is no Service (non-Service traffic); CPU time of the
# sender per packet (the OUTPUT/POSTROUTING hooks run in its context),
# median of REPS runs, conntrack flushed before each run. "nft" = minus the
# baseline: the cost of the rules themselves (plus the DNAT for VIPs).
# --old-svcd runs a second svcd binary (e.g. a build of an older commit) too.
set -u
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${SVCD_BUILD:-$SRC/build}
COUNT=50000 REPS=7 OLD=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --count) COUNT=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --old-svcd) OLD=$2; shift ;;
    *) echo "usage: $0 [--count N] [--reps R] [--old-svcd PATH]" >&2; exit 2 ;;
    esac
    shift
done
[[ -x $BUILD/svcd && -x $BUILD/nftpkt ]] || { echo "run.sh: need svcd and nftpkt in $BUILD (SVCD_BUILD)" >&2; exit 2; }
((COUNT >= 1000 && COUNT <= 200000)) || { echo "run.sh: --count 1000..200000" >&2; exit 2; }
P=nfd$$
TMP=$(mktemp -d)
KINDS="svcd kp base"
[[ -n $OLD ]] && KINDS="svcd old kp base"
cleanup() {
    local k
    for k in $KINDS; do ip netns del "$P-$k" 2>/dev/null; ip netns del "$P-$k-x" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkns() {  # mkns NAME: namespace + sink behind a veth; 10.0.0.0/8 routed to the sink
    local n=$1
    ip netns add "$n" && ip netns add "$n-x" || return 1
    ip -n "$n" link set lo up
    ip -n "$n" link add v0 type veth peer name v1 netns "$n-x"
    ip -n "$n" addr add 192.168.99.1/24 dev v0
    ip -n "$n-x" addr add 192.168.99.2/24 dev v1
    ip -n "$n" link set v0 up
    ip -n "$n-x" link set v1 up
    ip -n "$n" route add 10.0.0.0/8 via 192.168.99.2
    ip netns exec "$n-x" nft -f - <<'NFT'
table netdev sink {
  chain in {
    type filter hook ingress device v1 priority 0; policy drop;
    arp daddr ip 192.168.99.2 accept
  }
}
NFT
}

python3 "$SRC/bench/nft-dispatch/gen.py" "$TMP" || exit 1
for k in $KINDS; do mkns "$P-$k" || { echo "run.sh: cannot create namespaces" >&2; exit 1; }; done

run_svcd() {  # run_svcd NS BINARY [ARGS]
    local ns=$1 bin=$2 t
    shift 2
    ip netns exec "$ns" "$bin" --manifests "$TMP/manifests" --node-name n1 \
        --pod-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/16 "$@" \
        --admin-listen 127.0.0.1:9180 --log-level warn </dev/null >"$TMP/$ns.log" 2>&1 &
    local pid=$!
    for ((t = 0; t < 300; t++)); do
        ip netns exec "$ns" curl -s --max-time 1 -o /dev/null -w '%{http_code}' \
            http://127.0.0.1:9180/readyz 2>/dev/null | grep -q 200 && break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    ip netns exec "$ns" nft list map inet svcd be4 >/dev/null 2>&1 ||
        { echo "run.sh: svcd did not program $ns"; cat "$TMP/$ns.log"; exit 1; }
}
t0=$(date +%s%N)
run_svcd "$P-svcd" "$BUILD/svcd" --node-ip 192.168.99.1
t1=$(date +%s%N)
[[ -n $OLD ]] && run_svcd "$P-old" "$OLD"
t2=$(date +%s%N)
ip netns exec "$P-kp" nft -f "$TMP/kube-proxy.nft" || { echo "run.sh: nft -f failed"; exit 1; }
t3=$(date +%s%N)
ip netns exec "$P-base" nft -f - <<'NFT'
table ip base {
  chain out { type nat hook output priority -100; policy accept; }
  chain post { type nat hook postrouting priority 100; policy accept; }
}
NFT
printf 'load: svcd %d ms (start to ready), kube-proxy layout `nft -f` %d ms\n' \
    $(((t1 - t0) / 1000000)) $(((t3 - t2) / 1000000))
for k in $KINDS; do
    c=$(ip netns exec "$P-$k" nft list ruleset | grep -c '^\s*chain ')
    printf '  %-5s %6d chains\n' "$k" "$c"
done

declare -A RES
TARGETS="early late none"
target_ip() { case $1 in early) echo 10.96.1.1 ;; late) echo 10.96.1.200 ;; none) echo 10.200.0.1 ;; esac; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for tg in $TARGETS; do
    for k in $KINDS; do : >"$TMP/r-$k-$tg"; done
done
for ((r = 0; r < REPS; r++)); do
    for tg in $TARGETS; do
        for k in $KINDS; do
            ip netns exec "$P-$k" conntrack -F >/dev/null 2>&1
            ip netns exec "$P-$k" taskset -c 1 "$BUILD/nftpkt" 192.168.99.1 "$(target_ip "$tg")" 80 "$COUNT" \
                >>"$TMP/r-$k-$tg" 2>>"$TMP/nftpkt.err"
        done
    done
done
for tg in $TARGETS; do
    for k in $KINDS; do RES[$k-$tg]=$(median <"$TMP/r-$k-$tg"); done
done
echo
echo "CPU per new connection (ns, median of $REPS x $COUNT packets; nft = minus baseline)"
printf '%-34s %10s %10s' "target" "svcd" "kube-proxy"
[[ -n $OLD ]] && printf ' %10s' "old svcd"
printf ' %10s\n' "baseline"
label() { case $1 in early) echo "VIP, first Service (1 endpoint)" ;; late) echo "VIP, last Service (200 endpoints)" ;; none) echo "non-Service traffic" ;; esac; }
for tg in $TARGETS; do
    b=${RES[base-$tg]}
    printf '%-34s %10s %10s' "$(label "$tg") total" "${RES[svcd-$tg]}" "${RES[kp-$tg]}"
    [[ -n $OLD ]] && printf ' %10s' "${RES[old-$tg]}"
    printf ' %10s\n' "$b"
    printf '%-34s %10s %10s' "  nft" "$((RES[svcd-$tg] - b))" "$((RES[kp-$tg] - b))"
    [[ -n $OLD ]] && printf ' %10s' "$((RES[old-$tg] - b))"
    printf '\n'
done
[[ -s $TMP/nftpkt.err ]] && { echo "nftpkt warnings:"; sort | uniq -c <"$TMP/nftpkt.err" | head; }
exit 0
