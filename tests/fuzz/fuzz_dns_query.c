/*
 * fuzz_dns_query: full query handling (dns_server_process) against a small
 * zone built once from an in-memory store: services of every kind, pods,
 * endpoints. Checks that a reply never exceeds the transport limit, never
 * is larger than needed for an error, and always parses back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/config.h"
#include "svcd/dns_server.h"
#include "svcd/log.h"
#include "svcd/store.h"

static struct dns_zone *fz_zone;

static struct svcd_service *fz_svc(const char *name, const char *ip, bool headless)
{
    struct svcd_service *s = calloc(1, sizeof(*s));
    s->meta.ns = strdup("default");
    s->meta.name = strdup(name);
    s->meta.fingerprint = (uintptr_t)s;
    s->headless = headless;
    if (ip)
        svcd_ip_parse(ip, &s->cluster_ips[s->n_cluster_ips++]);
    s->has_selector = true;
    svcd_kvmap_set(&s->selector, "app", "a");
    s->ports = calloc(1, sizeof(*s->ports));
    s->ports[0].name = strdup("http");
    s->ports[0].port = 80;
    s->ports[0].target_port = 80;
    s->n_ports = 1;
    return s;
}

static void fz_init(void)
{
    static struct svcd_config cfg;
    config_defaults(&cfg);
    log_set_level(LOG_LVL_ERROR);
    svcd_cidr_parse("10.96.0.0/12", &cfg.service_cidr[0]);
    cfg.n_service_cidr = 1;
    svcd_cidr_parse("10.1.0.0/16", &cfg.pod_cidr[0]);
    svcd_cidr_parse("fd00:1::/64", &cfg.pod_cidr[1]);
    cfg.n_pod_cidr = 2;
    struct store *st = store_new();
    store_begin(st);
    store_service_upsert(st, fz_svc("web", "10.96.0.10", false));
    store_service_upsert(st, fz_svc("dual", "fd00::10", false));
    store_service_upsert(st, fz_svc("hl", NULL, true));
    struct svcd_service *e = fz_svc("ext", NULL, false);
    e->type = SVCD_SVC_EXTERNAL_NAME;
    e->external_name = strdup("example.com");
    store_service_upsert(st, e);
    /* ExternalNames inside the zone: a chain to web, and a loop */
    const char *const inner[][2] = { { "in", "web.default.svc.cluster.local" },
                                     { "la", "lb.default.svc.cluster.local" },
                                     { "lb", "la.default.svc.cluster.local" } };
    for (size_t i = 0; i < sizeof(inner) / sizeof(inner[0]); i++) {
        e = fz_svc(inner[i][0], NULL, false);
        e->type = SVCD_SVC_EXTERNAL_NAME;
        e->external_name = strdup(inner[i][1]);
        store_service_upsert(st, e);
    }
    for (int i = 0; i < 40; i++) {
        struct svcd_pod *p = calloc(1, sizeof(*p));
        char nm[16], ip[32];
        snprintf(nm, sizeof(nm), "p%d", i);
        snprintf(ip, sizeof(ip), "10.1.0.%d", i + 1);
        p->meta.ns = strdup("default");
        p->meta.name = strdup(nm);
        p->meta.fingerprint = (uint64_t)i + 1;
        svcd_kvmap_set(&p->meta.labels, "app", "a");
        if (i == 0) {
            p->hostname = strdup("h0");
            p->subdomain = strdup("hl");
        }
        p->phase = SVCD_PHASE_RUNNING;
        svcd_ip_parse(ip, &p->ips[p->n_ips++]);
        store_pod_upsert(st, p);
    }
    store_commit(st);
    fz_zone = dns_zone_new(st, &cfg);   /* the store lives for the process */
    if (!fz_zone)
        abort();
}

static void fz_check(const uint8_t *out, size_t n, size_t limit)
{
    struct dns_cursor c;
    struct dns_header h;
    struct dns_question q;
    struct dns_rr rr;
    if (n > limit)
        abort();
    dns_cursor_init(&c, out, n);
    if (dns_header_parse(&c, &h) < 0 || !(h.flags & DNS_F_QR))
        abort();
    for (unsigned i = 0; i < h.counts[0]; i++)
        if (dns_question_parse(&c, &q) < 0)
            abort();
    for (unsigned i = 0; i < (unsigned)h.counts[1] + h.counts[2] + h.counts[3]; i++)
        if (dns_rr_parse(&c, &rr) < 0)
            abort();
    if (dns_cursor_remaining(&c) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[65535];
    struct dns_process_info info;
    size_t n;
    if (!fz_zone)
        fz_init();
    struct svcd_ip client;
    svcd_ip_parse("10.1.0.1", &client);
    for (int mode = 0; mode < 3; mode++) {
        bool tcp = mode == 2;
        enum dns_action a = dns_server_process(fz_zone, data, size, &client, tcp, mode == 1,
                                               1232, out, &n, &info);
        if (a == DNS_ACT_DROP) {
            if (n != 0)
                abort();
            continue;
        }
        fz_check(out, n, tcp ? 65535 : info.limit);
        /* never amplify an error: header + question + OPT at most */
        if (info.rcode != 0 && info.rcode != 3 && n > 12 + 255 + 4 + 11)
            abort();
    }
    return 0;
}
