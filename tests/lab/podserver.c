/*
 * podserver: the program each lab pod runs (tests/lab/lab.sh starts one per
 * pod namespace). It stands in for a real workload so tests can tell which
 * pod answered a request sent to a Service VIP, and so probes have something
 * to probe.
 *
 * Every listener binds "::" with IPV6_V6ONLY=0 (one socket serves IPv4 and
 * IPv6); where IPv6 is unavailable it falls back to 0.0.0.0.
 *
 *   --name NAME        pod name (the body of every answer), required
 *   --http PORT        HTTP server (repeatable):
 *                        GET /         -> 200 "NAME\n"
 *                        GET /healthz  -> 200 "ok\n", or 500 "failing\n"
 *                                         while the --fail-file exists
 *                        GET /clientip -> 200 "<peer address>\n" (shows
 *                                         whether the source was NATed)
 *                        GET /hang     -> never answered (timeouts)
 *                        anything else -> 200 "NAME\n"
 *                      every answer carries "X-Pod-Name: NAME".
 *   --udp PORT         UDP (repeatable): each datagram gets "NAME\n" back.
 *   --sctp PORT        SCTP stream socket: each accepted association gets
 *                      "NAME\n" and is closed. Skipped with a warning when
 *                      the kernel has no SCTP (socket() fails).
 *   --fail-file PATH   see /healthz.
 *   --pidfile PATH     written once every listener is bound (so its
 *                      existence means "ready"); removed on exit.
 *
 * SIGTERM or SIGINT ends the event loop; the program exits 0.
 * Exit status 2 for bad arguments, 1 when a listener cannot be set up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#define PODSERVER_MAX_PORTS 16

struct podserver {
    const char *name;
    const char *fail_file;
    const char *pidfile;
    struct event_base *base;
    struct evhttp *http[PODSERVER_MAX_PORTS];
    size_t n_http;
    struct event *udp_ev[PODSERVER_MAX_PORTS];
    size_t n_udp;
    struct evconnlistener *sctp;
    struct event *sig_term;
    struct event *sig_int;
    int pidfile_written;
};

/* Parses a port 1-65535; returns it, or -1. */
static int podserver_parse_port(const char *s)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
        return -1;
    return (int)v;
}

/* Opens a socket of type/proto bound to [::]:port (dual stack), or to
 * 0.0.0.0:port when IPv6 sockets are unavailable. Stream sockets are put in
 * listen state. Returns the fd, or -1 with errno set. */
static int podserver_open_socket(int type, int proto, int port)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    int one = 1, zero = 0;
    int fd, saved;

    fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd >= 0) {
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        memset(&a6, 0, sizeof(a6));
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) < 0)
            goto fail;
    } else {
        if (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT)
            return -1;       /* protocol missing: IPv4 will not help */
        fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        if (fd < 0)
            return -1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        memset(&a4, 0, sizeof(a4));
        a4.sin_family = AF_INET;
        a4.sin_addr.s_addr = htonl(INADDR_ANY);
        a4.sin_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0)
            goto fail;
    }
    if (type == SOCK_STREAM && listen(fd, 128) < 0)
        goto fail;
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Formats a peer address without the IPv4-mapped prefix ("10.244.0.1",
 * "fd00:10:244::1"). */
static void podserver_format_peer(const struct sockaddr *sa, char *out, size_t outlen)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

    snprintf(out, outlen, "?");
    if (sa->sa_family == AF_INET6) {
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)outlen);
    }
}

/* One HTTP request: answers per the table in the file comment. */
static void podserver_on_http(struct evhttp_request *req, void *arg)
{
    struct podserver *ps = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *body = NULL;
    struct stat st;
    char path[256];
    size_t plen;
    int code = 200;
    const char *reason = "OK";

    /* path without the query string */
    plen = strcspn(uri ? uri : "/", "?#");
    if (plen >= sizeof(path))
        plen = sizeof(path) - 1;
    memcpy(path, uri ? uri : "/", plen);
    path[plen] = '\0';

    if (strcmp(path, "/hang") == 0)
        return;   /* never answered; evhttp frees it when the peer goes */

    body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Pod-Name", ps->name);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain");
    if (strcmp(path, "/healthz") == 0) {
        if (ps->fail_file && stat(ps->fail_file, &st) == 0) {
            code = 500;
            reason = "Internal Server Error";
            evbuffer_add_printf(body, "failing\n");
        } else {
            evbuffer_add_printf(body, "ok\n");
        }
    } else if (strcmp(path, "/clientip") == 0) {
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        const struct sockaddr *sa = conn ? evhttp_connection_get_addr(conn) : NULL;
        char peer[INET6_ADDRSTRLEN] = "?";

        if (sa)
            podserver_format_peer(sa, peer, sizeof(peer));
        evbuffer_add_printf(body, "%s\n", peer);
    } else {
        evbuffer_add_printf(body, "%s\n", ps->name);
    }
    evhttp_send_reply(req, code, reason, body);
    evbuffer_free(body);
}

/* A datagram arrived: answer each pending one with the pod name. */
static void podserver_on_udp(evutil_socket_t fd, short what, void *arg)
{
    struct podserver *ps = arg;
    struct sockaddr_storage peer;
    socklen_t plen;
    char buf[2048];
    char reply[300];
    int rlen;
    int i;

    rlen = snprintf(reply, sizeof(reply), "%s\n", ps->name);
    if (rlen < 0 || (size_t)rlen >= sizeof(reply))
        rlen = (int)sizeof(reply) - 1;
    for (i = 0; i < 64; i++) {           /* bounded: yield to other events */
        plen = sizeof(peer);
        if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen) < 0)
            return;                      /* EAGAIN, or a transient error */
        (void)sendto(fd, reply, (size_t)rlen, 0, (struct sockaddr *)&peer, plen);
    }
}

/* An SCTP association was accepted: send the name, close. */
static void podserver_on_sctp(struct evconnlistener *l, evutil_socket_t fd,
                              struct sockaddr *sa, int salen, void *arg)
{
    struct podserver *ps = arg;
    char reply[300];
    int rlen = snprintf(reply, sizeof(reply), "%s\n", ps->name);

    if (rlen > 0 && (size_t)rlen < sizeof(reply))
        (void)send(fd, reply, (size_t)rlen, MSG_NOSIGNAL);
    close(fd);
}

static void podserver_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct podserver *ps = arg;

    fprintf(stderr, "podserver %s: signal %d, exiting\n", ps->name, (int)sig);
    event_base_loopexit(ps->base, NULL);
}

/* Writes our pid to ps->pidfile atomically (tmp + rename). 0 or -1. */
static int podserver_write_pidfile(struct podserver *ps)
{
    char tmp[4096];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", ps->pidfile) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0 || rename(tmp, ps->pidfile) != 0) {
        unlink(tmp);
        return -1;
    }
    ps->pidfile_written = 1;
    return 0;
}

/* Frees whatever was set up; accepts a half-built podserver. */
static void podserver_free(struct podserver *ps)
{
    size_t i;

    for (i = 0; i < ps->n_http; i++)
        evhttp_free(ps->http[i]);
    for (i = 0; i < ps->n_udp; i++) {
        evutil_socket_t fd = event_get_fd(ps->udp_ev[i]);

        event_free(ps->udp_ev[i]);
        close(fd);
    }
    if (ps->sctp)
        evconnlistener_free(ps->sctp);
    if (ps->sig_term)
        event_free(ps->sig_term);
    if (ps->sig_int)
        event_free(ps->sig_int);
    if (ps->base)
        event_base_free(ps->base);
    if (ps->pidfile_written)
        unlink(ps->pidfile);
}

static void podserver_usage(FILE *f)
{
    fprintf(f, "usage: podserver --name NAME [--http PORT]... [--udp PORT]... "
               "[--sctp PORT] [--fail-file PATH] [--pidfile PATH]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "http", required_argument, NULL, 'h' },
        { "udp", required_argument, NULL, 'u' },
        { "sctp", required_argument, NULL, 's' },
        { "fail-file", required_argument, NULL, 'f' },
        { "pidfile", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'H' },
        { NULL, 0, NULL, 0 },
    };
    struct podserver ps;
    int http_ports[PODSERVER_MAX_PORTS], udp_ports[PODSERVER_MAX_PORTS];
    size_t n_http = 0, n_udp = 0, i;
    int sctp_port = 0;
    int c, port, fd;
    int rc = 1;

    memset(&ps, 0, sizeof(ps));
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            ps.name = optarg;
            break;
        case 'h':
        case 'u':
        case 's':
            port = podserver_parse_port(optarg);
            if (port < 0) {
                fprintf(stderr, "podserver: bad port '%s'\n", optarg);
                return 2;
            }
            if (c == 's') {
                sctp_port = port;
            } else if ((c == 'h' ? n_http : n_udp) >= PODSERVER_MAX_PORTS) {
                fprintf(stderr, "podserver: at most %d ports per kind\n",
                        PODSERVER_MAX_PORTS);
                return 2;
            } else if (c == 'h') {
                http_ports[n_http++] = port;
            } else {
                udp_ports[n_udp++] = port;
            }
            break;
        case 'f':
            ps.fail_file = optarg;
            break;
        case 'p':
            ps.pidfile = optarg;
            break;
        case 'H':
            podserver_usage(stdout);
            return 0;
        default:
            podserver_usage(stderr);
            return 2;
        }
    }
    if (!ps.name || optind != argc || strlen(ps.name) > 253) {
        podserver_usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    ps.base = event_base_new();
    if (!ps.base)
        goto out;
    ps.sig_term = evsignal_new(ps.base, SIGTERM, podserver_on_signal, &ps);
    ps.sig_int = evsignal_new(ps.base, SIGINT, podserver_on_signal, &ps);
    if (!ps.sig_term || !ps.sig_int || evsignal_add(ps.sig_term, NULL) < 0 ||
        evsignal_add(ps.sig_int, NULL) < 0)
        goto out;

    for (i = 0; i < n_http; i++) {
        struct evhttp *h;

        fd = podserver_open_socket(SOCK_STREAM, 0, http_ports[i]);
        if (fd < 0) {
            fprintf(stderr, "podserver: http port %d: %s\n", http_ports[i],
                    strerror(errno));
            goto out;
        }
        h = evhttp_new(ps.base);
        if (!h) {
            close(fd);
            goto out;
        }
        ps.http[ps.n_http++] = h;
        evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
                                      EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
        evhttp_set_gencb(h, podserver_on_http, &ps);
        if (!evhttp_accept_socket_with_handle(h, fd)) {
            close(fd);
            goto out;
        }
    }
    for (i = 0; i < n_udp; i++) {
        struct event *ev;

        fd = podserver_open_socket(SOCK_DGRAM, 0, udp_ports[i]);
        if (fd < 0) {
            fprintf(stderr, "podserver: udp port %d: %s\n", udp_ports[i],
                    strerror(errno));
            goto out;
        }
        ev = event_new(ps.base, fd, EV_READ | EV_PERSIST, podserver_on_udp, &ps);
        if (!ev) {
            close(fd);
            goto out;
        }
        ps.udp_ev[ps.n_udp++] = ev;
        if (event_add(ev, NULL) < 0)
            goto out;
    }
    if (sctp_port) {
        fd = podserver_open_socket(SOCK_STREAM, IPPROTO_SCTP, sctp_port);
        if (fd < 0 && (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT)) {
            fprintf(stderr, "podserver: SCTP not supported by this kernel; "
                            "--sctp %d skipped\n", sctp_port);
        } else if (fd < 0) {
            fprintf(stderr, "podserver: sctp port %d: %s\n", sctp_port,
                    strerror(errno));
            goto out;
        } else {
            ps.sctp = evconnlistener_new(ps.base, podserver_on_sctp, &ps,
                                         LEV_OPT_CLOSE_ON_FREE, -1, fd);
            if (!ps.sctp) {
                close(fd);
                goto out;
            }
        }
    }
    if (ps.pidfile && podserver_write_pidfile(&ps) < 0) {
        fprintf(stderr, "podserver: pidfile %s: %s\n", ps.pidfile, strerror(errno));
        goto out;
    }
    fprintf(stderr, "podserver %s: ready (%zu http, %zu udp, sctp %s)\n", ps.name,
            ps.n_http, ps.n_udp, ps.sctp ? "on" : "off");
    if (event_base_dispatch(ps.base) < 0)
        goto out;
    rc = 0;
out:
    podserver_free(&ps);
    return rc;
}
