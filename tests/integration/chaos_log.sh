#!/usr/bin/env bash
# chaos_log: svcd's stderr is a pipe nobody reads. Logging must not block
# the daemon: while thousands of debug lines are produced (2,000 manifest
# files written one by one), DNS keeps answering every 10 ms, the last
# Service becomes visible, the lines that did not fit are counted in
# svcd_log_dropped_lines_total, and once the pipe is read again svcd says
# once how many were dropped.
set -u
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || { echo "SKIP: chaos_log: no dig"; exit 0; }

lab_up 1 || it_fail "lab_up 1"
lab_write_manifest svc-web.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 80}
YAML

# A FIFO held open read-write by this shell and never read: writes into it
# succeed until its 64 KiB fill up, then block.
mkfifo "$LAB_TMP/stderr.fifo"
exec 7<>"$LAB_TMP/stderr.fifo"
SVCD_STDERR=$LAB_TMP/stderr.fifo
svcd_start_lab --dns-listen 127.0.0.1:5353 --no-nft ||
    it_fail "svcd did not become ready with a blocked stderr"
it_assert_eq "$(dns_ask web.default.svc.cluster.local)" 10.96.0.10 "web resolves"

N=2000
# Long file names: svcd logs one line per file it loads, naming the file, so
# 2,000 lines of ~270 bytes (540 KB) overflow the 64 KiB pipe plus the
# 256 KiB log buffer however svcd batches the files (a slow build reads them
# in fewer, larger batches, with fewer of the per-batch lines).
pad=$(printf 'x%.0s' $(seq 200))
chaos_gap_start web.default.svc.cluster.local
for ((i = 1; i <= N; i++)); do
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: default}\nspec:\n  clusterIP: 10.96.%d.%d\n  ports:\n  - {port: 80}\n' \
        "$i" $((10 + i / 250)) $((i % 250 + 1)) >"$LAB_MANIFESTS/s$i-$pad.yaml"
done
it_check "the last Service becomes visible" \
    it_wait_eq "$(($(chaos_scale) + 4))" "10.96.$((10 + N / 250)).$((N % 250 + 1))" dns_ask s$N.default.svc.cluster.local
# A blocked stderr would stop the answers for good. What remains of the gap is
# the loop reading 2,000 files (parsing off the loop is issue 13's open part):
# up to ~1.1 s under ASan, so a sanitizer build gets base 500 (x4) here.
base=100
grep -qs 'SVCD_SANITIZE:BOOL=ON' "$SVCD_BUILD/CMakeCache.txt" && base=500
chaos_assert_gap "$base" "$N manifest files with stderr blocked"

dropped=$(admin_get /metrics | sed -n 's/^svcd_log_dropped_lines_total \([0-9]*\)$/\1/p')
it_check "dropped lines are counted in /metrics (svcd_log_dropped_lines_total $dropped)" \
    test "${dropped:-0}" -gt 0
it_assert_eq "$(admin_status /healthz)" 200 "/healthz answers"

# Read the pipe again: svcd reports the loss once.
cat "$LAB_TMP/stderr.fifo" >"$LAB_TMP/drained.log" &
CAT_PID=$!
svcd_signal HUP   # produces a few lines after the reader started
it_check "svcd reports the dropped lines once stderr drains" \
    it_wait 10 grep -q "log lines dropped" "$LAB_TMP/drained.log"
it_assert_eq "$(grep -c 'log lines dropped' "$LAB_TMP/drained.log")" 1 "reported exactly once"
svcd_stop
it_assert_eq "$SVCD_EXIT" 0 "svcd exits cleanly on SIGTERM"
kill "$CAT_PID" 2>/dev/null
exec 7>&-
it_finish
