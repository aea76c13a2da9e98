/*
 * sdnotify: READY, STATUS, WATCHDOG and STOPPING for systemd (see
 * include/svcd/sdnotify.h). Two timers on the loop: a readiness poll every
 * 100 ms until READY=1 has gone out (then every 5 s to keep STATUS= true),
 * and a watchdog ping at half the interval systemd gave in $WATCHDOG_USEC.
 * The pings come from the loop itself, so they stop when the loop hangs.
 */
#include "svcd/sdnotify.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "svcd/log.h"

#define SDN_MOD "systemd"

struct sdnotify {
    struct event_base *base;
    sdnotify_settled_fn settled;
    void *ctx;
    struct event *ev_poll, *ev_watchdog;
    struct timeval watchdog_tv;
    bool ready_sent;
    char status[256];
};

static void sdnotify_schedule_poll(struct sdnotify *n)
{
    struct timeval tv = { n->ready_sent ? 5 : 0, n->ready_sent ? 0 : 100000 };
    event_add(n->ev_poll, &tv);
}

static void sdnotify_on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct sdnotify *n = arg;
    (void)fd; (void)what;
    char status[sizeof(n->status)];
    status[0] = '\0';
    bool settled = n->settled(n->ctx, status, sizeof(status));
    if (settled && !n->ready_sent) {
        n->ready_sent = true;
        sd_notifyf(0, "READY=1\nSTATUS=%s", status);
        snprintf(n->status, sizeof(n->status), "%s", status);
        log_debug(SDN_MOD, "notified READY=1 (%s)", status);
    } else if (strcmp(status, n->status) != 0) {
        sd_notifyf(0, "STATUS=%s", status);
        snprintf(n->status, sizeof(n->status), "%s", status);
    }
    sdnotify_schedule_poll(n);
}

static void sdnotify_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct sdnotify *n = arg;
    (void)fd; (void)what;
    sd_notify(0, "WATCHDOG=1");
    event_add(n->ev_watchdog, &n->watchdog_tv);
}

struct sdnotify *sdnotify_new(struct event_base *base, sdnotify_settled_fn settled, void *ctx)
{
    struct sdnotify *n = calloc(1, sizeof(*n));
    if (!n)
        goto oom;
    n->base = base;
    n->settled = settled;
    n->ctx = ctx;
    n->ev_poll = evtimer_new(base, sdnotify_on_poll, n);
    if (!n->ev_poll)
        goto oom;
    /* Not under systemd: nothing to tell anyone. */
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock)
        return n;
    sdnotify_schedule_poll(n);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        n->ev_watchdog = evtimer_new(base, sdnotify_on_watchdog, n);
        if (!n->ev_watchdog)
            goto oom;
        uint64_t half = usec / 2;
        n->watchdog_tv.tv_sec = (time_t)(half / 1000000);
        n->watchdog_tv.tv_usec = (suseconds_t)(half % 1000000);
        sd_notify(0, "WATCHDOG=1");
        event_add(n->ev_watchdog, &n->watchdog_tv);
        log_info(SDN_MOD, "watchdog enabled: pinging every %llu ms",
                 (unsigned long long)(half / 1000));
    }
    return n;
oom:
    log_err(SDN_MOD, "out of memory");
    sdnotify_free(n);
    return NULL;
}

void sdnotify_stopping(struct sdnotify *n)
{
    if (!n)
        return;
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void sdnotify_free(struct sdnotify *n)
{
    if (!n)
        return;
    if (n->ev_poll)
        event_free(n->ev_poll);
    if (n->ev_watchdog)
        event_free(n->ev_watchdog);
    free(n);
}
