/*
 * probe_http: httpGet probes without an HTTP client library's per-request
 * objects (see probe_http.h for the shape of an attempt).
 *
 * Why not evhttp: an evhttp request builds an evhttp_connection, a
 * bufferevent, an evhttp_request and header lists per attempt and spends
 * about twice the syscalls (getsockopt, getpeername, ioctl FIONREAD,
 * shutdown, extra epoll_ctl). With 1,000 pods probed every second that was
 * a third of the prober's CPU. Here an attempt costs socket, connect, send,
 * epoll_ctl add, read, epoll_ctl del, close, and no malloc. Parsing is
 * nodejs/http-parser's, paused at on_headers_complete.
 */
#include "probe_http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/event.h>
#include <http_parser.h>

#define PROBE_HTTP_USER_AGENT "kube-probe/1.31"
/* Bytes of status line + headers accepted before giving up (evhttp's
 * limit in the former client; the kubelet's Go client allows more, but a
 * health endpoint sending 16 KiB of headers is broken). */
#define PROBE_HTTP_MAX_HEADER_BYTES 16384
#define PROBE_HTTP_READ_CHUNK 2048

struct probe_http {
    struct event_base *base;
    struct event *ev_io;         /* re-assigned to each attempt's socket */
    struct event *ev_timer;      /* deadline, or the deferred result */
    struct timeval deadline;     /* a common-timeout value when libevent has one */
    struct sockaddr_storage sa;
    socklen_t salen;
    int family;
    char target[64];             /* "10.0.0.5:8080" / "[fd00::5]:8080" */

    /* the attempt */
    probe_check_done_fn done;
    void *ctx;
    bool running;
    bool deferred;               /* result decided inside start(): def_* */
    enum probe_result def_res;
    const char *def_reason;      /* static text or def_buf */
    char def_buf[PROBE_REASON_MAX];
    int fd;
    size_t sent;                 /* request bytes written */
    size_t got;                  /* response bytes read */
    bool headers_done;
    struct timespec t0;
    http_parser parser;

    /* Built once: "http://host:port/path" for reasons, then the request. */
    size_t url_len, req_len;
    char text[];                 /* url '\0' request */
};

static const char *probe_http_url(const struct probe_http *h)
{
    return h->text;
}

static const char *probe_http_req(const struct probe_http *h)
{
    return h->text + h->url_len + 1;
}

/* ---- building the request -------------------------------------------------- */

/* RFC 9110 token characters (header names). */
static bool probe_http_is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return false;
    }
    return true;
}

/* A header value: no CR, LF or NUL (no request splitting). */
static bool probe_http_is_value(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

static bool probe_http_user_has(const struct svcd_kvmap *user, const char *key)
{
    for (size_t i = 0; user && i < user->n; i++)
        if (strcasecmp(user->items[i].key, key) == 0)
            return true;
    return false;
}

/* Appends to buf[*off..cap); returns false when it did not fit (or cap is
 * 0: sizing pass, *off still advances). */
static bool __attribute__((format(printf, 4, 5)))
probe_http_put(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf ? buf + *off : NULL, buf && cap > *off ? cap - *off : 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    *off += (size_t)n;
    return !buf || *off < cap;
}

/* Writes the request into buf (cap bytes; buf NULL = only count) and
 * returns its length without the NUL. Headers: the user's httpHeaders as
 * given; Host, User-Agent and Accept unless the user set them;
 * "Connection: close" always (the kubelet disables keep-alive). */
static size_t probe_http_format(char *buf, size_t cap, const char *path, const char *hostport,
                                const struct svcd_kvmap *user)
{
    size_t off = 0;
    probe_http_put(buf, cap, &off, "GET %s%s HTTP/1.1\r\n", path[0] == '/' ? "" : "/", path);
    if (!probe_http_user_has(user, "Host"))
        probe_http_put(buf, cap, &off, "Host: %s\r\n", hostport);
    if (!probe_http_user_has(user, "User-Agent"))
        probe_http_put(buf, cap, &off, "User-Agent: %s\r\n", PROBE_HTTP_USER_AGENT);
    if (!probe_http_user_has(user, "Accept"))
        probe_http_put(buf, cap, &off, "Accept: */*\r\n");
    for (size_t i = 0; user && i < user->n; i++) {
        if (strcasecmp(user->items[i].key, "Connection") == 0)
            continue;
        probe_http_put(buf, cap, &off, "%s: %s\r\n", user->items[i].key, user->items[i].value);
    }
    probe_http_put(buf, cap, &off, "Connection: close\r\n\r\n");
    return off;
}

static void probe_http_on_io(evutil_socket_t fd, short what, void *arg);
static void probe_http_on_timer(evutil_socket_t fd, short what, void *arg);

struct probe_http *probe_http_new(struct event_base *base, const struct svcd_ip *ip,
                                  uint16_t port, const char *path,
                                  const struct svcd_kvmap *headers, uint32_t timeout_ms,
                                  char *err, size_t errlen)
{
    char ipbuf[INET6_ADDRSTRLEN];
    char hostport[INET6_ADDRSTRLEN + 10];
    struct probe_http *h = NULL;

    if (errlen)
        err[0] = '\0';
    if (!path || !path[0])
        path = "/";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "httpGet.path has spaces or control characters");
            return NULL;
        }
    for (size_t i = 0; headers && i < headers->n; i++)
        if (!probe_http_is_token(headers->items[i].key) ||
            !probe_http_is_value(headers->items[i].value ? headers->items[i].value : "")) {
            snprintf(err, errlen, "httpHeaders: invalid header \"%.64s\"",
                     headers->items[i].key ? headers->items[i].key : "");
            return NULL;
        }
    if (ip->family != AF_INET && ip->family != AF_INET6) {
        snprintf(err, errlen, "no address to probe");
        return NULL;
    }
    svcd_ip_format(ip, ipbuf, sizeof(ipbuf));
    if (ip->family == AF_INET6)
        snprintf(hostport, sizeof(hostport), "[%s]:%u", ipbuf, (unsigned)port);
    else
        snprintf(hostport, sizeof(hostport), "%s:%u", ipbuf, (unsigned)port);

    size_t url_len = strlen("http://") + strlen(hostport) + (path[0] == '/' ? 0 : 1) + strlen(path);
    size_t req_len = probe_http_format(NULL, 0, path, hostport, headers);
    h = calloc(1, sizeof(*h) + url_len + 1 + req_len + 1);
    if (!h)
        return NULL;
    h->base = base;
    h->fd = -1;
    h->url_len = url_len;
    h->req_len = req_len;
    snprintf(h->text, url_len + 1, "http://%s%s%s", hostport, path[0] == '/' ? "" : "/", path);
    probe_http_format(h->text + url_len + 1, req_len + 1, path, hostport, headers);
    snprintf(h->target, sizeof(h->target), "%s", hostport);

    h->family = ip->family;
    if (ip->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&h->sa;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr = ip->u.v4;
        h->salen = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        sin6->sin6_addr = ip->u.v6;
        h->salen = sizeof(*sin6);
    }

    if (!timeout_ms)
        timeout_ms = 1000;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    /* Every probe with the same timeout shares one O(1) timer queue. */
    const struct timeval *common = event_base_init_common_timeout(base, &tv);
    h->deadline = common ? *common : tv;

    h->ev_io = event_new(base, -1, 0, probe_http_on_io, h);
    h->ev_timer = evtimer_new(base, probe_http_on_timer, h);
    if (!h->ev_io || !h->ev_timer) {
        probe_http_free(h);
        return NULL;
    }
    return h;
}

/* ---- one attempt -------------------------------------------------------------- */

static void probe_http_close(struct probe_http *h)
{
    if (h->fd < 0)
        return;
    event_del(h->ev_io);
    /* Close with an RST: no FIN handshake for either side to process and
     * no TIME_WAIT socket left per probe (1,000 probes/s would otherwise
     * keep ~60,000 of them). The response has been read. */
    struct linger lg = { 1, 0 };
    setsockopt(h->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(h->fd);
    h->fd = -1;
}

static double probe_http_elapsed(const struct probe_http *h)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - h->t0.tv_sec) + (double)(now.tv_nsec - h->t0.tv_nsec) / 1e9;
}

/* Ends the attempt and reports; h is not touched after done() returns (it
 * may start the next attempt or free h). */
static void probe_http_finish(struct probe_http *h, enum probe_result res, const char *reason)
{
    probe_http_close(h);
    evtimer_del(h->ev_timer);
    h->running = false;
    h->deferred = false;
    probe_check_done_fn done = h->done;
    void *ctx = h->ctx;
    done(ctx, res, reason, probe_http_elapsed(h));
}

/* "connection refused" as Go writes it: strerror, first letter lowered. */
static void probe_http_errtext(int err, char *buf, size_t len)
{
    snprintf(buf, len, "%s", strerror(err));
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
}

/* Fails the attempt for a socket error; connecting says whether the
 * connection was never established. */
static void probe_http_fail_errno(struct probe_http *h, int err, bool connecting, char *buf,
                                  size_t len)
{
    char msg[128];
    probe_http_errtext(err, msg, sizeof(msg));
    if (connecting)
        snprintf(buf, len, "Get \"%s\": dial tcp %s: connect: %s", probe_http_url(h), h->target,
                 msg);
    else
        snprintf(buf, len, "Get \"%s\": read tcp %s: %s", probe_http_url(h), h->target, msg);
}

static int probe_http_on_headers_complete(http_parser *p)
{
    struct probe_http *h = p->data;
    /* Interim 1xx answers (100 Continue...) are skipped as Go's client does;
     * the final answer follows on the same connection. */
    if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101)
        return 0;
    h->headers_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings probe_http_settings = {
    .on_headers_complete = probe_http_on_headers_complete,
};

/* Sends what is left of the request. 0 when all is sent, 1 when the socket
 * is not writable yet, -1 with errno on error. */
static int probe_http_send(struct probe_http *h)
{
    const char *req = probe_http_req(h);
    while (h->sent < h->req_len) {
        ssize_t n = send(h->fd, req + h->sent, h->req_len - h->sent, MSG_NOSIGNAL);
        if (n > 0) {
            h->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n == 0)
            errno = EPIPE;
        return -1;
    }
    return 0;
}

/* Watches the socket for what comes next: writability while the request
 * is not all sent, readability afterwards. */
static int probe_http_watch(struct probe_http *h, short what)
{
    if (event_assign(h->ev_io, h->base, h->fd, what | EV_PERSIST, probe_http_on_io, h) < 0)
        return -1;
    return event_add(h->ev_io, NULL);
}

static void probe_http_on_readable(struct probe_http *h)
{
    char buf[PROBE_HTTP_READ_CHUNK];
    char reason[PROBE_REASON_MAX];
    ssize_t n = read(h->fd, buf, sizeof(buf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        probe_http_fail_errno(h, errno, false, reason, sizeof(reason));
        probe_http_finish(h, PROBE_RESULT_FAILURE, reason);
        return;
    }
    if (n == 0) {
        snprintf(reason, sizeof(reason), "Get \"%s\": connection closed before a response",
                 probe_http_url(h));
        probe_http_finish(h, PROBE_RESULT_FAILURE, reason);
        return;
    }
    h->got += (size_t)n;
    http_parser_execute(&h->parser, &probe_http_settings, buf, (size_t)n);
    enum http_errno perr = HTTP_PARSER_ERRNO(&h->parser);
    if (h->headers_done) {
        unsigned code = h->parser.status_code;
        if (code >= 200 && code < 400) {
            probe_http_finish(h, PROBE_RESULT_SUCCESS, "");
        } else {
            snprintf(reason, sizeof(reason), "HTTP probe failed with statuscode: %u", code);
            probe_http_finish(h, PROBE_RESULT_FAILURE, reason);
        }
        return;
    }
    if (perr != HPE_OK) {
        snprintf(reason, sizeof(reason), "Get \"%s\": malformed HTTP response (%s)",
                 probe_http_url(h), http_errno_name(perr));
        probe_http_finish(h, PROBE_RESULT_FAILURE, reason);
        return;
    }
    if (h->got > PROBE_HTTP_MAX_HEADER_BYTES) {
        snprintf(reason, sizeof(reason), "Get \"%s\": response headers larger than %d bytes",
                 probe_http_url(h), PROBE_HTTP_MAX_HEADER_BYTES);
        probe_http_finish(h, PROBE_RESULT_FAILURE, reason);
    }
}

static void probe_http_on_io(evutil_socket_t fd, short what, void *arg)
{
    struct probe_http *h = arg;
    char reason[PROBE_REASON_MAX];
    if (!h->running)
        return;
    if (h->sent < h->req_len) {
        int rc = probe_http_send(h);
        if (rc < 0) {
            probe_http_fail_errno(h, errno, h->sent == 0, reason, sizeof(reason));
            probe_http_finish(h, PROBE_RESULT_FAILURE, reason);
            return;
        }
        if (rc == 0) {
            event_del(h->ev_io);
            if (probe_http_watch(h, EV_READ) < 0)
                probe_http_finish(h, PROBE_RESULT_ERROR, "event_add failed");
        }
        return;
    }
    probe_http_on_readable(h);
}

static void probe_http_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct probe_http *h = arg;
    char reason[PROBE_REASON_MAX];
    if (!h->running)
        return;
    if (h->deferred) {
        snprintf(reason, sizeof(reason), "%s", h->def_reason);
        probe_http_finish(h, h->def_res, reason);
        return;
    }
    snprintf(reason, sizeof(reason),
             "Get \"%s\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
             probe_http_url(h));
    probe_http_finish(h, PROBE_RESULT_TIMEOUT, reason);
}

/* A result known inside probe_http_start(): reported from the loop. */
static void probe_http_defer(struct probe_http *h, enum probe_result res, const char *reason)
{
    probe_http_close(h);
    evtimer_del(h->ev_timer);
    h->deferred = true;
    h->def_res = res;
    h->def_reason = reason;
    event_active(h->ev_timer, EV_TIMEOUT, 1);
}

int probe_http_start(struct probe_http *h, probe_check_done_fn done, void *ctx)
{
    if (h->running) {
        errno = EBUSY;
        return -1;
    }
    h->done = done;
    h->ctx = ctx;
    h->running = true;
    h->deferred = false;
    h->sent = h->got = 0;
    h->headers_done = false;
    http_parser_init(&h->parser, HTTP_RESPONSE);
    h->parser.data = h;
    clock_gettime(CLOCK_MONOTONIC, &h->t0);

    h->fd = socket(h->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0) {
        snprintf(h->def_buf, sizeof(h->def_buf), "socket: %s", strerror(errno));
        probe_http_defer(h, PROBE_RESULT_ERROR, h->def_buf);
        return 0;
    }
    /* TCP_DEFER_ACCEPT on a client socket delays the handshake's last ACK
     * so that it rides on the request: one packet less for both sides. */
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
    if (connect(h->fd, (const struct sockaddr *)&h->sa, h->salen) < 0 && errno != EINPROGRESS) {
        probe_http_fail_errno(h, errno, true, h->def_buf, sizeof(h->def_buf));
        probe_http_defer(h, PROBE_RESULT_FAILURE, h->def_buf);
        return 0;
    }
    /* Over loopback or a veth the handshake has usually completed inside
     * connect(): send right away instead of waiting for writability. A
     * connection still in SYN_SENT answers EAGAIN; a refused one its error. */
    int rc = probe_http_send(h);
    if (rc < 0) {
        probe_http_fail_errno(h, errno, h->sent == 0, h->def_buf, sizeof(h->def_buf));
        probe_http_defer(h, PROBE_RESULT_FAILURE, h->def_buf);
        return 0;
    }
    if (probe_http_watch(h, rc == 0 ? EV_READ : EV_WRITE) < 0) {
        probe_http_defer(h, PROBE_RESULT_ERROR, "event_add failed");
        return 0;
    }
    evtimer_add(h->ev_timer, &h->deadline);
    return 0;
}

bool probe_http_running(const struct probe_http *h)
{
    return h->running;
}

void probe_http_cancel(struct probe_http *h)
{
    if (!h || !h->running)
        return;
    probe_http_close(h);
    evtimer_del(h->ev_timer);
    h->running = false;
    h->deferred = false;
}

void probe_http_free(struct probe_http *h)
{
    if (!h)
        return;
    probe_http_cancel(h);
    if (h->ev_io)
        event_free(h->ev_io);
    if (h->ev_timer)
        event_free(h->ev_timer);
    free(h);
}
