/*
 * test_probe_mgr: the probe manager end to end against the real store and
 * real servers, in a private network namespace (unshare, lo up).
 *
 * Pods are upserted into a store at t=0; the manager (no jitter) probes
 * them; a timeline of steps checks the verdict the manager wrote into the
 * store (pod->probe_ready), the status API and the metrics at chosen times,
 * and changes the world (server answers, files, pod specs) in between.
 * Scenarios: readiness thresholds both ways, startup gating, liveness
 * restarts (and recovery), no-probe pods, timeouts, initialDelaySeconds,
 * deletion, spec-preserving updates vs spec changes, named ports, exec,
 * and that a commit makes the manager look only at the pods it changed
 * (svcd_probe_pod_visits_total), including its own verdict writes.
 *
 * Time: the scenario is written in "ticks" (t=1 is one probe period) and
 * runs with every period, initial delay and step time multiplied by
 * TICK_S seconds. Each step looks at the world between two probe rounds,
 * at least 0.2 ticks from either; with TICK_S = 3 that is 600 ms, which a
 * sanitizer build on a loaded 2-core machine needs (at 1 s ticks a step
 * fired 200 ms late and found the first probes not yet answered). Probe
 * timeouts stay 1 s: they are not part of the timeline.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "svcd/metrics.h"
#include "svcd/model.h"
#include "svcd/probe.h"
#include "svcd/store.h"

#define TICK_S 3
#define HTTP_PORT 18180
#define CLOSED_PORT 18199

static int n_pass, n_fail;
static struct event_base *base;
static struct store *st;
static struct probe_mgr *mgr;
static int toggle_code = 200;
static int toggle2_code = 500;
static char startup_file[128];

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (cond) {                                                                \
            n_pass++;                                                              \
        } else {                                                                   \
            n_fail++;                                                              \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                           \
            printf(__VA_ARGS__);                                                   \
            printf("\n");                                                          \
        }                                                                          \
    } while (0)

/* ---- server ----------------------------------------------------------------- */

static void srv_http(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    int code = 404;
    if (strcmp(uri, "/ok") == 0)
        code = 200;
    else if (strcmp(uri, "/fail") == 0)
        code = 500;
    else if (strcmp(uri, "/toggle") == 0)
        code = toggle_code;
    else if (strcmp(uri, "/toggle2") == 0)
        code = toggle2_code;
    else if (strcmp(uri, "/hang") == 0)
        return;
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", NULL);
}

/* ---- pods ------------------------------------------------------------------- */

static struct svcd_pod *mk_pod(const char *name, uint64_t fp)
{
    struct svcd_pod *p = calloc(1, sizeof(*p));
    p->meta.name = strdup(name);
    p->meta.ns = strdup("default");
    p->meta.fingerprint = fp;
    p->phase = SVCD_PHASE_RUNNING;
    svcd_ip_parse("127.0.0.1", &p->ips[0]);
    p->n_ips = 1;
    p->n_containers = 1;
    p->containers = calloc(1, sizeof(*p->containers));
    p->containers[0].name = strdup("app");
    p->containers[0].n_ports = 1;
    p->containers[0].ports = calloc(1, sizeof(*p->containers[0].ports));
    p->containers[0].ports[0].name = strdup("http");
    p->containers[0].ports[0].container_port = HTTP_PORT;
    return p;
}

static void set_probe(struct svcd_probe *pr, enum svcd_probe_kind kind, uint16_t port,
                      const char *path, uint32_t period, uint32_t succ, uint32_t fail,
                      uint32_t timeout, uint32_t delay)
{
    pr->kind = kind;
    pr->port = port;
    pr->path = path ? strdup(path) : NULL;
    pr->period_s = period * TICK_S;
    pr->success_threshold = succ;
    pr->failure_threshold = fail;
    pr->timeout_s = timeout;
    pr->initial_delay_s = delay * TICK_S;
}

static void set_exec(struct svcd_probe *pr, const char *shell_cmd, uint32_t period, uint32_t fail)
{
    pr->kind = SVCD_PROBE_EXEC;
    pr->exec_argv = calloc(4, sizeof(char *));
    pr->exec_argv[0] = strdup("/bin/sh");
    pr->exec_argv[1] = strdup("-c");
    pr->exec_argv[2] = strdup(shell_cmd);
    pr->period_s = period * TICK_S;
    pr->success_threshold = 1;
    pr->failure_threshold = fail;
    pr->timeout_s = 1;
}

static struct svcd_pod *pod_relabel(uint64_t fp, const char *path)
{
    struct svcd_pod *p = mk_pod("relabel", fp);
    svcd_kvmap_set(&p->meta.labels, "version", fp == 2 ? "two" : "three");
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, path, 1, 1, 3, 1, 0);
    return p;
}

static void load_pods(void)
{
    store_begin(st);
    struct svcd_pod *p;

    p = mk_pod("toggle", 1);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/toggle", 1, 2, 2, 1, 0);
    store_pod_upsert(st, p);

    p = mk_pod("startup", 1);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "test -e %s", startup_file);
    set_exec(&p->containers[0].startup, cmd, 1, 30);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1, 1, 3, 1, 0);
    store_pod_upsert(st, p);

    p = mk_pod("liveness", 1);
    set_probe(&p->containers[0].liveness, SVCD_PROBE_TCP, CLOSED_PORT, NULL, 1, 1, 2, 1, 0);
    store_pod_upsert(st, p);

    p = mk_pod("noprobe", 1);
    store_pod_upsert(st, p);

    p = mk_pod("pending", 1);
    p->phase = SVCD_PHASE_PENDING;
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1, 1, 3, 1, 0);
    store_pod_upsert(st, p);

    p = mk_pod("hang", 1);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/hang", 2, 1, 1, 1, 0);
    store_pod_upsert(st, p);

    p = mk_pod("delay", 1);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1, 1, 3, 1, 2);
    store_pod_upsert(st, p);

    p = mk_pod("deleted", 1);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1, 1, 3, 1, 0);
    store_pod_upsert(st, p);

    p = mk_pod("livefix", 1);
    set_probe(&p->containers[0].liveness, SVCD_PROBE_HTTP, HTTP_PORT, "/toggle2", 1, 1, 1, 1, 0);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1, 1, 3, 1, 0);
    store_pod_upsert(st, p);

    store_pod_upsert(st, pod_relabel(1, "/ok"));

    p = mk_pod("named", 1);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, 0, "/ok", 1, 1, 3, 1, 0);
    p->containers[0].readiness.port_name = strdup("http");
    store_pod_upsert(st, p);

    p = mk_pod("badname", 1);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_TCP, 0, NULL, 1, 1, 1, 1, 0);
    p->containers[0].readiness.port_name = strdup("nope");
    store_pod_upsert(st, p);

    p = mk_pod("badpath", 1);
    set_probe(&p->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok\r\nX-Injected: 1", 1, 1, 1, 1, 0);
    store_pod_upsert(st, p);

    p = mk_pod("execfail", 1);
    set_exec(&p->containers[0].readiness, "echo not yet; exit 1", 1, 1);
    store_pod_upsert(st, p);

    p = mk_pod("twoctr", 1);
    /* second container: readiness fails, first has none */
    struct svcd_container *cs = calloc(2, sizeof(*cs));
    cs[0] = p->containers[0];
    free(p->containers);
    p->containers = cs;
    p->n_containers = 2;
    cs[1].name = strdup("sidecar");
    set_probe(&cs[1].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/fail", 1, 1, 1, 1, 0);
    store_pod_upsert(st, p);

    store_commit(st);
}

/* ---- helpers ---------------------------------------------------------------- */

static enum svcd_tristate verdict(const char *name)
{
    const struct svcd_pod *p = store_pod_get(st, "default", name);
    return p ? p->probe_ready : (enum svcd_tristate)-1;
}

static const char *tri(enum svcd_tristate t)
{
    return t == SVCD_TRUE ? "TRUE" : t == SVCD_FALSE ? "FALSE" : t == SVCD_UNKNOWN ? "UNKNOWN" : "absent";
}

static const struct probe_check_status *pstat(const char *name, size_t ci, enum probe_type t)
{
    const struct probe_pod_status *s = probe_status_get(mgr, "default", name);
    if (!s || ci >= s->n_containers)
        return NULL;
    return &s->containers[ci].probes[t];
}

#define EXPECT_VERDICT(name, want)                                                     \
    CHECK(verdict(name) == (want), "t=%.2f %s: verdict %s, want %s", now_s() / TICK_S, name, \
          tri(verdict(name)), tri(want))

static struct timespec t0;
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

/* ---- timeline ----------------------------------------------------------------- */

static void step_03(void)
{
    EXPECT_VERDICT("toggle", SVCD_FALSE);      /* starts not ready: 1 of 2 successes */
    EXPECT_VERDICT("noprobe", SVCD_UNKNOWN);
    CHECK(probe_status_get(mgr, "default", "noprobe") == NULL, "no status for a pod without probes");
    CHECK(probe_status_get(mgr, "default", "pending") == NULL, "no status for a Pending pod");
    EXPECT_VERDICT("pending", SVCD_UNKNOWN);
    EXPECT_VERDICT("named", SVCD_TRUE);
    EXPECT_VERDICT("badname", SVCD_FALSE);
    const struct probe_check_status *ps = pstat("badname", 0, PROBE_TYPE_READINESS);
    CHECK(ps && ps->last_result == PROBE_RESULT_ERROR && strstr(ps->reason, "\"nope\""),
          "bad port name is an error: %s", ps ? ps->reason : "(none)");
    EXPECT_VERDICT("badpath", SVCD_FALSE);
    ps = pstat("badpath", 0, PROBE_TYPE_READINESS);
    CHECK(ps && ps->last_result == PROBE_RESULT_ERROR && strstr(ps->reason, "control characters"),
          "path with CR/LF is refused: %s", ps ? ps->reason : "(none)");
    EXPECT_VERDICT("execfail", SVCD_FALSE);
    ps = pstat("execfail", 0, PROBE_TYPE_READINESS);
    CHECK(ps && strcmp(ps->reason, "not yet") == 0, "exec output is the reason: %s",
          ps ? ps->reason : "(none)");
    EXPECT_VERDICT("twoctr", SVCD_FALSE);
    const struct probe_pod_status *s = probe_status_get(mgr, "default", "twoctr");
    CHECK(s && strstr(s->ready_message, "container sidecar: readiness probe failed: HTTP probe failed with statuscode: 500"),
          "two containers: message names the failing one: %s", s ? s->ready_message : "(none)");
    CHECK(s && strcmp(s->ready_reason, "ContainersNotReady") == 0, "ready reason");
}

static double visits(void)
{
    return metric_value(metric_counter("svcd_probe_pod_visits_total", NULL, "x"));
}

static void step_05(void)
{
    /* A commit touching two pods makes the manager look at those two only:
     * one without probes (label change), one Pending -> Running. */
    double v0 = visits();
    store_begin(st);
    struct svcd_pod *np = mk_pod("noprobe", 2);
    svcd_kvmap_set(&np->meta.labels, "v", "2");
    store_pod_upsert(st, np);
    struct svcd_pod *pr = mk_pod("pending", 2);
    set_probe(&pr->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1, 1, 3, 1, 0);
    store_pod_upsert(st, pr);
    store_commit(st);
    CHECK(visits() - v0 == 2, "a commit of 2 pods visits 2 pods, not all (%.0f)", visits() - v0);
    CHECK(probe_status_get(mgr, "default", "pending") != NULL, "Pending -> Running is probed");
    CHECK(probe_status_get(mgr, "default", "noprobe") == NULL, "pod without probes stays untracked");

    EXPECT_VERDICT("startup", SVCD_FALSE);
    const struct probe_check_status *ps = pstat("startup", 0, PROBE_TYPE_READINESS);
    CHECK(ps && ps->runs == 0, "readiness held back by the startup probe (runs %llu)",
          ps ? (unsigned long long)ps->runs : 0ULL);
    ps = pstat("startup", 0, PROBE_TYPE_STARTUP);
    CHECK(ps && ps->runs >= 1 && ps->last_result == PROBE_RESULT_FAILURE, "startup probe ran and failed");
    EXPECT_VERDICT("liveness", SVCD_TRUE);     /* no readiness probe: ready while live */
    EXPECT_VERDICT("livefix", SVCD_FALSE);     /* liveness failureThreshold 1 failed at t=0 */
    EXPECT_VERDICT("relabel", SVCD_TRUE);
}

static void step_12(void)
{
    FILE *f = fopen(startup_file, "w");
    if (f)
        fclose(f);
    toggle2_code = 200;
    store_begin(st);
    store_pod_delete(st, "default", "deleted");
    store_commit(st);
}

static void step_15(void)
{
    EXPECT_VERDICT("toggle", SVCD_TRUE);       /* 2nd success at t=1 */
    EXPECT_VERDICT("delay", SVCD_FALSE);       /* initialDelaySeconds 2 */
    const struct probe_check_status *ps = pstat("delay", 0, PROBE_TYPE_READINESS);
    CHECK(ps && ps->runs == 0, "no probe before initialDelaySeconds");
    EXPECT_VERDICT("liveness", SVCD_FALSE);    /* 2 failures at t=0,1: restart */
    const struct probe_pod_status *s = probe_status_get(mgr, "default", "liveness");
    CHECK(s && s->restarts_needed == 1 && s->n_containers == 1 && !s->containers[0].live,
          "liveness restart needed (restarts %u)", s ? s->restarts_needed : 0);
    CHECK(s && strstr(s->ready_message, "liveness probe failed, restart needed"),
          "liveness message: %s", s ? s->ready_message : "");
    ps = pstat("hang", 0, PROBE_TYPE_READINESS);
    CHECK(ps && ps->last_result == PROBE_RESULT_TIMEOUT && strstr(ps->reason, "deadline"),
          "hanging server times out: %s", ps ? ps->reason : "(none)");
    EXPECT_VERDICT("hang", SVCD_FALSE);
    CHECK(probe_status_get(mgr, "default", "deleted") == NULL, "deleted pod is forgotten");
    EXPECT_VERDICT("pending", SVCD_TRUE);     /* Running since t=0.5 */
    /* Same probes, new fingerprint (labels changed): state is kept. */
    store_begin(st);
    store_pod_upsert(st, pod_relabel(2, "/ok"));
    /* Terminating: same probes, deletionTimestamp set. */
    struct svcd_pod *t = mk_pod("named", 2);
    set_probe(&t->containers[0].readiness, SVCD_PROBE_HTTP, 0, "/ok", 1, 1, 3, 1, 0);
    t->containers[0].readiness.port_name = strdup("http");
    t->meta.deletion_timestamp = strdup("2026-11-27T03:00:00Z");
    store_pod_upsert(st, t);
    store_commit(st);
    ps = pstat("relabel", 0, PROBE_TYPE_READINESS);
    CHECK(ps && ps->runs >= 2, "label change keeps probe state (runs %llu)",
          ps ? (unsigned long long)ps->runs : 0ULL);
}

static void step_17(void)
{
    const struct probe_pod_status *ns = probe_status_get(mgr, "default", "named");
    CHECK(ns && ns->terminating, "deletionTimestamp shows as terminating");
    EXPECT_VERDICT("named", SVCD_TRUE);        /* terminating pods keep their probes */
    EXPECT_VERDICT("relabel", SVCD_TRUE);      /* no flap on a label change */
    /* A changed probe spec restarts the probes: not ready until it passes. */
    store_begin(st);
    store_pod_upsert(st, pod_relabel(3, "/fail"));
    /* Back to Pending: forgotten at once, verdict handed back (UNKNOWN). */
    struct svcd_pod *pr = mk_pod("pending", 3);
    pr->phase = SVCD_PHASE_PENDING;
    set_probe(&pr->containers[0].readiness, SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1, 1, 3, 1, 0);
    store_pod_upsert(st, pr);
    store_commit(st);
    CHECK(probe_status_get(mgr, "default", "pending") == NULL, "Running -> Pending is forgotten");
}

static void step_19(void)
{
    EXPECT_VERDICT("relabel", SVCD_FALSE);
    EXPECT_VERDICT("pending", SVCD_UNKNOWN);
    const struct probe_check_status *ps = pstat("relabel", 0, PROBE_TYPE_READINESS);
    CHECK(ps && ps->runs <= 1, "spec change restarted the probe state (runs %llu)",
          ps ? (unsigned long long)ps->runs : 0ULL);
}

static void step_22(void)
{
    toggle_code = 503;
}

static void step_25(void)
{
    EXPECT_VERDICT("startup", SVCD_TRUE);      /* startup passed at t=2, readiness right after */
    const struct probe_pod_status *s = probe_status_get(mgr, "default", "startup");
    CHECK(s && s->containers[0].started, "startup container started");
    EXPECT_VERDICT("delay", SVCD_TRUE);
    EXPECT_VERDICT("livefix", SVCD_TRUE);      /* liveness passed again, readiness passed */
    s = probe_status_get(mgr, "default", "livefix");
    CHECK(s && s->restarts_needed >= 1 && s->containers[0].live, "livefix recovered after %u restarts",
          s ? s->restarts_needed : 0);
}

static void step_35(void)
{
    EXPECT_VERDICT("toggle", SVCD_TRUE);       /* one failure (t=3) < failureThreshold 2 */
    const struct probe_pod_status *s = probe_status_get(mgr, "default", "liveness");
    CHECK(s && s->restarts_needed >= 2, "liveness keeps asking for restarts (%u)",
          s ? s->restarts_needed : 0);
}

static void step_45(void)
{
    EXPECT_VERDICT("toggle", SVCD_FALSE);      /* second failure at t=4 */
    const struct probe_check_status *tps = pstat("toggle", 0, PROBE_TYPE_READINESS);
    /* Its verdict was written twice (t=1 TRUE, t=4 FALSE): the manager sees
     * its own writes come back but keeps the probe state. */
    CHECK(tps && tps->runs >= 5, "own verdict writes keep the probe state (runs %llu)",
          tps ? (unsigned long long)tps->runs : 0ULL);
    const struct probe_pod_status *s = probe_status_get(mgr, "default", "toggle");
    CHECK(s && strstr(s->ready_message, "statuscode: 503"), "toggle message: %s",
          s ? s->ready_message : "");
    CHECK(s && s->last_result == PROBE_RESULT_FAILURE && s->last_probe_ms > 0, "last probe recorded");

    json_t *j = s ? probe_status_json(s) : NULL;
    CHECK(j && json_is_false(json_object_get(j, "ready")), "json ready false");
    json_t *cond = j ? json_array_get(json_object_get(j, "conditions"), 0) : NULL;
    CHECK(cond && strcmp(json_string_value(json_object_get(cond, "status")), "False") == 0 &&
          strstr(json_string_value(json_object_get(cond, "message")), "503"),
          "json Ready condition");
    json_t *rp = j ? json_object_get(json_object_get(json_object_get(
                         json_array_get(json_object_get(j, "containers"), 0), "probes"), "readiness"), "kind") : NULL;
    CHECK(rp && strcmp(json_string_value(rp), "http") == 0, "json probe kind");
    json_decref(j);

    struct probe_stats ps;
    probe_mgr_get_stats(mgr, &ps);
    struct metric *m = metric_counter("svcd_probe_restarts_needed_total", NULL, "x");
    CHECK(metric_value(m) == (double)ps.restarts_needed && ps.restarts_needed >= 3,
          "restart metric %.0f == stats %llu", metric_value(m), (unsigned long long)ps.restarts_needed);
    struct metric *ok = metric_counter("svcd_probe_total",
                                       "probe=\"readiness\",kind=\"http\",result=\"success\"", "x");
    struct metric *tmo = metric_counter("svcd_probe_total",
                                        "probe=\"readiness\",kind=\"http\",result=\"timeout\"", "x");
    CHECK(metric_value(ok) >= 10 && metric_value(tmo) >= 2, "probe counters: ok %.0f timeout %.0f",
          metric_value(ok), metric_value(tmo));
    CHECK(ps.store_updates < 60, "store updates bounded (%llu)", (unsigned long long)ps.store_updates);
    CHECK(ps.pods == 12, "tracked pods %zu", ps.pods);
}

struct step {
    int at_ms;
    void (*fn)(void);
};

static const struct step steps[] = {
    { 300, step_03 }, { 500, step_05 }, { 1200, step_12 }, { 1500, step_15 },
    { 1700, step_17 }, { 1900, step_19 }, { 2200, step_22 }, { 2500, step_25 },
    { 3500, step_35 }, { 4500, step_45 },
};

static void on_step(evutil_socket_t fd, short w, void *arg)
{
    const struct step *s = arg;
    s->fn();
    if (s == &steps[sizeof(steps) / sizeof(steps[0]) - 1])
        event_base_loopbreak(base);
}

/* ---- setup ---------------------------------------------------------------------- */

static int setup_netns(void)
{
    if (unshare(CLONE_NEWNET) < 0)
        return -1;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP;
    int rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    close(fd);
    return rc;
}

int main(void)
{
    if (geteuid() != 0) {
        printf("skipped: needs root (network namespaces)\n0 passed, 0 failed\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    if (setup_netns() < 0) {
        printf("cannot set up a private network namespace: %s\n0 passed, 1 failed\n", strerror(errno));
        return 1;
    }
    snprintf(startup_file, sizeof(startup_file), "/tmp/test_probe_mgr.%d.started", (int)getpid());
    unlink(startup_file);

    base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    if (evhttp_bind_socket(http, "127.0.0.1", HTTP_PORT) < 0) {
        printf("cannot bind\n0 passed, 1 failed\n");
        return 1;
    }
    evhttp_set_gencb(http, srv_http, NULL);

    st = store_new();
    struct probe_options opts = { .no_jitter = true, .exec_uid = 65534, .exec_gid = 65534 };
    mgr = probe_mgr_new_opts(base, st, &opts);
    CHECK(mgr != NULL, "probe_mgr_new");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    load_pods();

    size_t n = sizeof(steps) / sizeof(steps[0]);
    struct event *evs[16];
    for (size_t i = 0; i < n; i++) {
        evs[i] = evtimer_new(base, on_step, (void *)&steps[i]);
        int ms = steps[i].at_ms * TICK_S;
        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
        evtimer_add(evs[i], &tv);
    }
    event_base_dispatch(base);
    for (size_t i = 0; i < n; i++)
        event_free(evs[i]);

    probe_mgr_free(mgr);
    /* The store outlives the manager: a later commit must not reach it. */
    store_begin(st);
    store_pod_delete(st, "default", "toggle");
    store_commit(st);
    store_free(st);
    evhttp_free(http);
    event_base_free(base);
    unlink(startup_file);
    metrics_reset();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
