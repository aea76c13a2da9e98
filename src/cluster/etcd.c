/*
 * etcd: the v3 JSON gateway through libcurl's multi interface on the
 * libevent loop (see include/svcd/etcd.h for the contract).
 *
 * libcurl tells us which sockets to watch (etcd_sock_cb) and when to call
 * it back (etcd_timer_cb); libevent events call curl_multi_socket_action,
 * after which finished transfers are collected (etcd_check_done) and watch
 * streams' buffered bytes are split into messages (etcd_drain_watches).
 * User callbacks never run inside a libcurl callback, so they may start or
 * cancel calls freely.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "svcd/etcd.h"
#include "svcd/log.h"

#define ETCD_CALL_TIMEOUT_MS 5000
#define ETCD_CONNECT_TIMEOUT_MS 1500

struct etcd_req {
    struct etcd_client *c;
    struct etcd_req *prev, *next;     /* the client's list of live requests */
    CURL *easy;
    struct curl_slist *hdrs;
    char *method;
    char *body;
    size_t body_len;
    char *resp;                       /* bytes received (not yet consumed) */
    size_t resp_len, resp_cap;
    char errbuf[CURL_ERROR_SIZE];
    int ep;                           /* endpoint index of the attempt */
    int tries;                        /* endpoints tried so far */
    bool in_multi;
    bool is_watch;
    bool dead;                        /* cancelled while a callback runs */
    int busy;                         /* callbacks running on it */
    etcd_cb cb;
    etcd_watch_msg_cb wmsg;
    etcd_watch_end_cb wend;
    void *ctx;
};

struct etcd_watch {
    struct etcd_req req;              /* first: a watch is a request */
};

struct etcd_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    char *endpoints[ETCD_MAX_ENDPOINTS];
    int n_endpoints;
    int cur;
    char *cafile, *certfile, *keyfile;
    struct etcd_req *reqs;
    uint64_t rx, tx;
};

static int etcd_global_inited;

/* ---- requests ------------------------------------------------------------ */

static void etcd_req_unlink(struct etcd_req *r)
{
    struct etcd_client *c = r->c;
    if (r->in_multi) {
        curl_multi_remove_handle(c->multi, r->easy);
        r->in_multi = false;
    }
    if (r->prev)
        r->prev->next = r->next;
    else if (c->reqs == r)
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void etcd_req_free(struct etcd_req *r)
{
    if (!r)
        return;
    etcd_req_unlink(r);
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->method);
    free(r->body);
    free(r->resp);
    free(r);
}

static size_t etcd_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct etcd_req *r = userdata;
    size_t n = size * nmemb;
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 4096;
        while (cap < r->resp_len + n + 1)
            cap *= 2;
        char *p = realloc(r->resp, cap);
        if (!p)
            return 0;               /* aborts the transfer: CURLE_WRITE_ERROR */
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, ptr, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    r->c->rx += n;
    return n;
}

/* (Re)starts r on its endpoint. 0 or -1. */
static int etcd_req_submit(struct etcd_req *r)
{
    struct etcd_client *c = r->c;
    char url[1024];
    snprintf(url, sizeof(url), "%s/v3/%s", c->endpoints[r->ep], r->method);
    if (r->in_multi) {
        curl_multi_remove_handle(c->multi, r->easy);
        r->in_multi = false;
    }
    r->resp_len = 0;
    r->errbuf[0] = '\0';
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, etcd_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->is_watch ? 0L : (long)ETCD_CALL_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 2L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->cafile)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cafile);
    if (c->certfile)
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->certfile);
    if (c->keyfile)
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->keyfile);
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return -1;
    r->in_multi = true;
    c->tx += r->body_len;
    return 0;
}

static struct etcd_req *etcd_req_new(struct etcd_client *c, const char *method, json_t *body)
{
    struct etcd_req *r = calloc(1, sizeof(struct etcd_watch));
    if (!r)
        goto fail;
    r->c = c;
    r->method = strdup(method);
    r->body = json_dumps(body, JSON_COMPACT);
    r->easy = curl_easy_init();
    r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (!r->method || !r->body || !r->easy || !r->hdrs)
        goto fail;
    r->body_len = strlen(r->body);
    r->ep = c->cur;
    json_decref(body);
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    return r;
fail:
    json_decref(body);
    if (r) {
        r->c = c;
        etcd_req_free(r);
    }
    return NULL;
}

/* ---- completion ------------------------------------------------------------ */

/* The error text of an etcd error answer ({"error": "...", "message": ...}). */
static void etcd_error_text(const char *body, size_t len, long http, char *out, size_t outlen)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *msg = NULL;
    if (json_is_object(j)) {
        msg = json_string_value(json_object_get(j, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "error"));
        if (!msg) {
            json_t *e = json_object_get(j, "error");
            msg = json_string_value(json_object_get(e, "message"));
        }
    }
    if (msg)
        snprintf(out, outlen, "HTTP %ld: %s", http, msg);
    else
        snprintf(out, outlen, "HTTP %ld", http);
    json_decref(j);
}

static bool etcd_drain_one(struct etcd_req *r, bool final);

static void etcd_req_done(struct etcd_req *r, CURLcode res)
{
    struct etcd_client *c = r->c;
    long http = 0;
    char err[512];
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
    r->in_multi = false;
    curl_multi_remove_handle(c->multi, r->easy);
    bool transport = res != CURLE_OK || http >= 500 || http == 0;
    if (res != CURLE_OK)
        snprintf(err, sizeof(err), "%s: %s", c->endpoints[r->ep],
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
    else if (http != 200)
        etcd_error_text(r->resp, r->resp_len, http, err, sizeof(err));
    if (transport && c->cur == r->ep)
        c->cur = (r->ep + 1) % c->n_endpoints;   /* the next call tries another member */

    if (r->is_watch) {
        if (!transport && http == 200)
            snprintf(err, sizeof(err), "%s: watch stream ended", c->endpoints[r->ep]);
        if (etcd_drain_one(r, true))
            return;                 /* cancelled from a message callback: freed */
        r->busy++;
        if (r->wend)
            r->wend(r->ctx, err);
        r->busy--;
        etcd_req_free(r);
        return;
    }
    if (transport && ++r->tries < c->n_endpoints) {
        log_debug("etcd", "%s failed (%s); trying %s", r->method, err,
                  c->endpoints[(r->ep + 1) % c->n_endpoints]);
        r->ep = (r->ep + 1) % c->n_endpoints;
        if (etcd_req_submit(r) == 0)
            return;
        snprintf(err, sizeof(err), "cannot start request");
    }
    etcd_req_unlink(r);
    if (!transport && http == 200) {
        json_error_t jerr;
        json_t *j = json_loadb(r->resp, r->resp_len, 0, &jerr);
        if (json_is_object(j)) {
            r->cb(r->ctx, true, j, NULL);
        } else {
            snprintf(err, sizeof(err), "%s: bad JSON answer: %s", c->endpoints[r->ep], jerr.text);
            r->cb(r->ctx, false, NULL, err);
        }
        json_decref(j);
    } else {
        r->cb(r->ctx, false, NULL, err);
    }
    etcd_req_free(r);
}

static void etcd_check_done(struct etcd_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct etcd_req *r = NULL;
        CURLcode res = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r)
            etcd_req_done(r, res);
    }
}

/* Splits a watch's buffered bytes into newline-delimited messages and
 * hands each result to the user. With final, a last line without its
 * newline is parsed too. Returns true when a callback cancelled the watch
 * (r is then freed). */
static bool etcd_drain_one(struct etcd_req *r, bool final)
{
    size_t off = 0;
    r->busy++;
    while (!r->dead && off < r->resp_len) {
        char *nl = memchr(r->resp + off, '\n', r->resp_len - off);
        size_t end = nl ? (size_t)(nl - r->resp) : r->resp_len;
        if (!nl && !final)
            break;
        json_t *j = json_loadb(r->resp + off, end - off, JSON_DISABLE_EOF_CHECK, NULL);
        off = nl ? end + 1 : end;
        json_t *res = json_object_get(j, "result");
        if (json_is_object(res) && r->wmsg)
            r->wmsg(r->ctx, res);
        else if (j && json_object_get(j, "error"))
            log_warn("etcd", "watch error message: %.200s", r->resp + (off > 200 ? off - 200 : 0));
        json_decref(j);
    }
    r->busy--;
    if (r->dead) {
        if (!r->busy)
            etcd_req_free(r);
        return true;
    }
    memmove(r->resp, r->resp + off, r->resp_len - off);
    r->resp_len -= off;
    return false;
}

static void etcd_drain_watches(struct etcd_client *c)
{
    /* A message callback may cancel any watch or start new ones (added at
     * the head): restart the scan after each drained watch. */
    bool again = true;
    while (again) {
        again = false;
        for (struct etcd_req *r = c->reqs; r; r = r->next) {
            if (r->is_watch && !r->dead && r->resp_len && memchr(r->resp, '\n', r->resp_len)) {
                etcd_drain_one(r, false);
                again = true;
                break;
            }
        }
    }
}

static void etcd_after_action(struct etcd_client *c)
{
    etcd_check_done(c);
    etcd_drain_watches(c);
}

/* ---- libcurl <-> libevent -------------------------------------------------- */

static void etcd_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct etcd_client *c = arg;
    int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) |
                 ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(c->multi, fd, action, &running);
    etcd_after_action(c);
}

static void etcd_timeout_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct etcd_client *c = arg;
    int running = 0;
    (void)fd; (void)kind;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    etcd_after_action(c);
}

static int etcd_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct etcd_client *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    evtimer_add(c->timer, &tv);
    return 0;
}

static int etcd_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct etcd_client *c = userp;
    struct event *ev = sockp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (ev) {
        event_del(ev);
        event_assign(ev, c->base, s, kind, etcd_event_cb, c);
    } else {
        ev = event_new(c->base, s, kind, etcd_event_cb, c);
        if (!ev)
            return -1;
        curl_multi_assign(c->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

/* ---- public API -------------------------------------------------------------- */

struct etcd_client *etcd_client_new(struct event_base *base, const char *endpoints,
                                    const struct etcd_tls *tls, char *err, size_t errlen)
{
    if (!etcd_global_inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "curl_global_init failed");
            return NULL;
        }
        etcd_global_inited = 1;
    }
    struct etcd_client *c = calloc(1, sizeof(*c));
    char *list = endpoints ? strdup(endpoints) : NULL;
    if (!c || !list) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c->base = base;
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && (t[n - 1] == '/' || t[n - 1] == ' '))
            t[--n] = '\0';
        if (!n)
            continue;
        if (strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0) {
            snprintf(err, errlen, "etcd endpoint \"%s\" must start with http:// or https://", t);
            goto fail;
        }
        if (c->n_endpoints == ETCD_MAX_ENDPOINTS) {
            snprintf(err, errlen, "at most %d etcd endpoints", ETCD_MAX_ENDPOINTS);
            goto fail;
        }
        if (!(c->endpoints[c->n_endpoints++] = strdup(t))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (!c->n_endpoints) {
        snprintf(err, errlen, "no etcd endpoint given");
        goto fail;
    }
    if (tls && ((tls->cafile && !(c->cafile = strdup(tls->cafile))) ||
                (tls->certfile && !(c->certfile = strdup(tls->certfile))) ||
                (tls->keyfile && !(c->keyfile = strdup(tls->keyfile))))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, etcd_timeout_cb, c);
    if (!c->multi || !c->timer) {
        snprintf(err, errlen, "cannot create the libcurl multi handle");
        goto fail;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, etcd_sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, etcd_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    free(list);
    return c;
fail:
    free(list);
    etcd_client_free(c);
    return NULL;
}

void etcd_client_free(struct etcd_client *c)
{
    if (!c)
        return;
    while (c->reqs)
        etcd_req_free(c->reqs);
    if (c->multi)
        curl_multi_cleanup(c->multi);   /* frees socket events via CURL_POLL_REMOVE */
    if (c->timer)
        event_free(c->timer);
    for (int i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->cafile);
    free(c->certfile);
    free(c->keyfile);
    free(c);
}

const char *etcd_client_endpoint(const struct etcd_client *c)
{
    return c->endpoints[c->cur];
}

void etcd_client_traffic(const struct etcd_client *c, uint64_t *rx, uint64_t *tx)
{
    *rx = c->rx;
    *tx = c->tx;
}

int etcd_call(struct etcd_client *c, const char *method, json_t *body, etcd_cb cb, void *ctx)
{
    struct etcd_req *r = etcd_req_new(c, method, body);
    if (!r)
        return -1;
    r->cb = cb;
    r->ctx = ctx;
    if (etcd_req_submit(r) != 0) {
        etcd_req_free(r);
        return -1;
    }
    return 0;
}

struct etcd_sync {
    bool done, ok;
    json_t *resp;
    char err[512];
};

static void etcd_sync_cb(void *ctx, bool ok, json_t *resp, const char *err)
{
    struct etcd_sync *s = ctx;
    s->done = true;
    s->ok = ok;
    if (ok)
        s->resp = json_incref(resp);
    else
        snprintf(s->err, sizeof(s->err), "%s", err ? err : "failed");
}

int etcd_call_sync(struct etcd_client *c, const char *method, json_t *body, json_t **resp,
                   char *err, size_t errlen)
{
    struct etcd_sync s = { 0 };
    *resp = NULL;
    if (etcd_call(c, method, body, etcd_sync_cb, &s) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (!s.done)
        event_base_loop(c->base, EVLOOP_ONCE);
    if (!s.ok) {
        snprintf(err, errlen, "%s", s.err);
        return -1;
    }
    *resp = s.resp;
    return 0;
}

struct etcd_watch *etcd_watch_start(struct etcd_client *c, json_t *create,
                                    etcd_watch_msg_cb msg, etcd_watch_end_cb end, void *ctx)
{
    json_t *body = json_pack("{s:o}", "create_request", create);
    if (!body)
        return NULL;
    struct etcd_req *r = etcd_req_new(c, "watch", body);
    if (!r)
        return NULL;
    r->is_watch = true;
    r->wmsg = msg;
    r->wend = end;
    r->ctx = ctx;
    if (etcd_req_submit(r) != 0) {
        etcd_req_free(r);
        return NULL;
    }
    return (struct etcd_watch *)r;
}

void etcd_watch_cancel(struct etcd_watch *w)
{
    if (!w)
        return;
    struct etcd_req *r = &w->req;
    if (r->busy) {
        r->dead = true;             /* freed when its callback returns */
        if (r->in_multi) {
            curl_multi_remove_handle(r->c->multi, r->easy);
            r->in_multi = false;
        }
        return;
    }
    etcd_req_free(r);
}
