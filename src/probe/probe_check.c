/*
 * probe_check: run one probe attempt on the event loop and report the result.
 *
 * Nothing here blocks the loop:
 *   - tcpSocket: non-blocking connect(), writable + SO_ERROR decides;
 *   - httpGet:   handed to probe_http.c (lean client: one connection per
 *                attempt, "Connection: close" as the kubelet disables
 *                keep-alive, 200-399 is success, the body is not read);
 *   - exec:      fork(), setns() into the pod's netns, drop to an
 *                unprivileged uid/gid, exec; output read through a pipe
 *                event, exit seen through a pidfd event; on timeout the
 *                whole process group is SIGKILLed;
 *   - grpc:      handed to probe_grpc.c (minimal HTTP/2 cleartext client).
 * Every attempt has a deadline timer of timeoutSeconds. A result is always
 * delivered from the loop, never from inside probe_check_start().
 */
#include "probe_internal.h"
#include "probe_grpc.h"
#include "probe_http.h"
#include "svcd/log.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <arpa/inet.h>

#include <event2/event.h>

#define PROBE_OUTPUT_MAX PROBE_REASON_MAX  /* exec output kept: only the reason's
                                              worth is ever shown */

/* snprintf that truncates on purpose (reasons are capped at PROBE_REASON_MAX). */
static void __attribute__((format(printf, 3, 4)))
probe_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

struct probe_check {
    struct event_base *base;
    enum svcd_probe_kind kind;
    probe_check_done_fn done;
    void *ctx;
    struct timespec t0;
    bool in_start;             /* inside probe_check_start(): defer results */
    bool finished;
    struct event *ev_timer;    /* deadline, or deferred result */
    bool deferred;             /* a result from inside start(), reason in out[] */
    enum probe_result def_res;
    char target[64];           /* "10.0.0.5:8080" for messages */

    /* tcp (and https-as-tcp) */
    int fd;
    struct event *ev_io;

    /* http */
    struct probe_http *http;

    /* exec */
    pid_t pid;
    int pidfd;
    int out_fd;
    struct event *ev_out;
    struct event *ev_pid;
    bool timed_out;
    bool exited;

    /* output (exec) */
    char out[PROBE_OUTPUT_MAX];
    size_t out_len;

    /* grpc */
    struct probe_grpc *grpc;
};

static double probe_check_elapsed(const struct probe_check *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - c->t0.tv_sec) + (double)(now.tv_nsec - c->t0.tv_nsec) / 1e9;
}

/* Releases everything the attempt holds, and the attempt. */
static void probe_check_release(struct probe_check *c)
{
    if (c->ev_timer)
        event_free(c->ev_timer);
    if (c->ev_io)
        event_free(c->ev_io);
    if (c->fd >= 0)
        close(c->fd);
    if (c->ev_out)
        event_free(c->ev_out);
    if (c->ev_pid)
        event_free(c->ev_pid);
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->pid > 0 && !c->exited) {
        /* Only reached on cancel or internal error: never leave a zombie. */
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (c->grpc)
        probe_grpc_free(c->grpc);
    probe_http_free(c->http);         /* may be inside its done callback: allowed */
    free(c);
}

/* Delivers the result once, then frees the attempt. */
static void probe_check_finish(struct probe_check *c, enum probe_result res, const char *reason)
{
    if (c->finished)
        return;
    if (c->in_start) {
        if (!c->deferred) {
            c->deferred = true;
            c->def_res = res;
            probe_fmt(c->out, sizeof(c->out), "%s", reason ? reason : "");
            c->out_len = strlen(c->out);
            struct timeval zero = { 0, 0 };
            evtimer_add(c->ev_timer, &zero);
        }
        return;
    }
    c->finished = true;
    double dur = probe_check_elapsed(c);
    c->done(c->ctx, res, reason ? reason : "", dur);
    probe_check_release(c);
}

/* Copies s into the output buffer, keeping what fits. */
static void probe_check_keep_output(struct probe_check *c, const char *s, size_t n)
{
    size_t room = sizeof(c->out) - 1 - c->out_len;
    if (n > room)
        n = room;
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
    c->out[c->out_len] = '\0';
}

/* The output as a one-line reason: trailing whitespace trimmed, control
 * characters replaced, truncated to PROBE_REASON_MAX. */
static void probe_check_output_reason(const struct probe_check *c, char *buf, size_t len)
{
    size_t n = c->out_len;
    while (n > 0 && (c->out[n - 1] == '\n' || c->out[n - 1] == '\r' || c->out[n - 1] == ' ' ||
                     c->out[n - 1] == '\t'))
        n--;
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < len; i++) {
        unsigned char ch = (unsigned char)c->out[i];
        buf[j++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    if (len)
        buf[j] = '\0';
}

static void probe_check_on_timer(evutil_socket_t fd, short what, void *arg);

/* ---- tcp ------------------------------------------------------------------ */

static int probe_check_sockaddr(const struct svcd_ip *ip, uint16_t port,
                                struct sockaddr_storage *ss, socklen_t *sl)
{
    memset(ss, 0, sizeof(*ss));
    if (ip->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr = ip->u.v4;
        *sl = sizeof(*sin);
        return 0;
    }
    if (ip->family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        sin6->sin6_addr = ip->u.v6;
        *sl = sizeof(*sin6);
        return 0;
    }
    return -1;
}

/* Go-style (kubelet) connect error text: "connection refused". */
static void probe_check_tcp_reason(struct probe_check *c, int err, char *buf, size_t len)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "%s", strerror(err));
    if (msg[0] >= 'A' && msg[0] <= 'Z')
        msg[0] = (char)(msg[0] - 'A' + 'a');
    probe_fmt(buf, len, "dial tcp %s: connect: %s", c->target, msg);
}

static void probe_check_on_tcp(evutil_socket_t fd, short what, void *arg)
{
    struct probe_check *c = arg;
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err == 0) {
        probe_check_finish(c, PROBE_RESULT_SUCCESS,
                           c->kind == SVCD_PROBE_HTTP ? "HTTPS probe checked as a TCP connect" : "");
        return;
    }
    char reason[PROBE_REASON_MAX];
    probe_check_tcp_reason(c, err, reason, sizeof(reason));
    probe_check_finish(c, PROBE_RESULT_FAILURE, reason);
}

static void probe_check_start_tcp(struct probe_check *c, const struct probe_check_req *req)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char reason[PROBE_REASON_MAX];
    if (probe_check_sockaddr(&req->ip, req->port, &ss, &sl) < 0) {
        probe_check_finish(c, PROBE_RESULT_ERROR, "no address to probe");
        return;
    }
    c->fd = socket(req->ip.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        probe_fmt(reason, sizeof(reason), "socket: %s", strerror(errno));
        probe_check_finish(c, PROBE_RESULT_ERROR, reason);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&ss, sl) == 0) {
        probe_check_finish(c, PROBE_RESULT_SUCCESS, "");
        return;
    }
    if (errno != EINPROGRESS) {
        probe_check_tcp_reason(c, errno, reason, sizeof(reason));
        probe_check_finish(c, PROBE_RESULT_FAILURE, reason);
        return;
    }
    c->ev_io = event_new(c->base, c->fd, EV_WRITE, probe_check_on_tcp, c);
    if (!c->ev_io || event_add(c->ev_io, NULL) < 0) {
        probe_check_finish(c, PROBE_RESULT_ERROR, "event_add failed");
        return;
    }
}

/* ---- http ----------------------------------------------------------------- */

static void probe_check_http_done(void *arg, enum probe_result res, const char *reason,
                                  double duration_s)
{
    struct probe_check *c = arg;
    probe_check_finish(c, res, reason);
}

/* One attempt through a throw-away probe_http (the probe manager keeps one
 * per probe instead and calls probe_http directly). */
static void probe_check_start_http(struct probe_check *c, const struct probe_check_req *req)
{
    char err[PROBE_REASON_MAX];
    c->http = probe_http_new(c->base, &req->ip, req->port, req->path, req->headers,
                             req->timeout_ms, err, sizeof(err));
    if (!c->http) {
        probe_check_finish(c, PROBE_RESULT_ERROR, err[0] ? err : "out of memory");
        return;
    }
    /* probe_http enforces the deadline and never reports from inside start. */
    evtimer_del(c->ev_timer);
    probe_http_start(c->http, probe_check_http_done, c);
}

/* ---- exec ----------------------------------------------------------------- */

static void probe_check_exec_drain(struct probe_check *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(c->out_fd, buf, sizeof(buf));
        if (n > 0) {
            probe_check_keep_output(c, buf, (size_t)n);
            continue;
        }
        if (n == 0 || (errno != EINTR))
            break;
    }
}

static void probe_check_on_out(evutil_socket_t fd, short what, void *arg)
{
    struct probe_check *c = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
        probe_check_keep_output(c, buf, (size_t)n);
        return;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        /* EOF: stop watching; the exit is reported by the pidfd. */
        event_del(c->ev_out);
    }
}

static void probe_check_on_exit(evutil_socket_t fd, short what, void *arg)
{
    struct probe_check *c = arg;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG) < 0) {
        char reason[PROBE_REASON_MAX];
        probe_fmt(reason, sizeof(reason), "waitid: %s (is SIGCHLD ignored?)", strerror(errno));
        c->exited = true;            /* nothing left to reap */
        probe_check_finish(c, PROBE_RESULT_ERROR, reason);
        return;
    }
    if (si.si_pid == 0)
        return;                      /* spurious wake-up */
    c->exited = true;
    probe_check_exec_drain(c);

    char out[PROBE_REASON_MAX];
    char reason[PROBE_REASON_MAX];
    probe_check_output_reason(c, out, sizeof(out));
    if (c->timed_out) {
        probe_fmt(reason, sizeof(reason), "command timed out%s%s", out[0] ? ": " : "", out);
        probe_check_finish(c, PROBE_RESULT_TIMEOUT, reason);
    } else if (si.si_code == CLD_EXITED && si.si_status == 0) {
        probe_check_finish(c, PROBE_RESULT_SUCCESS, out);
    } else {
        if (out[0])
            probe_fmt(reason, sizeof(reason), "%s", out);
        else if (si.si_code == CLD_EXITED)
            probe_fmt(reason, sizeof(reason), "command exited with status %d", si.si_status);
        else
            probe_fmt(reason, sizeof(reason), "command killed by signal %d", si.si_status);
        probe_check_finish(c, PROBE_RESULT_FAILURE, reason);
    }
}

/* In the child: never returns. Only async-signal-safe-ish calls. */
static void probe_check_exec_child(const struct probe_check_req *req, int out_w)
{
    static char *const envp[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/",
        NULL,
    };
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    setpgid(0, 0);

    if (req->netns_path) {
        int nfd = open(req->netns_path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0) {
            dprintf(out_w, "setns %s: %s", req->netns_path, strerror(errno));
            _exit(126);
        }
        close(nfd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0 && devnull != 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    if (dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0)
        _exit(126);
    if (out_w > 2)
        close(out_w);
    /* Close every other descriptor the daemon has open. */
    syscall(SYS_close_range, 3U, ~0U, 0U);

    if (setgroups(0, NULL) < 0 || setgid(req->gid) < 0 || setuid(req->uid) < 0) {
        dprintf(2, "cannot drop privileges: %s", strerror(errno));
        _exit(126);
    }
    if (chdir("/") < 0)
        _exit(126);
    execvpe(req->argv[0], req->argv, envp);
    dprintf(2, "exec %s: %s", req->argv[0], strerror(errno));
    _exit(127);
}

static void probe_check_start_exec(struct probe_check *c, const struct probe_check_req *req)
{
    char reason[PROBE_REASON_MAX];
    int p[2];
    if (!req->argv || !req->argv[0]) {
        probe_check_finish(c, PROBE_RESULT_ERROR, "exec probe without a command");
        return;
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        probe_fmt(reason, sizeof(reason), "pipe: %s", strerror(errno));
        probe_check_finish(c, PROBE_RESULT_ERROR, reason);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        probe_fmt(reason, sizeof(reason), "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        probe_check_finish(c, PROBE_RESULT_ERROR, reason);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        probe_check_exec_child(req, p[1]);
    }
    close(p[1]);
    setpgid(pid, pid);               /* also done by the child; no race */
    c->pid = pid;
    c->out_fd = p[0];
    fcntl(c->out_fd, F_SETFL, fcntl(c->out_fd, F_GETFL) | O_NONBLOCK);
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (c->pidfd < 0) {
        probe_fmt(reason, sizeof(reason), "pidfd_open: %s", strerror(errno));
        probe_check_finish(c, PROBE_RESULT_ERROR, reason);   /* release kills + reaps */
        return;
    }
    c->ev_out = event_new(c->base, c->out_fd, EV_READ | EV_PERSIST, probe_check_on_out, c);
    c->ev_pid = event_new(c->base, c->pidfd, EV_READ | EV_PERSIST, probe_check_on_exit, c);
    if (!c->ev_out || !c->ev_pid || event_add(c->ev_out, NULL) < 0 ||
        event_add(c->ev_pid, NULL) < 0) {
        probe_check_finish(c, PROBE_RESULT_ERROR, "event_add failed");
        return;
    }
}

/* ---- grpc ------------------------------------------------------------------ */

static void probe_check_grpc_done(void *arg, enum probe_result res, const char *reason)
{
    struct probe_check *c = arg;
    probe_check_finish(c, res, reason);
}

/* ---- common ---------------------------------------------------------------- */

static void probe_check_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct probe_check *c = arg;
    char reason[PROBE_REASON_MAX];
    if (c->deferred) {
        c->deferred = false;
        snprintf(reason, sizeof(reason), "%s", c->out);
        probe_check_finish(c, c->def_res, reason);
        return;
    }
    switch (c->kind) {
    case SVCD_PROBE_EXEC:
        if (c->pid > 0 && !c->exited && !c->timed_out) {
            c->timed_out = true;
            kill(-c->pid, SIGKILL);
            kill(c->pid, SIGKILL);
            return;                  /* the pidfd reports the exit */
        }
        probe_check_finish(c, PROBE_RESULT_TIMEOUT, "command timed out");
        return;
    case SVCD_PROBE_HTTP:          /* only https (checked as tcp) times out here */
        /* FALLTHROUGH */
    case SVCD_PROBE_TCP:
        probe_fmt(reason, sizeof(reason), "dial tcp %s: i/o timeout", c->target);
        probe_check_finish(c, PROBE_RESULT_TIMEOUT, reason);
        return;
    case SVCD_PROBE_GRPC:
        probe_fmt(reason, sizeof(reason), "timeout: health rpc did not complete within %.0fs",
                 probe_check_elapsed(c));
        probe_check_finish(c, PROBE_RESULT_TIMEOUT, reason);
        return;
    default:
        probe_check_finish(c, PROBE_RESULT_TIMEOUT, "timeout");
        return;
    }
}

struct probe_check *probe_check_start(struct event_base *base, const struct probe_check_req *req,
                                      probe_check_done_fn done, void *ctx)
{
    struct probe_check *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->kind = req->kind;
    c->done = done;
    c->ctx = ctx;
    c->fd = -1;
    c->out_fd = -1;
    c->pidfd = -1;
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    c->ev_timer = evtimer_new(base, probe_check_on_timer, c);
    if (!c->ev_timer) {
        free(c);
        return NULL;
    }
    uint32_t tmo = req->timeout_ms ? req->timeout_ms : 1000;
    struct timeval tv = { tmo / 1000, (tmo % 1000) * 1000 };
    evtimer_add(c->ev_timer, &tv);

    if (req->kind != SVCD_PROBE_EXEC) {
        char ipbuf[INET6_ADDRSTRLEN];
        svcd_ip_format(&req->ip, ipbuf, sizeof(ipbuf));
        if (req->ip.family == AF_INET6)
            probe_fmt(c->target, sizeof(c->target), "[%s]:%u", ipbuf, (unsigned)req->port);
        else
            probe_fmt(c->target, sizeof(c->target), "%s:%u", ipbuf, (unsigned)req->port);
    }

    c->in_start = true;
    switch (req->kind) {
    case SVCD_PROBE_TCP:
        probe_check_start_tcp(c, req);
        break;
    case SVCD_PROBE_HTTP:
        if (req->https)
            probe_check_start_tcp(c, req);
        else
            probe_check_start_http(c, req);
        break;
    case SVCD_PROBE_EXEC:
        probe_check_start_exec(c, req);
        break;
    case SVCD_PROBE_GRPC:
        c->grpc = probe_grpc_start(base, &req->ip, req->port, req->grpc_service,
                                   probe_check_grpc_done, c);
        if (!c->grpc)
            probe_check_finish(c, PROBE_RESULT_ERROR, "grpc: cannot start");
        break;
    default:
        probe_check_finish(c, PROBE_RESULT_ERROR, "no probe handler");
        break;
    }
    c->in_start = false;
    return c;
}

void probe_check_cancel(struct probe_check *c)
{
    if (!c || c->finished)
        return;
    c->finished = true;
    probe_check_release(c);
}
