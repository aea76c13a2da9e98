#!/usr/bin/env bash
# lib.sh: helpers shared by the integration tests (tests/integration/*.sh).
# Source it first thing; it sources tests/lab/lab.sh (see that file for the
# lab's topology and variables).
#
# Environment (ctest sets both): SVCD_BUILD (build dir; default
# $SVCD_SRC/build), SVCD_SRC (source dir; default: found from this file).
#
# When sourced as non-root or without `ip netns`, it prints "SKIP: reason"
# and exits 0 (ctest would count exit 77 as a failure).
#
# Results:
#   it_pass MSG                   counts a pass, prints "ok - MSG"
#   it_fail MSG                   prints "FAIL - MSG", exits 1 (the traps
#                                 print the svcd log and tear the lab down)
#   it_check MSG CMD...           runs CMD: pass if it succeeds, else a
#                                 counted (non-fatal) failure
#   it_assert_eq ACTUAL EXPECTED MSG       non-fatal, counted
#   it_assert_ne ACTUAL UNEXPECTED MSG     non-fatal, counted
#   it_assert_contains HAYSTACK NEEDLE MSG non-fatal, counted
#   it_assert_not_contains HAYSTACK NEEDLE MSG
#   it_finish                     prints "N passed, N failed", exits 0 only
#                                 when nothing failed
#   it_wait SECONDS CMD...        polls CMD every 0.1 s until it succeeds;
#                                 returns 1 when the deadline passes. Use it
#                                 (never a fixed sleep) before asserting on
#                                 anything svcd does asynchronously; pick a
#                                 generous deadline: it costs nothing when
#                                 the condition holds early. SECONDS is
#                                 multiplied by IT_TIME_SCALE (below).
#   wait_until SECONDS CMD...     the same as it_wait
#   it_wait_eq SECONDS EXPECTED CMD...  polls until CMD's stdout == EXPECTED;
#                                 IT_LAST holds the last output
#   IT_TIME_SCALE                 factor for every deadline above and for
#                                 svcd_start/svcd_stop (default 1; 3 when
#                                 SVCD_BUILD is a sanitizer build). Deadlines
#                                 bound how long a test may wait, never how
#                                 fast svcd must be: no test asserts on speed.
# svcd:
#   svcd_start ARGS...            runs $SVCD_BUILD/svcd ARGS in the node
#                                 namespace (stderr+stdout to $SVCD_LOG),
#                                 waits up to 30 s for /readyz = 200; 1 if not
#                                 (SVCD_EXIT is set if svcd exited; the log
#                                 is printed by the exit trap if the test
#                                 fails, or call svcd_log); adds
#                                 --state-dir $SVCD_STATE_DIR (default
#                                 $LAB_TMP/state, kept across restarts)
#                                 unless ARGS name one
#   svcd_start_lab [ARGS...]      svcd_start with the lab's usual flags
#                                 (--manifests --node-name --service-cidr x2
#                                 --log-level debug) followed by ARGS
#   svcd_stop                     SIGTERM, waits 20 s, then SIGKILL; sets
#                                 SVCD_EXIT (exit status, or 137 if killed)
#   svcd_log                      prints the svcd log
#   svcd_signal SIG               sends SIG to svcd (e.g. HUP)
#   admin_get PATH                GET http://$SVCD_ADMIN$PATH in the node ns
#                                 (body on stdout; fails on HTTP >= 400)
#   admin_status PATH             prints the HTTP status code only
#   admin_generation [PATH]       prints .generation of PATH
#                                 (default /api/endpoints)
#   svcctl_run ARGS...            $SVCD_BUILD/svcctl --server $SVCD_ADMIN ARGS
#                                 in the node ns
#   SVCD_PREFIX="CMD ARGS --"     if set, svcd_start runs svcd under it
#                                 (a command that execs, e.g. prlimit)
#   SVCD_STDERR=PATH              if set, svcd_start sends svcd's stdout and
#                                 stderr there instead of $SVCD_LOG (e.g. a
#                                 FIFO nobody reads)
# chaos (a DNS client asking every 10 ms while something is disrupted):
#   chaos_gap_start NAME          starts tests/lab/dnsgap in the node ns
#                                 against $SVCD_DNS, asking NAME every 10 ms
#                                 (bounded: 120 s at most)
#   chaos_gap_stop                stops it; CHAOS_GAP_MS = longest gap (ms),
#                                 CHAOS_GAP_LINE = its summary line
#   chaos_gap_bound BASE_MS       prints BASE_MS scaled for this machine:
#                                 x4 under ASan, times ceil(1-minute load
#                                 average / CPUs) (1..8) when contended;
#                                 SVCD_CHAOS_GAP_SCALE=N overrides the factor
#   chaos_assert_gap BASE_MS MSG  chaos_gap_stop, then asserts the gap is at
#                                 most chaos_gap_bound BASE_MS (counted)
#   chaos_scale                   prints the factor (or the override)
# traffic (all inside lab namespaces, bounded by timeouts):
#   node_curl URL [curl args]     curl -sS --max-time 5 from the node ns
#                                 (a later --max-time in args wins: tests
#                                 that expect a drop pass a short one)
#   pod_curl POD URL [curl args]  same from a pod
#   ext_curl URL [curl args]      same from the external-client ns
#   udp_ask NSNAME HOST PORT      sends one datagram, prints the answer
#                                 (NSNAME: node, ext or a pod name)
#   dns_ask NAME [TYPE] [SERVER] [dig args]
#                                 dig +short +time=3 from the node ns; SERVER
#                                 defaults to $SVCD_DNS (127.0.0.1:5353 form
#                                 or plain address)
#
# Variables: SVCD_ADMIN (127.0.0.1:9180, or taken from --admin-listen),
# SVCD_DNS (from the first --dns-listen), SVCD_PID, SVCD_LOG, IT_PASSED,
# IT_FAILED.

_IT_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SVCD_SRC:=$(cd "$_IT_LIB_DIR/../.." && pwd)}"
: "${SVCD_BUILD:=$SVCD_SRC/build}"
export SVCD_SRC SVCD_BUILD

IT_PASSED=0
IT_FAILED=0
if [[ -z ${IT_TIME_SCALE:-} ]]; then
    IT_TIME_SCALE=1
    # A sanitizer build runs everything several times slower; deadlines
    # grow, checks stay exact. (scripts/test.sh --stress keeps the scale at 1:
    # the default deadlines must hold on a contended CPU as they are.)
    if grep -qs 'SVCD_SANITIZE:BOOL=ON' "$SVCD_BUILD/CMakeCache.txt"; then
        IT_TIME_SCALE=3
    fi
fi
export IT_TIME_SCALE
IT_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
SVCD_PID=
SVCD_LOG=
SVCD_ADMIN=127.0.0.1:9180
SVCD_DNS=
SVCD_EXIT=

# shellcheck source=../lab/lab.sh
source "$SVCD_SRC/tests/lab/lab.sh"

if ! _it_why=$(lab_available); then
    echo "SKIP: $IT_NAME: $_it_why"
    exit 0
fi
unset _it_why

# ------------------------------------------------------------ results ----
it_pass() {
    IT_PASSED=$((IT_PASSED + 1))
    echo "ok - $*"
}

_it_count_fail() {
    IT_FAILED=$((IT_FAILED + 1))
    echo "FAIL - $*"
}

it_fail() {
    _it_count_fail "$*"
    exit 1
}

it_check() {
    local msg=$1
    shift
    if "$@"; then it_pass "$msg"; else _it_count_fail "$msg (command failed: $*)"; fi
}

it_assert_eq() {
    if [[ $1 == "$2" ]]; then
        it_pass "$3"
    else
        _it_count_fail "$3: expected '$2', got '$1'"
    fi
}

it_assert_ne() {
    if [[ $1 != "$2" ]]; then
        it_pass "$3"
    else
        _it_count_fail "$3: got '$1', which it must not be"
    fi
}

it_assert_contains() {
    if [[ $1 == *"$2"* ]]; then
        it_pass "$3"
    else
        _it_count_fail "$3: '$2' not found in: $1"
    fi
}

it_assert_not_contains() {
    if [[ $1 != *"$2"* ]]; then
        it_pass "$3"
    else
        _it_count_fail "$3: '$2' unexpectedly found in: $1"
    fi
}

it_finish() {
    echo "$IT_PASSED passed, $IT_FAILED failed"
    if [[ $IT_FAILED -gt 0 ]]; then exit 1; fi
    exit 0
}

# "2" / "0.5" seconds -> nanoseconds, times IT_TIME_SCALE. %.0f, not %d:
# Debian's awk (mawk) clamps %d to 2^31-1, which made every deadline 2.1 s.
_it_secs_ns() { awk -v s="$1" -v k="$IT_TIME_SCALE" 'BEGIN { printf "%.0f", s * k * 1e9 }'; }

it_wait() {
    local secs=$1 end
    shift
    end=$(($(date +%s%N) + $(_it_secs_ns "$secs")))
    while :; do
        "$@" && return 0
        (($(date +%s%N) >= end)) && return 1
        sleep 0.1
    done
}

wait_until() { it_wait "$@"; }

IT_LAST=
it_wait_eq() {
    local secs=$1 want=$2 end
    shift 2
    end=$(($(date +%s%N) + $(_it_secs_ns "$secs")))
    while :; do
        IT_LAST=$("$@" 2>/dev/null)
        [[ $IT_LAST == "$want" ]] && return 0
        (($(date +%s%N) >= end)) && return 1
        sleep 0.1
    done
}

# Called by lab.sh's traps before the lab goes down: show svcd's log when
# the test is failing, stop svcd.
lab_on_down() {
    local rc=$1
    # (not on Ctrl-C: exit status 130)
    if [[ -n $SVCD_LOG && -s $SVCD_LOG && $rc != 130 ]] && { [[ $rc != 0 ]] || [[ $IT_FAILED -gt 0 ]]; }; then
        svcd_log
    fi
    [[ -z $SVCD_PID ]] || svcd_stop >/dev/null 2>&1
    [[ -z $CHAOS_GAP_PID ]] || kill "$CHAOS_GAP_PID" 2>/dev/null
    return 0
}

# --------------------------------------------------------------- svcd ----
admin_status() {
    lab_exec_node curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$SVCD_ADMIN$1"
}

admin_get() {
    lab_exec_node curl -sS -f --max-time 5 "http://$SVCD_ADMIN$1"
}

admin_generation() {
    admin_get "${1:-/api/endpoints}" | jq -r '.generation'
}

svcctl_run() {
    lab_exec_node "$SVCD_BUILD/svcctl" --server "$SVCD_ADMIN" "$@"
}

svcd_log() {
    echo "----- svcd log ($SVCD_LOG) -----"
    cat "$SVCD_LOG" 2>/dev/null
    echo "----- end of svcd log -----"
}

svcd_signal() {
    [[ -n $SVCD_PID ]] && kill -"$1" "$SVCD_PID"
}

_svcd_ready() {
    [[ $(admin_status /readyz) == 200 ]]
}

svcd_start() {
    local a prev="" t
    [[ $LAB_UP == 1 ]] || { echo "svcd_start: lab is not up" >&2; return 1; }
    [[ -z $SVCD_PID ]] || { echo "svcd_start: svcd already running" >&2; return 1; }
    [[ -x $SVCD_BUILD/svcd ]] || { echo "svcd_start: no $SVCD_BUILD/svcd" >&2; return 1; }
    SVCD_ADMIN=127.0.0.1:9180
    SVCD_DNS=
    for a in "$@"; do
        case $prev in
        --admin-listen) SVCD_ADMIN=$a ;;
        --dns-listen) [[ -n $SVCD_DNS ]] || SVCD_DNS=$a ;;
        esac
        case $a in
        --admin-listen=*) SVCD_ADMIN=${a#*=} ;;
        --dns-listen=*) [[ -n $SVCD_DNS ]] || SVCD_DNS=${a#*=} ;;
        esac
        prev=$a
    done
    # Never the default /var/lib/svcd: one state dir per lab, kept across
    # restarts within a test (SVCD_STATE_DIR), unless the test names one.
    case " $* " in
    *" --state-dir "* | *" --state-dir="*) ;;
    *) set -- "$@" --state-dir "${SVCD_STATE_DIR:-$LAB_TMP/state}" ;;
    esac
    SVCD_LOG=$LAB_TMP/svcd.log
    echo "+ svcd $*" >>"$SVCD_LOG"
    if [[ -n ${SVCD_STDERR:-} ]]; then
        ip netns exec "$LAB_NODE_NS" ${SVCD_PREFIX:-} "$SVCD_BUILD/svcd" "$@" </dev/null >>"$SVCD_STDERR" 2>&1 &
    else
        ip netns exec "$LAB_NODE_NS" ${SVCD_PREFIX:-} "$SVCD_BUILD/svcd" "$@" </dev/null >>"$SVCD_LOG" 2>&1 &
    fi
    SVCD_PID=$!
    for ((t = 0; t < 300 * IT_TIME_SCALE; t++)); do
        if _svcd_ready; then return 0; fi
        if ! _lab_pid_alive "$SVCD_PID"; then
            wait "$SVCD_PID" 2>/dev/null
            SVCD_EXIT=$?
            echo "svcd_start: svcd exited with status $SVCD_EXIT" >&2
            SVCD_PID=
            return 1
        fi
        sleep 0.1
    done
    echo "svcd_start: /readyz not 200 after $((30 * IT_TIME_SCALE)) s (svcd still running: $SVCD_PID)" >&2
    return 1
}

svcd_start_lab() {
    svcd_start --manifests "$LAB_MANIFESTS" --node-name "$LAB_NODE_NAME" \
        --service-cidr "$LAB_SERVICE_CIDR4" --service-cidr "$LAB_SERVICE_CIDR6" \
        --node-ip "$LAB_NODEPORT_IP4" --node-ip "$LAB_NODEPORT_IP6" \
        --log-level debug "$@"
}

svcd_stop() {
    local t
    [[ -n $SVCD_PID ]] || return 0
    kill -TERM "$SVCD_PID" 2>/dev/null
    for ((t = 0; t < 200 * IT_TIME_SCALE; t++)); do
        _lab_pid_alive "$SVCD_PID" || break
        sleep 0.1
    done
    if _lab_pid_alive "$SVCD_PID"; then
        echo "svcd_stop: svcd ignored SIGTERM for $((20 * IT_TIME_SCALE)) s; killing it" >&2
        kill -KILL "$SVCD_PID" 2>/dev/null
    fi
    wait "$SVCD_PID" 2>/dev/null
    SVCD_EXIT=$?
    SVCD_PID=
    return 0
}

# ------------------------------------------------------------ traffic ----
node_curl() {
    local url=$1
    shift
    lab_exec_node curl -sS --max-time 5 "$@" "$url"
}

pod_curl() {
    local pod=$1 url=$2
    shift 2
    lab_exec_pod "$pod" curl -sS --max-time 5 "$@" "$url"
}

ext_curl() {
    local url=$1
    shift
    lab_exec_ext curl -sS --max-time 5 "$@" "$url"
}

# udp_ask NSNAME HOST PORT: one datagram, the answer on stdout (1 s timeout).
udp_ask() {
    local where=$1 host=$2 port=$3 proto=UDP4
    [[ $host == *:* ]] && { proto=UDP6; host="[$host]"; }
    case $where in
    node) echo ping | lab_exec_node timeout 3 socat -T1 - "$proto:$host:$port" ;;
    ext) echo ping | lab_exec_ext timeout 3 socat -T1 - "$proto:$host:$port" ;;
    *) echo ping | lab_exec_pod "$where" timeout 3 socat -T1 - "$proto:$host:$port" ;;
    esac
}

# dns_ask NAME [TYPE] [SERVER] [dig args...]
dns_ask() {
    local name=$1 type=${2:-A} server=${3:-$SVCD_DNS} port=53
    shift 3 2>/dev/null || shift $#
    [[ -n $server ]] || server=127.0.0.1:53
    if [[ $server == \[*\]:* ]]; then
        port=${server##*:}; server=${server%:*}; server=${server#[}; server=${server%]}
    elif [[ $server == *.*:* ]]; then
        port=${server##*:}; server=${server%:*}
    fi
    lab_exec_node dig +short +time=3 +tries=1 -p "$port" "@$server" "$name" "$type" "$@"
}

# -------------------------------------------------------------- chaos ----
# The gap bounds are latency assertions on a shared machine. The rule: the
# bound from the issue (100 ms, 200 ms for the 10k-Service edit) holds on an
# idle machine with a plain build; an ASan build is several times slower
# (x4), and a machine whose 1-minute load average exceeds its CPU count gets
# x ceil(load / CPUs) on top (at most x8): with that many runnable threads
# per CPU, svcd may wait that many time slices for its turn. The measured gap is always printed, so a regression shows in the log
# even when the scaled bound passes.
CHAOS_GAP_PID=
CHAOS_GAP_MS=
CHAOS_GAP_LINE=

chaos_scale() {
    if [[ -n ${SVCD_CHAOS_GAP_SCALE:-} ]]; then
        echo "$SVCD_CHAOS_GAP_SCALE"
        return
    fi
    local f=1 load cpus
    if grep -qs 'SVCD_SANITIZE:BOOL=ON' "$SVCD_BUILD/CMakeCache.txt"; then f=$((f * 4)); fi
    read -r load _ </proc/loadavg
    cpus=$(nproc)
    # contended: x ceil(load / CPUs), at most x8
    f=$((f * $(awk -v l="$load" -v c="$cpus" 'BEGIN { k = int((l + c - 1) / c); print (k < 1 ? 1 : (k > 8 ? 8 : k)) }')))
    echo "$f"
}

chaos_gap_bound() { echo $(($1 * $(chaos_scale))); }

chaos_gap_start() {
    local name=$1 server=${SVCD_DNS%:*} port=${SVCD_DNS##*:}
    [[ $SVCD_DNS == *:* ]] || { server=$SVCD_DNS; port=53; }
    CHAOS_GAP_OUT=$LAB_TMP/dnsgap.$RANDOM.out
    ip netns exec "$LAB_NODE_NS" "$SVCD_BUILD/dnsgap" -i 10 -t 120 "$server" "$port" "$name" \
        >"$CHAOS_GAP_OUT" 2>&1 &
    CHAOS_GAP_PID=$!
    # the first answer starts the measurement
    sleep 0.2
}

chaos_gap_stop() {
    [[ -n $CHAOS_GAP_PID ]] || return 1
    kill -INT "$CHAOS_GAP_PID" 2>/dev/null
    wait "$CHAOS_GAP_PID" 2>/dev/null
    CHAOS_GAP_PID=
    CHAOS_GAP_LINE=$(tail -n 1 "$CHAOS_GAP_OUT")
    CHAOS_GAP_MS=$(sed -n 's/.*max_gap_ms=\([0-9]*\).*/\1/p' <<<"$CHAOS_GAP_LINE")
    echo "# dnsgap: $CHAOS_GAP_LINE"
}

chaos_assert_gap() {
    local base=$1 msg=$2 bound
    chaos_gap_stop
    bound=$(chaos_gap_bound "$base")
    if [[ -n $CHAOS_GAP_MS && $CHAOS_GAP_MS -le $bound ]]; then
        it_pass "$msg: longest DNS gap ${CHAOS_GAP_MS} ms <= ${bound} ms ($CHAOS_GAP_LINE)"
    else
        _it_count_fail "$msg: longest DNS gap '${CHAOS_GAP_MS}' ms > ${bound} ms ($CHAOS_GAP_LINE)"
    fi
    [[ -z ${SVCD_CHAOS_REPORT:-} ]] ||
        echo "$IT_NAME: $msg: ${CHAOS_GAP_MS} ms (bound $bound)" >>"$SVCD_CHAOS_REPORT"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    echo "lib.sh: helper library for tests/integration/*.sh; nothing to run on its own"
    exit 0
fi
