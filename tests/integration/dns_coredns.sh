#!/usr/bin/env bash
# dns_coredns: the CoreDNS-parity behaviours of issue 12, end to end with
# dig and glibc (getent) against the real svcd in the lab: one answer per
# address when two EndpointSlices carry it, one SRV target per hostname,
# ExternalName chains into the cluster followed in one answer (so getent
# works through them), namespace names answering NODATA, a too-long
# hostname costing only its record, SRV at the Service name, NS glue,
# reverse-zone SOA owners, and autopath to a name inside the zone.
set -u
source "$(dirname "$0")/lib.sh"

command -v dig >/dev/null || { echo "SKIP: dns_coredns: no dig"; exit 0; }
command -v getent >/dev/null || { echo "SKIP: dns_coredns: no getent"; exit 0; }

lab_up 2 "" app=web

long_host=$(printf 'g%.0s' $(seq 1 64))
lab_write_manifest svc-coredns.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: default}
spec: {type: ExternalName, externalName: web.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: alias2, namespace: default}
spec: {type: ExternalName, externalName: alias.default.svc.cluster.local.}
---
apiVersion: v1
kind: Service
metadata: {name: skew, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: skew-a, namespace: default, labels: {kubernetes.io/service-name: skew}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- {addresses: [10.244.0.50], conditions: {ready: true}}
- {addresses: [10.244.0.51], conditions: {ready: true}}
- {addresses: [10.244.0.52], hostname: dup, conditions: {ready: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: skew-b, namespace: default, labels: {kubernetes.io/service-name: skew}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- {addresses: [10.244.0.50], conditions: {ready: true}}
- {addresses: [10.244.0.53], hostname: dup, conditions: {ready: true}}
EOF
# a hostname over 63 characters, next to objects that must still load
lab_write_manifest svc-long.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: long, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: long-a, namespace: default, labels: {kubernetes.io/service-name: long}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- {addresses: [10.244.0.60], hostname: $long_host, conditions: {ready: true}}
- {addresses: [10.244.0.61], hostname: short, conditions: {ready: true}}
---
apiVersion: v1
kind: Service
metadata: {name: sibling, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{port: 80}]
EOF

svcd_start_lab --no-nft --dns-listen "$LAB_NODE_IP4:53" --dns-listen 127.0.0.1:53 \
    --upstream "$LAB_EXT_IP4:53" --pod-cidr "$LAB_POD_CIDR4" --pod-cidr "$LAB_POD_CIDR6" ||
    it_fail "svcd did not start"

D="@127.0.0.1"
q() { lab_exec_node dig +time=2 +tries=1 "$D" "$@"; }
short() { lab_exec_node dig +short +time=2 +tries=1 "$D" "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
count() { local f=$1; shift; q "$@" | sed -n "s/.*, $f: \([0-9]*\).*/\1/p" | head -1; }
lines() { q +noall "$@" | tr -s ' \t' ' '; }

it_wait_eq 20 "10.96.0.20" short sibling.default.svc.cluster.local A ||
    it_fail "sibling A: got '$IT_LAST'"
it_pass "a hostname over 63 characters does not cost the rest of the file"
it_assert_contains "$(svcd_log)" "over 63 characters" "the long hostname is reported"
it_assert_eq "$(short long.default.svc.cluster.local A)" "10.244.0.60 10.244.0.61" \
    "its endpoint still backs the Service"
it_assert_eq "$(short short.long.default.svc.cluster.local A)" "10.244.0.61" \
    "the other hostname answers"
it_assert_eq "$(short _http._tcp.long.default.svc.cluster.local SRV)" \
    "0 100 80 short.long.default.svc.cluster.local." "SRV skips the long hostname"

# one address in two EndpointSlices: once in A, PTR and SRV
it_assert_eq "$(count ANSWER skew.default.svc.cluster.local A)" "4" "4 distinct addresses"
it_assert_eq "$(short skew.default.svc.cluster.local A)" \
    "10.244.0.50 10.244.0.51 10.244.0.52 10.244.0.53" "A: each address once"
it_assert_eq "$(short -x 10.244.0.50)" "10-244-0-50.skew.default.svc.cluster.local." "PTR once"
it_assert_eq "$(short 10-244-0-50.skew.default.svc.cluster.local A)" "10.244.0.50" \
    "endpoint name: one A"
it_assert_eq "$(short _http._tcp.skew.default.svc.cluster.local SRV)" \
    "0 33 80 10-244-0-50.skew.default.svc.cluster.local. 0 33 80 10-244-0-51.skew.default.svc.cluster.local. 0 33 80 dup.skew.default.svc.cluster.local." \
    "SRV: one target per address or hostname"
it_assert_eq "$(short dup.skew.default.svc.cluster.local A)" "10.244.0.52 10.244.0.53" \
    "shared hostname has both addresses"
it_assert_eq "$(short skew.default.svc.cluster.local SRV | wc -w)" "12" \
    "SRV at the Service name (CoreDNS): 3 targets"
it_assert_eq "$(short web.default.svc.cluster.local SRV)" "0 100 80 web.default.svc.cluster.local." \
    "ClusterIP SRV at the Service name"

# ExternalName into the cluster: followed in the same answer, AA set
it_assert_eq "$(lines +answer alias.default.svc.cluster.local A)" \
    "alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.
web.default.svc.cluster.local. 5 IN A 10.96.0.10" "ExternalName to a cluster name: CNAME + A"
it_assert_contains "$(q alias.default.svc.cluster.local A)" "flags: qr aa rd ra" "AA on it"
it_assert_eq "$(short alias2.default.svc.cluster.local A)" \
    "10.96.0.10 alias.default.svc.cluster.local. web.default.svc.cluster.local." "a chain of two"
it_assert_eq "$(status alias.default.svc.cluster.local AAAA)" "NOERROR" "AAAA through it: NODATA"
pod=${LAB_PODS[1]}
gh=$(lab_exec_pod "$pod" getent hosts alias.default.svc.cluster.local)
it_assert_contains "$gh" "10.96.0.10" "getent hosts through the ExternalName (FQDN)"
gh=$(lab_exec_pod "$pod" getent hosts alias2)
it_assert_contains "$gh" "10.96.0.10" "getent hosts through two ExternalNames (search path)"
gh=$(lab_exec_pod "$pod" getent ahostsv4 alias)
it_assert_contains "$gh" "10.96.0.10" "getaddrinfo (getent ahostsv4) through it"

# names that exist without records: NODATA with the SOA
for n in default.pod.cluster.local default.svc.cluster.local pod.cluster.local; do
    it_assert_eq "$(status $n A)/$(count ANSWER $n A)/$(count AUTHORITY $n A)" "NOERROR/0/1" \
        "$n: NODATA"
done
it_assert_eq "$(status nons.pod.cluster.local A)" "NXDOMAIN" "a namespace without objects"

# apex NS with glue
it_assert_eq "$(lines +additional cluster.local NS | sort)" \
    "ns.dns.cluster.local. 5 IN A 10.244.0.1
ns.dns.cluster.local. 5 IN A 127.0.0.1" "apex NS glue"

# negative reverse answers carry the reverse zone's SOA
soa_owner() { q "$@" | awk '/AUTHORITY SECTION/ {getline; print $1}'; }
it_assert_eq "$(status -x 10.244.0.99)/$(soa_owner -x 10.244.0.99)" \
    "NXDOMAIN/0.244.10.in-addr.arpa." "pod CIDR /24: owner 0.244.10.in-addr.arpa"
it_assert_eq "$(soa_owner -x 10.96.0.99)" "96.10.in-addr.arpa." "service CIDR /16"
it_assert_eq "$(soa_owner -x fd00:10:96::99)" \
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa." "service CIDR /112"
it_assert_eq "$(short 96.10.in-addr.arpa SOA | cut -d' ' -f1)" "ns.dns.cluster.local." \
    "the reverse zone answers its SOA"

# autopath: the first search-path query for a cluster name is answered in one step
ap=$(lab_exec_pod "$pod" dig +search +noall +answer +time=2 +tries=1 web.default.svc.cluster.local A |
    tr -s ' \t' ' ')
it_assert_eq "$ap" "web.default.svc.cluster.local.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.
web.default.svc.cluster.local. 5 IN A 10.96.0.10" "autopath: remainder in the cluster zone"
pod1_dash=${LAB_POD_IP4[1]//./-}
ap=$(lab_exec_pod "$pod" dig +search +short +time=2 +tries=1 "$pod1_dash.default.pod.cluster.local" A |
    tail -1)
it_assert_eq "$ap" "${LAB_POD_IP4[1]}" "autopath: remainder is a pod record"

it_finish
