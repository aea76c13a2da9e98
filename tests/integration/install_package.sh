#!/usr/bin/env bash
# Install and package like a system daemon:
#  - `cmake --install` into a DESTDIR: binaries, /etc/svcd/svcd.yaml, the
#    manifests directory, svcd.service, man pages, bash completions;
#  - the man pages render (`man -l`, no warnings) and name every flag of
#    `svcd --help` and every option of `svcctl --help`;
#  - `systemd-analyze verify` of the installed unit is clean;
#  - `cpack -G DEB`: `dpkg-deb -c` holds the same files, `dpkg-deb -I` shows
#    Depends computed by dpkg-shlibdeps and the config as a conffile;
#  - the installed svcd started from the installed config (its manifests dir
#    under the DESTDIR) in a lab namespace becomes ready, tells a fake systemd
#    notify socket READY=1, pings WATCHDOG=1 and says STOPPING=1 on SIGTERM.
set -u
source "$(dirname "$0")/lib.sh"

cache() { sed -n "s/^$1:[A-Z]*=//p" "$SVCD_BUILD/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
[[ -n $prefix ]] || it_fail "no CMAKE_INSTALL_PREFIX in $SVCD_BUILD/CMakeCache.txt"
if [[ $prefix == /usr ]]; then etc=/etc; else etc=$prefix/etc; fi

lab_up 0 || it_fail "lab_up"
stage=$LAB_TMP/stage
DESTDIR=$stage cmake --install "$SVCD_BUILD" >"$LAB_TMP/install.log" 2>&1 \
    || { cat "$LAB_TMP/install.log"; it_fail "cmake --install"; }
it_pass "cmake --install into a DESTDIR"

want=(
  "$prefix/sbin/svcd" "$prefix/bin/svcctl"
  "$etc/svcd/svcd.yaml" "$etc/svcd/manifests/README"
  "$prefix/lib/systemd/system/svcd.service"
  "$prefix/share/man/man8/svcd.8" "$prefix/share/man/man1/svcctl.1"
  "$prefix/share/bash-completion/completions/svcd"
  "$prefix/share/bash-completion/completions/svcctl"
)
for f in "${want[@]}"; do
  it_check "installed $f" test -f "$stage$f"
done
it_check "svcd is executable" test -x "$stage$prefix/sbin/svcd"
it_check "manifests dir installed" test -d "$stage$etc/svcd/manifests"
it_assert_eq "$(sed -n 's/^manifests: //p' "$stage$etc/svcd/svcd.yaml")" "$etc/svcd/manifests" \
  "shipped config names the installed manifests dir"
it_assert_eq "$(sed -n 's/^ExecStart=//p' "$stage$prefix/lib/systemd/system/svcd.service")" \
  "$prefix/sbin/svcd --config $etc/svcd/svcd.yaml" "unit starts the installed svcd with the installed config"
it_assert_eq "$(sed -n 's/^Type=//p' "$stage$prefix/lib/systemd/system/svcd.service")" notify "Type=notify"

# ---- man pages: render cleanly, list every flag ----
for page in "$stage$prefix/share/man/man8/svcd.8" "$stage$prefix/share/man/man1/svcctl.1"; do
  out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  it_assert_eq "$out" "" "man -l $(basename "$page") renders without warnings"
  it_check "man -l $(basename "$page") has a NAME section" \
    bash -c "MANWIDTH=80 man -l '$page' 2>/dev/null | grep -q '^NAME'"
done
svcd_page=$(MANWIDTH=200 man -l "$stage$prefix/share/man/man8/svcd.8" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.\x08//g')
for flag in $("$SVCD_BUILD/svcd" --help | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p'); do
  it_assert_contains "$svcd_page" "$flag" "svcd(8) lists $flag"
done
svcctl_page=$(MANWIDTH=200 man -l "$stage$prefix/share/man/man1/svcctl.1" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.\x08//g')
for flag in $("$SVCD_BUILD/svcctl" --help | grep -oE '(^|[ ,])--?[a-zA-Z][a-z-]*' | tr -d ' ,' | sort -u); do
  it_assert_contains "$svcctl_page" "$flag" "svcctl(1) lists $flag"
done

# ---- bash completion ----
comp=$(PATH="$stage$prefix/sbin:$stage$prefix/bin:$PATH" bash -c "
  source '$stage$prefix/share/bash-completion/completions/svcd'
  COMP_WORDS=(svcd --dns-c); COMP_CWORD=1; _svcd; echo \"\${COMPREPLY[*]}\"")
it_assert_eq "$comp" "--dns-cache-size --dns-cache-min-ttl --dns-cache-max-ttl" "svcd completion of --dns-c"
comp=$(bash -c "
  source '$stage$prefix/share/bash-completion/completions/svcctl'
  COMP_WORDS=(svcctl get p); COMP_CWORD=2; _svcctl; echo \"\${COMPREPLY[*]}\"")
it_assert_eq "$comp" "pods po" "svcctl completion of get p"

# ---- systemd-analyze verify ----
# verify checks that ExecStart exists and that Documentation= man pages
# resolve: point both at the staged copies.
sed "s|$prefix/sbin/svcd|$stage$prefix/sbin/svcd|" "$stage$prefix/lib/systemd/system/svcd.service" \
  >"$LAB_TMP/svcd.service"
out=$(cd "$LAB_TMP" && MANPATH="$stage$prefix/share/man" systemd-analyze verify "$LAB_TMP/svcd.service" 2>&1)
rc=$?
it_assert_eq "$rc:$out" "0:" "systemd-analyze verify svcd.service is clean"

# ---- cpack -G DEB ----
mkdir -p "$LAB_TMP/pkg"
(cd "$LAB_TMP/pkg" && cpack -G DEB --config "$SVCD_BUILD/CPackConfig.cmake" -B "$LAB_TMP/pkg") \
  >"$LAB_TMP/cpack.log" 2>&1 || { cat "$LAB_TMP/cpack.log"; it_fail "cpack -G DEB"; }
deb=$(compgen -G "$LAB_TMP/pkg/svcd_*.deb" | head -n1)
[[ -n $deb ]] || it_fail "no .deb made"
it_pass "cpack -G DEB made $(basename "$deb")"
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\.||')
for f in "${want[@]}"; do
  it_assert_contains "$contents" "$f" ".deb contains $f"
done
it_assert_not_contains "$contents" "podserver" ".deb holds no test helpers"
info=$(dpkg-deb -I "$deb")
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libevent-core libevent-extra libc-ares libnftnl libmnl libyaml libjansson libsystemd0 libhttp-parser; do
  it_assert_contains "$depends" "$lib" "Depends (dpkg-shlibdeps) names $lib"
done
it_assert_contains "$(dpkg-deb -I "$deb" conffiles)" "$etc/svcd/svcd.yaml" "svcd.yaml is a conffile"
it_assert_contains "$info" "postinst" ".deb has a postinst (daemon-reload)"
it_assert_eq "$(dpkg-deb -f "$deb" Package)" svcd "Package: svcd"

# ---- the installed svcd, installed config, a fake systemd ----
notify=$LAB_TMP/notify.sock
# (ends by itself after 60 s without a message; its output goes to a file so
# that a failing test does not leave ctest waiting on the pipe)
/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode() + "\n--\n")
' "$notify" "$LAB_TMP/notify.log" >"$LAB_TMP/notify.err" 2>&1 </dev/null &
notify_pid=$!
it_wait 30 test -S "$notify" || { cat "$LAB_TMP/notify.err"; it_fail "fake notify socket"; }
export NOTIFY_SOCKET=$notify WATCHDOG_USEC=400000
SVCD_BUILD=$stage$prefix/sbin svcd_start --config "$stage$etc/svcd/svcd.yaml" \
  --manifests "$stage$etc/svcd/manifests" --dns-listen 127.0.0.1:53 \
  || { kill "$notify_pid"; it_fail "installed svcd with the installed config did not become ready"; }
unset NOTIFY_SOCKET WATCHDOG_USEC
it_pass "installed svcd, installed config: /readyz 200"
it_assert_ne "$(lab_exec_node dig +short +time=2 +tries=1 @127.0.0.1 dns-version.cluster.local TXT)" "" \
  "DNS answers on the configured 127.0.0.1:53"
it_check "systemd told READY=1" it_wait 10 grep -qx 'READY=1' "$LAB_TMP/notify.log"
it_check "systemd told STATUS=ready" it_wait 10 grep -qx 'STATUS=ready' "$LAB_TMP/notify.log"
it_check "watchdog pinged (WATCHDOG=1 twice)" \
  it_wait 10 bash -c "[[ \$(grep -cx 'WATCHDOG=1' '$LAB_TMP/notify.log') -ge 2 ]]"
svcd_stop
it_assert_eq "$SVCD_EXIT" 0 "svcd exits 0 on SIGTERM"
it_check "systemd told STOPPING=1" it_wait 10 grep -qx 'STOPPING=1' "$LAB_TMP/notify.log"
kill "$notify_pid" 2>/dev/null
wait "$notify_pid" 2>/dev/null
it_finish
