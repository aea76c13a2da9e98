/*
 * test_dns_server: the protocol decisions of dns_server_process (no
 * sockets): drops, FORMERR/NOTIMP/REFUSED/BADVERS, forwarding vs REFUSED by
 * client permission, EDNS size handling and OPT echo, truncation per
 * transport, CNAME chasing, header bits copied from the query.
 */
#include "svcd/dns_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/log.h"

static int passed, failed;

#define CHECK(cond, ...) do { \
    if (cond) { passed++; } else { failed++; \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* ---- a small zone ---------------------------------------------------- */

static struct svcd_service *mk_svc(const char *name, const char *ip, bool headless,
                                   const char *ext)
{
    struct svcd_service *s = calloc(1, sizeof(*s));
    s->meta.ns = strdup("default");
    s->meta.name = strdup(name);
    s->meta.fingerprint = (uintptr_t)s;
    s->headless = headless;
    if (ip)
        svcd_ip_parse(ip, &s->cluster_ips[s->n_cluster_ips++]);
    if (headless) {
        s->has_selector = true;
        svcd_kvmap_set(&s->selector, "app", name);
    }
    if (ext) {
        s->type = SVCD_SVC_EXTERNAL_NAME;
        s->external_name = strdup(ext);
    }
    return s;
}

static struct dns_zone *mk_zone(struct store **stp)
{
    static struct svcd_config cfg;
    config_defaults(&cfg);
    struct store *st = store_new();
    store_begin(st);
    store_service_upsert(st, mk_svc("web", "10.96.0.10", false, NULL));
    store_service_upsert(st, mk_svc("big", NULL, true, NULL));
    store_service_upsert(st, mk_svc("ext", NULL, false, "example.com"));
    for (int i = 0; i < 100; i++) {
        struct svcd_pod *p = calloc(1, sizeof(*p));
        char nm[16], ip[32];
        snprintf(nm, sizeof(nm), "b%d", i);
        snprintf(ip, sizeof(ip), "10.2.0.%d", i + 1);
        p->meta.ns = strdup("default");
        p->meta.name = strdup(nm);
        p->meta.fingerprint = (uint64_t)i + 1;
        svcd_kvmap_set(&p->meta.labels, "app", "big");
        p->phase = SVCD_PHASE_RUNNING;
        svcd_ip_parse(ip, &p->ips[p->n_ips++]);
        store_pod_upsert(st, p);
    }
    store_commit(st);
    *stp = st;
    return dns_zone_new(st, &cfg);
}

/* ---- queries ---------------------------------------------------------- */

struct qspec {
    uint16_t id, flags, qdcount;
    const char *name;
    uint16_t qtype, qclass;
    int edns_udp;           /* -1: no OPT */
    uint8_t edns_version;
    bool do_bit;
};

static size_t mk(const struct qspec *s, uint8_t *buf)
{
    struct dns_builder b;
    uint8_t w[DNS_NAME_MAX];
    size_t wl;
    dns_builder_init(&b, buf, 1024, 1024, s->id, s->flags);
    dns_name_from_text(s->name, w, &wl);
    dns_builder_question(&b, w, wl, s->qtype, s->qclass ? s->qclass : DNS_C_IN);
    if (s->edns_udp >= 0) {
        /* dns_builder_opt floors the size at 512: write it by hand */
        static const uint8_t root = 0;
        uint32_t ttl = ((uint32_t)s->edns_version << 16) | (s->do_bit ? 0x8000u : 0);
        dns_builder_rr(&b, DNS_SEC_ADDITIONAL, &root, 1, DNS_T_OPT, (uint16_t)s->edns_udp,
                       ttl, NULL, 0);
    }
    size_t n = dns_builder_finish(&b);
    if (s->qdcount != 1) {
        buf[4] = (uint8_t)(s->qdcount >> 8);
        buf[5] = (uint8_t)s->qdcount;
    }
    return n;
}

struct parsed {
    struct dns_header h;
    int an, ar;
    bool has_opt;
    struct dns_edns edns;
};

static int parse_reply(const uint8_t *p, size_t n, struct parsed *r)
{
    struct dns_cursor c;
    struct dns_question q;
    struct dns_rr rr;
    memset(r, 0, sizeof(*r));
    dns_cursor_init(&c, p, n);
    if (dns_header_parse(&c, &r->h) < 0)
        return -1;
    for (unsigned i = 0; i < r->h.counts[0]; i++)
        if (dns_question_parse(&c, &q) < 0)
            return -1;
    r->an = r->h.counts[1];
    r->ar = r->h.counts[3];
    for (unsigned i = 0; i < (unsigned)r->h.counts[1] + r->h.counts[2] + r->h.counts[3]; i++) {
        if (dns_rr_parse(&c, &rr) < 0)
            return -1;
        if (rr.type == DNS_T_OPT) {
            r->has_opt = true;
            dns_edns_from_rr(&rr, &r->edns);
        }
    }
    return dns_cursor_remaining(&c) == 0 ? 0 : -1;
}

struct pcase {
    const char *what;
    struct qspec q;
    bool tcp, allow;
    enum dns_action act;
    int rcode;              /* header rcode of the reply */
    int min_an, max_an;     /* answer count range (-1: don't care) */
    int tc;                 /* -1 don't care, else TC bit */
    int opt_udp;            /* -1: no OPT expected, else its size */
    int ext_rcode;
    size_t max_len;
};

#define Q(...) { __VA_ARGS__ }

static const struct pcase cases[] = {
    { "A", Q(1, DNS_F_RD, 1, "web.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0),
      false, true, DNS_ACT_REPLY, 0, 1, 1, 0, -1, 0, 512 },
    { "EDNS 4096 capped to 1232, echoed", Q(2, 0, 1, "web.default.svc.cluster.local", DNS_T_A, 0,
      4096, 0, true), false, false, DNS_ACT_REPLY, 0, 1, 1, 0, 1232, 0, 1232 },
    { "BADVERS", Q(3, 0, 1, "web.default.svc.cluster.local", DNS_T_A, 0, 1232, 1, false),
      false, true, DNS_ACT_REPLY, 0, 0, 0, 0, 1232, 1, 100 },
    { "qdcount 0 FORMERR", Q(4, 0, 0, "web.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0),
      false, true, DNS_ACT_REPLY, DNS_R_FORMERR, 0, 0, 0, -1, 0, 12 },
    { "qdcount 2 FORMERR", Q(4, 0, 2, "web.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0),
      false, true, DNS_ACT_REPLY, DNS_R_FORMERR, 0, 0, 0, -1, 0, 12 },
    { "opcode STATUS NOTIMP", Q(5, 2u << 11, 1, "web.default.svc.cluster.local", DNS_T_A, 0, -1,
      0, 0), false, true, DNS_ACT_REPLY, DNS_R_NOTIMP, 0, 0, 0, -1, 0, 12 },
    { "AXFR refused", Q(6, 0, 1, "cluster.local", DNS_T_AXFR, 0, -1, 0, 0), true, true,
      DNS_ACT_REPLY, DNS_R_REFUSED, 0, 0, 0, -1, 0, 100 },
    { "IXFR refused", Q(6, 0, 1, "cluster.local", DNS_T_IXFR, 0, -1, 0, 0), false, true,
      DNS_ACT_REPLY, DNS_R_REFUSED, 0, 0, 0, -1, 0, 100 },
    { "CHAOS refused", Q(7, 0, 1, "version.bind", DNS_T_TXT, DNS_C_CH, -1, 0, 0), false, true,
      DNS_ACT_REPLY, DNS_R_REFUSED, 0, 0, 0, -1, 0, 100 },
    { "qtype OPT FORMERR", Q(8, 0, 1, "web.default.svc.cluster.local", DNS_T_OPT, 0, -1, 0, 0),
      false, true, DNS_ACT_REPLY, DNS_R_FORMERR, 0, 0, 0, -1, 0, 100 },
    { "outside, not allowed: REFUSED", Q(9, DNS_F_RD, 1, "example.com", DNS_T_A, 0, -1, 0, 0),
      false, false, DNS_ACT_REPLY, DNS_R_REFUSED, 0, 0, 0, -1, 0, 100 },
    { "outside, allowed: FORWARD", Q(10, DNS_F_RD, 1, "example.com", DNS_T_A, 0, -1, 0, 0),
      false, true, DNS_ACT_FORWARD, DNS_R_SERVFAIL, 0, 0, 0, -1, 0, 100 },
    { "reverse outside CIDRs forwarded", Q(10, DNS_F_RD, 1, "1.1.168.192.in-addr.arpa",
      DNS_T_PTR, 0, -1, 0, 0), false, true, DNS_ACT_FORWARD, DNS_R_SERVFAIL, 0, 0, 0, -1, 0, 100 },
    { "100 A no EDNS: TC at 512", Q(11, 0, 1, "big.default.svc.cluster.local", DNS_T_A, 0, -1,
      0, 0), false, true, DNS_ACT_REPLY, 0, 20, 35, 1, -1, 0, 512 },
    { "100 A EDNS 1232: TC", Q(12, 0, 1, "big.default.svc.cluster.local", DNS_T_A, 0, 1232, 0,
      0), false, true, DNS_ACT_REPLY, 0, 60, 80, 1, 1232, 0, 1232 },
    { "EDNS 100 treated as 512", Q(12, 0, 1, "big.default.svc.cluster.local", DNS_T_A, 0, 100,
      0, 0), false, true, DNS_ACT_REPLY, 0, 20, 35, 1, 1232, 0, 512 },
    { "100 A over TCP: all", Q(13, 0, 1, "big.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0),
      true, true, DNS_ACT_REPLY, 0, 100, 100, 0, -1, 0, 65535 },
    { "ExternalName chased", Q(14, DNS_F_RD, 1, "ext.default.svc.cluster.local", DNS_T_A, 0, -1,
      0, 0), false, true, DNS_ACT_CHASE, 0, 1, 1, 0, -1, 0, 512 },
    { "ExternalName, not allowed: CNAME only", Q(15, DNS_F_RD, 1,
      "ext.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0), false, false, DNS_ACT_REPLY, 0,
      1, 1, 0, -1, 0, 512 },
    { "MAILB NOTIMP", Q(16, 0, 1, "web.default.svc.cluster.local", 253, 0, -1, 0, 0), false,
      true, DNS_ACT_REPLY, DNS_R_NOTIMP, 0, 0, 0, -1, 0, 100 },
    { "NXDOMAIN", Q(17, 0, 1, "nope.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0), false,
      true, DNS_ACT_REPLY, DNS_R_NXDOMAIN, 0, 0, 0, -1, 0, 512 },
};

int main(void)
{
    log_set_level(LOG_LVL_ERROR);
    struct store *st = NULL;
    struct dns_zone *z = mk_zone(&st);
    static uint8_t out[65535];
    uint8_t q[1024];
    struct svcd_ip client;
    svcd_ip_parse("10.1.0.1", &client);
    CHECK(z != NULL, "zone");
    if (!z)
        return 1;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pcase *t = &cases[i];
        size_t qlen = mk(&t->q, q), n = 0;
        struct dns_process_info info;
        enum dns_action a = dns_server_process(z, q, qlen, &client, t->tcp, t->allow, 1232,
                                               out, &n, &info);
        CHECK(a == t->act, "%s: action %d want %d", t->what, a, t->act);
        struct parsed r;
        if (parse_reply(out, n, &r) < 0) {
            CHECK(0, "%s: reply does not parse", t->what);
            continue;
        }
        CHECK(n <= t->max_len, "%s: %zu bytes > %zu", t->what, n, t->max_len);
        CHECK(r.h.id == t->q.id, "%s: id", t->what);
        CHECK(r.h.flags & DNS_F_QR, "%s: QR", t->what);
        CHECK((int)DNS_RCODE(r.h.flags) == t->rcode, "%s: rcode %d want %d", t->what,
              (int)DNS_RCODE(r.h.flags), t->rcode);
        CHECK((r.h.flags & DNS_F_RD) == (t->q.flags & DNS_F_RD), "%s: RD copied", t->what);
        CHECK(!!(r.h.flags & DNS_F_RA) == t->allow, "%s: RA iff recursion allowed", t->what);
        CHECK(r.an >= t->min_an && r.an <= t->max_an, "%s: %d answers", t->what, r.an);
        if (t->tc >= 0)
            CHECK(!!(r.h.flags & DNS_F_TC) == t->tc, "%s: TC", t->what);
        CHECK(r.has_opt == (t->opt_udp >= 0), "%s: OPT presence", t->what);
        if (t->opt_udp >= 0 && r.has_opt) {
            CHECK(r.edns.udp_size == t->opt_udp, "%s: OPT size %u", t->what, r.edns.udp_size);
            CHECK(r.edns.ext_rcode == t->ext_rcode, "%s: ext rcode", t->what);
            CHECK(r.edns.do_bit == t->q.do_bit, "%s: DO echoed", t->what);
        }
        if (a == DNS_ACT_CHASE) {
            char txt[DNS_NAME_TEXT_MAX];
            dns_name_to_text(info.chase_name, info.chase_len, txt, sizeof(txt));
            CHECK(strcmp(txt, "example.com.") == 0, "%s: chase %s", t->what, txt);
        }
    }

    /* drops */
    size_t n = 99;
    struct dns_process_info info;
    CHECK(dns_server_process(z, q, 11, &client, false, true, 1232, out, &n, &info) ==
          DNS_ACT_DROP && n == 0, "short packet dropped");
    struct qspec resp = { 1, DNS_F_QR, 1, "web.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0 };
    size_t qlen = mk(&resp, q);
    CHECK(dns_server_process(z, q, qlen, &client, false, true, 1232, out, &n, &info) ==
          DNS_ACT_DROP, "response dropped");
    /* never amplify: FORMERR reply no larger than the query */
    struct qspec bad = { 1, 0, 1, "web.default.svc.cluster.local", DNS_T_A, 0, -1, 0, 0 };
    qlen = mk(&bad, q);
    q[qlen++] = 0xff;                       /* trailing junk is fine... */
    q[11] = 1;                              /* ...but a missing additional record is not */
    CHECK(dns_server_process(z, q, qlen, &client, false, true, 1232, out, &n, &info) ==
          DNS_ACT_REPLY && info.rcode == DNS_R_FORMERR && n <= qlen, "bad additional FORMERR");

    dns_zone_free(z);
    store_free(st);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
