/*
 * test_nft: the VIP data plane against the real kernel, in a private
 * network namespace (unshare(CLONE_NEWNET)) that disappears with the
 * process. Builds a store from manifests, runs nftdp, and checks both the
 * in-memory programmed state and `nft list` of the table it produced.
 * Needs root (CAP_NET_ADMIN); prints "skipped" and exits 77 otherwise.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "svcd/config.h"
#include "svcd/manifest.h"
#include "svcd/nft.h"
#include "svcd/nft_addrcount.h"
#include "svcd/store.h"

#include "testutil.h"




/* Output of a shell command (nft list ...), or "" on failure. */
static char *run(const char *cmd)
{
    static char out[1 << 20];
    out[0] = '\0';
    FILE *f = popen(cmd, "r");
    if (!f)
        return out;
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    pclose(f);
    return out;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

#define POD(name, labels, ip, extra)                                                      \
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", labels: " labels "}\n"   \
    "spec:\n  nodeName: node1\n  containers:\n  - name: c\n    ports:\n"                 \
    "    - {name: http, containerPort: 8080}\n"                                          \
    "    - {name: dns, containerPort: 5353, protocol: UDP}\n" extra                        \
    "status:\n  phase: Running\n  podIP: " ip "\n"

static const char *const WEB =
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n  ports:\n"
    "  - {name: http, port: 80, targetPort: http}\n"
    "  - {name: dns, port: 53, targetPort: dns, protocol: UDP}\n";

static struct svcd_ip ip(const char *s)
{
    struct svcd_ip a;
    svcd_ip_parse(s, &a);
    return a;
}

static int backends(struct nftdp *dp, const char *vip, enum svcd_proto p, uint16_t port,
                    char *out, size_t len)
{
    struct svcd_ip ips[16];
    uint16_t ports[16];
    struct svcd_ip a = ip(vip);
    int n = nftdp_frontend_backends(dp, a.family, &a, p, port, ips, ports, 16);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n && i < 16; i++) {
        char b[64];
        used += (size_t)snprintf(out + used, len - used, "%s%s:%u", i ? " " : "",
                                 svcd_ip_format(&ips[i], b, sizeof(b)), ports[i]);
    }
    return n;
}

/* ---- nft_addrcount (pure): fixed cases, then a differential run against
 * a plain array over a small address universe, so that probe clusters,
 * wrap-around and backward-shift deletion are all exercised ---- */

struct ac_sum {
    long entries, total;
};

static int ac_sum_cb(void *ctx, uint8_t fam, const uint8_t *addr, int32_t cnt)
{
    (void)fam; (void)addr;
    struct ac_sum *s = ctx;
    s->entries++;
    s->total += cnt;
    return 0;
}

static void ac_addr(uint8_t fam, uint32_t i, uint8_t *out)
{
    memset(out, 0, 16);
    if (fam == 4) {
        out[0] = 10; out[1] = 128; out[2] = (uint8_t)(i >> 8); out[3] = (uint8_t)i;
    } else {
        out[0] = 0xfd; out[14] = (uint8_t)(i >> 8); out[15] = (uint8_t)i;
    }
}

static void test_addrcount(void)
{
    static const struct { uint8_t fam; uint32_t a; int32_t d; int32_t want; size_t count; } tc[] = {
        { 4, 1, +1, 1, 1 }, { 4, 1, +2, 3, 1 }, { 6, 1, +1, 1, 2 }, { 4, 2, -1, -1, 3 },
        { 4, 1, -3, 0, 2 }, { 4, 2, +1, 0, 1 }, { 6, 1, 0, 1, 1 }, { 6, 1, -1, 0, 0 },
    };
    struct nft_addrcount t = { 0 };
    uint8_t a[16];
    for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        ac_addr(tc[i].fam, tc[i].a, a);
        CHECK(nft_addrcount_add(&t, tc[i].fam, a, tc[i].d) == 0, "addrcount case %zu add", i);
        CHECK(nft_addrcount_get(&t, tc[i].fam, a) == tc[i].want, "addrcount case %zu: %d want %d",
              i, nft_addrcount_get(&t, tc[i].fam, a), tc[i].want);
        CHECK(nft_addrcount_count(&t) == tc[i].count, "addrcount case %zu: count %zu want %zu", i,
              nft_addrcount_count(&t), tc[i].count);
    }
    nft_addrcount_clear(&t);
    enum { U = 600 };
    static int32_t ref[2][U];
    memset(ref, 0, sizeof(ref));
    uint32_t rnd = 12345;
    int bad = 0;
    for (int step = 0; step < 200000 && bad < 5; step++) {
        rnd = rnd * 1103515245u + 12345u;
        uint8_t fam = (rnd >> 30) & 1 ? 6 : 4;
        uint32_t i = (rnd >> 8) % U;
        /* bias towards removal half of the time so the table fills and drains */
        int32_t d = ((step / 20000) & 1) ? (ref[fam == 6][i] > 0 ? -1 : +1)
                                         : (((rnd >> 4) & 3) == 0 ? -1 : +1);
        ac_addr(fam, i, a);
        if (nft_addrcount_add(&t, fam, a, d) < 0) {
            bad++;
            continue;
        }
        ref[fam == 6][i] += d;
        if ((step & 1023) == 0 || step > 199000) {
            size_t want = 0;
            for (int f = 0; f < 2; f++)
                for (uint32_t j = 0; j < U; j++) {
                    ac_addr(f ? 6 : 4, j, a);
                    if (nft_addrcount_get(&t, f ? 6 : 4, a) != ref[f][j])
                        bad++;
                    want += ref[f][j] != 0;
                }
            if (nft_addrcount_count(&t) != want)
                bad++;
        }
    }
    CHECK(bad == 0, "addrcount differential: %d mismatches", bad);
    struct ac_sum sum = { 0, 0 };
    nft_addrcount_foreach(&t, ac_sum_cb, &sum);
    long want_total = 0, want_entries = 0;
    for (int f = 0; f < 2; f++)
        for (uint32_t j = 0; j < U; j++) {
            want_total += ref[f][j];
            want_entries += ref[f][j] != 0;
        }
    CHECK(sum.entries == want_entries && sum.total == want_total,
          "addrcount foreach: %ld entries / %ld total, want %ld / %ld", sum.entries, sum.total,
          want_entries, want_total);
    nft_addrcount_clear(&t);
    CHECK(nft_addrcount_count(&t) == 0, "addrcount cleared");
}

/* The planner without the kernel: masquerade classes, traffic policies and
 * the short-circuit view, from a store snapshot (runs without root). */
static void test_plan(void)
{
    struct store *st = store_new();
    struct svcd_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.node_name, sizeof(cfg.node_name), "node1");
    svcd_cidr_parse("10.244.0.0/16", &cfg.pod_cidr[0]);
    cfg.n_pod_cidr = 1;
    testutil_load_yaml(st, WEB);
    testutil_load_yaml(st, POD("a", "{app: web}", "10.244.0.11", "") POD("b", "{app: web}", "10.244.0.12", ""));
    testutil_load_yaml(st,
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: far, labels: {app: web}}\n"
        "spec:\n  nodeName: node2\n  containers:\n  - name: c\n    ports:\n"
        "    - {name: http, containerPort: 8080}\nstatus:\n  phase: Running\n  podIP: 10.244.1.9\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: loc}\n"
        "spec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.40\n  externalTrafficPolicy: Local\n"
        "  selector: {app: web}\n  ports:\n  - {port: 80, targetPort: http, nodePort: 30080}\n"
        "status: {loadBalancer: {ingress: [{ip: 192.0.2.20}]}}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: cl}\n"
        "spec:\n  type: NodePort\n  clusterIP: 10.96.0.41\n  externalIPs: [192.0.2.21]\n"
        "  selector: {app: web}\n  ports:\n  - {port: 80, targetPort: http, nodePort: 30081}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: far2, labels: {app: far}}\n"
        "spec:\n  nodeName: node2\n  containers:\n  - name: c\n    ports:\n"
        "    - {name: http, containerPort: 8080}\nstatus:\n  phase: Running\n  podIP: 10.244.1.10\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: locfar}\n"
        "spec:\n  type: NodePort\n  clusterIP: 10.96.0.42\n  externalTrafficPolicy: Local\n"
        "  selector: {app: far}\n  ports:\n  - {port: 80, targetPort: http, nodePort: 30082}\n");
    char out[4096];
    CHECK(nftdp_plan_text(&cfg, st, "default", "web", out, sizeof(out)) == 2, "web: 2 frontends");
    CHECK(strstr(out, "10.96.0.10 6 80 -> lb4_3_mp 10.244.0.11:8080 10.244.0.12:8080 10.244.1.9:8080\n"),
          "ClusterIP with --pod-cidr: non-pod sources masqueraded:\n%s", out);
    CHECK(nftdp_plan_text(&cfg, st, "default", "loc", out, sizeof(out)) == 5, "loc: 5 frontends:\n%s", out);
    CHECK(strstr(out, "192.0.2.20 6 80 -> lb4_2_el 10.244.0.11:8080 10.244.0.12:8080\n") &&
              strstr(out, "192.0.2.20 6 80 sc -> lb4_3_sc 10.244.0.11:8080 10.244.0.12:8080 10.244.1.9:8080\n") &&
              strstr(out, "* 6 30080 -> lbn4_2_el ") && strstr(out, "* 6 30080 sc -> lbn4_3_sc "),
          "ETP Local: local endpoints + all-endpoints short-circuit view:\n%s", out);
    CHECK(strstr(out, "10.96.0.40 6 80 -> lb4_3_mp "), "ETP Local does not restrict the ClusterIP:\n%s", out);
    CHECK(nftdp_plan_text(&cfg, st, "default", "cl", out, sizeof(out)) == 3, "cl: 3 frontends");
    CHECK(strstr(out, "192.0.2.21 6 80 -> lb4_3_ma ") && strstr(out, "* 6 30081 -> lbn4_3_ma "),
          "ETP Cluster: external destinations always masqueraded:\n%s", out);
    CHECK(nftdp_plan_text(&cfg, st, "default", "locfar", out, sizeof(out)) == 3, "locfar: 3 frontends");
    CHECK(strstr(out, "* 6 30082 -> lbn4_0_el (drop)\n") && strstr(out, "* 6 30082 sc -> lbn4_1_sc 10.244.1.10:8080"),
          "ETP Local, no local endpoint: drop for outsiders, short-circuit for pods/node:\n%s", out);
    cfg.masquerade_all = true;
    nftdp_plan_text(&cfg, st, "default", "web", out, sizeof(out));
    CHECK(strstr(out, "10.96.0.10 6 80 -> lb4_3_ma "), "--masquerade-all:\n%s", out);
    cfg.masquerade_all = false;
    cfg.n_pod_cidr = 0;
    nftdp_plan_text(&cfg, st, "default", "web", out, sizeof(out));
    CHECK(strstr(out, "10.96.0.10 6 80 -> lb4_3 "), "no --pod-cidr: no masquerade:\n%s", out);
    CHECK(nftdp_plan_text(&cfg, st, "default", "nope", out, sizeof(out)) == 0, "unknown Service: nothing");
    store_free(st);
}

int main(void)
{
    test_addrcount();
    test_plan();
    if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0) {
        printf("skipped: needs root for a private network namespace (%s)\n", strerror(errno));
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 77;
    }
    if (system("ip link set lo up") != 0)
        fprintf(stderr, "warning: lo not up\n");
    struct event_base *base = event_base_new();
    struct store *st = store_new();
    struct svcd_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.nft_table, sizeof(cfg.nft_table), "svcd");
    snprintf(cfg.node_name, sizeof(cfg.node_name), "node1");
    char buf[1024];
    char *out;

    /* ---- 1. full sync of a Service with 3 endpoints, TCP by name + UDP ---- */
    struct nftdp *dp = nftdp_new(base, st, &cfg);
    CHECK(dp != NULL, "nftdp_new");
    if (!dp)
        goto done;
    CHECK(!nftdp_synced(dp), "not synced before the first sync");
    testutil_load_yaml(st, WEB);
    testutil_load_yaml(st, POD("a", "{app: web}", "10.244.0.11", "") POD("b", "{app: web}", "10.244.0.12", "")
             POD("c", "{app: web}", "10.244.0.13", ""));
    CHECK(nftdp_sync_now(dp) == 0, "first sync: %s", nftdp_last_error(dp));
    CHECK(nftdp_synced(dp), "synced after first sync");
    CHECK(nftdp_generation(dp) == store_generation(st), "generation %lu vs %lu",
          (unsigned long)nftdp_generation(dp), (unsigned long)store_generation(st));
    CHECK(backends(dp, "10.96.0.10", SVCD_PROTO_TCP, 80, buf, sizeof(buf)) == 3 &&
              strcmp(buf, "10.244.0.11:8080 10.244.0.12:8080 10.244.0.13:8080") == 0,
          "tcp backends: %s", buf);
    CHECK(backends(dp, "10.96.0.10", SVCD_PROTO_UDP, 53, buf, sizeof(buf)) == 3 &&
              strstr(buf, "10.244.0.12:5353"), "udp backends: %s", buf);
    out = run("nft list table inet svcd 2>&1");
    CHECK(strstr(out, "ip daddr . meta l4proto . th dport vmap @fe4"),
          "services dispatch rule:\n%s", out);
    out = run("nft list map inet svcd fe4 2>&1");
    CHECK(strstr(out, "10.96.0.10 . tcp . 80 : goto lb4_3") &&
              strstr(out, "10.96.0.10 . udp . 53 : goto lb4_3"),
          "both frontends dispatched to lb4_3:\n%s", out);
    out = run("nft list table inet svcd 2>&1");
    CHECK(strstr(out, "chain lb4_3"), "lb chain lb4_3");
    CHECK(strstr(out, "numgen random mod 3"), "numgen mod 3");
    CHECK(strstr(out, "10.244.0.13 . 8080"), "be4 has endpoint 3");
    CHECK(strstr(out, "hook prerouting priority dstnat") && strstr(out, "hook output"),
          "nat hooks");
    CHECK(strstr(out, "masquerade"), "hairpin masquerade");
    if (failed)
        fprintf(stderr, "%s\n", out);

    /* ---- 2. endpoint removed: slots stay dense, chain re-pointed ---- */
    store_begin(st);
    store_pod_delete(st, "default", "a");
    store_commit(st);
    CHECK(nftdp_sync_now(dp) == 0, "sync after pod delete: %s", nftdp_last_error(dp));
    CHECK(backends(dp, "10.96.0.10", SVCD_PROTO_TCP, 80, buf, sizeof(buf)) == 2 &&
              strcmp(buf, "10.244.0.13:8080 10.244.0.12:8080") == 0,
          "last slot moved into the freed one: %s", buf);
    out = run("nft list table inet svcd 2>&1");
    CHECK(strstr(run("nft list map inet svcd fe4 2>&1"), "10.96.0.10 . tcp . 80 : goto lb4_2"),
          "frontend re-pointed to lb4_2");
    out = run("nft list table inet svcd 2>&1");
    CHECK(!strstr(out, "chain lb4_3 {"), "unused lb4_3 garbage-collected");
    CHECK(!strstr(out, "10.244.0.11"), "removed endpoint gone everywhere");
    struct nftdp_stats stt;
    nftdp_get_stats(dp, &stt);
    CHECK(stt.last_batch_msgs > 0 && stt.last_batch_msgs < 16, "incremental batch: %zu msgs",
          stt.last_batch_msgs);

    /* ---- 3. no endpoints: reject entries, unknown port check ---- */
    testutil_load_yaml(st, "---\napiVersion: v1\nkind: Service\nmetadata: {name: empty}\n"
             "spec:\n  clusterIP: 10.96.0.20\n  selector: {app: none}\n  ports:\n"
             "  - {port: 80}\n");
    CHECK(nftdp_sync_now(dp) == 0, "sync empty svc: %s", nftdp_last_error(dp));
    CHECK(backends(dp, "10.96.0.20", SVCD_PROTO_TCP, 80, buf, sizeof(buf)) == 0,
          "empty frontend programmed with 0 backends");
    out = run("nft list map inet svcd noep4 2>&1");
    CHECK(strstr(out, "10.96.0.20 . tcp . 80 : goto do_reject"), "noep4:\n%s", out);
    out = run("nft list table inet svcd 2>&1");
    CHECK(count_of(out, "10.96.0.20 . tcp . 80") == 2, "only in noep4 and ports4");
    out = run("nft list set inet svcd cips4 2>&1");
    CHECK(strstr(out, "10.96.0.20") && strstr(out, "10.96.0.10"), "cips4:\n%s", out);

    /* ---- 4. dual-stack, NodePort, affinity, externalIPs ---- */
    testutil_load_yaml(st, "---\napiVersion: v1\nkind: Service\nmetadata: {name: ds}\n"
             "spec:\n  type: NodePort\n  clusterIP: 10.96.0.30\n"
             "  clusterIPs: [10.96.0.30, 'fd00:10:96::30']\n"
             "  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n"
             "  externalIPs: [192.0.2.5]\n"
             "  sessionAffinity: ClientIP\n"
             "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n"
             "  selector: {app: ds}\n  ports:\n  - {name: h, port: 80, targetPort: 8080, nodePort: 30080}\n"
             "  - {name: s, port: 9999, targetPort: 9999, protocol: SCTP, nodePort: 30099}\n"
             POD("d1", "{app: ds}", "10.244.0.21", "")
             "  podIPs: [{ip: 10.244.0.21}, {ip: 'fd00:10:244::21'}]\n");
    CHECK(nftdp_sync_now(dp) == 0, "sync ds: %s", nftdp_last_error(dp));
    CHECK(backends(dp, "fd00:10:96::30", SVCD_PROTO_TCP, 80, buf, sizeof(buf)) == 1 &&
              strcmp(buf, "fd00:10:244::21:8080") == 0, "v6 backend: %s", buf);
    CHECK(backends(dp, "192.0.2.5", SVCD_PROTO_TCP, 80, buf, sizeof(buf)) == 1,
          "externalIP frontend");
    {
        struct svcd_ip ips[4];
        uint16_t ports[4];
        CHECK(nftdp_frontend_backends(dp, AF_INET, NULL, SVCD_PROTO_TCP, 30080, ips, ports, 4) == 1,
              "NodePort v4 frontend");
        CHECK(nftdp_frontend_backends(dp, AF_INET6, NULL, SVCD_PROTO_TCP, 30080, ips, ports, 4) == 1,
              "NodePort v6 frontend");
    }
    if (getenv("TEST_NFT_DEBUG"))
        fputs(run("bash /tmp/nftw/dbg.sh"), stderr);
    out = run("nft list table inet svcd 2>&1");
    CHECK(strstr(out, "chain lb6_1_a60"), "v6 affinity chain");
    CHECK(strstr(out, "chain lbn4_1_a60_ma"), "nodeport affinity chain (masquerading)");
    CHECK(strstr(run("nft list map inet svcd fen4 2>&1"), "tcp . 30080 : goto lbn4_1_a60_ma"),
          "NodePort frontend");
    CHECK(strstr(run("nft list map inet svcd fe6 2>&1"), "fd00:10:96::30 . tcp . 80 : goto lb6_1_a60"),
          "v6 frontend");
    CHECK(strstr(run("nft list map inet svcd fe4 2>&1"), "192.0.2.5 . tcp . 80 : goto lb4_1_a60_ma"),
          "externalIP frontend: policy Cluster masquerades");
    CHECK(strstr(run("nft list map inet svcd fe4 2>&1"), "10.96.0.30 . sctp . 9999 : goto lb4_1_a60") &&
              strstr(run("nft list map inet svcd fen4 2>&1"), "sctp . 30099 : goto lbn4_1_a60_ma"),
          "SCTP ClusterIP and NodePort frontends");
    out = run("nft list table inet svcd 2>&1");  /* run() reuses one buffer */
    CHECK(strstr(out, "10.96.0.30 . sctp . 9999 . 0x00000000 : 10.244.0.21 . 9999"),
          "SCTP backend programmed");
    CHECK(strstr(out, "ip daddr @npa4 meta l4proto . th dport vmap @fen4"), "NodePort rule");
    CHECK(strstr(out, "meta mark set meta mark | 0x00004000"), "masquerade mark rule");
    CHECK(strstr(out, "update @aff6_0 { ip6 saddr . ip6 daddr . meta l4proto . th dport timeout 1m }"),
          "affinity update rule");
    if (failed)
        fprintf(stderr, "%s\n", out);

    /* ---- 5. a rejected transaction leaves the previous rules ---- */
    char before[1 << 16];
    /* delete behind svcd's back: its next incremental delete hits ENOENT */
    out = run("nft delete element inet svcd be4 '{ 10.96.0.10 . tcp . 80 . 0x00000000 }' 2>&1");
    CHECK(out[0] == '\0', "external delete: %s", out);
    snprintf(before, sizeof(before), "%s", run("nft list table inet svcd 2>&1"));
    testutil_load_yaml(st, POD("e", "{app: web}", "10.244.0.14", ""));
    store_begin(st);
    store_pod_delete(st, "default", "c");
    store_commit(st);
    CHECK(nftdp_sync_now(dp) == -1, "sync must fail");
    CHECK(!nftdp_synced(dp), "not synced after failure");
    CHECK(nftdp_last_error(dp) && strstr(nftdp_last_error(dp), "default/web") &&
              strstr(nftdp_last_error(dp), "No such file"),
          "error mapped to the object: %s", nftdp_last_error(dp) ? nftdp_last_error(dp) : "");
    out = run("nft list table inet svcd 2>&1");
    CHECK(strcmp(out, before) == 0, "kernel rules unchanged after a rejected batch");
    CHECK(backends(dp, "10.96.0.10", SVCD_PROTO_TCP, 80, buf, sizeof(buf)) == 2 &&
              strcmp(buf, "10.244.0.13:8080 10.244.0.12:8080") == 0,
          "in-memory state unchanged: %s", buf);
    CHECK(nftdp_sync_now(dp) == -1, "second incremental retry fails too");
    CHECK(nftdp_sync_now(dp) == 0, "then a full replace converges: %s",
          nftdp_last_error(dp) ? nftdp_last_error(dp) : "");
    CHECK(nftdp_synced(dp), "synced after recovery");
    out = run("nft list table inet svcd 2>&1");
    CHECK(strstr(out, "10.244.0.14 . 8080") && !strstr(out, "10.244.0.13 . 8080"),
          "recovered table has the new endpoint set");
    CHECK(backends(dp, "10.96.0.10", SVCD_PROTO_TCP, 80, buf, sizeof(buf)) == 2 &&
              strstr(buf, "10.244.0.14:8080"), "state after recovery: %s", buf);

    /* ---- 6. restart: a new nftdp adopts the table and converges ---- */
    snprintf(before, sizeof(before), "%s", run("nft list table inet svcd 2>&1"));
    nftdp_free(dp);
    out = run("nft list table inet svcd 2>&1");
    CHECK(strcmp(out, before) == 0, "rules stay after nftdp_free");
    dp = nftdp_new(base, st, &cfg);
    CHECK(dp && nftdp_sync_now(dp) == 0, "sync after restart");
    out = run("nft list table inet svcd 2>&1");
    CHECK(count_of(out, "chain lb4_2 {") == 1, "one lb4_2 chain after adoption");
    CHECK(!strstr(out, "chain lb4_3 {"), "unused chains dropped by the full replace");
    CHECK(count_of(out, "table inet svcd") == 1, "one table");
    CHECK(strstr(out, "10.244.0.14 . 8080"), "content after adoption");

    /* ---- 7. service deleted: everything of it goes ---- */
    store_begin(st);
    store_service_delete(st, "default", "ds");
    store_commit(st);
    CHECK(nftdp_sync_now(dp) == 0, "sync after svc delete");
    out = run("nft list table inet svcd 2>&1");
    CHECK(!strstr(out, "10.96.0.30") && !strstr(out, "fd00:10:96::30") && !strstr(out, "30080"),
          "ds gone:\n%s", out);
    nftdp_get_stats(dp, &stt);
    CHECK(stt.services == 2, "2 services programmed, got %zu", stt.services);

    /* ---- 8. --cleanup ---- */
    nftdp_free(dp);
    dp = NULL;
    CHECK(nftdp_cleanup("svcd") == 0, "cleanup");
    out = run("nft list tables 2>&1");
    CHECK(!strstr(out, "svcd"), "table gone: %s", out);
    CHECK(nftdp_cleanup("svcd") == 0, "cleanup is idempotent");
done:
    nftdp_free(dp);
    store_free(st);
    event_base_free(base);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
