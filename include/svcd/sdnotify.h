/*
 * sdnotify: svcd's side of the systemd service protocol (Type=notify).
 *
 * Through libsystemd's sd_notify(): READY=1 once start-up has settled (every
 * readiness check has finished its first attempt), STATUS= lines that say
 * what svcd waits for or what fails, WATCHDOG=1 pings from a timer on the
 * event loop at half of WatchdogSec (so a stuck loop stops the pings and
 * systemd restarts svcd), and STOPPING=1 when a stop signal arrives.
 * Without $NOTIFY_SOCKET (not started by systemd) every call is a no-op.
 */
#ifndef SVCD_SDNOTIFY_H
#define SVCD_SDNOTIFY_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct sdnotify;

/* Asks whether start-up has settled: returns true when it has (READY=1 may
 * be sent); fills status (size len) with a one-line STATUS= text either way. */
typedef bool (*sdnotify_settled_fn)(void *ctx, char *status, size_t len);

/* Starts the readiness poll and, when systemd asked for one, the watchdog
 * timer on base. Returns NULL on ENOMEM (logged). */
struct sdnotify *sdnotify_new(struct event_base *base, sdnotify_settled_fn settled, void *ctx);
/* Sends STOPPING=1 (call when a stop signal arrives). Accepts NULL. */
void sdnotify_stopping(struct sdnotify *n);
/* Stops the timers and frees. Accepts NULL. */
void sdnotify_free(struct sdnotify *n);

#endif
