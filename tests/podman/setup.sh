#!/usr/bin/env bash
# setup.sh: makes podman usable on this machine for svcd's podman tests and
# demo. Idempotent; safe to run again (scripts/install-deps.sh calls it).
#
#  1. /etc/containers/containers.conf: podman 4.3's defaults do not work here
#     (crun fails on this host's hybrid cgroups; the default nofile/nproc
#     ulimits are refused), so we set exactly two things:
#         [containers] default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
#         [engine]     runtime = "runc"
#     If the file exists and already sets these keys, it is left alone; if it
#     exists without them, the keys are added to their sections.
#  2. A local image (no registry is reachable): localhost/svcd-bb:1, a root
#     with busybox-static and its applet links (sh, httpd, wget, nc, ...).
#
# Needs: apt-get install podman runc catatonit busybox-static
# Usage: tests/podman/setup.sh [--check]   (--check: report only, exit 1 if
#        something is missing)
set -euo pipefail

CONF=/etc/containers/containers.conf
IMAGE=${SVCD_PODMAN_IMAGE:-localhost/svcd-bb:1}
BUSYBOX=/bin/busybox
check_only=0
[[ ${1:-} == --check ]] && check_only=1

die() { echo "podman-setup: $*" >&2; exit 1; }

for c in podman runc catatonit; do
    command -v "$c" >/dev/null 2>&1 || [[ -x /usr/libexec/podman/$c ]] || \
        die "$c is not installed (apt-get install podman runc catatonit busybox-static)"
done
[[ -x $BUSYBOX ]] && file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || \
    { [[ -x $BUSYBOX ]] || die "no $BUSYBOX (apt-get install busybox-static)"; }

# --- 1. containers.conf --------------------------------------------------
conf_ok() {
    [[ -f $CONF ]] && grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$CONF" &&
        grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$CONF"
}

# add_key SECTION LINE: puts LINE right after [SECTION] (adds the section
# at the end when it is missing).
add_key() {
    local section=$1 line=$2 tmp
    tmp=$(mktemp "$CONF.XXXXXX")
    if grep -Eq "^\[$section\]" "$CONF"; then
        awk -v s="[$section]" -v l="$line" '{print} $0==s {print l}' "$CONF" >"$tmp"
    else
        { cat "$CONF"; printf '\n[%s]\n%s\n' "$section" "$line"; } >"$tmp"
    fi
    chmod 644 "$tmp"
    mv "$tmp" "$CONF"
}

if ! conf_ok; then
    [[ $check_only == 1 ]] && die "$CONF lacks runtime=\"runc\" / default_ulimits"
    mkdir -p /etc/containers
    if [[ ! -f $CONF ]]; then
        cat >"$CONF" <<'CONF'
# Written by svcd tests/podman/setup.sh: the two settings podman 4.3 needs
# on this host (crun fails on hybrid cgroups; default ulimits are refused).
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
CONF
    else
        grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$CONF" ||
            add_key containers 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'
        grep -Eq '^[[:space:]]*runtime[[:space:]]*=' "$CONF" ||
            add_key engine 'runtime = "runc"'
        grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$CONF" ||
            die "$CONF sets another runtime; set runtime = \"runc\" in [engine] yourself"
    fi
    echo "podman-setup: wrote $CONF"
fi

# --- 2. the local busybox image ------------------------------------------
if ! podman image exists "$IMAGE" 2>/dev/null; then
    [[ $check_only == 1 ]] && die "image $IMAGE is missing"
    work=$(mktemp -d /tmp/svcd-podman-img.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    root=$work/root
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,www,var/www,root}
    cp "$BUSYBOX" "$root/bin/busybox"
    for a in $("$BUSYBOX" --list); do
        [[ $a == busybox ]] && continue
        [[ -e $root/bin/$a ]] || ln -s busybox "$root/bin/$a"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    chmod 1777 "$root/tmp"
    tar -C "$root" -cf "$work/rootfs.tar" .
    podman import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' \
        "$work/rootfs.tar" "$IMAGE" >/dev/null
    echo "podman-setup: built image $IMAGE"
fi
echo "podman-setup: ok (runtime runc, image $IMAGE)"
