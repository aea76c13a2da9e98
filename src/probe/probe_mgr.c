/*
 * probe_mgr: pod readiness the kubelet way, for pods whose source does not
 * report it.
 *
 * Data flow: store commit (pods_changed) -> only the pods that commit
 * changed are looked at (store_changed_pods(); every pod at creation, or
 * when the store lost the list) -> one struct probe_pod per probed pod
 * (keyed "ns/name", rebuilt when the uid, IP, netns or a probe spec
 * changes; untouched when only the fingerprint of other fields moved, or
 * when the change was the manager's own verdict) -> one struct probe_worker per
 * configured probe, each with its own timer on the loop -> probe_check runs
 * an attempt -> probe_state applies thresholds -> a changed verdict is queued
 * and written to the store in one batch from a zero-delay event (a store
 * subscriber must not mutate the store from its callback).
 *
 * Timers are phase-shifted per probe (hash of pod/container/type) so that
 * many pods with the same period do not fire in the same instant.
 */
#include "svcd/probe.h"
#include "probe_internal.h"
#include "probe_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/store.h"
#include "svcd/vec.h"

#define PROBE_MOD "probe"
#define PROBE_KIND_COUNT 5

/* A probe as it will be run: defaults applied, named port resolved. */
struct probe_spec {
    enum svcd_probe_kind kind;
    uint16_t port;
    struct svcd_ip host;              /* target address */
    bool has_host;
    char *path;
    bool https;
    struct svcd_kvmap headers;
    char *grpc_service;
    char **argv;
    char *error;                      /* configuration problem: every run is ERROR */
    uint32_t initial_delay_ms, period_ms, timeout_ms, success, failure;
};

struct probe_pod;
struct probe_ctr;

struct probe_worker {
    struct probe_ctr *ctr;
    enum probe_type type;
    struct probe_spec spec;
    struct event *timer;
    int64_t due_ms;                   /* monotonic time the timer is set for */
    struct probe_check *inflight;
    struct probe_http *http;          /* httpGet: reusable client, made at first run */
    bool http_inflight;
    struct probe_check_status st;
};

struct probe_ctr {
    struct probe_pod *pod;
    char *name;
    struct probe_state state;
    int64_t start_ms;                 /* monotonic: first seen or last restart */
    struct probe_worker *w[PROBE_TYPE_COUNT];
};

struct probe_pod {
    struct probe_mgr *mgr;
    char *key, *ns, *name, *uid;
    uint64_t fingerprint;
    struct svcd_ip ip;
    bool has_ip;
    char *netns;
    enum svcd_pod_phase phase;
    bool terminating;
    size_t n_ctr;
    struct probe_ctr *ctrs;
    enum svcd_tristate verdict;
    uint64_t seen_gen;
    enum probe_type last_type;
    enum probe_result last_result;
    char last_reason[PROBE_REASON_MAX];
    int64_t last_ms;
    struct probe_pod_status status;   /* materialized by probe_status_get */
    struct probe_container_status *cstatus;
};

struct probe_pending {
    char *ns, *name;
    enum svcd_tristate value;
};

/* The store subscription's context; probe_mgr_free() unsubscribes it. */
struct probe_sub {
    struct probe_mgr *mgr;
};

struct probe_mgr {
    struct probe_sub *sub;
    struct event_base *base;
    struct store *st;
    struct probe_options opts;
    struct hmap *pods;
    uint64_t scan_gen;
    uint64_t n_visits;                /* pods looked at by the current sync */
    bool initial_scan;
    struct event *ev_flush;
    struct probe_pending *pending;
    size_t n_pending, cap_pending;
    struct probe_stats stats;
    struct metric *m_total[PROBE_TYPE_COUNT][PROBE_KIND_COUNT][PROBE_RESULT_COUNT];
    struct metric *m_duration[PROBE_KIND_COUNT];
    struct metric *m_restarts;
    struct metric *m_pods;
    struct metric *m_inflight;
    struct metric *m_visits;
};

/* ---- names ------------------------------------------------------------------ */

const char *probe_type_name(enum probe_type t)
{
    switch (t) {
    case PROBE_TYPE_STARTUP: return "startup";
    case PROBE_TYPE_READINESS: return "readiness";
    case PROBE_TYPE_LIVENESS: return "liveness";
    }
    return "?";
}

const char *probe_kind_name(enum svcd_probe_kind k)
{
    switch (k) {
    case SVCD_PROBE_EXEC: return "exec";
    case SVCD_PROBE_TCP: return "tcp";
    case SVCD_PROBE_HTTP: return "http";
    case SVCD_PROBE_GRPC: return "grpc";
    case SVCD_PROBE_NONE: break;
    }
    return "none";
}

const char *probe_result_name(enum probe_result r)
{
    switch (r) {
    case PROBE_RESULT_NONE: return "none";
    case PROBE_RESULT_SUCCESS: return "success";
    case PROBE_RESULT_FAILURE: return "failure";
    case PROBE_RESULT_TIMEOUT: return "timeout";
    case PROBE_RESULT_ERROR: return "error";
    }
    return "?";
}

/* ---- time ------------------------------------------------------------------- */

static int64_t probe_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t probe_now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void probe_ms_to_tv(int64_t ms, struct timeval *tv)
{
    if (ms < 0)
        ms = 0;
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* ---- metrics ---------------------------------------------------------------- */

static void probe_mgr_metrics_init(struct probe_mgr *mgr)
{
    mgr->m_restarts = metric_counter("svcd_probe_restarts_needed_total", NULL,
                                     "Liveness/startup probe failures that would restart a container.");
    mgr->m_pods = metric_gauge("svcd_probe_pods", NULL, "Pods whose readiness svcd probes.");
    mgr->m_inflight = metric_gauge("svcd_probe_inflight", NULL, "Probes running now.");
    mgr->m_visits = metric_counter("svcd_probe_pod_visits_total", NULL,
                                   "Pods the probe manager looked at after store commits "
                                   "(only the changed ones, except at start).");
    for (int k = SVCD_PROBE_EXEC; k <= SVCD_PROBE_GRPC; k++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "kind=\"%s\"", probe_kind_name((enum svcd_probe_kind)k));
        mgr->m_duration[k] = metric_histogram("svcd_probe_duration_seconds", labels,
                                              "Time one probe took.");
    }
}

static struct metric *probe_mgr_metric_total(struct probe_mgr *mgr, enum probe_type t,
                                             enum svcd_probe_kind k, enum probe_result r)
{
    if ((unsigned)k >= PROBE_KIND_COUNT || (unsigned)r >= PROBE_RESULT_COUNT)
        return NULL;
    struct metric **slot = &mgr->m_total[t][k][r];
    if (!*slot) {
        char labels[128];
        snprintf(labels, sizeof(labels), "probe=\"%s\",kind=\"%s\",result=\"%s\"",
                 probe_type_name(t), probe_kind_name(k), probe_result_name(r));
        *slot = metric_counter("svcd_probe_total", labels, "Probes run, by probe type, kind and result.");
    }
    return *slot;
}

/* ---- specs ------------------------------------------------------------------ */

static void probe_spec_free(struct probe_spec *s)
{
    free(s->path);
    svcd_kvmap_free(&s->headers);
    free(s->grpc_service);
    if (s->argv) {
        for (char **a = s->argv; *a; a++)
            free(*a);
        free(s->argv);
    }
    free(s->error);
    memset(s, 0, sizeof(*s));
}

static bool probe_str_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool probe_spec_equal(const struct probe_spec *a, const struct probe_spec *b)
{
    if (a->kind != b->kind || a->port != b->port || a->has_host != b->has_host ||
        (a->has_host && !svcd_ip_equal(&a->host, &b->host)) || a->https != b->https ||
        a->initial_delay_ms != b->initial_delay_ms || a->period_ms != b->period_ms ||
        a->timeout_ms != b->timeout_ms || a->success != b->success || a->failure != b->failure)
        return false;
    if (!probe_str_equal(a->path, b->path) || !probe_str_equal(a->grpc_service, b->grpc_service) ||
        !probe_str_equal(a->error, b->error) || !svcd_kvmap_equal(&a->headers, &b->headers))
        return false;
    if (!a->argv || !b->argv)
        return a->argv == b->argv;
    size_t i = 0;
    for (; a->argv[i] && b->argv[i]; i++)
        if (strcmp(a->argv[i], b->argv[i]) != 0)
            return false;
    return a->argv[i] == b->argv[i];
}

/* A named port of one container (Kubernetes resolves probe ports there). */
static uint16_t probe_container_port(const struct svcd_container *c, const char *name)
{
    for (size_t i = 0; i < c->n_ports; i++)
        if (c->ports[i].name && strcmp(c->ports[i].name, name) == 0)
            return c->ports[i].container_port;
    return 0;
}

static char *probe_strdup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Normalizes p of container c into out. 0, or -1 on ENOMEM. */
static int probe_spec_build(struct probe_spec *out, const struct svcd_probe *p,
                            const struct svcd_container *c)
{
    char err[160] = "";
    memset(out, 0, sizeof(*out));
    out->kind = p->kind;
    out->initial_delay_ms = p->initial_delay_s * 1000;
    out->period_ms = (p->period_s ? p->period_s : 10) * 1000;
    out->timeout_ms = (p->timeout_s ? p->timeout_s : 1) * 1000;
    out->success = p->success_threshold ? p->success_threshold : 1;
    out->failure = p->failure_threshold ? p->failure_threshold : 3;

    switch (p->kind) {
    case SVCD_PROBE_EXEC: {
        size_t n = 0;
        while (p->exec_argv && p->exec_argv[n])
            n++;
        if (n == 0) {
            snprintf(err, sizeof(err), "exec probe has no command");
            break;
        }
        out->argv = calloc(n + 1, sizeof(char *));
        if (!out->argv)
            goto oom;
        for (size_t i = 0; i < n; i++)
            if (!(out->argv[i] = strdup(p->exec_argv[i])))
                goto oom;
        break;
    }
    case SVCD_PROBE_HTTP:
    case SVCD_PROBE_TCP:
    case SVCD_PROBE_GRPC:
        out->port = p->port;
        if (!out->port && p->port_name) {
            out->port = probe_container_port(c, p->port_name);
            if (!out->port)
                snprintf(err, sizeof(err), "port \"%s\" is not a port of container %s",
                         p->port_name, c->name ? c->name : "?");
        } else if (!out->port) {
            snprintf(err, sizeof(err), "probe has no port");
        }
        if (p->host && p->host[0]) {
            if (svcd_ip_parse(p->host, &out->host) == 0)
                out->has_host = true;
            else if (!err[0])
                snprintf(err, sizeof(err), "host \"%s\" is not an IP address (names are not resolved)",
                         p->host);
        }
        if (p->kind == SVCD_PROBE_HTTP) {
            if (!(out->path = strdup(p->path && p->path[0] ? p->path : "/")))
                goto oom;
            for (const unsigned char *q = (const unsigned char *)out->path; *q; q++)
                if (*q <= 0x20 || *q == 0x7f) {
                    if (!err[0])
                        snprintf(err, sizeof(err), "httpGet.path has spaces or control characters");
                    break;
                }
            if (strlen(out->path) > 250 && !err[0])
                snprintf(err, sizeof(err), "httpGet.path longer than 250 characters");
            out->https = p->scheme && strcasecmp(p->scheme, "HTTPS") == 0;
            for (size_t i = 0; i < p->http_headers.n; i++)
                if (svcd_kvmap_set(&out->headers, p->http_headers.items[i].key,
                                   p->http_headers.items[i].value) < 0)
                    goto oom;
        }
        if (p->kind == SVCD_PROBE_GRPC && p->grpc_service) {
            if (!(out->grpc_service = strdup(p->grpc_service)))
                goto oom;
            if (strlen(p->grpc_service) > 200 && !err[0])
                snprintf(err, sizeof(err), "grpc.service longer than 200 characters");
        }
        break;
    default:
        snprintf(err, sizeof(err), "unsupported probe handler");
        break;
    }
    if (err[0] && !(out->error = strdup(err)))
        goto oom;
    return 0;
oom:
    probe_spec_free(out);
    return -1;
}

/* ---- workers ------------------------------------------------------------------ */

static void probe_worker_tick(evutil_socket_t fd, short what, void *arg);
static void probe_pod_update_verdict(struct probe_pod *pp);

static void probe_worker_free(struct probe_worker *w)
{
    if (!w)
        return;
    if (w->inflight) {
        probe_check_cancel(w->inflight);
        w->ctr->pod->mgr->stats.inflight--;
    }
    if (w->http_inflight)
        w->ctr->pod->mgr->stats.inflight--;
    probe_http_free(w->http);
    if (w->timer)
        event_free(w->timer);
    w->ctr->pod->mgr->stats.workers--;
    probe_spec_free(&w->spec);
    free(w);
}

/* Phase offsets are whole slots of PROBE_SLOT_MS: probes that share a slot
 * fire in the same loop iteration (one wake-up for a few dozen probes
 * instead of one each), while the slots still spread the load over the
 * period. */
#define PROBE_SLOT_MS 20

/* Phase offset in [0, span) ms from the probe's identity, slot-aligned. */
static int64_t probe_jitter_ms(const struct probe_pod *pp, const struct probe_ctr *c,
                               enum probe_type t, uint32_t span_ms)
{
    if (span_ms == 0)
        return 0;
    uint64_t h = hmap_hash(pp->key, strlen(pp->key), HMAP_HASH_SEED);
    h = hmap_hash(c->name ? c->name : "", c->name ? strlen(c->name) : 0, h);
    h = hmap_hash(&t, sizeof(t), h);
    if (span_ms <= PROBE_SLOT_MS)
        return (int64_t)(h % span_ms);
    return (int64_t)(h % (span_ms / PROBE_SLOT_MS)) * PROBE_SLOT_MS;
}

static void probe_worker_arm(struct probe_worker *w, int64_t delay_ms)
{
    struct timeval tv;
    w->due_ms = probe_now_mono_ms() + delay_ms;
    probe_ms_to_tv(delay_ms, &tv);
    evtimer_add(w->timer, &tv);
}

/* Re-arms for the next period counted from the last due time, like a
 * ticker: loop latency does not accumulate into drift. */
static void probe_worker_rearm(struct probe_worker *w)
{
    int64_t now = probe_now_mono_ms();
    int64_t next = w->due_ms + w->spec.period_ms;
    if (next <= now)
        next = now + w->spec.period_ms;   /* fell behind: skip, as a ticker does */
    w->due_ms = next;
    struct timeval tv;
    probe_ms_to_tv(next - now, &tv);
    evtimer_add(w->timer, &tv);
}

static void probe_mgr_schedule_flush(struct probe_mgr *mgr)
{
    if (!evtimer_pending(mgr->ev_flush, NULL)) {
        struct timeval zero = { 0, 0 };
        evtimer_add(mgr->ev_flush, &zero);
    }
}

static void probe_mgr_queue(struct probe_mgr *mgr, const char *ns, const char *name,
                            enum svcd_tristate v)
{
    if (VEC_RESERVE(mgr->pending, mgr->n_pending, mgr->cap_pending, 16) < 0) {
        log_err(PROBE_MOD, "out of memory queueing readiness of %s/%s", ns, name);
        return;
    }
    struct probe_pending *e = &mgr->pending[mgr->n_pending];
    e->ns = strdup(ns);
    e->name = strdup(name);
    e->value = v;
    if (!e->ns || !e->name) {
        free(e->ns);
        free(e->name);
        return;
    }
    mgr->n_pending++;
    probe_mgr_schedule_flush(mgr);
}

static void probe_worker_done(void *arg, enum probe_result res, const char *reason, double dur)
{
    struct probe_worker *w = arg;
    struct probe_ctr *c = w->ctr;
    struct probe_pod *pp = c->pod;
    struct probe_mgr *mgr = pp->mgr;
    int64_t now_unix = probe_now_unix_ms();

    w->inflight = NULL;
    w->http_inflight = false;
    mgr->stats.inflight--;
    mgr->stats.runs++;
    metric_set(mgr->m_inflight, (double)mgr->stats.inflight);

    w->st.last_result = res;
    snprintf(w->st.reason, sizeof(w->st.reason), "%s", reason);
    w->st.last_probe_ms = now_unix;
    w->st.last_duration_s = dur;
    w->st.runs++;
    pp->last_type = w->type;
    pp->last_result = res;
    snprintf(pp->last_reason, sizeof(pp->last_reason), "%s", reason);
    pp->last_ms = now_unix;

    struct metric *m = probe_mgr_metric_total(mgr, w->type, w->spec.kind, res);
    if (m)
        metric_add(m, 1);
    if ((unsigned)w->spec.kind < PROBE_KIND_COUNT && mgr->m_duration[w->spec.kind])
        metric_observe(mgr->m_duration[w->spec.kind], dur);

    bool ok = res == PROBE_RESULT_SUCCESS;
    if (!ok)
        log_debug(PROBE_MOD, "%s %s/%s %s probe: %s: %s", probe_type_name(w->type), pp->key,
                  c->name ? c->name : "", probe_kind_name(w->spec.kind), probe_result_name(res),
                  reason);
    unsigned ev = probe_state_record(&c->state, w->type, ok);
    w->st.consecutive_successes = c->state.consec_succ[w->type];
    w->st.consecutive_failures = c->state.consec_fail[w->type];

    if (ev & PROBE_EV_RESTART) {
        mgr->stats.restarts_needed++;
        metric_add(mgr->m_restarts, 1);
        c->start_ms = probe_now_mono_ms();
        log_warn(PROBE_MOD, "pod %s container %s: %s probe failed %u times, restart needed: %s",
                 pp->key, c->name ? c->name : "", probe_type_name(w->type),
                 c->state.thr[w->type].failure, reason);
        /* The counters of every probe restart with the container. */
        for (int t = 0; t < PROBE_TYPE_COUNT; t++)
            if (c->w[t]) {
                c->w[t]->st.consecutive_successes = 0;
                c->w[t]->st.consecutive_failures = 0;
            }
    }
    if (ev & PROBE_EV_STARTED) {
        /* Startup passed: run readiness and liveness now, not a period later. */
        for (int t = PROBE_TYPE_READINESS; t <= PROBE_TYPE_LIVENESS; t++)
            if (c->w[t] && !c->w[t]->inflight && !c->w[t]->http_inflight) {
                evtimer_del(c->w[t]->timer);
                int64_t wait = c->start_ms + c->w[t]->spec.initial_delay_ms - probe_now_mono_ms();
                probe_worker_arm(c->w[t], wait > 0 ? wait : 0);
            }
    }
    if (ev & (PROBE_EV_READY_CHANGED | PROBE_EV_RESTART))
        probe_pod_update_verdict(pp);
}

static void probe_worker_tick(evutil_socket_t fd, short what, void *arg)
{
    struct probe_worker *w = arg;
    struct probe_ctr *c = w->ctr;
    struct probe_pod *pp = c->pod;
    struct probe_mgr *mgr = pp->mgr;

    /* Judge by the time this tick was due (our clock), not by when libevent
     * ran it: its cached clock may fire a timer a little early. */
    int64_t due = w->due_ms;
    probe_worker_rearm(w);
    if (w->inflight || w->http_inflight)
        return;                          /* the previous attempt is still running */
    if (!probe_state_should_run(&c->state, w->type))
        return;                          /* held back by the startup probe */
    if (due < c->start_ms + (int64_t)w->spec.initial_delay_ms)
        return;                          /* initialDelaySeconds after a restart */

    struct probe_check_req req;
    memset(&req, 0, sizeof(req));
    req.kind = w->spec.kind;
    req.timeout_ms = w->spec.timeout_ms;
    const char *err = w->spec.error;
    if (!err && w->spec.kind != SVCD_PROBE_EXEC) {
        if (w->spec.has_host)
            req.ip = w->spec.host;
        else if (pp->has_ip)
            req.ip = pp->ip;
        else
            err = "pod has no IP address";
        req.port = w->spec.port;
        req.path = w->spec.path;
        req.https = w->spec.https;
        req.headers = &w->spec.headers;
        req.grpc_service = w->spec.grpc_service;
    }
    req.argv = w->spec.argv;
    req.netns_path = pp->netns;
    req.uid = mgr->opts.exec_uid;
    req.gid = mgr->opts.exec_gid;

    mgr->stats.inflight++;
    if (err) {
        w->inflight = (struct probe_check *)1;   /* reported synchronously below */
        probe_worker_done(w, PROBE_RESULT_ERROR, err, 0);
        return;
    }
    if (req.kind == SVCD_PROBE_HTTP && !req.https) {
        /* httpGet: one reusable client per probe, request text built once. */
        char herr[PROBE_REASON_MAX];
        if (!w->http)
            w->http = probe_http_new(mgr->base, &req.ip, req.port, req.path, req.headers,
                                     req.timeout_ms, herr, sizeof(herr));
        if (!w->http && herr[0]) {
            w->inflight = (struct probe_check *)1;   /* reported synchronously below */
            probe_worker_done(w, PROBE_RESULT_ERROR, herr, 0);
            return;
        }
        if (w->http && probe_http_start(w->http, probe_worker_done, w) == 0) {
            w->http_inflight = true;
            metric_set(mgr->m_inflight, (double)mgr->stats.inflight);
            return;
        }
        mgr->stats.inflight--;
        log_err(PROBE_MOD, "out of memory starting a probe of %s", pp->key);
        return;
    }
    w->inflight = probe_check_start(mgr->base, &req, probe_worker_done, w);
    if (!w->inflight) {
        mgr->stats.inflight--;
        log_err(PROBE_MOD, "out of memory starting a probe of %s", pp->key);
        return;
    }
    metric_set(mgr->m_inflight, (double)mgr->stats.inflight);
}

/* ---- pods --------------------------------------------------------------------- */

static bool probe_pod_has_probes(const struct svcd_pod *pod)
{
    for (size_t i = 0; i < pod->n_containers; i++) {
        const struct svcd_container *c = &pod->containers[i];
        if (c->readiness.kind != SVCD_PROBE_NONE || c->liveness.kind != SVCD_PROBE_NONE ||
            c->startup.kind != SVCD_PROBE_NONE)
            return true;
    }
    return false;
}

static const struct svcd_probe *probe_of(const struct svcd_container *c, enum probe_type t)
{
    switch (t) {
    case PROBE_TYPE_STARTUP: return &c->startup;
    case PROBE_TYPE_READINESS: return &c->readiness;
    case PROBE_TYPE_LIVENESS: return &c->liveness;
    }
    return NULL;
}

static void probe_ctr_clear(struct probe_ctr *c)
{
    for (int t = 0; t < PROBE_TYPE_COUNT; t++) {
        probe_worker_free(c->w[t]);
        c->w[t] = NULL;
    }
    free(c->name);
    c->name = NULL;
}

static void probe_pod_free(struct probe_pod *pp)
{
    if (!pp)
        return;
    for (size_t i = 0; i < pp->n_ctr; i++)
        probe_ctr_clear(&pp->ctrs[i]);
    free(pp->ctrs);
    free(pp->cstatus);
    free(pp->key);
    free(pp->ns);
    free(pp->name);
    free(pp->uid);
    free(pp->netns);
    free(pp);
}

/* Builds container ci's workers from the pod; 0 or -1 (ENOMEM). */
static int probe_ctr_build(struct probe_pod *pp, size_t ci, const struct svcd_container *src)
{
    struct probe_mgr *mgr = pp->mgr;
    struct probe_ctr *c = &pp->ctrs[ci];
    bool has[PROBE_TYPE_COUNT];
    struct probe_thresholds thr[PROBE_TYPE_COUNT];

    c->pod = pp;
    c->start_ms = probe_now_mono_ms();
    if (src->name && !(c->name = strdup(src->name)))
        return -1;
    for (int t = 0; t < PROBE_TYPE_COUNT; t++) {
        const struct svcd_probe *p = probe_of(src, (enum probe_type)t);
        has[t] = p->kind != SVCD_PROBE_NONE;
        thr[t].success = p->success_threshold ? p->success_threshold : 1;
        thr[t].failure = p->failure_threshold ? p->failure_threshold : 3;
        if (!has[t])
            continue;
        struct probe_worker *w = calloc(1, sizeof(*w));
        if (!w)
            return -1;
        c->w[t] = w;
        mgr->stats.workers++;
        w->ctr = c;
        w->type = (enum probe_type)t;
        if (probe_spec_build(&w->spec, p, src) < 0)
            return -1;
        w->st.configured = true;
        w->st.kind = p->kind;
        w->timer = evtimer_new(mgr->base, probe_worker_tick, w);
        if (!w->timer)
            return -1;
        uint32_t span = mgr->opts.no_jitter ? 0
                        : mgr->initial_scan ? w->spec.period_ms
                        : (w->spec.period_ms < 1000 ? w->spec.period_ms : 1000);
        probe_worker_arm(w, (int64_t)w->spec.initial_delay_ms +
                                probe_jitter_ms(pp, c, (enum probe_type)t, span));
    }
    probe_state_init(&c->state, has, thr);
    return 0;
}

/* The pod's netns path for exec probes, or NULL (absent or not a named
 * network namespace: only /run/netns/NAME is accepted). */
static const char *probe_pod_netns(const struct svcd_pod *pod)
{
    const char *v = svcd_kvmap_get(&pod->meta.annotations, PROBE_NETNS_ANNOTATION);
    if (!v || !v[0])
        return NULL;
    const char *nm;
    if (strncmp(v, "/run/netns/", 11) == 0)
        nm = v + 11;
    else if (strncmp(v, "/var/run/netns/", 15) == 0)
        nm = v + 15;
    else
        return NULL;
    if (!nm[0] || strchr(nm, '/') || strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
        return NULL;
    return v;
}

static struct probe_pod *probe_pod_new(struct probe_mgr *mgr, const struct svcd_pod *pod,
                                       const char *key)
{
    struct probe_pod *pp = calloc(1, sizeof(*pp));
    if (!pp)
        return NULL;
    pp->mgr = mgr;
    pp->key = strdup(key);
    pp->ns = strdup(pod->meta.ns);
    pp->name = strdup(pod->meta.name);
    pp->uid = probe_strdup_or_null(pod->meta.uid);
    pp->netns = probe_strdup_or_null(probe_pod_netns(pod));
    pp->fingerprint = pod->meta.fingerprint;
    pp->phase = pod->phase;
    pp->terminating = pod->meta.deletion_timestamp != NULL;
    pp->has_ip = pod->n_ips > 0;
    if (pp->has_ip)
        pp->ip = pod->ips[0];
    pp->verdict = SVCD_UNKNOWN;
    if (!pp->key || !pp->ns || !pp->name || (pod->meta.uid && !pp->uid) ||
        (probe_pod_netns(pod) && !pp->netns))
        goto fail;
    pp->n_ctr = pod->n_containers;
    pp->ctrs = calloc(pp->n_ctr ? pp->n_ctr : 1, sizeof(*pp->ctrs));
    pp->cstatus = calloc(pp->n_ctr ? pp->n_ctr : 1, sizeof(*pp->cstatus));
    if (!pp->ctrs || !pp->cstatus)
        goto fail;
    for (size_t i = 0; i < pp->n_ctr; i++)
        if (probe_ctr_build(pp, i, &pod->containers[i]) < 0)
            goto fail;
    const char *raw = svcd_kvmap_get(&pod->meta.annotations, PROBE_NETNS_ANNOTATION);
    if (raw && raw[0] && !pp->netns)
        log_warn(PROBE_MOD, "pod %s: annotation %s=%s ignored: not /run/netns/NAME", key,
                 PROBE_NETNS_ANNOTATION, raw);
    return pp;
fail:
    probe_pod_free(pp);
    return NULL;
}

/* Whether container i's probes are the same as the new pod's. */
static bool probe_ctr_same(const struct probe_ctr *c, const struct svcd_container *src)
{
    if (!probe_str_equal(c->name, src->name))
        return false;
    for (int t = 0; t < PROBE_TYPE_COUNT; t++) {
        const struct svcd_probe *p = probe_of(src, (enum probe_type)t);
        if ((p->kind != SVCD_PROBE_NONE) != (c->w[t] != NULL))
            return false;
        if (!c->w[t])
            continue;
        struct probe_spec s;
        if (probe_spec_build(&s, p, src) < 0)
            return false;
        bool eq = probe_spec_equal(&s, &c->w[t]->spec);
        probe_spec_free(&s);
        if (!eq)
            return false;
    }
    return true;
}

/* Whether the new pod can keep the old probe state (same identity, address,
 * netns and probe specs). */
static bool probe_pod_compatible(const struct probe_pod *pp, const struct svcd_pod *pod)
{
    if (!probe_str_equal(pp->uid, pod->meta.uid))
        return false;
    if (pp->has_ip != (pod->n_ips > 0) || (pp->has_ip && !svcd_ip_equal(&pp->ip, &pod->ips[0])))
        return false;
    if (!probe_str_equal(pp->netns, probe_pod_netns(pod)))
        return false;
    if (pp->n_ctr != pod->n_containers)
        return false;
    for (size_t i = 0; i < pp->n_ctr; i++)
        if (!probe_ctr_same(&pp->ctrs[i], &pod->containers[i]))
            return false;
    return true;
}

static enum svcd_tristate probe_pod_compute(const struct probe_pod *pp)
{
    for (size_t i = 0; i < pp->n_ctr; i++)
        if (!probe_state_ready(&pp->ctrs[i].state))
            return SVCD_FALSE;
    return SVCD_TRUE;
}

static void probe_pod_update_verdict(struct probe_pod *pp)
{
    enum svcd_tristate v = probe_pod_compute(pp);
    if (v == pp->verdict)
        return;
    pp->verdict = v;
    const struct probe_pod_status *st = probe_status_get(pp->mgr, pp->ns, pp->name);
    if (v == SVCD_TRUE)
        log_info(PROBE_MOD, "pod %s is ready", pp->key);
    else
        log_info(PROBE_MOD, "pod %s is not ready: %s", pp->key, st ? st->ready_message : "");
    probe_mgr_queue(pp->mgr, pp->ns, pp->name, v);
}

/* ---- store sync --------------------------------------------------------------- */

static int probe_mgr_scan_pod(void *ctx, const struct svcd_pod *pod)
{
    struct probe_mgr *mgr = ctx;
    mgr->n_visits++;
    if (pod->phase != SVCD_PHASE_RUNNING || !probe_pod_has_probes(pod))
        return 0;                        /* no opinion; dropped below if tracked */
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", pod->meta.ns, pod->meta.name);
    struct probe_pod *pp = hmap_get(mgr->pods, key);
    if (pp && pp->fingerprint != pod->meta.fingerprint) {
        if (probe_pod_compatible(pp, pod)) {
            pp->fingerprint = pod->meta.fingerprint;
            pp->terminating = pod->meta.deletion_timestamp != NULL;
            pp->phase = pod->phase;
        } else {
            log_debug(PROBE_MOD, "pod %s changed: probes restart", key);
            hmap_del(mgr->pods, key);
            probe_pod_free(pp);
            pp = NULL;
        }
    }
    if (!pp) {
        pp = probe_pod_new(mgr, pod, key);
        if (!pp || hmap_set(mgr->pods, key, pp) < 0) {
            log_err(PROBE_MOD, "out of memory tracking pod %s", key);
            probe_pod_free(pp);
            return 0;
        }
        pp->verdict = probe_pod_compute(pp);
        log_debug(PROBE_MOD, "probing pod %s (%zu containers)", key, pp->n_ctr);
    }
    pp->seen_gen = mgr->scan_gen;
    if (pod->probe_ready != pp->verdict)
        probe_mgr_queue(mgr, pp->ns, pp->name, pp->verdict);
    return 0;
}

struct probe_scan_gone {
    struct probe_mgr *mgr;
    struct probe_pod **items;
    size_t n, cap;
};

static int probe_mgr_collect_gone(void *ctx, const char *key, void *value)
{
    struct probe_scan_gone *g = ctx;
    struct probe_pod *pp = value;
    if (pp->seen_gen == g->mgr->scan_gen)
        return 0;
    if (VEC_RESERVE(g->items, g->n, g->cap, 16) < 0)
        return 1;
    g->items[g->n++] = pp;
    return 0;
}

/* Stops probing pp (its pod is gone, stopped running or lost its probes)
 * and hands the pod's readiness back to its source. */
static void probe_mgr_forget(struct probe_mgr *mgr, struct probe_pod *pp)
{
    const struct svcd_pod *pod = store_pod_get(mgr->st, pp->ns, pp->name);
    if (pod && pod->probe_ready != SVCD_UNKNOWN)
        probe_mgr_queue(mgr, pp->ns, pp->name, SVCD_UNKNOWN);
    log_debug(PROBE_MOD, "stop probing pod %s", pp->key);
    hmap_del(mgr->pods, pp->key);
    probe_pod_free(pp);
}

/* After a sync: counts and gauges. */
static void probe_mgr_synced(struct probe_mgr *mgr)
{
    metric_add(mgr->m_visits, (double)mgr->n_visits);
    mgr->n_visits = 0;
    mgr->stats.pods = hmap_count(mgr->pods);
    metric_set(mgr->m_pods, (double)mgr->stats.pods);
}

/* Looks at every pod in the store (and forgets tracked pods not seen). */
static void probe_mgr_scan(struct probe_mgr *mgr)
{
    mgr->scan_gen++;
    store_foreach_pod(mgr->st, probe_mgr_scan_pod, mgr);

    struct probe_scan_gone gone = { .mgr = mgr };
    hmap_foreach(mgr->pods, probe_mgr_collect_gone, &gone);
    for (size_t i = 0; i < gone.n; i++)
        probe_mgr_forget(mgr, gone.items[i]);
    free(gone.items);
    probe_mgr_synced(mgr);
}

/* Looks again at the pods one commit changed (the store's list): a pod
 * gone, no longer Running or without probes is forgotten; the others go
 * through probe_mgr_scan_pod(). A verdict this manager wrote itself comes
 * back here too: the pod's fingerprint has not moved, so its state stays. */
static void probe_mgr_scan_changed(struct probe_mgr *mgr, const struct store_pod_ref *refs,
                                   size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct svcd_pod *pod =
            refs[i].deleted ? NULL : store_pod_get(mgr->st, refs[i].ns, refs[i].name);
        if (pod && pod->phase == SVCD_PHASE_RUNNING && probe_pod_has_probes(pod)) {
            probe_mgr_scan_pod(mgr, pod);
            continue;
        }
        mgr->n_visits++;
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", refs[i].ns, refs[i].name);
        struct probe_pod *pp = hmap_get(mgr->pods, key);
        if (pp)
            probe_mgr_forget(mgr, pp);
    }
    probe_mgr_synced(mgr);
}

static void probe_mgr_on_commit(void *ctx, struct store *st, uint64_t generation,
                                const struct store_change *changes, size_t n_changes,
                                bool pods_changed)
{
    struct probe_sub *sub = ctx;
    struct probe_mgr *mgr = sub->mgr;
    if (!pods_changed || !mgr)
        return;
    const struct store_pod_ref *refs;
    size_t n = store_changed_pods(st, &refs);
    if (n == SIZE_MAX)
        probe_mgr_scan(mgr);            /* the store lost the list */
    else
        probe_mgr_scan_changed(mgr, refs, n);
    mgr->initial_scan = false;
}

static void probe_mgr_on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct probe_mgr *mgr = arg;
    struct probe_pending *list = mgr->pending;
    size_t n = mgr->n_pending;
    mgr->pending = NULL;
    mgr->n_pending = mgr->cap_pending = 0;
    if (n == 0) {
        free(list);
        return;
    }
    store_begin(mgr->st);
    for (size_t i = 0; i < n; i++) {
        if (store_pod_set_probe_ready(mgr->st, list[i].ns, list[i].name, list[i].value) == 0)
            mgr->stats.store_updates++;
    }
    store_commit(mgr->st);               /* our own on_commit sees these pods again */
    for (size_t i = 0; i < n; i++) {
        free(list[i].ns);
        free(list[i].name);
    }
    free(list);
}

/* ---- life cycle ----------------------------------------------------------------- */

struct probe_mgr *probe_mgr_new_opts(struct event_base *base, struct store *st,
                                     const struct probe_options *opts)
{
    struct probe_mgr *mgr = calloc(1, sizeof(*mgr));
    if (!mgr)
        return NULL;
    mgr->base = base;
    mgr->st = st;
    if (opts)
        mgr->opts = *opts;
    if (mgr->opts.exec_uid == 0)
        mgr->opts.exec_uid = 65534;
    if (mgr->opts.exec_gid == 0)
        mgr->opts.exec_gid = 65534;
    mgr->pods = hmap_new();
    mgr->ev_flush = evtimer_new(base, probe_mgr_on_flush, mgr);
    mgr->sub = calloc(1, sizeof(*mgr->sub));
    if (!mgr->pods || !mgr->ev_flush || !mgr->sub)
        goto fail;
    mgr->sub->mgr = mgr;
    struct store_subscriber sub = { .on_commit = probe_mgr_on_commit, .ctx = mgr->sub };
    if (store_subscribe(st, &sub) < 0)
        goto fail;
    probe_mgr_metrics_init(mgr);
    mgr->initial_scan = true;
    probe_mgr_scan(mgr);
    if (store_generation(st) > 0 || mgr->stats.pods > 0)
        mgr->initial_scan = false;   /* pods already there got the full spread */
    return mgr;
fail:
    hmap_free(mgr->pods);
    if (mgr->ev_flush)
        event_free(mgr->ev_flush);
    free(mgr->sub);
    free(mgr);
    return NULL;
}

struct probe_mgr *probe_mgr_new(struct event_base *base, struct store *st)
{
    return probe_mgr_new_opts(base, st, NULL);
}

static int probe_mgr_free_pod(void *ctx, const char *key, void *value)
{
    probe_pod_free(value);
    return 0;
}

void probe_mgr_free(struct probe_mgr *mgr)
{
    if (!mgr)
        return;
    hmap_foreach(mgr->pods, probe_mgr_free_pod, NULL);
    hmap_free(mgr->pods);
    if (mgr->ev_flush)
        event_free(mgr->ev_flush);
    for (size_t i = 0; i < mgr->n_pending; i++) {
        free(mgr->pending[i].ns);
        free(mgr->pending[i].name);
    }
    free(mgr->pending);
    store_unsubscribe(mgr->st, mgr->sub);
    free(mgr->sub);
    free(mgr);
}

void probe_mgr_get_stats(const struct probe_mgr *mgr, struct probe_stats *out)
{
    *out = mgr->stats;
    out->pods = hmap_count(mgr->pods);
}

/* ---- status --------------------------------------------------------------------- */

static void probe_pod_fill_status(struct probe_pod *pp)
{
    struct probe_pod_status *s = &pp->status;
    memset(s, 0, sizeof(*s));
    s->ns = pp->ns;
    s->name = pp->name;
    s->phase = pp->phase;
    s->terminating = pp->terminating;
    s->ready = pp->verdict;
    s->last_type = pp->last_type;
    s->last_result = pp->last_result;
    snprintf(s->reason, sizeof(s->reason), "%s", pp->last_reason);
    s->last_probe_ms = pp->last_ms;
    s->n_containers = pp->n_ctr;
    s->containers = pp->cstatus;
    s->ready_reason = "";
    for (size_t i = 0; i < pp->n_ctr; i++) {
        struct probe_ctr *c = &pp->ctrs[i];
        struct probe_container_status *cs = &pp->cstatus[i];
        memset(cs, 0, sizeof(*cs));
        cs->name = c->name ? c->name : "";
        cs->started = c->state.started;
        cs->ready = c->state.ready;
        cs->live = !c->state.live_failed;
        cs->restarts_needed = c->state.restarts_needed;
        s->restarts_needed += c->state.restarts_needed;
        for (int t = 0; t < PROBE_TYPE_COUNT; t++)
            if (c->w[t])
                cs->probes[t] = c->w[t]->st;
        if (s->ready_message[0] || probe_state_ready(&c->state))
            continue;
        s->ready_reason = "ContainersNotReady";
        enum probe_type t;
        const char *what;
        if (!c->state.started) {
            t = PROBE_TYPE_STARTUP;
            what = "startup probe has not succeeded yet";
        } else if (c->state.live_failed) {
            t = PROBE_TYPE_LIVENESS;
            what = "liveness probe failed, restart needed";
        } else {
            t = PROBE_TYPE_READINESS;
            what = "readiness probe failed";
        }
        const struct probe_check_status *ps = c->w[t] ? &c->w[t]->st : NULL;
        if (ps && ps->runs > 0 && ps->last_result != PROBE_RESULT_SUCCESS && ps->reason[0])
            snprintf(s->ready_message, sizeof(s->ready_message), "container %s: %s: %s", cs->name,
                     what, ps->reason);
        else if (t == PROBE_TYPE_READINESS && (!ps || ps->runs == 0 ||
                                                ps->last_result == PROBE_RESULT_SUCCESS))
            snprintf(s->ready_message, sizeof(s->ready_message),
                     "container %s: readiness probe has not succeeded yet", cs->name);
        else
            snprintf(s->ready_message, sizeof(s->ready_message), "container %s: %s", cs->name,
                     what);
    }
}

const struct probe_pod_status *probe_status_get(struct probe_mgr *mgr, const char *ns,
                                                const char *name)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    struct probe_pod *pp = hmap_get(mgr->pods, key);
    if (!pp)
        return NULL;
    probe_pod_fill_status(pp);
    return &pp->status;
}

struct probe_status_iter {
    int (*cb)(void *ctx, const struct probe_pod_status *st);
    void *ctx;
};

static int probe_status_iter_one(void *ctx, const char *key, void *value)
{
    struct probe_status_iter *it = ctx;
    struct probe_pod *pp = value;
    probe_pod_fill_status(pp);
    return it->cb(it->ctx, &pp->status);
}

int probe_status_foreach(struct probe_mgr *mgr,
                         int (*cb)(void *ctx, const struct probe_pod_status *st), void *ctx)
{
    struct probe_status_iter it = { cb, ctx };
    return hmap_foreach(mgr->pods, probe_status_iter_one, &it);
}

static json_t *probe_json_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

json_t *probe_status_json(const struct probe_pod_status *s)
{
    json_t *o = json_object();
    json_t *conds = json_array();
    json_t *cond = json_object();
    json_t *last = json_object();
    json_t *ctrs = json_array();
    if (!o || !conds || !cond || !last || !ctrs)
        goto fail;
    json_object_set_new(o, "namespace", json_string(s->ns));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "phase", json_string(svcd_pod_phase_name(s->phase)));
    json_object_set_new(o, "terminating", json_boolean(s->terminating));
    json_object_set_new(o, "ready", json_boolean(s->ready == SVCD_TRUE));
    json_object_set_new(cond, "type", json_string("Ready"));
    json_object_set_new(cond, "status", json_string(s->ready == SVCD_TRUE ? "True" : "False"));
    json_object_set_new(cond, "reason", json_string(s->ready_reason));
    json_object_set_new(cond, "message", json_string(s->ready_message));
    json_array_append_new(conds, cond);
    cond = NULL;
    json_object_set_new(o, "conditions", conds);
    conds = NULL;
    json_object_set_new(o, "restartsNeeded", json_integer(s->restarts_needed));
    if (s->last_probe_ms) {
        json_object_set_new(last, "type", json_string(probe_type_name(s->last_type)));
        json_object_set_new(last, "result", json_string(probe_result_name(s->last_result)));
        json_object_set_new(last, "reason", json_string(s->reason));
        json_object_set_new(last, "time", probe_json_time(s->last_probe_ms));
        json_object_set_new(o, "lastProbe", last);
    } else {
        json_decref(last);
        json_object_set_new(o, "lastProbe", json_null());
    }
    last = NULL;
    for (size_t i = 0; i < s->n_containers; i++) {
        const struct probe_container_status *cs = &s->containers[i];
        json_t *c = json_object();
        json_t *probes = json_object();
        if (!c || !probes) {
            json_decref(c);
            json_decref(probes);
            goto fail;
        }
        json_object_set_new(c, "name", json_string(cs->name));
        json_object_set_new(c, "started", json_boolean(cs->started));
        json_object_set_new(c, "ready", json_boolean(cs->ready));
        json_object_set_new(c, "live", json_boolean(cs->live));
        json_object_set_new(c, "restartsNeeded", json_integer(cs->restarts_needed));
        for (int t = 0; t < PROBE_TYPE_COUNT; t++) {
            const struct probe_check_status *ps = &cs->probes[t];
            if (!ps->configured)
                continue;
            json_t *p = json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:I,s:f}",
                                  "kind", probe_kind_name(ps->kind),
                                  "result", probe_result_name(ps->last_result),
                                  "reason", ps->reason,
                                  "time", probe_json_time(ps->last_probe_ms),
                                  "runs", (json_int_t)ps->runs,
                                  "consecutiveSuccesses", (json_int_t)ps->consecutive_successes,
                                  "consecutiveFailures", (json_int_t)ps->consecutive_failures,
                                  "lastDurationSeconds", ps->last_duration_s);
            if (p)
                json_object_set_new(probes, probe_type_name((enum probe_type)t), p);
        }
        json_object_set_new(c, "probes", probes);
        json_array_append_new(ctrs, c);
    }
    json_object_set_new(o, "containers", ctrs);
    return o;
fail:
    json_decref(o);
    json_decref(conds);
    json_decref(cond);
    json_decref(last);
    json_decref(ctrs);
    return NULL;
}
