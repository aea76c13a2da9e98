/*
 * zone_bench: the cluster zone without sockets. Builds a store with many
 * Services (ClusterIP with two named ports, and headless ones with pods),
 * then reports: zone build time and size, the cost of one Service change
 * (store commit + zone update), and the in-process cost of answering a
 * query with dns_server_process (parse + lookup + answer, no system calls).
 *
 *   zone_bench [SERVICES] [HEADLESS] [ENDPOINTS_PER_HEADLESS]
 *   (default 10000 1000 10)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "svcd/config.h"
#include "svcd/dns_server.h"
#include "svcd/log.h"
#include "svcd/store.h"

static double zb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t zb_fp = 1;

static struct svcd_service *zb_svc(const char *name, int idx, bool headless)
{
    struct svcd_service *s = calloc(1, sizeof(*s));
    char ip[32];
    s->meta.ns = strdup("default");
    s->meta.name = strdup(name);
    s->meta.fingerprint = zb_fp++;
    s->headless = headless;
    if (!headless) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", 96 + idx / 65536, (idx / 256) % 256, idx % 256);
        svcd_ip_parse(ip, &s->cluster_ips[s->n_cluster_ips++]);
    } else {
        s->has_selector = true;
        svcd_kvmap_set(&s->selector, "app", name);
    }
    s->ports = calloc(2, sizeof(*s->ports));
    s->ports[0].name = strdup("http");
    s->ports[0].port = 80;
    s->ports[0].target_port = 8080;
    s->ports[1].name = strdup("metrics");
    s->ports[1].port = 9090;
    s->ports[1].target_port = 9090;
    s->n_ports = 2;
    return s;
}

static size_t zb_query(uint8_t *buf, const char *name, uint16_t qtype)
{
    struct dns_builder b;
    uint8_t w[DNS_NAME_MAX];
    size_t wl;
    dns_builder_init(&b, buf, 512, 512, 0x1234, DNS_F_RD);
    dns_name_from_text(name, w, &wl);
    dns_builder_question(&b, w, wl, qtype, DNS_C_IN);
    dns_builder_opt(&b, 1232, 0, 0, false);
    return dns_builder_finish(&b);
}

int main(int argc, char **argv)
{
    int nsvc = argc > 1 ? atoi(argv[1]) : 10000;
    int nhl = argc > 2 ? atoi(argv[2]) : 1000;
    int neps = argc > 3 ? atoi(argv[3]) : 10;
    char name[64];
    struct svcd_config cfg;
    config_defaults(&cfg);
    log_set_level(LOG_LVL_WARN);

    struct store *st = store_new();
    struct dns_zone *z = dns_zone_new(st, &cfg);
    double t0 = zb_now();
    store_begin(st);
    for (int i = 0; i < nsvc; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        store_service_upsert(st, zb_svc(name, i, false));
    }
    for (int h = 0; h < nhl; h++) {
        snprintf(name, sizeof(name), "h%d", h);
        store_service_upsert(st, zb_svc(name, h, true));
        for (int e = 0; e < neps; e++) {
            struct svcd_pod *p = calloc(1, sizeof(*p));
            char pn[64], ip[32];
            snprintf(pn, sizeof(pn), "h%d-%d", h, e);
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", 128 + h / 256, h % 256, e + 1);
            p->meta.ns = strdup("default");
            p->meta.name = strdup(pn);
            p->meta.fingerprint = zb_fp++;
            svcd_kvmap_set(&p->meta.labels, "app", name);
            p->hostname = strdup(pn);
            p->subdomain = strdup(name);
            p->phase = SVCD_PHASE_RUNNING;
            svcd_ip_parse(ip, &p->ips[p->n_ips++]);
            store_pod_upsert(st, p);
        }
    }
    store_commit(st);
    double t1 = zb_now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("build: %d ClusterIP + %d headless x %d endpoints: %.1f ms (store + zone), "
           "%zu names, max RSS %ld MB\n", nsvc, nhl, neps, (t1 - t0) * 1e3, dns_zone_names(z),
           ru.ru_maxrss / 1024);

    /* one Service change at a time */
    int nchg = 1000;
    t0 = zb_now();
    for (int i = 0; i < nchg; i++) {
        snprintf(name, sizeof(name), "s%d", i % (nsvc ? nsvc : 1));
        store_begin(st);
        store_service_upsert(st, zb_svc(name, (i + 7) % 60000, false));
        store_commit(st);
    }
    t1 = zb_now();
    printf("update: one ClusterIP Service per commit: %.1f us per commit\n",
           (t1 - t0) * 1e6 / nchg);
    t0 = zb_now();
    for (int i = 0; i < nchg; i++) {
        char pn[64];
        int h = i % (nhl ? nhl : 1);
        snprintf(pn, sizeof(pn), "h%d-0", h);
        snprintf(name, sizeof(name), "h%d", h);
        struct svcd_pod *p = calloc(1, sizeof(*p));
        p->meta.ns = strdup("default");
        p->meta.name = strdup(pn);
        p->meta.fingerprint = zb_fp++;
        svcd_kvmap_set(&p->meta.labels, "app", name);
        p->hostname = strdup(pn);
        p->subdomain = strdup(name);
        p->phase = SVCD_PHASE_RUNNING;
        p->ready_condition = (i & 1) ? SVCD_TRUE : SVCD_FALSE;
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%d.%d.1", 128 + h / 256, h % 256);
        svcd_ip_parse(ip, &p->ips[p->n_ips++]);
        store_begin(st);
        store_pod_upsert(st, p);
        store_commit(st);
    }
    t1 = zb_now();
    printf("update: one headless endpoint readiness flip per commit: %.1f us per commit\n",
           (t1 - t0) * 1e6 / nchg);

    /* in-process answering */
    enum { NQ = 1200 };
    static uint8_t qs[NQ][512];
    static size_t ql[NQ];
    for (int i = 0; i < NQ; i++) {
        if (i < 1000)
            snprintf(name, sizeof(name), "s%d.default.svc.cluster.local", i * 7 % (nsvc ? nsvc : 1));
        else if (i < 1100)
            snprintf(name, sizeof(name), "h%d.default.svc.cluster.local", i % (nhl ? nhl : 1));
        else
            snprintf(name, sizeof(name), "missing%d.default.svc.cluster.local", i);
        ql[i] = zb_query(qs[i], name, DNS_T_A);
    }
    static uint8_t out[65535];
    struct dns_process_info info;
    struct svcd_ip client;
    svcd_ip_parse("127.0.0.1", &client);
    long rounds = 1000;
    size_t bytes = 0;
    t0 = zb_now();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < NQ; i++) {
            size_t n;
            dns_server_process(z, qs[i], ql[i], &client, false, true, 1232, out, &n, &info);
            bytes += n;
        }
    }
    t1 = zb_now();
    printf("answer: %.0f ns per query in-process (no syscalls; %ld queries, avg %zu bytes)\n",
           (t1 - t0) * 1e9 / ((double)rounds * NQ), rounds * NQ, bytes / ((size_t)rounds * NQ));
    dns_zone_free(z);
    store_free(st);
    return 0;
}
