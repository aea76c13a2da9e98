#!/usr/bin/env bash
# chaos_manifests_dir: the manifests directory itself is replaced by a
# rename (mv dir dir.old; mv new dir), moved away and back, and removed and
# recreated, while DNS is asked every 10 ms. svcd re-resolves the path each
# time: what the directory at the path holds becomes visible within 1 s,
# files written into it later are seen, and nothing is removed while no
# directory is at the path.
set -u
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || { echo "SKIP: chaos_manifests_dir: no dig"; exit 0; }

svc() {  # svc NAME LAST-OCTET: a Service manifest on stdout
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\nspec:\n  clusterIP: 10.96.0.%s\n  ports:\n  - {port: 80}\n' "$1" "$2"
}
visible() {  # visible NAME OCTET: within 1 s (scaled)
    it_check "$1 becomes visible" it_wait_eq "$(chaos_scale)" "10.96.0.$2" dns_ask "$1.default.svc.cluster.local"
}

lab_up 0 || it_fail "lab_up"
D=$LAB_MANIFESTS
svc a 11 >"$D/a.yaml"
svcd_start_lab --dns-listen 127.0.0.1:5353 --no-nft || it_fail "svcd did not become ready"
it_assert_eq "$(dns_ask a.default.svc.cluster.local)" 10.96.0.11 "a resolves"

chaos_gap_start a.default.svc.cluster.local
# 1. replaced by a rename
mkdir "$D.new"
svc a 11 >"$D.new/a.yaml"
svc b 12 >"$D.new/b.yaml"
mv "$D" "$D.old"
mv "$D.new" "$D"
visible b 12
svc c 13 >"$D/c.yaml"
visible c 13
# 2. moved away and back
mv "$D" "$D.away"
svc x 99 >"$D.away/x.yaml"          # written while away: seen once back
mv "$D.away" "$D"
visible x 99
svc d 14 >"$D/d.yaml"
visible d 14
# 3. removed and recreated
n_lost=$(grep -c "was moved or removed" "$SVCD_LOG")
rm -rf "$D"
it_check "svcd notices the directory is gone" \
    it_wait 10 bash -c "(( \$(grep -c 'was moved or removed' '$SVCD_LOG') > $n_lost ))"
it_assert_eq "$(dns_ask a.default.svc.cluster.local)" 10.96.0.11 "objects stay while no directory is at the path"
mkdir "$D"
svc a 11 >"$D/a.yaml"
svc e 15 >"$D/e.yaml"
visible e 15
it_check "b (not in the recreated directory) is gone" \
    it_wait_eq "$(chaos_scale)" "" dns_ask b.default.svc.cluster.local
chaos_assert_gap 100 "manifests directory replaced, moved and recreated"
it_check "the moves are logged" grep -q "is there again" "$SVCD_LOG"
rm -rf "$D.old"
it_finish
