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
# ncat prints the answer once it arrives
it_wait 20 grep -q '^HTTP/1.1 200' "$LAB_TMP/ka.out" || it_fail "no answer on the keep-alive connection"

# A stream of new connections, one after another, until told to stop
# (bounded: at most 3000 connections or 120 s). It records each attempt as
# "<phase> <http code>", where phase is the content of $LAB_TMP/phase at the
# time: the claim is that the stream ran before svcd stopped, while it was
# down, while the new one started and after it was ready, with no failure;
# how many connections fit in that time does not matter.
echo before >"$LAB_TMP/phase"
(
    end=$((SECONDS + 120))
    for ((i = 0; i < 3000 && SECONDS < end; i++)); do
        [[ -e $LAB_TMP/stream.stop ]] && break
        ph=$(<"$LAB_TMP/phase")
        code=$(ip netns exec "$LAB_NODE_NS" curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
            -H 'Connection: close' http://10.96.0.10/)
        echo "$ph $code" >>"$LAB_TMP/stream.log"
    done
) &
stream_pid=$!
streamed() { [[ $(grep -c "^$1 " "$LAB_TMP/stream.log" 2>/dev/null) -ge ${2:-1} ]]; }
it_wait 30 streamed before 3 || it_fail "the connection stream did not start"

echo down >"$LAB_TMP/phase"
svcd_stop
it_assert_eq "$(lab_exec_node nft list table inet svcd)" "$before" "svcd stopped: rules stay"
r=$(node_curl http://10.96.0.10/); it_check "svcd stopped: the VIP still answers ($r)" test -n "$r"
it_check "the stream ran while svcd was down" it_wait 30 streamed down 2
echo starting >"$LAB_TMP/phase"
svcd_start_lab || it_fail "svcd did not become ready after restart"
echo after >"$LAB_TMP/phase"
# the new svcd replaces the adopted table in one transaction once ready
it_check "restarted svcd converged to the same table" \
    it_wait 15 bash -c "[[ \$(ip netns exec $LAB_NODE_NS nft list table inet svcd) == \"\$1\" ]]" _ "$before"
after=$(lab_exec_node nft list table inet svcd)
it_assert_eq "$(grep -c 'chain lb4_3 {' <<<"$after")" 1 "no duplicate chains after adoption"
it_check "the stream ran after the restart" it_wait 30 streamed after 3

touch "$LAB_TMP/stream.stop"
wait "$stream_pid"
n=$(wc -l <"$LAB_TMP/stream.log")
bad=$(grep -cv ' 200$' "$LAB_TMP/stream.log")
it_assert_eq "$bad" 0 "new connections across the restart: $bad of $n failed ($(grep -v ' 200$' "$LAB_TMP/stream.log" | sort | uniq -c | tr '\n' ' '))"
for ph in before down after; do
    it_check "the stream ran in phase '$ph'" streamed "$ph"
done

printf '%s' "$req" >&7
two() { [[ $(grep -c '^HTTP/1.1 200' "$LAB_TMP/ka.out") -ge 2 ]]; }
it_wait 20 two
exec 7>&-
kill "$ka_pid" 2>/dev/null   # ncat keeps a keep-alive connection open
wait "$ka_pid" 2>/dev/null
it_assert_eq "$(grep -c '^HTTP/1.1 200' "$LAB_TMP/ka.out")" 2 "the established connection answered before and after the restart"

svcd_stop
lab_exec_node "$SVCD_BUILD/svcd" --cleanup --nft-table svcd >/dev/null 2>&1
it_assert_eq "$?" 0 "svcd --cleanup exits 0"
it_assert_not_contains "$(lab_exec_node nft list tables)" "svcd" "--cleanup removed the table"
it_finish
