/*
 * admin: svcd's HTTP admin API (libevent evhttp), for operators, svcctl and
 * Prometheus.
 *
 *   GET /healthz         200 "ok" while the event loop runs
 *   GET /readyz          200 "ok", or 503 with the reason from ready()
 *   GET /metrics         Prometheus text 0.0.4: the metrics registry plus
 *                        store gauges (services, pods, endpoints by condition,
 *                        generation, commits)
 *   GET /api/services    JSON {"generation": N, "items": [...]}
 *   GET /api/pods        same shape, one item per Pod
 *   GET /api/endpoints   same shape, one item per Service with its endpoints
 *
 * The /api paths take ?namespace=NS and ?name=NAME filters. Items are sorted
 * by namespace, then name. An unknown path is a 404 and a method other than
 * GET/HEAD a 405, both with a JSON body {"error": "...", "code": N}.
 * docs/ADMIN.md lists every field and metric.
 *
 * The admin API only reads the store, from the event loop's thread.
 */
#ifndef SVCD_ADMIN_H
#define SVCD_ADMIN_H

#include <stdint.h>

struct event_base;
struct store;
struct svcd_hostport;

struct admin;

/* Readiness: returns NULL when ready, else a reason string ("initial manifest
 * load pending", "nftables sync failed: ...") that /readyz shows with status
 * 503. The string is owned by the callee and only read during the call. */
typedef const char *(*admin_ready_fn)(void *ctx);

/* Binds listen (port 0 picks a free port, see admin_port()) and serves on
 * base. st must outlive the admin. ready may be NULL (always ready).
 * Registers the store's callback gauges in the metrics registry.
 * Returns the admin, or NULL with the reason logged (e.g. address in use). */
struct admin *admin_new(struct event_base *base, struct store *st,
                        const struct svcd_hostport *listen,
                        admin_ready_fn ready, void *ready_ctx);

/* The bound TCP port (useful after listening on port 0). */
uint16_t admin_port(const struct admin *a);

/* Closes the listener and frees the admin. The store gauges stay registered
 * but read 0 afterwards. Accepts NULL. */
void admin_free(struct admin *a);

#endif
