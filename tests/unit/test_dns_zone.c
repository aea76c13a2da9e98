/*
 * test_dns_zone: the cluster zone built from an in-memory store. A table
 * of questions with the expected rcode, answer records (order-free),
 * authority/additional counts; then incremental updates (delete, change),
 * rotation, truncation, case echo and that no empty non-terminal leaks.
 */
#include "svcd/dns_zone.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/config.h"
#include "svcd/store.h"

#include "dns_testutil.h"

/* ---- building objects ------------------------------------------------ */

static struct svcd_service *mk_svc(const char *ns, const char *name, const char *cip,
                                   const char *cip2, bool headless, const char *sel_app)
{
    struct svcd_service *s = calloc(1, sizeof(*s));
    s->meta.ns = strdup(ns);
    s->meta.name = strdup(name);
    s->meta.fingerprint = (uint64_t)rand() << 16 | (uint64_t)rand();
    s->type = SVCD_SVC_CLUSTER_IP;
    s->headless = headless;
    if (cip)
        svcd_ip_parse(cip, &s->cluster_ips[s->n_cluster_ips++]);
    if (cip2)
        svcd_ip_parse(cip2, &s->cluster_ips[s->n_cluster_ips++]);
    if (sel_app) {
        s->has_selector = true;
        svcd_kvmap_set(&s->selector, "app", sel_app);
    }
    return s;
}

static void add_port(struct svcd_service *s, const char *name, enum svcd_proto proto,
                     uint16_t port, uint16_t target)
{
    s->ports = realloc(s->ports, (s->n_ports + 1) * sizeof(*s->ports));
    struct svcd_service_port *p = &s->ports[s->n_ports++];
    memset(p, 0, sizeof(*p));
    p->name = name ? strdup(name) : NULL;
    p->protocol = proto;
    p->port = port;
    p->target_port = target;
}

static struct svcd_pod *mk_pod(const char *ns, const char *name, const char *ip, const char *app,
                               const char *hostname, const char *subdomain, bool ready)
{
    struct svcd_pod *p = calloc(1, sizeof(*p));
    p->meta.ns = strdup(ns);
    p->meta.name = strdup(name);
    p->meta.fingerprint = (uint64_t)rand() << 16 | (uint64_t)rand();
    if (app)
        svcd_kvmap_set(&p->meta.labels, "app", app);
    p->hostname = hostname ? strdup(hostname) : NULL;
    p->subdomain = subdomain ? strdup(subdomain) : NULL;
    p->phase = SVCD_PHASE_RUNNING;
    svcd_ip_parse(ip, &p->ips[p->n_ips++]);
    p->ready_condition = ready ? SVCD_TRUE : SVCD_FALSE;
    return p;
}

/* ---- the table ------------------------------------------------------- */

#define NOTAUTH (-1)

struct qcase {
    const char *name;
    uint16_t qtype;
    int rcode;               /* NOTAUTH for "forward" */
    const char *answers;     /* sorted, ';'-joined; NULL = don't care */
    int ns;                  /* authority records (-1 = don't care) */
    int ar;                  /* additional records (-1 = don't care) */
};

static const struct qcase cases[] = {
    { "dns-version.cluster.local", DNS_T_TXT, 0, "TXT 1.1.0", 0, 0 },
    { "web.default.svc.cluster.local", DNS_T_A, 0, "A 10.96.0.10", 0, 0 },
    { "web.default.svc.cluster.local", DNS_T_AAAA, 0, "", 1, 0 },            /* NODATA */
    { "dual.default.svc.cluster.local", DNS_T_AAAA, 0, "AAAA fd00::11", 0, 0 },
    { "dual.default.svc.cluster.local", DNS_T_A, 0, "A 10.96.0.11", 0, 0 },
    { "nope.default.svc.cluster.local", DNS_T_A, DNS_R_NXDOMAIN, "", 1, 0 },
    { "default.svc.cluster.local", DNS_T_A, 0, "", 1, 0 },                 /* ENT */
    { "svc.cluster.local", DNS_T_A, 0, "", 1, 0 },
    { "nons.svc.cluster.local", DNS_T_A, DNS_R_NXDOMAIN, "", 1, 0 },
    { "cluster.local", DNS_T_SOA, 0, "SOA", 0, 0 },
    { "cluster.local", DNS_T_NS, 0, "NS ns.dns.cluster.local.", 0, 2 },   /* glue */
    { "cluster.local", DNS_T_A, 0, "", 1, 0 },
    { "ns.dns.cluster.local", DNS_T_A, 0, "A 127.0.0.1", 0, 0 },
    { "ns.dns.cluster.local", DNS_T_AAAA, 0, "AAAA fd00::53", 0, 0 },
    { "dns.cluster.local", DNS_T_A, 0, "", 1, 0 },
    /* SRV, ClusterIP */
    { "_http._tcp.web.default.svc.cluster.local", DNS_T_SRV, 0,
      "SRV 0 100 80 web.default.svc.cluster.local.", 0, 1 },
    { "_dns._udp.web.default.svc.cluster.local", DNS_T_SRV, 0,
      "SRV 0 100 53 web.default.svc.cluster.local.", 0, 1 },
    { "_dns._tcp.web.default.svc.cluster.local", DNS_T_SRV, DNS_R_NXDOMAIN, "", 1, 0 },
    { "_tcp.web.default.svc.cluster.local", DNS_T_SRV, 0, "", 1, 0 },     /* ENT */
    /* headless */
    { "hl.default.svc.cluster.local", DNS_T_A, 0, "A 10.1.0.1;A 10.1.0.2", 0, 0 },
    { "web-0.hl.default.svc.cluster.local", DNS_T_A, 0, "A 10.1.0.1", 0, 0 },
    { "10-1-0-2.hl.default.svc.cluster.local", DNS_T_A, 0, "A 10.1.0.2", 0, 0 },
    { "10-1-0-3.hl.default.svc.cluster.local", DNS_T_A, DNS_R_NXDOMAIN, "", 1, 0 },
    { "_http._tcp.hl.default.svc.cluster.local", DNS_T_SRV, 0,
      "SRV 0 50 8080 10-1-0-2.hl.default.svc.cluster.local.;"
      "SRV 0 50 8080 web-0.hl.default.svc.cluster.local.", 0, 2 },
    { "empty.default.svc.cluster.local", DNS_T_A, DNS_R_NXDOMAIN, "", 1, 0 },
    /* publishNotReadyAddresses */
    { "pnr.default.svc.cluster.local", DNS_T_A, 0, "A 10.1.0.3", 0, 0 },
    /* PTR */
    { "10.0.96.10.in-addr.arpa", DNS_T_PTR, 0, "PTR web.default.svc.cluster.local.", 0, 0 },
    { "1.0.1.10.in-addr.arpa", DNS_T_PTR, 0, "PTR web-0.hl.default.svc.cluster.local.", 0, 0 },
    { "1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", DNS_T_PTR, 0,
      "PTR dual.default.svc.cluster.local.", 0, 0 },
    { "99.0.96.10.in-addr.arpa", DNS_T_PTR, DNS_R_NXDOMAIN, "", 1, 0 },    /* in CIDR */
    { "1.1.168.192.in-addr.arpa", DNS_T_PTR, NOTAUTH, NULL, -1, -1 },      /* not ours */
    { "in-addr.arpa", DNS_T_SOA, NOTAUTH, NULL, -1, -1 },
    /* ExternalName */
    { "ext.default.svc.cluster.local", DNS_T_A, 0, "CNAME example.com.", 0, 0 },
    { "ext.default.svc.cluster.local", DNS_T_CNAME, 0, "CNAME example.com.", 0, 0 },
    /* pods */
    { "10-1-0-9.other.pod.cluster.local", DNS_T_A, 0, "A 10.1.0.9", 0, 0 },
    { "10-1-0-9.other.pod.cluster.local", DNS_T_AAAA, 0, "", 1, 0 },
    { "10-1-0-9.default.pod.cluster.local", DNS_T_A, DNS_R_NXDOMAIN, "", 1, 0 },
    { "10-1-0-99.other.pod.cluster.local", DNS_T_A, DNS_R_NXDOMAIN, "", 1, 0 },
    { "fd00--9.other.pod.cluster.local", DNS_T_AAAA, 0, "AAAA fd00::9", 0, 0 },
    { "pod.cluster.local", DNS_T_A, 0, "", 1, 0 },
    /* ANY: one RRset */
    { "web.default.svc.cluster.local", DNS_T_ANY, 0, "A 10.96.0.10", 0, 0 },
    /* outside */
    { "example.com", DNS_T_A, NOTAUTH, NULL, -1, -1 },
    { "cluster.local.evil", DNS_T_A, NOTAUTH, NULL, -1, -1 },
};

static void run_table(struct dns_zone *z)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct qcase *t = &cases[i];
        struct reply r;
        ask(z, t->name, t->qtype, &r);
        if (t->rcode == NOTAUTH) {
            CHECK(r.st == DNS_ZONE_NOT_AUTH, "%s/%u: want not-auth", t->name, t->qtype);
            continue;
        }
        CHECK(r.st == DNS_ZONE_ANSWERED, "%s/%u: not answered", t->name, t->qtype);
        CHECK(r.rcode == t->rcode, "%s/%u: rcode %d want %d", t->name, t->qtype, r.rcode,
              t->rcode);
        CHECK(r.aa, "%s/%u: AA not set", t->name, t->qtype);
        if (t->answers)
            CHECK(strcmp(r.answers, t->answers) == 0, "%s/%u: answers '%s' want '%s'",
                  t->name, t->qtype, r.answers, t->answers);
        if (t->ns >= 0)
            CHECK(r.ns == t->ns, "%s/%u: authority %d want %d", t->name, t->qtype, r.ns, t->ns);
        if (t->ar >= 0)
            CHECK(r.ar == t->ar, "%s/%u: additional %d want %d", t->name, t->qtype, r.ar, t->ar);
        if (r.ns == 1)
            CHECK(r.soa_min == 5 && r.soa_ttl == 5, "%s: SOA minimum %u ttl %u", t->name,
                  r.soa_min, r.soa_ttl);
    }
}

int main(void)
{
    struct svcd_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    config_defaults(&cfg);
    snprintf(cfg.cluster_domain, sizeof(cfg.cluster_domain), "cluster.local");
    cfg.dns_ttl = 5;
    cfg.dns_pod_records = true;
    svcd_cidr_parse("10.96.0.0/12", &cfg.service_cidr[0]);
    cfg.n_service_cidr = 1;
    svcd_cidr_parse("10.1.0.0/16", &cfg.pod_cidr[0]);
    cfg.n_pod_cidr = 1;

    config_parse_hostport("127.0.0.1:53", 53, &cfg.dns_listen[0]);
    config_parse_hostport("[fd00::53]:53", 53, &cfg.dns_listen[1]);
    config_parse_hostport("0.0.0.0:5353", 53, &cfg.dns_listen[2]);
    config_parse_hostport("127.0.0.1:5353", 53, &cfg.dns_listen[3]);
    cfg.n_dns_listen = 4;

    struct store *st = store_new();
    store_begin(st);
    struct svcd_service *s = mk_svc("default", "web", "10.96.0.10", NULL, false, "web");
    add_port(s, "http", SVCD_PROTO_TCP, 80, 8080);
    add_port(s, "dns", SVCD_PROTO_UDP, 53, 53);
    add_port(s, NULL, SVCD_PROTO_TCP, 81, 81);
    store_service_upsert(st, s);
    store_service_upsert(st, mk_svc("default", "dual", "10.96.0.11", "fd00::11", false, NULL));
    s = mk_svc("default", "hl", NULL, NULL, true, "hl");
    add_port(s, "http", SVCD_PROTO_TCP, 8080, 8080);
    store_service_upsert(st, s);
    s = mk_svc("default", "pnr", NULL, NULL, true, "pnr");
    s->publish_not_ready = true;
    store_service_upsert(st, s);
    store_service_upsert(st, mk_svc("default", "empty", NULL, NULL, true, "none"));
    s = mk_svc("default", "ext", NULL, NULL, false, NULL);
    s->type = SVCD_SVC_EXTERNAL_NAME;
    s->external_name = strdup("Example.com");
    store_service_upsert(st, s);
    store_pod_upsert(st, mk_pod("default", "p1", "10.1.0.1", "hl", "web-0", "hl", true));
    store_pod_upsert(st, mk_pod("default", "p2", "10.1.0.2", "hl", NULL, NULL, true));
    store_pod_upsert(st, mk_pod("default", "p3", "10.1.0.3", "hl", NULL, NULL, false));
    store_pod_upsert(st, mk_pod("default", "p4", "10.1.0.3", "pnr", NULL, NULL, false));
    store_pod_upsert(st, mk_pod("other", "p9", "10.1.0.9", "x", NULL, NULL, true));
    store_pod_upsert(st, mk_pod("other", "p10", "fd00::9", "x", NULL, NULL, true));
    uint64_t gen = store_commit(st);

    /* zone built from a populated store */
    struct dns_zone *z = dns_zone_new(st, &cfg);
    CHECK(z != NULL, "zone_new");
    if (!z)
        goto out;
    CHECK(dns_zone_generation(z) == gen, "generation %llu want %llu",
          (unsigned long long)dns_zone_generation(z), (unsigned long long)gen);
    run_table(z);

    /* --dns-pod-records=false: no pod names */
    struct svcd_config cfg_np = cfg;
    cfg_np.dns_pod_records = false;
    struct dns_zone *znp = dns_zone_new(st, &cfg_np);
    struct reply rnp;
    ask(znp, "10-1-0-9.other.pod.cluster.local", DNS_T_A, &rnp);
    CHECK(rnp.rcode == DNS_R_NXDOMAIN, "pod records off: %d", rnp.rcode);
    dns_zone_free(znp);

    /* TTLs: dns-version 28800, records cfg->dns_ttl */
    struct reply r;
    ask(z, "dns-version.cluster.local", DNS_T_TXT, &r);
    CHECK(r.first_ttl == 28800, "dns-version TTL %u", r.first_ttl);
    ask(z, "web.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.first_ttl == 5, "record TTL %u", r.first_ttl);

    /* case echo: owner written as asked */
    ask(z, "WEB.Default.SVC.cluster.LOCAL", DNS_T_A, &r);
    CHECK(strcmp(r.first_owner, "WEB.Default.SVC.cluster.LOCAL.") == 0, "case echo %s",
          r.first_owner);
    CHECK(strcmp(r.answers, "A 10.96.0.10") == 0, "case-insensitive match");

    /* rotation: first record changes between two queries */
    char first1[1100];
    ask(z, "hl.default.svc.cluster.local", DNS_T_A, &r);
    snprintf(first1, sizeof(first1), "%s", r.first_answer);
    ask(z, "hl.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(strcmp(first1, r.first_answer) != 0, "no rotation (%s)", first1);

    /* external CNAME reported for chasing */
    ask(z, "ext.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.res.external_cname && r.res.cname_len == 13, "external cname flagged");

    /* autopath: pod 10.1.0.9 lives in namespace "other" */
    struct svcd_ip pod_ip, stranger;
    svcd_ip_parse("10.1.0.9", &pod_ip);
    svcd_ip_parse("10.1.0.77", &stranger);
    ask_client = &pod_ip;
    ask(z, "web.default.other.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == 0 && strcmp(r.answers, "A 10.96.0.10;CNAME web.default.svc.cluster.local.") == 0,
          "autopath to <name>.svc: %d %s", r.rcode, r.answers);
    CHECK(strcmp(r.first_owner, "web.default.other.svc.cluster.local.") == 0, "autopath owner %s",
          r.first_owner);
    ask(z, "dns-version.other.svc.cluster.local", DNS_T_TXT, &r);
    CHECK(r.rcode == 0 && strcmp(r.answers, "CNAME dns-version.cluster.local.;TXT 1.1.0") == 0,
          "autopath to <name>.<zone>: %s", r.answers);
    ask(z, "example.com.other.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == 0 && strcmp(r.answers, "CNAME example.com.") == 0 && r.res.external_cname &&
          r.res.cname_len == 13, "autopath upstream: %s", r.answers);
    ask(z, "example.com.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN, "autopath only for the pod's own namespace (%d)", r.rcode);
    ask(z, "web.other.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN || strcmp(r.answers, "CNAME web.") == 0,
          "short name: %d %s", r.rcode, r.answers);
    ask_client = &stranger;
    ask(z, "example.com.other.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN, "no autopath for unknown clients (%d)", r.rcode);
    ask_client = NULL;
    ask(z, "example.com.other.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN, "no autopath without client (%d)", r.rcode);

    /* incremental: a second zone built empty then filled by commits must
     * answer the same; deleting everything returns to the base names */
    struct store *st2 = store_new();
    struct dns_zone *z2 = dns_zone_new(st2, &cfg);
    size_t base = dns_zone_names(z2);
    store_begin(st2);
    s = mk_svc("default", "hl", NULL, NULL, true, "hl");
    add_port(s, "http", SVCD_PROTO_TCP, 8080, 8080);
    store_service_upsert(st2, s);
    store_pod_upsert(st2, mk_pod("default", "p1", "10.1.0.1", "hl", "web-0", "hl", true));
    store_commit(st2);
    CHECK(dns_zone_names(z2) > base, "names grew");
    ask(z2, "web-0.hl.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == 0 && strcmp(r.answers, "A 10.1.0.1") == 0, "incremental add: %s",
          r.answers);
    /* pod becomes not ready -> headless name NXDOMAIN */
    store_begin(st2);
    store_pod_upsert(st2, mk_pod("default", "p1", "10.1.0.1", "hl", "web-0", "hl", false));
    store_commit(st2);
    ask(z2, "hl.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN, "not-ready headless NXDOMAIN (%d)", r.rcode);
    ask(z2, "web-0.hl.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN, "not-ready hostname NXDOMAIN (%d)", r.rcode);
    /* service IP change */
    store_begin(st2);
    store_service_upsert(st2, mk_svc("default", "web", "10.96.0.20", NULL, false, NULL));
    store_commit(st2);
    ask(z2, "web.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(strcmp(r.answers, "A 10.96.0.20") == 0, "added svc: %s", r.answers);
    store_begin(st2);
    store_service_upsert(st2, mk_svc("default", "web", "10.96.0.21", NULL, false, NULL));
    store_commit(st2);
    ask(z2, "web.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(strcmp(r.answers, "A 10.96.0.21") == 0, "changed svc: %s", r.answers);
    ask(z2, "20.0.96.10.in-addr.arpa", DNS_T_PTR, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN, "old PTR gone (%d)", r.rcode);
    store_begin(st2);
    store_service_delete(st2, "default", "web");
    store_service_delete(st2, "default", "hl");
    store_pod_delete(st2, "default", "p1");
    uint64_t g2 = store_commit(st2);
    CHECK(dns_zone_generation(z2) == g2, "generation follows");
    CHECK(dns_zone_names(z2) == base, "names back to base: %zu vs %zu", dns_zone_names(z2), base);
    ask(z2, "default.svc.cluster.local", DNS_T_A, &r);
    CHECK(r.rcode == DNS_R_NXDOMAIN, "ENT removed (%d)", r.rcode);

    /* truncation: 100 ready headless endpoints at a 512-byte limit */
    store_begin(st2);
    store_service_upsert(st2, mk_svc("default", "big", NULL, NULL, true, "big"));
    for (int i = 0; i < 100; i++) {
        char nm[32], ip[32];
        snprintf(nm, sizeof(nm), "b%d", i);
        snprintf(ip, sizeof(ip), "10.2.%d.%d", i / 200, i % 200 + 1);
        store_pod_upsert(st2, mk_pod("default", nm, ip, "big", NULL, NULL, true));
    }
    store_commit(st2);
    ask_limit(z2, "big.default.svc.cluster.local", DNS_T_A, 512, &r);
    CHECK(r.res.truncated && r.an > 10 && r.an < 100, "truncated at %d answers", r.an);
    ask(z2, "big.default.svc.cluster.local", DNS_T_A, &r);
    CHECK(!r.res.truncated && r.an == 100, "full answer %d", r.an);

    /* zone freed before the store: later commits must be harmless */
    dns_zone_free(z2);
    store_begin(st2);
    store_service_delete(st2, "default", "big");
    store_commit(st2);
    store_free(st2);
out:
    dns_zone_free(z);
    store_free(st);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
