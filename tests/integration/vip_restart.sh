#!/usr/bin/env bash
# vip_restart: svcd restarting under traffic loses nothing. Stopping svcd
# leaves its rules in place; a new svcd adopts the table and replaces it in
# one transaction, so an established connection keeps working across the
# restart and a stream of new connections sees no failure. --cleanup then
# removes the table.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lab_up 3 || it_fail "lab_up 3"
lab_write_manifest svc.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
YAML
svcd_start_lab || it_fail "svcd did not become ready"
before=$(lab_exec_node nft list table inet svcd)

# an established keep-alive connection through the VIP
fifo=$LAB_TMP/ka.in
mkfifo "$fifo"
lab_exec_node timeout 30 ncat 10.96.0.10 80 <"$fifo" >"$LAB_TMP/ka.out" 2>&1 &
ka_pid=$!
exec 7>"$fifo"
req=$'GET / HTTP/1.1\r\nHost: web\r\n\r\n'
printf '%s' "$req" >&7
sleep 0.3

# a stream of new connections (bounded: 400 x 20 ms max ~ 15 s)
(
    fails=0
    for i in $(seq 1 400); do
        ip netns exec "$LAB_NODE_NS" curl -s --max-time 1 -o /dev/null -w '%{http_code}\n' \
            -H 'Connection: close' http://10.96.0.10/ | grep -q 200 || fails=$((fails + 1))
        [[ -e $LAB_TMP/stream.stop ]] && break
        sleep 0.02
    done
    echo "$i $fails" >"$LAB_TMP/stream.res"
) &
stream_pid=$!
sleep 1

svcd_stop
it_assert_eq "$(lab_exec_node nft list table inet svcd)" "$before" "svcd stopped: rules stay"
r=$(node_curl http://10.96.0.10/); it_check "svcd stopped: the VIP still answers ($r)" test -n "$r"
sleep 0.5
svcd_start_lab || it_fail "svcd did not become ready after restart"
sleep 1
after=$(lab_exec_node nft list table inet svcd)
it_assert_eq "$after" "$before" "restarted svcd converged to the same table"
it_assert_eq "$(grep -c 'chain lb4_3 {' <<<"$after")" 1 "no duplicate chains after adoption"

touch "$LAB_TMP/stream.stop"
wait "$stream_pid"
read -r n fails <"$LAB_TMP/stream.res"
it_assert_eq "$fails" 0 "new connections during the restart: $fails of $n failed"
it_check "the stream ran across the restart ($n connections)" test "$n" -gt 50

printf '%s' "$req" >&7
sleep 0.5
exec 7>&-
sleep 0.2
kill "$ka_pid" 2>/dev/null   # ncat keeps a keep-alive connection open
wait "$ka_pid" 2>/dev/null
it_assert_eq "$(grep -c '^HTTP/1.1 200' "$LAB_TMP/ka.out")" 2 "the established connection answered before and after the restart"

svcd_stop
lab_exec_node "$SVCD_BUILD/svcd" --cleanup --nft-table svcd >/dev/null 2>&1
it_assert_eq "$?" 0 "svcd --cleanup exits 0"
it_assert_not_contains "$(lab_exec_node nft list tables)" "svcd" "--cleanup removed the table"
it_finish
