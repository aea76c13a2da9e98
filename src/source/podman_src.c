/*
 * podman_src: podman's pods -> store, kept current by the events stream.
 *
 * Data flow:
 *   events stream (one long GET) --> dirty pod IDs --> a "round":
 *     GET pods/json[?filters={"id":[...]}] then GET containers/{id}/json
 *     for each of their containers (up to PM_PARALLEL at once) -->
 *     podman_pod_build() per pod --> one store batch.
 * A full round (no filter) runs whenever the stream (re)connects, and also
 * deletes the pods podman no longer has; a targeted round deletes the
 * requested pods that the list no longer returns. Only one round runs at a
 * time; events arriving meanwhile queue up for the next one.
 *
 * Transport: libevent 2.1's evhttp client cannot reach a unix socket (its
 * connect path always resolves host:port over TCP; AF_UNIX came in 2.2), so
 * each request is one HTTP/1.1 exchange with `Connection: close` on its own
 * AF_UNIX bufferevent. What arrives is fed to a podman_resp, which frames
 * the response with nodejs/http-parser (Content-Length, chunked, or to EOF)
 * under size caps; the events stream (chunked) reaches it de-chunked and is
 * split into lines there. JSON is parsed by jansson.
 *
 * Failure: a failed request fails its round; nothing is removed from the
 * store. The stream being lost (podman restarted, socket removed) starts a
 * reconnect with backoff, and the reconnect is followed by a full round.
 *
 * Healthchecks: podman runs none on a timer without systemd, so each
 * running container with one gets a timer here that calls
 * GET containers/{id}/healthcheck every interval; a result that differs
 * from the state last read re-reads the pod.
 */
#include "svcd/podman.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <http_parser.h>
#include <jansson.h>

#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/store.h"

#define PM_MOD "podman"
#define PM_API "/v4.0.0/libpod"
#define PM_PARALLEL 8                     /* inspects in flight per round */
#define PM_MAX_IDS_PER_ROUND 64           /* more dirty pods: a full round */
#define PM_REQ_TIMEOUT_S 30
#define PM_SETTLE_US 2000                 /* coalesce bursts of events */
#define PM_BACKOFF_MIN_MS 100
#define PM_BACKOFF_MAX_MS 5000

/* ---- an HTTP response, read with nodejs/http-parser ------------------------ */

struct podman_resp {
    http_parser hp;               /* hp.data = this */
    bool stream;
    podman_resp_line_fn line;
    void *ctx;
    int status;                   /* 0 until the status code has been read */
    bool headers_done;
    bool complete;
    bool in_value;                /* last header callback was a value */
    size_t n_headers;
    size_t header_len;            /* name + value of the current header */
    struct evbuffer *body;        /* collected body */
    struct evbuffer *linebuf;     /* partial line of a stream */
    enum podman_resp_rc rc;
    char err[96];
};

static int pm_resp_fail(struct podman_resp *r, const char *why)
{
    snprintf(r->err, sizeof(r->err), "%s", why);
    return -1;   /* stops http_parser_execute with HPE_CB_* */
}

/* Records the status code once the status line has been read. */
static int pm_resp_status_read(struct podman_resp *r, const http_parser *hp)
{
    if (hp->status_code < 100)   /* http-parser takes "HTTP/1.1 0 x" */
        return pm_resp_fail(r, "bad status code");
    r->status = hp->status_code;
    return 0;
}

static int pm_resp_on_status(http_parser *hp, const char *at, size_t len)
{
    struct podman_resp *r = hp->data;

    (void)at;
    /* the reason phrase is not used; the status line counts as a header */
    if (pm_resp_status_read(r, hp))
        return -1;
    r->header_len += len;
    if (r->header_len > PODMAN_HTTP_MAX_HEADER)
        return pm_resp_fail(r, "status line too long");
    return 0;
}

static int pm_resp_on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct podman_resp *r = hp->data;

    (void)at;
    if (pm_resp_status_read(r, hp))   /* also when there was no reason phrase */
        return -1;
    if (r->in_value || r->n_headers == 0) {   /* a new header starts */
        if (++r->n_headers > PODMAN_HTTP_MAX_HEADERS)
            return pm_resp_fail(r, "too many headers");
        r->header_len = 0;
        r->in_value = false;
    }
    r->header_len += len;
    if (r->header_len > PODMAN_HTTP_MAX_HEADER)
        return pm_resp_fail(r, "header too long");
    return 0;
}

static int pm_resp_on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct podman_resp *r = hp->data;

    (void)at;
    r->in_value = true;
    r->header_len += len;
    if (r->header_len > PODMAN_HTTP_MAX_HEADER)
        return pm_resp_fail(r, "header too long");
    return 0;
}

static int pm_resp_on_headers_complete(http_parser *hp)
{
    struct podman_resp *r = hp->data;

    if (pm_resp_status_read(r, hp))
        return -1;
    /* a declared length over the cap fails now, not after 64 MiB */
    if (!(r->stream && hp->status_code == 200) && !(hp->flags & F_CHUNKED) &&
        hp->content_length != ULLONG_MAX && hp->content_length > PODMAN_HTTP_MAX_BODY)
        return pm_resp_fail(r, "body too large");
    r->headers_done = true;
    if (r->line)
        r->line(r->ctx, NULL, 0);
    return 0;   /* 0: a body may follow (1 would mean none, as for HEAD) */
}

/* Hands the complete lines in linebuf to the line callback. */
static int pm_resp_lines(struct podman_resp *r)
{
    char *line;
    size_t n;

    while ((line = evbuffer_readln(r->linebuf, &n, EVBUFFER_EOL_LF))) {
        if (n > PODMAN_HTTP_MAX_LINE) {   /* arrived whole in one piece */
            free(line);
            return pm_resp_fail(r, "stream line too long");
        }
        if (n && r->line)
            r->line(r->ctx, line, n);
        free(line);
    }
    if (evbuffer_get_length(r->linebuf) > PODMAN_HTTP_MAX_LINE)
        return pm_resp_fail(r, "stream line too long");
    return 0;
}

static int pm_resp_on_body(http_parser *hp, const char *at, size_t len)
{
    struct podman_resp *r = hp->data;

    if (r->stream && hp->status_code == 200) {
        if (evbuffer_add(r->linebuf, at, len))
            return pm_resp_fail(r, "out of memory");
        if (memchr(at, '\n', len))   /* rescan only when a line ended */
            return pm_resp_lines(r);
        if (evbuffer_get_length(r->linebuf) > PODMAN_HTTP_MAX_LINE)
            return pm_resp_fail(r, "stream line too long");
        return 0;
    }
    if (evbuffer_get_length(r->body) + len > PODMAN_HTTP_MAX_BODY)
        return pm_resp_fail(r, "body too large");
    if (evbuffer_add(r->body, at, len))
        return pm_resp_fail(r, "out of memory");
    return 0;
}

static int pm_resp_on_message_complete(http_parser *hp)
{
    struct podman_resp *r = hp->data;

    r->complete = true;
    http_parser_pause(hp, 1);   /* one response per connection: ignore the rest */
    return 0;
}

static const http_parser_settings pm_resp_settings = {
    .on_status = pm_resp_on_status,
    .on_header_field = pm_resp_on_header_field,
    .on_header_value = pm_resp_on_header_value,
    .on_headers_complete = pm_resp_on_headers_complete,
    .on_body = pm_resp_on_body,
    .on_message_complete = pm_resp_on_message_complete,
};

struct podman_resp *podman_resp_new(bool stream, podman_resp_line_fn line, void *ctx)
{
    struct podman_resp *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->body = evbuffer_new();
    r->linebuf = evbuffer_new();
    if (!r->body || !r->linebuf) {
        podman_resp_free(r);
        return NULL;
    }
    http_parser_init(&r->hp, HTTP_RESPONSE);
    r->hp.data = r;
    r->stream = stream;
    r->line = line;
    r->ctx = ctx;
    r->rc = PODMAN_RESP_MORE;
    return r;
}

void podman_resp_free(struct podman_resp *r)
{
    if (!r)
        return;
    if (r->body)
        evbuffer_free(r->body);
    if (r->linebuf)
        evbuffer_free(r->linebuf);
    free(r);
}

enum podman_resp_rc podman_resp_feed(struct podman_resp *r, const char *data, size_t len)
{
    size_t used;
    enum http_errno e;

    if (r->rc != PODMAN_RESP_MORE)
        return r->rc;
    used = http_parser_execute(&r->hp, &pm_resp_settings, len ? data : NULL, len);
    e = HTTP_PARSER_ERRNO(&r->hp);
    if (r->err[0]) {
        r->rc = PODMAN_RESP_ERROR;                       /* a callback refused */
    } else if (r->complete) {
        r->rc = PODMAN_RESP_DONE;
    } else if (e != HPE_OK) {
        snprintf(r->err, sizeof(r->err), "%s", http_errno_description(e));
        r->rc = PODMAN_RESP_ERROR;
    } else if (len == 0) {
        snprintf(r->err, sizeof(r->err), "connection closed %s",
                 r->headers_done ? "inside the body" : "before the response");
        r->rc = PODMAN_RESP_ERROR;
    } else if (used != len) {
        snprintf(r->err, sizeof(r->err), "parser stopped at byte %zu of %zu", used, len);
        r->rc = PODMAN_RESP_ERROR;
    }
    return r->rc;
}

int podman_resp_status(const struct podman_resp *r)
{
    return r->status;
}

bool podman_resp_headers_done(const struct podman_resp *r)
{
    return r->headers_done;
}

const char *podman_resp_body(struct podman_resp *r, size_t *len)
{
    unsigned char *p;

    *len = evbuffer_get_length(r->body);
    p = *len ? evbuffer_pullup(r->body, -1) : NULL;
    if (!p) {
        *len = 0;
        return "";
    }
    return (const char *)p;
}

const char *podman_resp_error(const struct podman_resp *r)
{
    return r->err;
}

/* ---- one request on its own unix-socket connection ------------------------ */

struct pm_req;
/* status: the HTTP status, or -1 when the exchange failed. The body is read
 * with pm_json(r) during the call. */
typedef void (*pm_done_cb)(struct pm_req *r, int status);
/* line NULL: headers done (status in r->resp) */
typedef void (*pm_line_cb)(struct pm_req *r, const char *line, size_t len);

struct pm_req {
    struct podman_src *ps;
    struct bufferevent *bev;
    struct podman_resp *resp;
    bool stream;             /* events: body delivered line by line */
    pm_done_cb done;
    pm_line_cb line;
    void *arg;               /* job-specific */
    size_t idx;              /* job-specific */
    char what[160];          /* for logs */
    struct event *ev_fail;   /* reports a failed connect from the loop */
    struct pm_req *prev, *next;
};

/* ---- rounds --------------------------------------------------------------- */

struct pm_job {
    const json_t *entry;          /* element of round->list */
    const char *pod_id;
    char **cids;                  /* containers to inspect */
    size_t n_cids;
    json_t **inspects;            /* results, NULL where missing */
    bool vanished;                /* a container 404'd: read again later */
};

struct pm_round {
    bool full;
    char **ids;                   /* targeted pod IDs (not full) */
    size_t n_ids;
    json_t *list;
    struct pm_job *jobs;
    size_t n_jobs;
    /* flat queue of inspects: (job, container) */
    size_t *q_job, *q_ctr;
    size_t q_n, q_next;
    size_t inflight;
    bool failed;
};

/* What this source has put in the store, per podman pod ID. */
struct pm_known {
    char *ns, *name;
    char **cids;
    size_t n_cids;
};

struct pm_health {
    struct podman_src *ps;
    char *cid;
    char *pod_id;
    struct event *ev;
    uint32_t interval_s;
    char last[16];                /* status podman reported at the last read */
    bool inflight;
    bool seen;                    /* mark for reconcile */
};

struct podman_src {
    struct event_base *base;
    struct store *st;
    char *path;
    char *node_name;
    struct pm_req *reqs;          /* all live requests */
    struct pm_req *stream;        /* events request, NULL when down */
    bool connected;
    bool synced;
    bool need_full;
    struct hmap *dirty;           /* pod ID -> (void *)1 */
    struct pm_round *round;
    struct event *ev_settle;
    struct event *ev_retry;
    uint32_t backoff_ms;
    struct hmap *known;           /* pod ID -> pm_known */
    struct hmap *cmap;            /* container ID -> pod ID (owned string) */
    struct hmap *health;          /* container ID -> pm_health */
    struct podman_stats stats;
    struct metric *m_last_sync;
    struct metric *m_lists, *m_events, *m_errors, *m_reconnects, *m_health, *m_connected;
    struct metric *m_round_seconds;
};

static void pm_round_start(struct podman_src *ps);
static void pm_schedule(struct podman_src *ps);
static void pm_retry_arm(struct podman_src *ps);

/* ---- request plumbing ------------------------------------------------------ */

static void pm_req_free(struct pm_req *r)
{
    if (!r)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else if (r->ps->reqs == r)
        r->ps->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->ps->stream == r)
        r->ps->stream = NULL;
    if (r->bev)
        bufferevent_free(r->bev);
    if (r->ev_fail)
        event_free(r->ev_fail);
    podman_resp_free(r->resp);
    free(r);
}

/* Ends the request: calls done once, then frees it. */
static void pm_req_finish(struct pm_req *r, int status)
{
    pm_done_cb done = r->done;

    if (r->bev)
        bufferevent_disable(r->bev, EV_READ | EV_WRITE);
    if (status < 0) {
        r->ps->stats.errors++;
        metric_add(r->ps->m_errors, 1);
    }
    if (done)
        done(r, status);
    pm_req_free(r);
}

/* From inside podman_resp_feed: headers done, or a line of the stream. */
static void pm_req_line_cb(void *ctx, const char *line, size_t len)
{
    struct pm_req *r = ctx;

    if (!line && r->stream && podman_resp_status(r->resp) == 200)
        bufferevent_set_timeouts(r->bev, NULL, NULL);   /* events may be rare */
    if (r->line)
        r->line(r, line, len);
}

/* Feeds what has arrived to the parser (eof: then the end of input).
 * Returns true when the request finished (and was freed); always with eof. */
static bool pm_req_pump(struct pm_req *r, struct evbuffer *in, bool eof)
{
    enum podman_resp_rc rc = PODMAN_RESP_MORE;
    size_t n;

    while (rc == PODMAN_RESP_MORE && (n = evbuffer_get_contiguous_space(in)) > 0) {
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        rc = podman_resp_feed(r->resp, p, n);
        evbuffer_drain(in, n);
    }
    if (rc == PODMAN_RESP_MORE && eof) {
        rc = podman_resp_feed(r->resp, NULL, 0);
        /* the events stream ends when podman goes away, often mid-chunk:
         * that is the end of the stream, not a failed request */
        if (rc == PODMAN_RESP_ERROR && r->stream && podman_resp_headers_done(r->resp)) {
            log_debug(PM_MOD, "%s: %s", r->what, podman_resp_error(r->resp));
            rc = PODMAN_RESP_DONE;
        }
    }
    if (rc == PODMAN_RESP_DONE) {
        pm_req_finish(r, podman_resp_status(r->resp));
        return true;
    }
    if (rc == PODMAN_RESP_ERROR) {
        log_warn(PM_MOD, "%s: bad HTTP response: %s", r->what, podman_resp_error(r->resp));
        pm_req_finish(r, -1);
        return true;
    }
    return false;
}

static void pm_req_read_cb(struct bufferevent *bev, void *arg)
{
    pm_req_pump(arg, bufferevent_get_input(bev), false);
}

static void pm_req_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct pm_req *r = arg;

    if (what & BEV_EVENT_EOF) {
        pm_req_pump(r, bufferevent_get_input(bev), true);   /* always ends r */
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_warn(PM_MOD, "%s: timed out", r->what);
    } else {
        log_debug(PM_MOD, "%s: %s", r->what, strerror(EVUTIL_SOCKET_ERROR()));
    }
    pm_req_finish(r, -1);
}

static void pm_req_fail_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pm_req_finish(arg, -1);
}

/* Starts GET path on a new connection. Returns the request, whose done
 * callback runs later from the loop (never from inside this call, also
 * when the socket cannot be reached), or NULL on ENOMEM (done not called). */
static struct pm_req *pm_get(struct podman_src *ps, const char *path, bool stream,
                             pm_done_cb done, pm_line_cb line, void *arg, size_t idx)
{
    struct sockaddr_un sa;
    struct pm_req *r;
    struct timeval tv = { PM_REQ_TIMEOUT_S, 0 }, now = { 0, 0 };
    int fd = -1;

    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->ps = ps;
    r->resp = podman_resp_new(stream, pm_req_line_cb, r);
    r->ev_fail = evtimer_new(ps->base, pm_req_fail_cb, r);
    if (!r->resp || !r->ev_fail) {
        podman_resp_free(r->resp);
        if (r->ev_fail)
            event_free(r->ev_fail);
        free(r);
        return NULL;
    }
    r->done = done;
    r->line = line;
    r->arg = arg;
    r->idx = idx;
    r->stream = stream;
    snprintf(r->what, sizeof(r->what), "GET %.140s", path);
    r->next = ps->reqs;
    if (ps->reqs)
        ps->reqs->prev = r;
    ps->reqs = r;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, ps->path, strlen(ps->path));  /* length checked in new() */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        log_debug(PM_MOD, "connect %s: %s", ps->path, strerror(errno));
        goto fail;
    }
    r->bev = bufferevent_socket_new(ps->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!r->bev)
        goto fail;
    fd = -1;
    bufferevent_setcb(r->bev, pm_req_read_cb, NULL, pm_req_event_cb, r);
    bufferevent_set_timeouts(r->bev, &tv, &tv);
    /* every request has its own connection: close it after the response */
    if (evbuffer_add_printf(bufferevent_get_output(r->bev),
                            "GET %s HTTP/1.1\r\nHost: podman\r\nUser-Agent: svcd\r\n"
                            "Accept: application/json\r\nConnection: close\r\n\r\n",
                            path) < 0)
        goto fail;
    bufferevent_enable(r->bev, EV_READ | EV_WRITE);
    return r;
fail:
    if (fd >= 0)
        close(fd);
    evtimer_add(r->ev_fail, &now);
    return r;
}

/* JSON body of a 200 answer, or NULL (logged). */
static json_t *pm_json(struct pm_req *r)
{
    json_error_t jerr;
    size_t len;
    const char *p = podman_resp_body(r->resp, &len);
    json_t *j = len ? json_loadb(p, len, 0, &jerr) : NULL;

    if (!j)
        log_warn(PM_MOD, "%s: bad JSON: %s", r->what, len ? jerr.text : "empty body");
    return j;
}

/* ---- known pods and the container -> pod map ------------------------------ */

static void pm_known_free(struct pm_known *k)
{
    size_t i;

    if (!k)
        return;
    free(k->ns);
    free(k->name);
    for (i = 0; i < k->n_cids; i++)
        free(k->cids[i]);
    free(k->cids);
    free(k);
}

static void pm_health_free(struct pm_health *h)
{
    if (!h)
        return;
    if (h->ev)
        event_free(h->ev);
    free(h->cid);
    free(h->pod_id);
    free(h);
}

static void pm_health_drop(struct podman_src *ps, const char *cid)
{
    pm_health_free(hmap_del(ps->health, cid));
}

/* Forgets a pod's containers: map entries, and the healthcheck timers of
 * those not in keep (NULL: all). */
static void pm_known_unmap(struct podman_src *ps, struct pm_known *k, const struct pm_known *keep)
{
    size_t i, j;
    bool kept;

    for (i = 0; i < k->n_cids; i++) {
        free(hmap_del(ps->cmap, k->cids[i]));
        kept = false;
        for (j = 0; keep && j < keep->n_cids; j++)
            if (strcmp(keep->cids[j], k->cids[i]) == 0)
                kept = true;
        if (!kept)
            pm_health_drop(ps, k->cids[i]);
    }
}

/* Deletes a pod this source created. */
static void pm_pod_forget(struct podman_src *ps, const char *pod_id)
{
    struct pm_known *k = hmap_del(ps->known, pod_id);

    if (!k)
        return;
    pm_known_unmap(ps, k, NULL);
    if (store_pod_delete(ps->st, k->ns, k->name) == 0)
        log_info(PM_MOD, "pod %s/%s removed", k->ns, k->name);
    pm_known_free(k);
}

/* ---- healthchecks -------------------------------------------------------- */

static void pm_dirty_add(struct podman_src *ps, const char *pod_id)
{
    if (pod_id && *pod_id && !hmap_get(ps->dirty, pod_id))
        hmap_set(ps->dirty, pod_id, (void *)1);
}

static void pm_health_arm(struct pm_health *h, uint32_t secs)
{
    struct timeval tv = { (time_t)secs, 0 };
    evtimer_add(h->ev, &tv);
}

static void pm_health_done(struct pm_req *r, int status)
{
    struct podman_src *ps = r->ps;
    struct pm_health *h = hmap_get(ps->health, (const char *)r->arg);
    json_t *j = NULL;
    const char *st;

    free(r->arg);
    r->arg = NULL;
    if (!h)
        return;   /* container went away meanwhile */
    h->inflight = false;
    if (status == 200 && (j = pm_json(r))) {
        st = json_string_value(json_object_get(j, "Status"));
        log_debug(PM_MOD, "healthcheck %.12s: %s", h->cid, st ? st : "?");
        if (st && strcmp(st, h->last) != 0) {
            pm_dirty_add(ps, h->pod_id);
            pm_schedule(ps);
        }
    } else if (status >= 0) {
        log_debug(PM_MOD, "healthcheck %.12s: HTTP %d", h->cid, status);
        pm_dirty_add(ps, h->pod_id);   /* e.g. stopped meanwhile */
        pm_schedule(ps);
    }
    json_decref(j);
    pm_health_arm(h, h->interval_s);
}

static void pm_health_fire(evutil_socket_t fd, short what, void *arg)
{
    struct pm_health *h = arg;
    struct podman_src *ps = h->ps;
    char path[256];
    char *key;

    (void)fd;
    (void)what;
    if (h->inflight)
        return;
    key = strdup(h->cid);
    if (!key) {
        pm_health_arm(h, h->interval_s);
        return;
    }
    h->inflight = true;
    ps->stats.healthchecks++;
    metric_add(ps->m_health, 1);
    snprintf(path, sizeof(path), PM_API "/containers/%s/healthcheck", h->cid);
    if (!pm_get(ps, path, false, pm_health_done, NULL, key, 0)) {
        free(key);
        h->inflight = false;
        pm_health_arm(h, h->interval_s);
    }
}

/* Makes sure a running container with a healthcheck has its timer. */
static void pm_health_ensure(struct podman_src *ps, const char *pod_id, const json_t *ins)
{
    const char *cid = json_string_value(json_object_get(ins, "Id"));
    const json_t *state = json_object_get(ins, "State");
    const json_t *health = json_object_get(state, "Health");
    const char *st = json_string_value(json_object_get(health, "Status"));
    uint32_t iv = podman_healthcheck_interval(ins);
    struct pm_health *h;

    if (!cid)
        return;
    if (!iv || !json_is_true(json_object_get(state, "Running"))) {
        pm_health_drop(ps, cid);
        return;
    }
    h = hmap_get(ps->health, cid);
    if (!h) {
        h = calloc(1, sizeof(*h));
        if (!h || !(h->cid = strdup(cid)) || !(h->pod_id = strdup(pod_id)) ||
            !(h->ev = evtimer_new(ps->base, pm_health_fire, h)) || hmap_set(ps->health, cid, h)) {
            pm_health_free(h);
            return;
        }
        h->ps = ps;
        h->interval_s = iv;
        pm_health_arm(h, 0);   /* first check at once */
    }
    h->interval_s = iv;
    snprintf(h->last, sizeof(h->last), "%s", st ? st : "");
}

/* ---- rounds ------------------------------------------------------------------ */

static void pm_round_free(struct pm_round *rd)
{
    size_t i, j;

    if (!rd)
        return;
    for (i = 0; i < rd->n_ids; i++)
        free(rd->ids[i]);
    free(rd->ids);
    for (i = 0; i < rd->n_jobs; i++) {
        for (j = 0; j < rd->jobs[i].n_cids; j++) {
            free(rd->jobs[i].cids[j]);
            json_decref(rd->jobs[i].inspects[j]);
        }
        free(rd->jobs[i].cids);
        free(rd->jobs[i].inspects);
    }
    free(rd->jobs);
    free(rd->q_job);
    free(rd->q_ctr);
    json_decref(rd->list);
    free(rd);
}

/* Known pod IDs that a full list did not return. */
struct pm_gone {
    struct hmap *seen;
    char **ids;
    size_t n, cap;
};

static int pm_gone_cb(void *cx, const char *key, void *val)
{
    struct pm_gone *g = cx;
    char *d;

    (void)val;
    if (!hmap_get(g->seen, key) && g->n < g->cap && (d = strdup(key)))
        g->ids[g->n++] = d;
    return 0;
}

/* Applies a completed round to the store as one batch. */
static void pm_round_apply(struct podman_src *ps, struct pm_round *rd)
{
    struct hmap *seen = hmap_new();
    size_t i, j, upserts = 0;
    char err[256];

    if (!seen) {
        rd->failed = true;
        return;
    }
    store_begin(ps->st);
    for (i = 0; i < rd->n_jobs; i++) {
        struct pm_job *jb = &rd->jobs[i];
        struct svcd_pod *pod;
        struct pm_known *k, *old;

        if (!jb->pod_id)
            continue;
        hmap_set(seen, jb->pod_id, (void *)1);
        err[0] = '\0';
        pod = podman_pod_build(jb->entry, (const json_t *const *)jb->inspects, jb->n_cids,
                               ps->node_name, err, sizeof(err));
        if (err[0])
            log_warn(PM_MOD, "%s", err);
        if (!pod)
            continue;
        if (jb->vanished)
            pm_dirty_add(ps, jb->pod_id);
        k = calloc(1, sizeof(*k));
        if (!k || !(k->ns = strdup(pod->meta.ns)) || !(k->name = strdup(pod->meta.name)) ||
            (jb->n_cids && !(k->cids = calloc(jb->n_cids, sizeof(char *))))) {
            pm_known_free(k);
            model_pod_free(pod);
            continue;
        }
        for (j = 0; j < jb->n_cids; j++)
            if ((k->cids[k->n_cids] = strdup(jb->cids[j])))
                k->n_cids++;
        old = hmap_get(ps->known, jb->pod_id);
        if (old) {
            pm_known_unmap(ps, old, k);
            if (strcmp(old->ns, k->ns) || strcmp(old->name, k->name))
                store_pod_delete(ps->st, old->ns, old->name);
            pm_known_free(old);
        } else {
            log_info(PM_MOD, "pod %s/%s (%.12s) %s, %s", k->ns, k->name, jb->pod_id,
                     svcd_pod_phase_name(pod->phase),
                     pod->ready_condition == SVCD_TRUE ? "ready" : "not ready");
        }
        if (hmap_set(ps->known, jb->pod_id, k)) {
            pm_known_free(k);
            model_pod_free(pod);
            continue;
        }
        for (j = 0; j < k->n_cids; j++) {
            char *pid = strdup(jb->pod_id);
            if (pid && hmap_set(ps->cmap, k->cids[j], pid))
                free(pid);
        }
        for (j = 0; j < jb->n_cids; j++)
            if (jb->inspects[j] &&
                !json_is_true(json_object_get(jb->inspects[j], "IsInfra")))
                pm_health_ensure(ps, jb->pod_id, jb->inspects[j]);
        store_pod_upsert(ps->st, pod);
        upserts++;
    }
    /* deletions */
    if (rd->full) {
        struct pm_gone g = { seen, NULL, 0, hmap_count(ps->known) };

        g.ids = calloc(g.cap ? g.cap : 1, sizeof(char *));
        if (g.ids) {
            /* collect first: the map must not change during foreach */
            hmap_foreach(ps->known, pm_gone_cb, &g);
            for (i = 0; i < g.n; i++) {
                pm_pod_forget(ps, g.ids[i]);
                free(g.ids[i]);
            }
            free(g.ids);
        }
    } else {
        for (i = 0; i < rd->n_ids; i++)
            if (!hmap_get(seen, rd->ids[i]))
                pm_pod_forget(ps, rd->ids[i]);
    }
    store_commit(ps->st);
    hmap_free(seen);
    ps->stats.lists++;
    metric_add(ps->m_lists, 1);
    if (rd->full) {
        ps->stats.full_lists++;
        if (!ps->synced)
            log_info(PM_MOD, "synced: %zu pods from %s", hmap_count(ps->known), ps->path);
        ps->synced = true;
        metric_set_now(ps->m_last_sync);
    }
    ps->stats.pods = hmap_count(ps->known);
    log_debug(PM_MOD, "%s round: %zu pods read", rd->full ? "full" : "targeted", upserts);
}

/* Ends the current round (applied or not) and starts the next if due. */
static void pm_round_end(struct podman_src *ps)
{
    struct pm_round *rd = ps->round;

    if (!rd || rd->inflight > 0)
        return;
    if (!rd->failed && rd->q_next >= rd->q_n)
        pm_round_apply(ps, rd);
    if (rd->failed) {
        /* keep the last known state; re-read everything later */
        size_t i;
        ps->need_full = true;
        for (i = 0; i < rd->n_ids; i++)
            pm_dirty_add(ps, rd->ids[i]);
        ps->round = NULL;
        pm_round_free(rd);
        pm_retry_arm(ps);
        return;
    }
    ps->round = NULL;
    pm_round_free(rd);
    if (ps->need_full || hmap_count(ps->dirty))
        pm_round_start(ps);
}

static void pm_inspect_next(struct podman_src *ps, struct pm_round *rd);

static void pm_inspect_done(struct pm_req *r, int status)
{
    struct podman_src *ps = r->ps;
    struct pm_round *rd = r->arg;
    size_t q = r->idx;
    struct pm_job *jb;
    json_t *j;

    if (rd != ps->round)
        return;   /* cannot happen: rounds end only with nothing in flight */
    rd->inflight--;
    jb = &rd->jobs[rd->q_job[q]];
    if (status == 200) {
        j = pm_json(r);
        if (j)
            jb->inspects[rd->q_ctr[q]] = j;
        else
            rd->failed = true;
    } else if (status == 404) {
        jb->vanished = true;
    } else {
        if (status > 0)
            log_warn(PM_MOD, "%s: HTTP %d", r->what, status);
        rd->failed = true;
    }
    if (!rd->failed)
        pm_inspect_next(ps, rd);
    pm_round_end(ps);
}

static void pm_inspect_next(struct podman_src *ps, struct pm_round *rd)
{
    char path[256];

    while (!rd->failed && rd->inflight < PM_PARALLEL && rd->q_next < rd->q_n) {
        size_t q = rd->q_next++;
        const char *cid = rd->jobs[rd->q_job[q]].cids[rd->q_ctr[q]];

        snprintf(path, sizeof(path), PM_API "/containers/%s/json", cid);
        if (!pm_get(ps, path, false, pm_inspect_done, NULL, rd, q)) {
            rd->failed = true;
            break;
        }
        rd->inflight++;
    }
}

/* Container IDs are hex; pod IDs too. Keeps odd input out of URLs. */
static bool pm_id_ok(const char *s)
{
    size_t i;

    if (!s || !*s || strlen(s) > 64)
        return false;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void pm_list_done(struct pm_req *r, int status)
{
    struct podman_src *ps = r->ps;
    struct pm_round *rd = r->arg;
    size_t i, j, total = 0;
    json_t *list = NULL;

    if (rd != ps->round)
        return;
    rd->inflight--;
    if (status != 200 || !(list = pm_json(r)) || !json_is_array(list)) {
        if (status > 0 && status != 200)
            log_warn(PM_MOD, "%s: HTTP %d", r->what, status);
        if (status == 200)
            json_decref(list);
        rd->failed = true;
        pm_round_end(ps);
        return;
    }
    rd->list = list;
    rd->n_jobs = json_array_size(list);
    rd->jobs = calloc(rd->n_jobs ? rd->n_jobs : 1, sizeof(*rd->jobs));
    if (!rd->jobs)
        goto nomem;
    for (i = 0; i < rd->n_jobs; i++) {
        const json_t *e = json_array_get(list, i);
        const json_t *ctrs = json_object_get(e, "Containers");
        struct pm_job *jb = &rd->jobs[i];
        size_t n = json_is_array(ctrs) ? json_array_size(ctrs) : 0;

        jb->entry = e;
        jb->pod_id = json_string_value(json_object_get(e, "Id"));
        if (!pm_id_ok(jb->pod_id)) {
            jb->pod_id = NULL;
            continue;
        }
        jb->cids = calloc(n ? n : 1, sizeof(char *));
        jb->inspects = calloc(n ? n : 1, sizeof(json_t *));
        if (!jb->cids || !jb->inspects)
            goto nomem;
        for (j = 0; j < n; j++) {
            const char *cid = json_string_value(json_object_get(json_array_get(ctrs, j), "Id"));
            if (pm_id_ok(cid) && (jb->cids[jb->n_cids] = strdup(cid)))
                jb->n_cids++;
        }
        total += jb->n_cids;
    }
    rd->q_job = calloc(total ? total : 1, sizeof(size_t));
    rd->q_ctr = calloc(total ? total : 1, sizeof(size_t));
    if (!rd->q_job || !rd->q_ctr)
        goto nomem;
    for (i = 0; i < rd->n_jobs; i++)
        for (j = 0; j < rd->jobs[i].n_cids; j++) {
            rd->q_job[rd->q_n] = i;
            rd->q_ctr[rd->q_n] = j;
            rd->q_n++;
        }
    pm_inspect_next(ps, rd);
    pm_round_end(ps);
    return;
nomem:
    log_err(PM_MOD, "out of memory reading the pod list");
    rd->failed = true;
    pm_round_end(ps);
}

struct pm_take_ctx {
    struct pm_round *rd;
    size_t cap;
};

static int pm_take_cb(void *cx, const char *key, void *val)
{
    struct pm_take_ctx *c = cx;
    (void)val;
    if (c->rd->n_ids < c->cap) {
        char *d = strdup(key);
        if (d)
            c->rd->ids[c->rd->n_ids++] = d;
    }
    return 0;
}

static void pm_round_start(struct podman_src *ps)
{
    struct pm_round *rd;
    char path[64 + PM_MAX_IDS_PER_ROUND * 80 * 3];
    size_t n_dirty = hmap_count(ps->dirty), i;

    if (ps->round || !ps->connected)
        return;
    if (!ps->need_full && n_dirty == 0)
        return;
    rd = calloc(1, sizeof(*rd));
    if (!rd)
        return;
    rd->full = ps->need_full || n_dirty > PM_MAX_IDS_PER_ROUND;
    if (!rd->full) {
        struct pm_take_ctx c = { rd, n_dirty };
        struct evbuffer *f = evbuffer_new();
        char *enc;

        rd->ids = calloc(n_dirty, sizeof(char *));
        if (!rd->ids || !f) {
            if (f)
                evbuffer_free(f);
            pm_round_free(rd);
            return;
        }
        hmap_foreach(ps->dirty, pm_take_cb, &c);
        evbuffer_add_printf(f, "{\"id\":[");
        for (i = 0; i < rd->n_ids; i++)
            evbuffer_add_printf(f, "%s\"%s\"", i ? "," : "", rd->ids[i]);
        evbuffer_add_printf(f, "]}");
        evbuffer_add(f, "", 1);
        enc = evhttp_uriencode((const char *)evbuffer_pullup(f, -1), -1, 0);
        evbuffer_free(f);
        if (!enc) {
            pm_round_free(rd);
            return;
        }
        snprintf(path, sizeof(path), PM_API "/pods/json?filters=%s", enc);
        free(enc);
    } else {
        snprintf(path, sizeof(path), PM_API "/pods/json");
    }
    /* the round owns the work now */
    hmap_free(ps->dirty);
    ps->dirty = hmap_new();
    if (!ps->dirty)
        abort();   /* small allocation at run time: as metric_* do */
    ps->need_full = false;
    ps->round = rd;
    rd->inflight = 1;
    if (!pm_get(ps, path, false, pm_list_done, NULL, rd, 0)) {
        rd->inflight = 0;
        rd->failed = true;
        pm_round_end(ps);
    }
}

static void pm_settle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pm_round_start(arg);
}

static void pm_schedule(struct podman_src *ps)
{
    struct timeval tv = { 0, PM_SETTLE_US };

    if (!ps->round && !evtimer_pending(ps->ev_settle, NULL))
        evtimer_add(ps->ev_settle, &tv);
}

/* ---- events stream and reconnects ---------------------------------------- */

static void pm_stream_connect(struct podman_src *ps);

static void pm_retry_arm(struct podman_src *ps)
{
    struct timeval tv;

    if (evtimer_pending(ps->ev_retry, NULL))
        return;
    tv.tv_sec = ps->backoff_ms / 1000;
    tv.tv_usec = (suseconds_t)(ps->backoff_ms % 1000) * 1000;
    evtimer_add(ps->ev_retry, &tv);
    ps->backoff_ms *= 2;
    if (ps->backoff_ms > PM_BACKOFF_MAX_MS)
        ps->backoff_ms = PM_BACKOFF_MAX_MS;
}

static void pm_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct podman_src *ps = arg;

    (void)fd;
    (void)what;
    if (!ps->stream)
        pm_stream_connect(ps);
    else
        pm_round_start(ps);
}

static void pm_event_line(struct pm_req *r, const char *line, size_t len)
{
    struct podman_src *ps = r->ps;
    struct podman_event ev;
    const char *pod_id;

    if (!line) {   /* headers done */
        if (podman_resp_status(r->resp) != 200) {
            log_warn(PM_MOD, "%s: HTTP %d", r->what, podman_resp_status(r->resp));
            return;   /* ends with its response, then retried */
        }
        log_info(PM_MOD, "connected to %s; following events", ps->path);
        ps->connected = true;
        metric_set(ps->m_connected, 1);
        ps->backoff_ms = PM_BACKOFF_MIN_MS;
        ps->need_full = true;
        pm_schedule(ps);
        return;
    }
    if (podman_event_parse(line, len, &ev))
        return;
    ps->stats.events++;
    metric_add(ps->m_events, 1);
    if (!podman_event_relevant(&ev))
        return;
    pod_id = ev.pod_id[0] ? ev.pod_id : NULL;
    if (!pod_id && ev.type == PODMAN_EV_CONTAINER)
        pod_id = hmap_get(ps->cmap, ev.id);
    log_debug(PM_MOD, "event %s %s %.12s (pod %.12s)",
              ev.type == PODMAN_EV_POD ? "pod" : "container", ev.action, ev.id,
              pod_id ? pod_id : "-");
    if (!pod_id || !pm_id_ok(pod_id))
        return;   /* a container outside any pod */
    pm_dirty_add(ps, pod_id);
    pm_schedule(ps);
}

static void pm_stream_done(struct pm_req *r, int status)
{
    struct podman_src *ps = r->ps;

    if (ps->connected) {
        log_warn(PM_MOD, "lost the events stream of %s; keeping the last known pods, "
                 "reconnecting", ps->path);
        ps->stats.reconnects++;
        metric_add(ps->m_reconnects, 1);
    } else if (status < 0) {
        log_debug(PM_MOD, "cannot reach %s; retrying in %u ms", ps->path, ps->backoff_ms);
    }
    ps->connected = false;
    metric_set(ps->m_connected, 0);
    pm_retry_arm(ps);
}

static void pm_stream_connect(struct podman_src *ps)
{
    static const char path[] =
        PM_API "/events?stream=true&filters=%7B%22type%22%3A%5B%22pod%22%2C%22container%22%5D%7D";

    if (ps->stream)
        return;
    ps->stream = pm_get(ps, path, true, pm_stream_done, pm_event_line, NULL, 0);
    if (!ps->stream)
        pm_retry_arm(ps);
}

/* ---- lifecycle -------------------------------------------------------------- */

static double pm_pods_gauge(void *ctx)
{
    const struct podman_src *ps = ctx;
    return (double)hmap_count(ps->known);
}

struct podman_src *podman_src_new(struct event_base *base, struct store *st,
                                  const char *socket_path)
{
    struct podman_src *ps;
    struct sockaddr_un sa;

    if (!socket_path || strlen(socket_path) >= sizeof(sa.sun_path)) {
        log_err(PM_MOD, "socket path %s is too long for a unix socket",
                socket_path ? socket_path : "(null)");
        return NULL;
    }
    ps = calloc(1, sizeof(*ps));
    if (!ps)
        return NULL;
    ps->base = base;
    ps->st = st;
    ps->backoff_ms = PM_BACKOFF_MIN_MS;
    ps->path = strdup(socket_path);
    ps->dirty = hmap_new();
    ps->known = hmap_new();
    ps->cmap = hmap_new();
    ps->health = hmap_new();
    ps->ev_settle = evtimer_new(base, pm_settle_cb, ps);
    ps->ev_retry = evtimer_new(base, pm_retry_cb, ps);
    if (!ps->path || !ps->dirty || !ps->known || !ps->cmap || !ps->health ||
        !ps->ev_settle || !ps->ev_retry) {
        podman_src_free(ps);
        return NULL;
    }
    ps->m_last_sync = metric_gauge("svcd_source_last_sync_timestamp_seconds",
                                   "source=\"podman\"",
                                   "Unix time a source last brought the store up to date "
                                   "(a manifest round applied with the directory readable; "
                                   "a full podman list).");
    ps->m_lists = metric_counter("svcd_podman_lists_total", NULL,
                                 "Pod list rounds applied from podman (full or per pod).");
    ps->m_events = metric_counter("svcd_podman_events_total", NULL,
                                  "Events read from podman's events stream.");
    ps->m_errors = metric_counter("svcd_podman_errors_total", NULL,
                                  "Requests to podman's API that failed.");
    ps->m_reconnects = metric_counter("svcd_podman_reconnects_total", NULL,
                                      "Times the podman events stream was lost.");
    ps->m_health = metric_counter("svcd_podman_healthchecks_total", NULL,
                                  "Container healthchecks svcd asked podman to run.");
    ps->m_connected = metric_gauge("svcd_podman_connected", NULL,
                                   "1 while svcd follows podman's events stream.");
    metric_gauge_fn("svcd_podman_pods", NULL, "Pods svcd has from podman.", pm_pods_gauge, ps);
    /* the stream first, so that no event falls between list and stream */
    {
        struct timeval now = { 0, 0 };
        evtimer_add(ps->ev_retry, &now);
    }
    return ps;
}

static int pm_free_known_cb(void *ctx, const char *key, void *val)
{
    (void)ctx;
    (void)key;
    pm_known_free(val);
    return 0;
}

static int pm_free_str_cb(void *ctx, const char *key, void *val)
{
    (void)ctx;
    (void)key;
    free(val);
    return 0;
}

static int pm_free_health_cb(void *ctx, const char *key, void *val)
{
    (void)ctx;
    (void)key;
    pm_health_free(val);
    return 0;
}

void podman_src_free(struct podman_src *ps)
{
    if (!ps)
        return;
    while (ps->reqs) {
        struct pm_req *r = ps->reqs;
        if (r->done == pm_health_done)
            free(r->arg);   /* a healthcheck's container ID */
        pm_req_free(r);
    }
    pm_round_free(ps->round);
    if (ps->ev_settle)
        event_free(ps->ev_settle);
    if (ps->ev_retry)
        event_free(ps->ev_retry);
    if (ps->known) {
        hmap_foreach(ps->known, pm_free_known_cb, NULL);
        hmap_free(ps->known);
    }
    if (ps->cmap) {
        hmap_foreach(ps->cmap, pm_free_str_cb, NULL);
        hmap_free(ps->cmap);
    }
    if (ps->health) {
        hmap_foreach(ps->health, pm_free_health_cb, NULL);
        hmap_free(ps->health);
    }
    hmap_free(ps->dirty);
    free(ps->node_name);
    free(ps->path);
    free(ps);
}

bool podman_src_synced(const struct podman_src *ps)
{
    return ps && ps->synced;
}

void podman_src_set_node_name(struct podman_src *ps, const char *node_name)
{
    char *d = NULL;

    if (!ps)
        return;
    if (node_name && !(d = strdup(node_name)))
        return;
    free(ps->node_name);
    ps->node_name = d;
}

void podman_src_get_stats(const struct podman_src *ps, struct podman_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!ps)
        return;
    *out = ps->stats;
    out->connected = ps->connected;
    out->pods = hmap_count(ps->known);
}
