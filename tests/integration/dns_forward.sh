#!/usr/bin/env bash
# DNS forwarding through the real svcd, inside a lab: two dnsmasq upstreams
# in the node namespace (default: 127.0.0.1:5399 with *.ext.test, stub
# corp.test: 127.0.0.2:5399), svcd answering on 127.0.0.1:5353 (node),
# 10.244.0.1:53 (pods) and 10.250.0.1:53 (external client).
# Checks with dig, as a user would: forwarding, the cache (upstream query
# log, TTL counting down, DO a separate entry), stub routing, the ACL
# (pod allowed, external client REFUSED), TC over UDP then the full answer
# over TCP, SERVFAIL in bounded time with the upstream gone while cached
# names keep answering, and the metrics.
set -u
source "$(dirname "$0")/lib.sh"

lab_up 1 || it_fail "lab_up"
POD=${LAB_PODS[1]}
UP_LOG=$LAB_TMP/upstream-a.log
STUB_LOG=$LAB_TMP/upstream-b.log
BIG=$(printf 'z%.0s' $(seq 250))

lab_exec_node dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --pid-file= --user=root --listen-address=127.0.0.1 --bind-interfaces --port=5399 \
    --cache-size=0 --log-queries --log-facility="$UP_LOG" --local-ttl=300 \
    --address=/ext.test/192.0.2.7 --txt-record="big.ext.test,$BIG,$BIG,$BIG" \
    </dev/null >/dev/null 2>&1 &
lab_exec_node dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --pid-file= --user=root --listen-address=127.0.0.2 --bind-interfaces --port=5399 \
    --cache-size=0 --log-queries --log-facility="$STUB_LOG" --local-ttl=300 \
    --address=/corp.test/198.51.100.9 </dev/null >/dev/null 2>&1 &
up_ok() { # addr name -> true when that upstream answers
    [[ -n $(lab_exec_node dig @"$1" -p 5399 +short +tries=1 +time=1 "$2") ]]
}
it_wait 20 up_ok 127.0.0.1 a.ext.test || it_fail "upstream dnsmasq did not start"
it_wait 20 up_ok 127.0.0.2 a.corp.test || it_fail "stub dnsmasq did not start"
UP_PID=$(lab_exec_node pgrep -f -- "--log-facility=$UP_LOG" | head -1)

svcd_start_lab --dns-listen 127.0.0.1:5353 --dns-listen 10.244.0.1:53 \
    --dns-listen 10.250.0.1:53 --pod-cidr 10.244.0.0/24 \
    --upstream 127.0.0.1:5399 --stub-domain corp.test=127.0.0.2:5399 \
    || it_fail "svcd did not start"

ask() { # name [dig args] -> dig output from the node namespace
    local n=$1
    shift
    lab_exec_node dig @127.0.0.1 -p 5353 +tries=1 +time=6 "$@" "$n"
}
upcount() { # log pattern -> how many queries the upstream received
    grep -c -- "$2" "$1" 2>/dev/null || true
}
# upcount_is LOG PATTERN N: the upstream's log reaches N matching queries
# (dnsmasq may write its log line after it answered; the wait covers that).
# For N = 0, the check after an answer that came from elsewhere is exact.
upcount_is() { it_wait_eq 20 "$3" upcount "$1" "$2"; }

# Forwarding and the cache.
it_assert_eq "$(ask www.ext.test +short)" "192.0.2.7" "forwarded A"
it_assert_eq "$(ask WWW.Ext.Test +short)" "192.0.2.7" "second ask (mixed case) answered"
it_check "upstream asked once" upcount_is "$UP_LOG" 'query\[A\] www.ext.test ' 1
out=$(ask WwW.eXt.TeSt +noall +question)
it_assert_contains "$out" "WwW.eXt.TeSt" "question case kept in the cached answer"
ttl1=$(ask www.ext.test +noall +answer | awk '{print $2}')
sleep 2.2   # time must pass for the TTL to count down (TTL 300: a slow machine only helps)
ttl2=$(ask www.ext.test +noall +answer | awk '{print $2}')
it_check "TTL counts down in the cache ($ttl1 -> $ttl2)" \
    test -n "$ttl1" -a -n "$ttl2" -a "${ttl2:-0}" -le $((${ttl1:-0} - 2))
it_assert_eq "$(ask www.ext.test +short +dnssec | head -1)" "192.0.2.7" "DO query answered"
it_check "DO query is its own cache entry" upcount_is "$UP_LOG" 'query\[A\] www.ext.test ' 2

# Stub domain.
it_assert_eq "$(ask host.corp.test +short)" "198.51.100.9" "stub domain answered"
it_check "stub upstream asked" upcount_is "$STUB_LOG" 'query\[A\] host.corp.test ' 1
it_assert_eq "$(upcount "$UP_LOG" 'host.corp.test')" 0 "default upstream not asked for the stub"

# ACL: a pod may recurse, the external client may not.
it_assert_eq "$(lab_exec_pod "$POD" dig @10.244.0.1 +short +tries=1 +time=3 pod.ext.test)" \
    "192.0.2.7" "pod can resolve external names"
out=$(lab_exec_ext dig @10.250.0.1 +tries=1 +time=3 ext.ext.test)
it_assert_contains "$out" "status: REFUSED" "external client REFUSED"
it_assert_eq "$(upcount "$UP_LOG" 'ext.ext.test')" 0 "refused query not forwarded"

# Large answer: TC over UDP without EDNS, whole over TCP.
out=$(ask big.ext.test TXT +noedns +ignore)
it_assert_contains "$out" " tc" "UDP answer without EDNS truncated (TC)"
out=$(ask big.ext.test TXT +tcp +short)
it_check "TCP answer complete" test "$(printf '%s' "$out" | wc -c)" -gt 700

# Upstream gone: cached names still answer, others SERVFAIL quickly.
[[ -n $UP_PID ]] && kill "$UP_PID"
it_wait 20 bash -c "! kill -0 $UP_PID 2>/dev/null" || it_fail "upstream dnsmasq did not exit"
it_assert_eq "$(ask www.ext.test +short)" "192.0.2.7" "cached name with upstream down"
# dig waits 6 s: an answer at all shows svcd gives up on its own (its
# deadline is 4 s), without asserting how fast.
out=$(ask gone.ext.test)
it_assert_contains "$out" "status: SERVFAIL" "uncached name with upstream down: SERVFAIL"

# Metrics (read before SIGHUP empties the cache gauge).
m=$(admin_get /metrics)
for name in svcd_dns_cache_hits_total svcd_dns_cache_misses_total svcd_dns_cache_entries \
    svcd_dns_upstream_queries_total svcd_dns_upstream_failures_total; do
    it_assert_contains "$m" "$name" "metric $name"
done
hits=$(printf '%s\n' "$m" | awk '$1 == "svcd_dns_cache_hits_total" {print $2}')
it_check "cache hits counted (${hits:-none})" test "${hits%.*}" -ge 3

# SIGHUP flushes the cache: with the upstream gone, the once-cached name fails now.
svcd_signal HUP
servfails() { [[ $(ask "$1") == *"status: SERVFAIL"* ]]; }
it_check "SIGHUP flushed the cache" it_wait 15 servfails www.ext.test

it_finish
