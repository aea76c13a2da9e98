/*
 * bench_nft: measures svcd's nftables data plane (nftdp) against the real
 * kernel. Run it inside a throw-away network namespace (bench/nft/run.sh
 * does); it refuses to run in a namespace that has other nftables tables.
 *
 *   bench_nft sync N [N...]     for each N: a store of N Services x 10
 *                               endpoints, full sync wall time (plan +
 *                               netlink + kernel commit), then 200 single-
 *                               endpoint changes (store commit -> kernel
 *                               commit: median / p99), RSS after the sync
 *                               and the heap the data plane keeps (mallinfo2).
 *   bench_nft latency VIP_TARGET_IP PORT N_SERVICES REQUESTS
 *                               programs Service 10.96.0.1:80 -> target plus
 *                               N_SERVICES-1 other Services, then measures
 *                               REQUESTS connect+request+answer round trips
 *                               through the VIP (median, p90 in us).
 *
 * Endpoints: every Service selects its own group of 10 pods when N <= 10000;
 * above, Services share groups (group = i % 10000) so the store stays small;
 * the measured single-endpoint change always touches a Service whose group
 * no other Service selects.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "svcd/config.h"
#include "svcd/log.h"
#include "svcd/model.h"
#include "svcd/nft.h"
#include "svcd/store.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Bytes of heap in use (allocated, not freed), as glibc counts them. */
static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t fp_counter = 1;

static struct svcd_service *mk_service(uint32_t i, const char *group, uint16_t target)
{
    struct svcd_service *s = calloc(1, sizeof(*s));
    char name[64];
    snprintf(name, sizeof(name), "svc-%u", i);
    s->meta.name = strdup(name);
    s->meta.ns = strdup("default");
    s->meta.fingerprint = fp_counter++;
    s->type = SVCD_SVC_CLUSTER_IP;
    s->cluster_ips[0].family = AF_INET;
    /* 10.96.0.1 + i (10.96.0.0/12 holds 1M addresses) */
    uint32_t a = (10u << 24 | 96u << 16) + 1 + i;
    s->cluster_ips[0].u.v4.s_addr = htonl(a);
    s->n_cluster_ips = 1;
    s->ip_families[0] = AF_INET;
    s->n_ip_families = 1;
    s->ports = calloc(1, sizeof(*s->ports));
    s->ports[0].name = strdup("http");
    s->ports[0].protocol = SVCD_PROTO_TCP;
    s->ports[0].port = 80;
    s->ports[0].target_port = target;
    s->n_ports = 1;
    s->has_selector = true;
    svcd_kvmap_set(&s->selector, "g", group);
    s->affinity_timeout = 10800;
    return s;
}

static struct svcd_pod *mk_pod(const char *name, const char *group, uint32_t ip_host)
{
    struct svcd_pod *p = calloc(1, sizeof(*p));
    p->meta.name = strdup(name);
    p->meta.ns = strdup("default");
    p->meta.fingerprint = fp_counter++;
    svcd_kvmap_set(&p->meta.labels, "g", group);
    p->node_name = strdup("bench-node");
    p->phase = SVCD_PHASE_RUNNING;
    p->ips[0].family = AF_INET;
    p->ips[0].u.v4.s_addr = htonl(ip_host);
    p->n_ips = 1;
    p->ready_condition = SVCD_TRUE;
    return p;
}

/* Loads n Services x 10 endpoints; service 0 may get a real target. */
static void load(struct store *st, uint32_t n, uint32_t target_ip, uint16_t target_port)
{
    uint32_t groups = n < 10000 ? n : 10000;
    store_begin(st);
    for (uint32_t g = 0; g < groups; g++) {
        char grp[32];
        snprintf(grp, sizeof(grp), "g%u", g);
        int eps = (g == 0 && target_ip) ? 1 : 10;
        for (int e = 0; e < eps; e++) {
            char pn[64];
            snprintf(pn, sizeof(pn), "pod-%u-%d", g, e);
            /* pods in 10.128.0.0/9 */
            uint32_t ip = (g == 0 && target_ip) ? target_ip
                                                : (10u << 24 | 128u << 16) + g * 10 + (uint32_t)e + 1;
            store_pod_upsert(st, mk_pod(pn, grp, ip));
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        char grp[32];
        snprintf(grp, sizeof(grp), "g%u", i % groups);
        store_service_upsert(st, mk_service(i, grp, (i == 0 && target_ip) ? target_port : 8080));
    }
    store_commit(st);
}

static int bench_sync(int argc, char **argv)
{
    printf("%-8s %-10s %-12s %-10s %-12s %-12s %-12s %-10s\n", "services", "endpoints",
           "full_sync_ms", "msgs", "batch_MiB", "change_med_ms", "change_p99_ms", "rss_MiB");
    for (int a = 0; a < argc; a++) {
        uint32_t n = (uint32_t)strtoul(argv[a], NULL, 10);
        struct event_base *base = event_base_new();
        struct store *st = store_new();
        struct svcd_config cfg;
        config_defaults(&cfg);
        snprintf(cfg.nft_table, sizeof(cfg.nft_table), "svcd");
        snprintf(cfg.node_name, sizeof(cfg.node_name), "bench-node");
        struct nftdp *dp = nftdp_new(base, st, &cfg);
        if (!dp)
            return 1;
        long rss0 = rss_kib();
        double t0 = now_ms();
        load(st, n, 0, 0);
        double t1 = now_ms();
        long rss1 = rss_kib();
        size_t heap1 = heap_used();
        double cpu0 = cpu_ms();
        if (nftdp_sync_now(dp) != 0) {
            fprintf(stderr, "full sync failed: %s\n", nftdp_last_error(dp));
            return 1;
        }
        double t2 = now_ms();
        struct nftdp_stats s;
        nftdp_get_stats(dp, &s);
        long rss = rss_kib();
        size_t heap2 = heap_used();
        fprintf(stderr, "  n=%u: full sync %.1f ms wall, of which kernel (sendmsg) %.1f ms; "
                "CPU (user+sys) %.1f ms\n", n, s.last_sync_ms, s.last_kernel_ms, cpu_ms() - cpu0);
        if (getenv("BENCH_KEEP_N9")) {
            /* keep a Service at 9 endpoints so lb4_9 always exists */
            store_begin(st);
            store_pod_set_probe_ready(st, "default", "pod-1-3", SVCD_FALSE);
            store_commit(st);
            nftdp_sync_now(dp);
        }
        /* single endpoint changes on service 0's group (no other Service
         * selects g0 when n <= 10000; above, g0 is shared by n/10000) */
        enum { ITER = 200 };
        double d[ITER], ds[ITER], dk[ITER];
        for (int i = 0; i < ITER; i++) {
            double c0 = now_ms();
            store_begin(st);
            store_pod_set_probe_ready(st, "default", "pod-0-3", i % 2 ? SVCD_TRUE : SVCD_FALSE);
            store_commit(st);
            ds[i] = now_ms() - c0;
            if (nftdp_sync_now(dp) != 0) {
                fprintf(stderr, "incremental sync failed: %s\n", nftdp_last_error(dp));
                return 1;
            }
            d[i] = now_ms() - c0;
            struct nftdp_stats s2;
            nftdp_get_stats(dp, &s2);
            dk[i] = s2.last_kernel_ms;
        }
        qsort(dk, ITER, sizeof(dk[0]), cmp_d);
        /* an endpoint replaced by another (the count stays): pod-0-9 out
         * first, then swap pod-0-3 and pod-0-9 back and forth */
        double dsw[ITER];
        store_begin(st);
        store_pod_set_probe_ready(st, "default", "pod-0-9", SVCD_FALSE);
        store_pod_set_probe_ready(st, "default", "pod-0-3", SVCD_TRUE);
        store_commit(st);
        nftdp_sync_now(dp);
        for (int i = 0; i < ITER; i++) {
            double c0 = now_ms();
            store_begin(st);
            store_pod_set_probe_ready(st, "default", "pod-0-3", i % 2 ? SVCD_TRUE : SVCD_FALSE);
            store_pod_set_probe_ready(st, "default", "pod-0-9", i % 2 ? SVCD_FALSE : SVCD_TRUE);
            store_commit(st);
            if (nftdp_sync_now(dp) != 0)
                return 1;
            dsw[i] = now_ms() - c0;
        }
        qsort(dsw, ITER, sizeof(dsw[0]), cmp_d);
        fprintf(stderr, "  n=%u: endpoint replaced (count unchanged): median %.3f ms, p99 %.3f ms\n",
                n, dsw[ITER / 2], dsw[ITER * 99 / 100]);
        fprintf(stderr, "  n=%u: single change: kernel (sendmsg) median %.3f ms\n", n, dk[ITER / 2]);
        qsort(d, ITER, sizeof(d[0]), cmp_d);
        qsort(ds, ITER, sizeof(ds[0]), cmp_d);
        printf("%-8u %-10zu %-12.1f %-10zu %-12.1f %-12.3f %-12.3f %-10.1f\n", n, s.backends,
               t2 - t1, s.last_batch_msgs, (double)s.last_batch_bytes / 1048576.0, d[ITER / 2],
               d[ITER * 99 / 100], (double)rss / 1024.0);
        fprintf(stderr, "  n=%u: store load %.1f ms (not in full_sync_ms); of the change time the "
                "store's own commit takes median %.3f ms; RSS: %.1f MiB before load, %.1f MiB "
                "after the store load, %.1f MiB after the sync\n", n, t1 - t0, ds[ITER / 2],
                rss0 / 1024.0, rss1 / 1024.0, rss / 1024.0);
        fprintf(stderr, "  n=%u: heap in use: %.1f MiB after the store load, %.1f MiB after the "
                "sync (data plane: %.1f MiB, %.0f bytes per backend slot)\n", n,
                heap1 / 1048576.0, heap2 / 1048576.0, ((double)heap2 - (double)heap1) / 1048576.0,
                s.backends ? ((double)heap2 - (double)heap1) / (double)s.backends : 0.0);
        nftdp_free(dp);
        store_free(st);
        event_base_free(base);
        nftdp_cleanup("svcd");
    }
    return 0;
}

static double one_request(const struct sockaddr_in *sa)
{
    double t0 = now_ms();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { 2, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
        close(fd);
        return -1;
    }
    static const char req[] = "GET / HTTP/1.0\r\nHost: bench\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    char buf[512];
    ssize_t got, total = 0;
    while ((got = read(fd, buf, sizeof(buf))) > 0)
        total += got;
    close(fd);
    return total > 0 ? (now_ms() - t0) * 1000.0 : -1;
}

static int bench_latency(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    struct in_addr tip;
    if (inet_pton(AF_INET, argv[0], &tip) != 1)
        return 2;
    uint16_t port = (uint16_t)atoi(argv[1]);
    uint32_t n = (uint32_t)strtoul(argv[2], NULL, 10);
    int reqs = atoi(argv[3]);
    if (reqs < 10 || reqs > 100000)
        return 2;
    struct event_base *base = event_base_new();
    struct store *st = store_new();
    struct svcd_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.nft_table, sizeof(cfg.nft_table), "svcd");
    snprintf(cfg.node_name, sizeof(cfg.node_name), "bench-node");
    struct nftdp *dp = nftdp_new(base, st, &cfg);
    if (!dp)
        return 1;
    load(st, n, ntohl(tip.s_addr), port);
    if (nftdp_sync_now(dp) != 0) {
        fprintf(stderr, "sync failed: %s\n", nftdp_last_error(dp));
        return 1;
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80) };
    inet_pton(AF_INET, "10.96.0.1", &sa.sin_addr);
    double *d = calloc((size_t)reqs, sizeof(*d));
    int ok = 0, fails = 0;
    for (int i = 0; i < 50; i++)  /* warm-up */
        one_request(&sa);
    for (int i = 0; i < reqs; i++) {
        double v = one_request(&sa);
        if (v < 0)
            fails++;
        else
            d[ok++] = v;
    }
    qsort(d, (size_t)ok, sizeof(d[0]), cmp_d);
    printf("services=%u requests=%d failed=%d median_us=%.1f p90_us=%.1f\n", n, ok, fails,
           ok ? d[ok / 2] : -1, ok ? d[ok * 9 / 10] : -1);
    free(d);
    nftdp_free(dp);
    store_free(st);
    event_base_free(base);
    nftdp_cleanup("svcd");
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    log_set_level(LOG_LVL_WARN);
    if (argc >= 2 && strcmp(argv[1], "sync") == 0)
        return bench_sync(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "latency") == 0)
        return bench_latency(argc - 2, argv + 2);
    fprintf(stderr, "usage: bench_nft sync N [N...] | latency TARGET_IP PORT N_SERVICES REQUESTS\n");
    return 2;
}
