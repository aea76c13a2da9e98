#!/usr/bin/env python3
"""gen.py OUTDIR: the benchmark's 2,000 Services, as svcd manifests
(OUTDIR/manifests/*.yaml) and as kube-proxy's nftables layout
(OUTDIR/kube-proxy.nft, table ip kube-proxy, the shape of
pkg/proxy/nftables/proxier.go with its nftables-mode default
--nodeport-addresses primary: service-ips vmap -> service chain -> numgen
vmap -> endpoint chain; filter and masquerade chains).

Services: c1..c200 with 1..200 endpoints (200 distinct endpoint counts,
ClusterIP 10.96.1.N, created first to last) and s1..s1800 with 2 endpoints
(10.96.10.0/22...). All UDP port 80 -> 80. Endpoints: 200 pods p0..p199;
pod k is selected by c<N> for every N > k.
"""
import os, sys

out = sys.argv[1]
man = os.path.join(out, "manifests")
os.makedirs(man, exist_ok=True)

def pod_ip(k):
    return "10.244.%d.%d" % (k // 250, k % 250 + 2)

with open(os.path.join(man, "pods.yaml"), "w") as f:
    for k in range(200):
        labels = "".join('    n%d: "y"\n' % n for n in range(k + 1, 201))
        f.write("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p%d\n  namespace: default\n"
                "  labels:\n%s    all: \"y\"\n    pair: \"%s\"\nspec:\n  nodeName: n1\n"
                "  containers:\n  - name: c\n    ports:\n    - {name: u, containerPort: 80, protocol: UDP}\n"
                "status:\n  phase: Running\n  podIP: %s\n  conditions:\n  - type: Ready\n"
                "    status: \"True\"\n" % (k, labels, "y" if k < 2 else "n", pod_ip(k)))

svcs = []  # (name, clusterIP, endpoint pod indexes)
for n in range(1, 201):
    svcs.append(("c%d" % n, "10.96.1.%d" % n, list(range(n))))
for i in range(1800):
    svcs.append(("s%d" % (i + 1), "10.96.%d.%d" % (10 + i // 250, i % 250 + 1), [0, 1]))

with open(os.path.join(man, "services.yaml"), "w") as f:
    for name, cip, eps in svcs:
        sel = "{n%d: \"y\"}" % len(eps) if name.startswith("c") else "{pair: \"y\"}"
        f.write("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n"
                "spec:\n  clusterIP: %s\n  selector: %s\n  ports:\n"
                "  - {port: 80, targetPort: 80, protocol: UDP}\n" % (name, cip, sel))

L = []
w = L.append
w("table ip kube-proxy {")
w("  set cluster-ips { type ipv4_addr; elements = { %s } }" % ", ".join(c for _, c, _ in svcs))
w("  map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; }")
w("  map no-endpoint-nodeports { type inet_proto . inet_service : verdict; }")
w("  map firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict; }")
w("  map service-nodeports { type inet_proto . inet_service : verdict; }")
w("  set nodeport-ips { type ipv4_addr; elements = { 192.168.99.1 } }")
w("  chain mark-for-masquerade {\n    mark set mark or 0x4000\n  }")
w("  chain masquerading {\n    mark and 0x4000 == 0 return\n    mark set mark xor 0x4000\n"
  "    masquerade fully-random\n  }")
w("  chain reject-chain {\n    reject\n  }")
w("  chain firewall-check {\n    ip daddr . meta l4proto . th dport vmap @firewall-ips\n  }")
w("  chain service-endpoints-check {\n    ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n  }")
w("  chain nodeport-endpoints-check {\n    ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports\n  }")
w("  chain cluster-ips-check {\n    ip daddr @cluster-ips reject\n    ip daddr { 10.96.0.0/16 } drop\n  }")
for name, cip, eps in svcs:
    base = "default/%s/udp/p80" % name
    for k in eps:
        w("  chain endpoint-%s__%s/80 {\n    ip saddr %s jump mark-for-masquerade\n"
          "    meta l4proto udp dnat to %s:80\n  }" % (base, pod_ip(k), pod_ip(k), pod_ip(k)))
    w("  chain service-%s {\n    ip daddr %s udp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n"
      "    numgen random mod %d vmap { %s }\n  }" % (base, cip, len(eps), ", ".join(
          "%d : goto endpoint-%s__%s/80" % (i, base, pod_ip(k)) for i, k in enumerate(eps))))
w("  map service-ips {\n    type ipv4_addr . inet_proto . inet_service : verdict\n    elements = { %s }\n  }"
  % ", ".join("%s . udp . 80 : goto service-default/%s/udp/p80" % (c, n) for n, c, _ in svcs))
w("  chain services {\n    ip daddr . meta l4proto . th dport vmap @service-ips\n"
  "    ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports\n  }")
base_chains = [
    ("filter-prerouting", "filter", "prerouting", "-110", ["ct state new jump firewall-check"]),
    ("filter-input", "filter", "input", "-110", ["ct state new jump nodeport-endpoints-check",
                                                        "ct state new jump service-endpoints-check"]),
    ("filter-forward", "filter", "forward", "-110", ["ct state new jump service-endpoints-check",
                                                            "ct state new jump cluster-ips-check"]),
    ("filter-output", "filter", "output", "-110", ["ct state new jump service-endpoints-check",
                                                          "ct state new jump firewall-check"]),
    ("filter-output-post-dnat", "filter", "output", "-90", ["ct state new jump cluster-ips-check"]),
    ("nat-prerouting", "nat", "prerouting", "-100", ["jump services"]),
    ("nat-output", "nat", "output", "-100", ["jump services"]),
    ("nat-postrouting", "nat", "postrouting", "100", ["jump masquerading"]),
]
for name, typ, hook, prio, rules in base_chains:
    w("  chain %s {\n    type %s hook %s priority %s; policy accept;\n%s\n  }" % (
        name, typ, hook, prio, "\n".join("    " + r for r in rules)))
w("}")
with open(os.path.join(out, "kube-proxy.nft"), "w") as f:
    f.write("\n".join(L) + "\n")
