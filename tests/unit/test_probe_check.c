/*
 * test_probe_check: one probe attempt of each kind against real servers.
 *
 * The program moves itself into a private network namespace
 * (unshare(CLONE_NEWNET)) with only lo up, so it can bind fixed ports and
 * touches nothing of the machine's networking. Servers run on the same
 * event loop as the probes: an evhttp server (/ok, /fail, /redirect, /hang
 * that never answers, /hdr that wants httpHeaders), a raw TCP listener, a
 * canned-answer HTTP/1 server (parsing edge cases, the exact request text), and
 * a canned HTTP/2 gRPC-health server. exec probes check the unprivileged
 * uid, output capture, the timeout kill, and setns() into a named netns.
 * Needs root (skips with exit 0 and a message otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "../../src/probe/probe_internal.h"
#include "../../src/probe/probe_http.h"

#define HTTP_PORT 18080
#define TCP_PORT 18081
#define GRPC_PORT 18082      /* answers SERVING */
#define GRPC_BAD_PORT 18083  /* answers NOT_SERVING */
#define RAW_PORT 18084       /* canned HTTP answers, see raw_cases */
#define CLOSED_PORT 18099

static int n_pass, n_fail;
static struct event_base *base;
static char netns_name[64];

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

/* ---- servers ---------------------------------------------------------------- */

static void srv_http(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *body = evbuffer_new();
    if (strcmp(uri, "/ok") == 0) {
        evbuffer_add_printf(body, "fine");
        evhttp_send_reply(req, 200, "OK", body);
    } else if (strcmp(uri, "/fail") == 0) {
        evbuffer_add_printf(body, "database down");
        evhttp_send_reply(req, 500, "Internal Server Error", body);
    } else if (strcmp(uri, "/redirect") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/ok");
        evhttp_send_reply(req, 302, "Found", body);
    } else if (strcmp(uri, "/hang") == 0) {
        /* never answer */
    } else if (strcmp(uri, "/hdr") == 0) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        const char *x = evhttp_find_header(h, "X-Probe");
        const char *host = evhttp_find_header(h, "Host");
        const char *ua = evhttp_find_header(h, "User-Agent");
        bool ok = x && strcmp(x, "yes") == 0 && host && strcmp(host, "app.example") == 0 &&
                  ua && strncmp(ua, "kube-probe/", 11) == 0;
        evhttp_send_reply(req, ok ? 200 : 400, ok ? "OK" : "Bad", body);
    } else {
        evhttp_send_reply(req, 404, "Not Found", body);
    }
    evbuffer_free(body);
}

static void srv_tcp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int socklen, void *arg)
{
    close(fd);
}

/* A canned gRPC health answer: SETTINGS, HEADERS (opaque HPACK: :status 200
 * indexed = 0x88), DATA with HealthCheckResponse{status}, trailers. */
struct grpc_conn {
    int status;
    bool answered;
};

static void frame(struct evbuffer *out, uint8_t type, uint8_t flags, uint32_t sid,
                  const void *p, size_t len)
{
    uint8_t h[9] = { (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                     (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid };
    evbuffer_add(out, h, 9);
    if (len)
        evbuffer_add(out, p, len);
}

static void grpc_read(struct bufferevent *bev, void *arg)
{
    struct grpc_conn *gc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    /* Wait for preface (24) + SETTINGS (15) + HEADERS + DATA (END_STREAM). */
    if (gc->answered || evbuffer_get_length(in) < 24 + 15 + 9 + 9 + 5)
        return;
    evbuffer_drain(in, evbuffer_get_length(in));
    gc->answered = true;
    struct evbuffer *out = bufferevent_get_output(bev);
    frame(out, 0x4, 0, 0, NULL, 0);                          /* SETTINGS */
    frame(out, 0x4, 0x1, 0, NULL, 0);                        /* SETTINGS ACK */
    uint8_t hdr[1] = { 0x88 };
    frame(out, 0x1, 0x4, 1, hdr, 1);                         /* HEADERS :status 200 */
    /* DATA, PADDED (pad length 2): gRPC prefix + HealthCheckResponse{status} */
    uint8_t data[10] = { 2, 0, 0, 0, 0, 2, 0x08, (uint8_t)gc->status, 0, 0 };
    frame(out, 0x0, 0x8, 1, data, sizeof(data));
    frame(out, 0x1, 0x5, 1, hdr, 1);                         /* trailers END_STREAM */
}

static void grpc_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        free(arg);
        bufferevent_free(bev);
    }
}

static void srv_grpc_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int socklen, void *arg)
{
    struct grpc_conn *gc = calloc(1, sizeof(*gc));
    gc->status = (int)(intptr_t)arg;
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, grpc_read, NULL, grpc_event, gc);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static struct evconnlistener *listen_on(uint16_t port, evconnlistener_cb cb, void *arg)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return evconnlistener_new_bind(base, cb, arg, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 16,
                                   (struct sockaddr *)&sin, sizeof(sin));
}

/* ---- running one attempt -------------------------------------------------------- */

struct outcome {
    bool done;
    enum probe_result res;
    char reason[PROBE_REASON_MAX];
    double dur;
};

static void on_done(void *ctx, enum probe_result res, const char *reason, double dur)
{
    struct outcome *o = ctx;
    o->done = true;
    o->res = res;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    o->dur = dur;
    event_base_loopbreak(base);
}

static void on_guard(evutil_socket_t fd, short w, void *arg)
{
    event_base_loopbreak(base);
}

static struct outcome run(const struct probe_check_req *req)
{
    struct outcome o = { 0 };
    struct probe_check *c = probe_check_start(base, req, on_done, &o);
    if (!c) {
        o.res = PROBE_RESULT_ERROR;
        return o;
    }
    CHECK(!o.done, "callback ran inside probe_check_start");
    struct event *guard = evtimer_new(base, on_guard, NULL);
    struct timeval tv = { 5, 0 };
    evtimer_add(guard, &tv);
    while (!o.done) {
        event_base_dispatch(base);
        if (!o.done && !evtimer_pending(guard, NULL))
            break;
    }
    event_free(guard);
    if (!o.done) {
        probe_check_cancel(c);
        snprintf(o.reason, sizeof(o.reason), "no result within 5 s");
        o.res = PROBE_RESULT_NONE;
    }
    return o;
}

static struct probe_check_req net_req(enum svcd_probe_kind kind, uint16_t port, const char *path,
                                      uint32_t timeout_ms)
{
    struct probe_check_req r;
    memset(&r, 0, sizeof(r));
    r.kind = kind;
    svcd_ip_parse("127.0.0.1", &r.ip);
    r.port = port;
    r.path = path;
    r.timeout_ms = timeout_ms;
    return r;
}

static struct probe_check_req exec_req(char *const *argv, uint32_t timeout_ms)
{
    struct probe_check_req r;
    memset(&r, 0, sizeof(r));
    r.kind = SVCD_PROBE_EXEC;
    r.argv = argv;
    r.uid = 65534;
    r.gid = 65534;
    r.timeout_ms = timeout_ms;
    return r;
}

/* ---- table of network cases -------------------------------------------------------- */

struct net_case {
    const char *name;
    enum svcd_probe_kind kind;
    uint16_t port;
    const char *path;
    uint32_t timeout_ms;
    bool with_headers;
    enum probe_result want;
    const char *want_reason;     /* substring, or NULL */
    double max_dur;   /* not a speed limit: only shows the check did not wait for
                         something that never comes (a hanging server, a peer that
                         never speaks gRPC), which would take far longer */
};

static const struct net_case net_cases[] = {
    { "http 200", SVCD_PROBE_HTTP, HTTP_PORT, "/ok", 1000, false, PROBE_RESULT_SUCCESS, NULL, 5.0 },
    { "http 500", SVCD_PROBE_HTTP, HTTP_PORT, "/fail", 1000, false, PROBE_RESULT_FAILURE,
      "HTTP probe failed with statuscode: 500", 5.0 },
    { "http 404", SVCD_PROBE_HTTP, HTTP_PORT, "/nope", 1000, false, PROBE_RESULT_FAILURE,
      "statuscode: 404", 5.0 },
    { "http 302 is success", SVCD_PROBE_HTTP, HTTP_PORT, "/redirect", 1000, false,
      PROBE_RESULT_SUCCESS, NULL, 5.0 },
    { "http hang times out", SVCD_PROBE_HTTP, HTTP_PORT, "/hang", 300, false,
      PROBE_RESULT_TIMEOUT, "context deadline exceeded", 5.0 },
    { "http refused", SVCD_PROBE_HTTP, CLOSED_PORT, "/ok", 1000, false, PROBE_RESULT_FAILURE,
      "refused", 5.0 },
    { "http headers missing", SVCD_PROBE_HTTP, HTTP_PORT, "/hdr", 1000, false,
      PROBE_RESULT_FAILURE, "statuscode: 400", 5.0 },
    { "http headers given", SVCD_PROBE_HTTP, HTTP_PORT, "/hdr", 1000, true, PROBE_RESULT_SUCCESS,
      NULL, 5.0 },
    { "tcp open", SVCD_PROBE_TCP, TCP_PORT, NULL, 1000, false, PROBE_RESULT_SUCCESS, NULL, 5.0 },
    { "tcp closed", SVCD_PROBE_TCP, CLOSED_PORT, NULL, 1000, false, PROBE_RESULT_FAILURE,
      "connection refused", 5.0 },
    { "grpc serving", SVCD_PROBE_GRPC, GRPC_PORT, NULL, 1000, false, PROBE_RESULT_SUCCESS, NULL,
      5.0 },
    { "grpc not serving", SVCD_PROBE_GRPC, GRPC_BAD_PORT, NULL, 1000, false,
      PROBE_RESULT_FAILURE, "NOT_SERVING", 5.0 },
    { "grpc refused", SVCD_PROBE_GRPC, CLOSED_PORT, NULL, 1000, false, PROBE_RESULT_FAILURE,
      "refused", 5.0 },
    { "grpc against http/1", SVCD_PROBE_GRPC, HTTP_PORT, NULL, 1000, false,
      PROBE_RESULT_FAILURE, NULL, 5.0 },
};

static void test_net(void)
{
    struct svcd_kvmap hdrs = { 0 };
    svcd_kvmap_set(&hdrs, "X-Probe", "yes");
    svcd_kvmap_set(&hdrs, "Host", "app.example");
    const char *only = getenv("PROBE_TEST_ONLY");   /* debugging: one case by name */
    for (size_t i = 0; i < sizeof(net_cases) / sizeof(net_cases[0]); i++) {
        const struct net_case *tc = &net_cases[i];
        if (only && !strstr(tc->name, only))
            continue;
        struct probe_check_req r = net_req(tc->kind, tc->port, tc->path, tc->timeout_ms);
        if (tc->with_headers)
            r.headers = &hdrs;
        struct outcome o = run(&r);
        CHECK(o.res == tc->want, "%s: result %s, want %s (%s)", tc->name,
              probe_result_name(o.res), probe_result_name(tc->want), o.reason);
        if (tc->want_reason)
            CHECK(strstr(o.reason, tc->want_reason) != NULL, "%s: reason \"%s\" lacks \"%s\"",
                  tc->name, o.reason, tc->want_reason);
        CHECK(o.dur <= tc->max_dur, "%s: took %.3f s (max %.3f)", tc->name, o.dur, tc->max_dur);
        if (tc->want == PROBE_RESULT_TIMEOUT)
            CHECK(o.dur >= tc->timeout_ms / 1000.0 * 0.9, "%s: timed out early (%.3f s)",
                  tc->name, o.dur);
    }
    svcd_kvmap_free(&hdrs);
}

/* ---- canned HTTP answers (probe_http's parsing and request text) ------------------- */

/* The raw server answers every connection with raw_answer once it has read
 * the request head (kept in raw_request); raw_split sends the answer in two
 * parts 50 ms apart; raw_answer NULL closes without answering. */
static const char *raw_answer;
static size_t raw_answer_len;
static bool raw_split;
static char raw_request[4096];

static void raw_written(struct bufferevent *bev, void *arg)
{
    if (arg == NULL)                 /* whole answer queued and now sent */
        bufferevent_free(bev);
}

static void raw_second_half(evutil_socket_t fd, short w, void *arg)
{
    struct bufferevent *bev = arg;
    size_t half = raw_answer_len / 2;
    bufferevent_setcb(bev, NULL, raw_written, NULL, NULL);
    bufferevent_write(bev, raw_answer + half, raw_answer_len - half);
}

static void raw_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return;
    size_t n = (size_t)end.pos + 4;
    if (n >= sizeof(raw_request))
        n = sizeof(raw_request) - 1;
    evbuffer_remove(in, raw_request, n);
    raw_request[n] = '\0';
    if (!raw_answer) {
        bufferevent_free(bev);
        return;
    }
    if (raw_split) {
        size_t half = raw_answer_len / 2;
        bufferevent_setcb(bev, NULL, raw_written, NULL, (void *)1);
        bufferevent_write(bev, raw_answer, half);
        struct timeval tv = { 0, 50000 };
        event_base_once(base, -1, EV_TIMEOUT, raw_second_half, bev, &tv);
        return;
    }
    bufferevent_setcb(bev, NULL, raw_written, NULL, NULL);
    bufferevent_write(bev, raw_answer, raw_answer_len);
}

static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void srv_raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int socklen, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, raw_read, NULL, raw_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static char big_header_answer[20000];

struct raw_case {
    const char *name;
    const char *answer;          /* NULL: close without answering */
    bool split;
    enum probe_result want;
    const char *want_reason;     /* substring, or NULL */
};

static const struct raw_case raw_cases[] = {
    { "200 with body", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine", false,
      PROBE_RESULT_SUCCESS, NULL },
    { "100 Continue then 204", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
      false, PROBE_RESULT_SUCCESS, NULL },
    { "100 Continue then 503",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n", false,
      PROBE_RESULT_FAILURE, "HTTP probe failed with statuscode: 503" },
    { "399 is success", "HTTP/1.1 399 Odd\r\nContent-Length: 0\r\n\r\n", false,
      PROBE_RESULT_SUCCESS, NULL },
    { "400 is failure", "HTTP/1.0 400 Bad Request\r\n\r\n", false, PROBE_RESULT_FAILURE,
      "statuscode: 400" },
    { "answer in two reads", "HTTP/1.1 200 OK\r\nX-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", true,
      PROBE_RESULT_SUCCESS, NULL },
    { "not HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n", false, PROBE_RESULT_FAILURE,
      "malformed HTTP response" },
    { "closed without answer", NULL, false, PROBE_RESULT_FAILURE,
      "connection closed before a response" },
    { "closed mid-headers", "HTTP/1.1 200 OK\r\nX-Cut: yes", false, PROBE_RESULT_FAILURE,
      "connection closed before a response" },
    { "huge headers", big_header_answer, false, PROBE_RESULT_FAILURE, "larger than" },
};

static void test_http_raw(void)
{
    /* 20 kB of headers, never finished: the client must give up. */
    size_t off = (size_t)snprintf(big_header_answer, sizeof(big_header_answer),
                                  "HTTP/1.1 200 OK\r\n");
    while (off + 40 < sizeof(big_header_answer))
        off += (size_t)snprintf(big_header_answer + off, sizeof(big_header_answer) - off,
                                "X-Pad: %030d\r\n", 0);
    const char *only = getenv("PROBE_TEST_ONLY");
    for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
        const struct raw_case *tc = &raw_cases[i];
        if (only && !strstr(tc->name, only))
            continue;
        raw_answer = tc->answer;
        raw_answer_len = tc->answer ? strlen(tc->answer) : 0;
        raw_split = tc->split;
        struct probe_check_req r = net_req(SVCD_PROBE_HTTP, RAW_PORT, "/healthz", 1000);
        struct outcome o = run(&r);
        CHECK(o.res == tc->want, "raw %s: result %s, want %s (%s)", tc->name,
              probe_result_name(o.res), probe_result_name(tc->want), o.reason);
        if (tc->want_reason)
            CHECK(strstr(o.reason, tc->want_reason) != NULL, "raw %s: reason \"%s\" lacks \"%s\"",
                  tc->name, o.reason, tc->want_reason);
        CHECK(o.dur < 0.5, "raw %s: took %.3f s", tc->name, o.dur);
    }
    raw_split = false;

    /* The request text: default headers, then with httpHeaders overriding Host. */
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    raw_answer = ok;
    raw_answer_len = strlen(ok);
    struct probe_check_req r = net_req(SVCD_PROBE_HTTP, RAW_PORT, "healthz?x=1", 1000);
    raw_request[0] = '\0';
    struct outcome o = run(&r);
    CHECK(o.res == PROBE_RESULT_SUCCESS, "raw request: %s", o.reason);
    char want_host[64];
    snprintf(want_host, sizeof(want_host), "\r\nHost: 127.0.0.1:%d\r\n", RAW_PORT);
    CHECK(strncmp(raw_request, "GET /healthz?x=1 HTTP/1.1\r\n", 27) == 0,
          "request line (path without leading slash gets one): \"%.40s\"", raw_request);
    CHECK(strstr(raw_request, want_host) != NULL, "default Host header: \"%s\"", raw_request);
    CHECK(strstr(raw_request, "\r\nUser-Agent: kube-probe/") != NULL, "User-Agent: \"%s\"",
          raw_request);
    CHECK(strstr(raw_request, "\r\nAccept: */*\r\n") != NULL, "Accept: \"%s\"", raw_request);
    CHECK(strstr(raw_request, "\r\nConnection: close\r\n") != NULL, "Connection: close: \"%s\"",
          raw_request);

    struct svcd_kvmap hdrs = { 0 };
    svcd_kvmap_set(&hdrs, "host", "app.example");
    svcd_kvmap_set(&hdrs, "Accept", "application/json");
    svcd_kvmap_set(&hdrs, "X-Probe", "yes");
    r.headers = &hdrs;
    r.path = "/";
    raw_request[0] = '\0';
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_SUCCESS, "raw request with headers: %s", o.reason);
    CHECK(strstr(raw_request, "\r\nhost: app.example\r\n") != NULL &&
          strstr(raw_request, "\r\nHost: ") == NULL, "Host override, once: \"%s\"", raw_request);
    CHECK(strstr(raw_request, "\r\nAccept: application/json\r\n") != NULL &&
          strstr(raw_request, "*/*") == NULL, "Accept override: \"%s\"", raw_request);
    CHECK(strstr(raw_request, "\r\nX-Probe: yes\r\n") != NULL, "user header: \"%s\"", raw_request);

    /* Header values that would split the request are refused, not sent. */
    svcd_kvmap_set(&hdrs, "X-Evil", "a\r\nX-Injected: 1");
    raw_request[0] = '\0';
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_ERROR && strstr(o.reason, "invalid header"),
          "CRLF in a header value: %s \"%s\"", probe_result_name(o.res), o.reason);
    CHECK(raw_request[0] == '\0', "nothing sent for an invalid header: \"%s\"", raw_request);
    svcd_kvmap_free(&hdrs);
    r.headers = NULL;
    r.path = "/with space";
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_ERROR && strstr(o.reason, "path"), "path with a space: %s \"%s\"",
          probe_result_name(o.res), o.reason);
}

/* ---- probe_http reused across attempts (as the manager uses it) ----------------------- */

static void on_http_done(void *ctx, enum probe_result res, const char *reason, double dur)
{
    on_done(ctx, res, reason, dur);
}

static struct outcome run_http(struct probe_http *h)
{
    struct outcome o = { 0 };
    CHECK(probe_http_start(h, on_http_done, &o) == 0, "probe_http_start");
    CHECK(!o.done, "probe_http reported from inside start");
    struct event *guard = evtimer_new(base, on_guard, NULL);
    struct timeval tv = { 5, 0 };
    evtimer_add(guard, &tv);
    while (!o.done && evtimer_pending(guard, NULL))
        event_base_dispatch(base);
    event_free(guard);
    return o;
}

static void test_http_reuse(void)
{
    struct svcd_ip ip;
    svcd_ip_parse("127.0.0.1", &ip);
    char err[PROBE_REASON_MAX];
    struct probe_http *h = probe_http_new(base, &ip, HTTP_PORT, "/ok", NULL, 1000, err,
                                          sizeof(err));
    CHECK(h != NULL, "probe_http_new: %s", err);
    if (!h)
        return;
    for (int i = 0; i < 3; i++) {
        struct outcome o = run_http(h);
        CHECK(o.done && o.res == PROBE_RESULT_SUCCESS, "reused attempt %d: %s (%s)", i,
              probe_result_name(o.res), o.reason);
        CHECK(!probe_http_running(h), "idle after attempt %d", i);
    }
    /* Busy: a second start is refused; cancel, then it runs again. */
    struct outcome o1 = { 0 };
    CHECK(probe_http_start(h, on_http_done, &o1) == 0, "start before cancel");
    CHECK(probe_http_start(h, on_http_done, &o1) == -1, "second start while running refused");
    probe_http_cancel(h);
    CHECK(!probe_http_running(h), "idle after cancel");
    struct outcome o = run_http(h);
    CHECK(!o1.done, "cancelled attempt reported");
    CHECK(o.res == PROBE_RESULT_SUCCESS, "attempt after cancel: %s", o.reason);
    probe_http_free(h);

    /* The refused answer comes from the loop too, and the object is reusable. */
    h = probe_http_new(base, &ip, CLOSED_PORT, "/", NULL, 1000, err, sizeof(err));
    CHECK(h != NULL, "probe_http_new closed port");
    if (!h)
        return;
    for (int i = 0; i < 2; i++) {
        o = run_http(h);
        CHECK(o.res == PROBE_RESULT_FAILURE && strstr(o.reason, "dial tcp 127.0.0.1:18099: connect: connection refused"),
              "refused attempt %d: %s \"%s\"", i, probe_result_name(o.res), o.reason);
    }
    probe_http_free(h);

    /* IPv6 literal in Host and in the reason. */
    struct svcd_ip ip6;
    svcd_ip_parse("::1", &ip6);
    h = probe_http_new(base, &ip6, CLOSED_PORT, "/x", NULL, 1000, err, sizeof(err));
    if (h) {
        o = run_http(h);
        CHECK(strstr(o.reason, "Get \"http://[::1]:18099/x\"") != NULL, "ipv6 reason: \"%s\"",
              o.reason);
        probe_http_free(h);
    }
}

/* True when pid is gone or a zombie within 1 s (init reaps orphans late). */
static bool proc_gone(int pid)
{
    for (int i = 0; i < 100; i++) {
        char path[64], buf[256];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return true;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
            return true;
        usleep(10000);
    }
    return false;
}

/* ---- exec ------------------------------------------------------------------------- */

static void test_exec(void)
{
    char *ok_argv[] = { "true", NULL };
    struct probe_check_req r0 = exec_req(ok_argv, 1000);
    struct outcome o = run(&r0);
    CHECK(o.res == PROBE_RESULT_SUCCESS, "exec true: %s (%s)", probe_result_name(o.res), o.reason);

    char *fail_argv[] = { "/bin/sh", "-c", "echo database unreachable; exit 3", NULL };
    struct probe_check_req r = exec_req(fail_argv, 1000);
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_FAILURE, "exec exit 3: %s", probe_result_name(o.res));
    CHECK(strcmp(o.reason, "database unreachable") == 0, "exec output as reason: \"%s\"", o.reason);

    char *silent_argv[] = { "/bin/sh", "-c", "exit 4", NULL };
    r = exec_req(silent_argv, 1000);
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_FAILURE && strstr(o.reason, "status 4"),
          "exec silent exit 4: %s \"%s\"", probe_result_name(o.res), o.reason);

    char *id_argv[] = { "/bin/sh", "-c", "echo $(id -u):$(id -g)", NULL };
    r = exec_req(id_argv, 1000);
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_SUCCESS && strcmp(o.reason, "65534:65534") == 0,
          "exec runs as nobody: %s \"%s\"", probe_result_name(o.res), o.reason);

    /* A long output is truncated to PROBE_REASON_MAX. */
    char *long_argv[] = { "/bin/sh", "-c", "i=0; while [ $i -lt 400 ]; do printf x; i=$((i+1)); done; exit 1", NULL };
    r = exec_req(long_argv, 2000);
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_FAILURE && strlen(o.reason) == PROBE_REASON_MAX - 1,
          "exec long output truncated: %s len %zu", probe_result_name(o.res), strlen(o.reason));

    /* Timeout: the child (and its own child) are killed promptly. */
    char pidfile[64];
    snprintf(pidfile, sizeof(pidfile), "/tmp/test_probe_check.%d.pid", (int)getpid());
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "echo started; sleep 30 & echo $! > %s; wait", pidfile);
    char *sleep_argv[] = { "/bin/sh", "-c", cmd, NULL };
    r = exec_req(sleep_argv, 300);
    r.uid = 0;   /* to write the pid file in /tmp without races on permissions */
    r.gid = 0;
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_TIMEOUT, "exec timeout: %s (%s)", probe_result_name(o.res), o.reason);
    /* the child sleeps 30 s: ending well before shows it was killed, not awaited */
    CHECK(o.dur < 10.0, "exec timeout took %.3f s", o.dur);
    CHECK(strstr(o.reason, "started") != NULL, "exec timeout keeps output: \"%s\"", o.reason);
    FILE *f = fopen(pidfile, "r");
    int gpid = 0;
    if (f) {
        if (fscanf(f, "%d", &gpid) != 1)
            gpid = 0;
        fclose(f);
    }
    unlink(pidfile);
    CHECK(gpid > 0 && proc_gone(gpid), "grandchild %d of a timed-out exec probe was killed", gpid);

    char *missing_argv[] = { "/nonexistent/cmd", NULL };
    r = exec_req(missing_argv, 1000);
    o = run(&r);
    CHECK(o.res == PROBE_RESULT_FAILURE && strstr(o.reason, "No such file"),
          "exec missing command: %s \"%s\"", probe_result_name(o.res), o.reason);

    /* setns into a named netns: the probe sees that namespace. */
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", netns_name);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        char *ns_argv[] = { "/bin/sh", "-c", "readlink /proc/self/ns/net", NULL };
        r = exec_req(ns_argv, 1000);
        r.netns_path = path;
        o = run(&r);
        char want[64];
        snprintf(want, sizeof(want), "net:[%lu]", (unsigned long)sb.st_ino);
        CHECK(o.res == PROBE_RESULT_SUCCESS && strcmp(o.reason, want) == 0,
              "exec in netns: %s \"%s\", want \"%s\"", probe_result_name(o.res), o.reason, want);
        r.netns_path = "/run/netns/does-not-exist-probe-test";
        o = run(&r);
        CHECK(o.res == PROBE_RESULT_FAILURE && strstr(o.reason, "setns"),
              "exec with missing netns: %s \"%s\"", probe_result_name(o.res), o.reason);
    } else {
        CHECK(0, "named netns %s was not created", path);
    }
}

/* ---- cancel ------------------------------------------------------------------------ */

static void test_cancel(void)
{
    struct outcome o = { 0 };
    char *sleep_argv[] = { "sleep", "30", NULL };
    struct probe_check_req r = exec_req(sleep_argv, 10000);
    struct probe_check *c = probe_check_start(base, &r, on_done, &o);
    CHECK(c != NULL, "start exec for cancel");
    probe_check_cancel(c);
    struct probe_check_req h = net_req(SVCD_PROBE_HTTP, HTTP_PORT, "/hang", 10000);
    c = probe_check_start(base, &h, on_done, &o);
    event_base_loop(base, EVLOOP_NONBLOCK);
    probe_check_cancel(c);
    /* Nothing must fire afterwards. */
    struct event *guard = evtimer_new(base, on_guard, NULL);
    struct timeval tv = { 0, 200000 };
    evtimer_add(guard, &tv);
    event_base_dispatch(base);
    event_free(guard);
    CHECK(!o.done, "a cancelled probe reported a result");
}

/* ---- pure gRPC codec ---------------------------------------------------------------- */

static void test_grpc_codec(void)
{
    uint8_t buf[64];
    int n = probe_grpc_encode_request("", buf, sizeof(buf));
    CHECK(n == 5 && buf[4] == 0, "empty service encodes to an empty message (%d)", n);
    n = probe_grpc_encode_request("db", buf, sizeof(buf));
    CHECK(n == 9 && buf[4] == 4 && buf[5] == 0x0a && buf[6] == 2 && memcmp(buf + 7, "db", 2) == 0,
          "service \"db\" encodes as field 1 (%d)", n);
    CHECK(probe_grpc_encode_request("db", buf, 8) == -1, "too small buffer fails");

    static const struct {
        uint8_t b[16];
        size_t len;
        int want;
    } dec[] = {
        { { 0, 0, 0, 0, 2, 0x08, 1 }, 7, 1 },
        { { 0, 0, 0, 0, 2, 0x08, 2 }, 7, 2 },
        { { 0, 0, 0, 0, 0 }, 5, 0 },                       /* default UNKNOWN */
        { { 0, 0, 0, 0, 4, 0x12, 0x01, 'x', 0x08, 1 }, 10, -1 },   /* length says 4, has 5 */
        { { 0, 0, 0, 0, 5, 0x12, 0x01, 'x', 0x08, 1 }, 10, 1 },    /* unknown field skipped */
        { { 0, 0, 0, 0, 3, 0x08, 0x81 }, 7, -1 },          /* truncated varint */
        { { 1, 0, 0, 0, 2, 0x08, 1 }, 7, -1 },             /* compressed */
        { { 0, 0, 0, 9, 0 }, 5, -1 },                      /* longer than given */
        { { 0, 0, 0 }, 3, -1 },
    };
    for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
        int got = probe_grpc_decode_response(dec[i].b, dec[i].len);
        CHECK(got == dec[i].want, "grpc decode case %zu: got %d want %d", i, got, dec[i].want);
    }
}

/* ---- setup --------------------------------------------------------------------------- */

static int setup_netns(void)
{
    if (unshare(CLONE_NEWNET) < 0) {
        printf("unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return -1;
    }
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

static void cleanup_netns(void)
{
    if (netns_name[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", netns_name);
        if (system(cmd) != 0) {
            /* already gone */
        }
        netns_name[0] = '\0';
    }
}

static void on_signal(int sig)
{
    cleanup_netns();
    _exit(128 + sig);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("skipped: needs root (network namespaces)\n0 passed, 0 failed\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    if (setup_netns() < 0) {
        printf("cannot set up a private network namespace\n0 passed, 1 failed\n");
        return 1;
    }
    snprintf(netns_name, sizeof(netns_name), "probetest-%d", (int)getpid());
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "ip netns add %s", netns_name);
    atexit(cleanup_netns);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGABRT, on_signal);   /* best effort: do not leave the named netns behind */
    signal(SIGSEGV, on_signal);
    if (system(cmd) != 0)
        printf("warning: %s failed\n", cmd);

    base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    if (evhttp_bind_socket(http, "127.0.0.1", HTTP_PORT) < 0) {
        printf("cannot bind http\n0 passed, 1 failed\n");
        return 1;
    }
    evhttp_set_gencb(http, srv_http, NULL);
    struct evconnlistener *tcp = listen_on(TCP_PORT, srv_tcp_accept, NULL);
    struct evconnlistener *g1 = listen_on(GRPC_PORT, srv_grpc_accept, (void *)(intptr_t)1);
    struct evconnlistener *g2 = listen_on(GRPC_BAD_PORT, srv_grpc_accept, (void *)(intptr_t)2);
    struct evconnlistener *raw = listen_on(RAW_PORT, srv_raw_accept, NULL);
    if (!tcp || !g1 || !g2 || !raw) {
        printf("cannot listen\n0 passed, 1 failed\n");
        return 1;
    }

    test_grpc_codec();
    test_net();
    test_http_raw();
    test_http_reuse();
    if (!getenv("PROBE_TEST_ONLY")) {
        test_exec();
        test_cancel();
    }

    evconnlistener_free(tcp);
    evconnlistener_free(g1);
    evconnlistener_free(g2);
    evconnlistener_free(raw);
    evhttp_free(http);
    event_base_free(base);
    cleanup_netns();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
