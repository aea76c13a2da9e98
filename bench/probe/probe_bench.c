/*
 * probe_bench: CPU cost of svcd's prober with many pods.
 *
 * Builds a store with N Running pods (IPs 127.1.x.y, all answered by one
 * HTTP server the caller runs on PORT inside the same network namespace),
 * each with an httpGet readinessProbe of periodSeconds=P, starts the probe
 * manager (default options: phase jitter on), lets it warm up, then
 * measures this process's CPU (user+sys from getrusage) over T seconds.
 * Prints one line of key=value results; exits 1 if not every pod became
 * ready (so a broken prober cannot post a good number).
 *
 * Run it through bench/probe/run.sh, which makes the namespace and server.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>

#include "svcd/log.h"
#include "svcd/model.h"
#include "svcd/probe.h"
#include "svcd/store.h"

static struct event_base *base;

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double bench_cpu(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return *user + *sys;
}

static struct svcd_pod *bench_pod(int i, uint16_t port, uint32_t period, const char *path,
                                  enum svcd_probe_kind kind)
{
    struct svcd_pod *p = calloc(1, sizeof(*p));
    char name[64], ip[32];
    snprintf(name, sizeof(name), "pod-%d", i);
    snprintf(ip, sizeof(ip), "127.1.%d.%d", i / 250, i % 250 + 1);
    p->meta.name = strdup(name);
    p->meta.ns = strdup("bench");
    p->meta.fingerprint = (uint64_t)i + 1;
    p->phase = SVCD_PHASE_RUNNING;
    svcd_ip_parse(ip, &p->ips[0]);
    p->n_ips = 1;
    p->n_containers = 1;
    p->containers = calloc(1, sizeof(*p->containers));
    p->containers[0].name = strdup("app");
    struct svcd_probe *r = &p->containers[0].readiness;
    r->kind = kind;
    r->port = port;
    r->path = kind == SVCD_PROBE_HTTP ? strdup(path) : NULL;
    r->period_s = period;
    r->timeout_s = 1;
    r->success_threshold = 1;
    r->failure_threshold = 3;
    return p;
}

struct bench_count {
    size_t ready;
};

static int bench_count_ready(void *ctx, const struct svcd_pod *pod)
{
    struct bench_count *c = ctx;
    if (pod->probe_ready == SVCD_TRUE)
        c->ready++;
    return 0;
}

static void bench_stop(evutil_socket_t fd, short w, void *arg)
{
    event_base_loopbreak(base);
}

static void bench_run_for(double seconds)
{
    struct event *ev = evtimer_new(base, bench_stop, NULL);
    struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6) };
    evtimer_add(ev, &tv);
    event_base_dispatch(base);
    event_free(ev);
}

int main(int argc, char **argv)
{
    int pods = 1000;
    uint32_t period = 1;
    double seconds = 10, warmup = 3;
    uint16_t port = 8080;
    const char *path = "/healthz";
    enum svcd_probe_kind kind = SVCD_PROBE_HTTP;
    static const struct option opts[] = {
        { "pods", required_argument, NULL, 'n' },
        { "period", required_argument, NULL, 'p' },
        { "seconds", required_argument, NULL, 't' },
        { "warmup", required_argument, NULL, 'w' },
        { "port", required_argument, NULL, 'P' },
        { "path", required_argument, NULL, 'u' },
        { "kind", required_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': pods = atoi(optarg); break;
        case 'p': period = (uint32_t)atoi(optarg); break;
        case 't': seconds = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'P': port = (uint16_t)atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'k': kind = strcmp(optarg, "tcp") == 0 ? SVCD_PROBE_TCP : SVCD_PROBE_HTTP; break;
        default:
            fprintf(stderr, "usage: probe_bench [--pods N] [--period S] [--seconds T] "
                            "[--warmup W] [--port P] [--path /healthz] [--kind http|tcp]\n");
            return 2;
        }
    }
    if (pods < 1 || pods > 60000 || period < 1 || seconds <= 0 || seconds > 600 || warmup < 0 ||
        warmup > 600) {
        fprintf(stderr, "probe_bench: values out of range\n");
        return 2;
    }
    log_set_level(LOG_LVL_WARN);
    base = event_base_new();
    struct store *st = store_new();
    struct probe_mgr *mgr = probe_mgr_new(base, st);
    if (!base || !st || !mgr) {
        fprintf(stderr, "probe_bench: setup failed\n");
        return 1;
    }
    store_begin(st);
    for (int i = 0; i < pods; i++)
        store_pod_upsert(st, bench_pod(i, port, period, path, kind));
    store_commit(st);

    bench_run_for(warmup);
    struct probe_stats s0, s1;
    probe_mgr_get_stats(mgr, &s0);
    double u0, s0u, u1, s1u;
    double c0 = bench_cpu(&u0, &s0u), t0 = bench_now();
    bench_run_for(seconds);
    double c1 = bench_cpu(&u1, &s1u), t1 = bench_now();
    probe_mgr_get_stats(mgr, &s1);

    struct bench_count cnt = { 0 };
    store_foreach_pod(st, bench_count_ready, &cnt);
    double wall = t1 - t0;
    double cpu = c1 - c0;
    double runs = (double)(s1.runs - s0.runs);
    printf("kind=%s pods=%d period=%us wall=%.2fs probes=%.0f probes_per_s=%.0f cpu_s=%.3f "
           "(user %.3f sys %.3f) cpu_pct=%.2f us_per_probe=%.1f ready=%zu/%d store_updates=%llu\n",
           probe_kind_name(kind), pods, period, wall, runs, runs / wall, cpu, u1 - u0, s1u - s0u,
           100.0 * cpu / wall,
           runs > 0 ? cpu / runs * 1e6 : 0.0, cnt.ready, pods,
           (unsigned long long)s1.store_updates);

    probe_mgr_free(mgr);
    store_free(st);
    event_base_free(base);
    return cnt.ready == (size_t)pods ? 0 : 1;
}
