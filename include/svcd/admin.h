/*
 * admin: svcd's HTTP admin API (libevent evhttp), for operators, svcctl and
 * Prometheus.
 *
 *   GET /healthz         200 "ok" while the event loop runs
 *   GET /readyz          200 "ok", or 503 with the reason from ready() or
 *                        the failing health checks (?verbose: every check)
 *   GET /metrics         Prometheus text 0.0.4: the metrics registry plus
 *                        store gauges (services, pods, endpoints by condition,
 *                        generation, commits)
 *   GET /api/services    JSON {"generation": N, "items": [...]}
 *   GET /api/pods        same shape, one item per Pod
 *   GET /api/endpoints   same shape, one item per Service with its endpoints
 *   GET /api/probes      same shape, one item per pod the probe manager
 *                        tracks (probe_status_json, lastProbe with "kind");
 *                        empty without a manager
 *
 * With a probe manager (admin_set_probes), each /api/pods item of a probed
 * pod also has a "probes" object: the same status without namespace/name
 * (Ready condition with reason and message, lastProbe, restartsNeeded,
 * per-container probe state). Pods svcd does not probe have no "probes".
 * The Kubernetes API paths (/version, /api, /api/v1/..., /apis/...) are
 * answered by kubeapi (include/svcd/kubeapi.h).
 * The /api paths take ?namespace=NS and ?name=NAME filters. Items are sorted
 * by namespace, then name. An unknown path is a 404 and a method other than
 * GET/HEAD a 405, both with a JSON body {"error": "...", "code": N}.
 * docs/ADMIN.md lists every field and metric.
 *
 * The admin API only reads the store (and the probe manager's status), from
 * the event loop's thread.
 */
#ifndef SVCD_ADMIN_H
#define SVCD_ADMIN_H

#include <stdint.h>

struct event_base;
struct health;
struct probe_mgr;
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

/* Shows mgr's probe status in /api/pods and /api/probes. mgr may be NULL
 * (no probe status); it is not owned and must outlive the admin, or be
 * detached with admin_set_probes(a, NULL) before it is freed. Accepts a NULL
 * admin (no-op). */
void admin_set_probes(struct admin *a, struct probe_mgr *mgr);

/* Answers /readyz from h's named checks instead of ready(): 200 "ok" when
 * every check passes, else 503 with one "[-]name failed: reason" line per
 * failing check; with ?verbose every check is listed ("[+]name ok") as the
 * Kubernetes components do. h is not owned and must outlive the admin. */
void admin_set_health(struct admin *a, struct health *h);

/* Connection limits (defaults below until called): at most max_conns open
 * connections (the least recently active is closed to make room for a new
 * one), closed after idle_ms without a request (rounded up to whole
 * seconds), and closed when the first
 * request head has not arrived header_ms after accept. Accepts NULL. */
#define ADMIN_DEFAULT_MAX_CONNS 256
#define ADMIN_DEFAULT_IDLE_MS 10000
#define ADMIN_DEFAULT_HEADER_MS 5000
void admin_set_limits(struct admin *a, uint32_t max_conns, uint32_t idle_ms, uint32_t header_ms);

/* /api/status lists the manifest directory's problems (rejected objects,
 * files that failed). md is not owned; detach with NULL before freeing it.
 * Accepts a NULL admin. */
struct manifest_dir;
void admin_set_manifests(struct admin *a, struct manifest_dir *md);

/* The bound TCP port (useful after listening on port 0). */
uint16_t admin_port(const struct admin *a);

/* Closes the listener and frees the admin. The store gauges stay registered
 * but read 0 afterwards. Accepts NULL. */
void admin_free(struct admin *a);

#endif
