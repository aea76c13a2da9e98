#!/usr/bin/env bash
# Installs every Debian 12 package svcd needs to build, test, benchmark and
# run the demo. Idempotent and non-interactive; run as root.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libevent-dev libc-ares-dev libnftnl-dev libmnl-dev libyaml-dev libjansson-dev
  libhttp-parser-dev libcurl4-openssl-dev libnghttp2-dev libnetfilter-conntrack-dev
  libsystemd-dev libcap-dev
  # run and test: namespaces, nftables, clients
  iproute2 nftables conntrack curl dnsutils jq socat ncat procps psmisc
  # peers and load tools for tests and benchmarks
  dnsperf nsd unbound dnsmasq-base stress-ng linux-perf
  # cluster mode and the Kubernetes API clients used by tests
  etcd-server etcd-client python3-kubernetes
  # a real pod runtime for the podman source (see docs/PODMAN.md)
  podman runc catatonit busybox-static file
)
# kubectl: Debian's kubernetes-client, unless the machine already has a
# kubectl from another package (some ship a newer one; the two conflict).
if ! command -v kubectl >/dev/null 2>&1 ||
   dpkg-query -W -f='${Status}' kubernetes-client 2>/dev/null | grep -q "install ok installed"; then
  PKGS+=(kubernetes-client)
fi

here=$(cd "$(dirname "$0")" && pwd)
# Debian's kubernetes-client (kubectl 1.20) cannot be installed over another
# package's /usr/bin/kubectl (e.g. Google's "kubectl"); any kubectl serves the tests.
if command -v kubectl >/dev/null 2>&1 &&
   ! dpkg-query -W -f='${Status}' kubernetes-client 2>/dev/null | grep -q 'install ok installed'; then
  PKGS=("${PKGS[@]/kubernetes-client}")
fi
missing=()
for p in "${PKGS[@]}"; do
  [ -n "$p" ] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
# podman needs runc, ulimits it may set, and a local image (no registry here).
if [ "$(id -u)" -eq 0 ]; then
  "$here/../tests/podman/setup.sh"
fi
# Debian starts these peers as services where systemd runs; the tests start
# their own copies inside namespaces, so keep the system ones out of the way.
for svc in nsd unbound etcd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
done
