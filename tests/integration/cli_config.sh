#!/usr/bin/env bash
# svcd's command line and config file: every bad value is one clear message
# naming the flag (or file and key) and exit status 2; --help/--version exit 0.
# Touches nothing: svcd exits before opening any socket.
set -u
SVCD="${SVCD_BUILD:?}/svcd"
SRC="${SVCD_SRC:?}"
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect STATUS PATTERN ARGS... : runs svcd, checks exit status and stderr/stdout
expect() {
  local want=$1 pat=$2; shift 2
  local out rc
  out=$("$SVCD" "$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ] && grep -qE -e "$pat" <<<"$out"; then
    pass=$((pass+1))
  else
    fail=$((fail+1)); echo "FAIL: svcd $* -> status $rc (want $want), output:"; echo "$out"
    echo "  expected pattern: $pat"
  fi
}

expect 0 '^svcd [0-9]+\.[0-9]+\.[0-9]+' --version
expect 0 '--dns-listen ADDR:PORT' --help
expect 0 '--stub-domain' --help
expect 2 '--dns-ttl: must be a whole number from 0 to 604800 \(got "abc"\)' --dns-ttl abc
expect 2 '--dns-listen: must be ADDR:PORT' --dns-listen 'nonsense:53'
expect 2 '--dns-listen: must be ADDR:PORT' --dns-listen '127.0.0.1:99999'
expect 2 '--service-cidr: must be a CIDR' --service-cidr 10.96.0.1/12
expect 2 '--upstream: must be ADDR' --upstream 'x.y'
expect 2 '--cluster-domain: must be a DNS name' --cluster-domain 'bad..domain'
expect 2 '--nft-table: must be 1-31 characters' --nft-table 'a b'
expect 2 '--log-level: must be error, warn, info or debug \(got "loud"\)' --log-level loud
expect 2 '--log-format: must be text or json' --log-format xml
expect 2 '--admin-listen: must be ADDR:PORT' --admin-listen 127.0.0.1
expect 2 '--stub-domain: must be DOMAIN=ADDR' --stub-domain corp.example
expect 2 '--dns-pod-records: must be true or false' --dns-pod-records maybe
expect 2 '--dns-udp-max: must be a whole number from 512 to 65535' --dns-udp-max 100
expect 2 'unknown option --frobnicate' --frobnicate
expect 2 '--no-nft=false: --no-nft takes no value' --no-nft=false
expect 2 '--dns-listen: must be ADDR:PORT.*port 1-65535' --dns-listen 127.0.0.1:0
expect 2 '--manifests needs a value' --manifests
expect 2 'unexpected argument "extra"' extra
expect 2 'dns-cache-min-ttl \(100\) is larger than --dns-cache-max-ttl \(10\)' \
  --dns-cache-min-ttl 100 --dns-cache-max-ttl 10

# Config file errors name the file and the key.
printf 'dns-ttl: -1\n' > "$tmp/a.yaml"
expect 2 "$tmp/a.yaml: dns-ttl: must be a whole number" --config "$tmp/a.yaml"
printf 'no-such-key: 1\n' > "$tmp/b.yaml"
expect 2 "$tmp/b.yaml: no-such-key: unknown setting" --config "$tmp/b.yaml"
printf 'dns-listen: [127.0.0.1:53\n' > "$tmp/c.yaml"
expect 2 "$tmp/c.yaml: line [0-9]+ column [0-9]+" --config "$tmp/c.yaml"
printf 'cluster-domain: [a, b]\n' > "$tmp/d.yaml"
expect 2 "$tmp/d.yaml: cluster-domain: takes one value, not a list" --config "$tmp/d.yaml"
expect 2 "$tmp/missing.yaml: cannot open" --config "$tmp/missing.yaml"
# The shipped example is valid: the file is read before flags are checked, so
# the only complaint is the unknown flag after it.
expect 2 'unknown option --stop-here' --config "$SRC/conf/svcd.yaml" --stop-here
# A flag overrides the file: a valid file with a bad flag reports the flag.
printf 'dns-ttl: 30\n' > "$tmp/e.yaml"
expect 2 '--dns-ttl: must be' --config "$tmp/e.yaml" --dns-ttl x

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
