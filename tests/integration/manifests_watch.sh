#!/usr/bin/env bash
# The manifest directory source end to end: the real svcd (--no-nft) in a
# private network namespace, files added / changed / renamed in / removed /
# broken, checked through the admin API and the log.
set -u
SVCD="${SVCD_BUILD:?}/svcd"
NS="svmw$$"
DIR=$(mktemp -d)
LOG="$DIR.log"
pass=0 fail=0
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$DIR" "$LOG"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok()   { pass=$((pass+1)); }
bad()  { fail=$((fail+1)); echo "FAIL: $*"; }
api()  { ip netns exec "$NS" curl -sf "http://127.0.0.1:9180$1"; }
# wait_for SECONDS CMD...: poll until CMD succeeds
wait_for() {
  local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -gt "$end" ] && return 1
    sleep 0.02
  done
}
svc_names() { api /api/services | jq -r '[.items[] | .namespace + "/" + .name] | sort | join(" ")'; }
has_svcs()  { [ "$(svc_names)" = "$1" ]; }
port_of()   { api "/api/services?namespace=${1%/*}&name=${1#*/}" | jq -r '.items[0].ports[0].port'; }
log_has()   { grep -qF -- "$1" "$LOG"; }
port_is()   { [ "$(port_of "$1")" = "$2" ]; }

ip netns add "$NS" && ip netns exec "$NS" ip link set lo up || { echo "cannot create netns"; exit 1; }

svc() { # name port [namespace]
  printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  clusterIP: 10.96.0.%d\n  selector: {app: %s}\n  ports:\n  - {name: http, port: %d}\n' \
    "$1" "${3:-default}" $(( ($2 % 200) + 10 )) "$1" "$2"
}

svc a 80 > "$DIR/a.yaml"
ip netns exec "$NS" "$SVCD" --manifests "$DIR" --no-nft --admin-listen 127.0.0.1:9180 \
  --log-level debug 2>"$LOG" &
PID=$!
wait_for 60 api /readyz && ok || bad "svcd not ready within 60 s"
has_svcs "default/a" && ok || bad "initial load: $(svc_names)"

# Added file.
svc b 81 > "$DIR/b.yml"
wait_for 10 has_svcs "default/a default/b" && ok || bad "added file: $(svc_names)"

# Changed file, also several documents and a List.
{ svc b 82; echo '---'; svc c 83 team; } > "$DIR/b.yml"
wait_for 10 has_svcs "default/a default/b team/c" && ok || bad "multi-doc: $(svc_names)"
[ "$(port_of default/b)" = 82 ] && ok || bad "changed port not applied"

# Editor style: write a temp file, rename over the target.
svc a 90 > "$DIR/.a.yaml.swp"
mv "$DIR/.a.yaml.swp" "$DIR/a.yaml"
wait_for 10 port_is default/a 90 && ok || bad "rename-over not applied"

# JSON file.
printf '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"j"},"spec":{"clusterIP":"10.96.0.99","ports":[{"port":53,"protocol":"UDP"}]}}]}' > "$DIR/j.json"
wait_for 10 has_svcs "default/a default/b default/j team/c" && ok || bad "json list: $(svc_names)"

# An invalid object: the error names file, object, document and field; that
# object keeps its last good version, the file's other object is applied.
{ svc b 82; echo '---'; svc c 70000 team; } > "$DIR/b.yml"
wait_for 10 log_has "b.yml: Service team/c rejected: document 2: spec.ports[0].port: must be 1-65535" && ok \
  || bad "no error naming file/object/document/field; log: $(grep b.yml "$LOG" | tail -3)"
has_svcs "default/a default/b default/j team/c" && ok || bad "broken file lost state: $(svc_names)"
[ "$(port_of team/c)" = 83 ] && ok || bad "rejected object changed its last good version"
wait_for 10 port_is default/b 82 && ok || bad "the file's valid object was not applied"
api /metrics | grep -q '^svcd_manifest_errors_total [1-9]' && ok || bad "errors metric"

# YAML syntax error is reported with a line.
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x\n' > "$DIR/syntax.yaml"
wait_for 10 grep -qE "syntax.yaml: .*line [0-9]+" "$LOG" && ok || bad "syntax error not reported"
rm -f "$DIR/syntax.yaml"

# Same object in two files: the first file by name wins, error logged.
svc a 91 > "$DIR/z.yaml"
wait_for 10 log_has "z.yaml: Service/default/a is also defined in a.yaml; a.yaml wins" && ok \
  || bad "conflict not reported: $(grep -i 'also defined' "$LOG" | tail -2)"
[ "$(port_of default/a)" = 90 ] && ok || bad "conflict: loser won"
# The winner goes away: the other definition takes over.
rm "$DIR/a.yaml"
wait_for 10 port_is default/a 91 && ok || bad "runner-up did not take over"
rm "$DIR/z.yaml"
wait_for 10 has_svcs "default/b default/j team/c" && ok || bad "removed: $(svc_names)"

# Ignored files: other suffixes and hidden files.
# svcd reads the directory's events in order: once a file written after
# them is served, the ignored ones were seen (and ignored).
svc q 85 > "$DIR/notes.txt"; svc r 86 > "$DIR/.hidden.yaml"; svc s 87 > "$DIR/s.yaml"
wait_for 10 has_svcs "default/b default/j default/s team/c" && ok || bad "ignored files loaded: $(svc_names)"
rm "$DIR/s.yaml"
wait_for 10 has_svcs "default/b default/j team/c" && ok || bad "sentinel not removed: $(svc_names)"

# Renamed out of the directory = removed.
mv "$DIR/j.json" "$DIR/../svmw-moved-$$.json"; rm -f "$DIR/../svmw-moved-$$.json"
wait_for 10 has_svcs "default/b team/c" && ok || bad "moved out: $(svc_names)"

# Generation advances and the API shows it.
g=$(api /api/services | jq .generation)
[ "$g" -ge 5 ] && ok || bad "generation $g"

# SIGHUP rescans and keeps running.
kill -HUP "$PID"
wait_for 10 api /healthz && kill -0 "$PID" && ok || bad "not alive after SIGHUP"

# SIGTERM: clean exit 0.
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
[ "$rc" -eq 0 ] && ok || bad "exit status $rc after SIGTERM"

[ "$fail" -ne 0 ] && { echo "--- svcd log"; grep -v " debug " "$LOG" | tail -40; }
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
