/*
 * podman: Pods from a real pod runtime, over podman's libpod REST API.
 *
 * svcd lists pods and containers on podman's unix socket
 * (GET /v4.0.0/libpod/pods/json, /containers/{id}/json), then follows the
 * events stream (GET /v4.0.0/libpod/events?stream=true, newline-delimited
 * JSON) and re-reads only the pods an event names. When the socket goes away
 * or podman's service restarts, the last known pods stay in the store; svcd
 * reconnects with backoff (100 ms doubling to 5 s), relists and converges
 * (pods gone meanwhile are deleted, changed ones updated).
 *
 * Mapping (docs/PODMAN.md has the user-facing table):
 *   podman pod                 -> Pod (meta.uid = pod ID)
 *   pod name                   -> metadata.name
 *   label svcd.io/namespace    -> metadata.namespace (default "default")
 *   pod labels                 -> metadata.labels
 *   infra container's networks -> status.podIPs (first IPv4, first IPv6;
 *                                 networks in name order)
 *   infra container's netns    -> annotation svcd.io/netns (exec probes)
 *   pod hostname               -> spec.hostname (when not the pod name)
 *   label svcd.io/subdomain    -> spec.subdomain
 *   each non-infra container   -> a container; ports from its exposed
 *                                 ports, the pod's published ports and the
 *                                 label svcd.io/ports ("http=8080/TCP,53/UDP")
 *   label svcd.io/readiness-probe ("tcp:PORT", "http:PORT/PATH",
 *                                 "exec:SHELL COMMAND"), with optional
 *                                 svcd.io/readiness-period (s)
 *                              -> readinessProbe of the first container
 *                                 (run by the probe engine)
 *   pod status                 -> phase: Running/Degraded/Paused = Running,
 *                                 Created = Pending, Exited/Stopped = Succeeded
 *                                 (all exit codes 0) or Failed, else Unknown
 *   containers                 -> Ready condition: every container running,
 *                                 and those with a podman healthcheck
 *                                 "healthy"; a pod that is not Running is
 *                                 not ready and has no IPs.
 *
 * Podman runs no healthcheck on a timer without systemd, so svcd runs them:
 * for each running container with a healthcheck it calls
 * GET /libpod/containers/{id}/healthcheck every Healthcheck.Interval
 * (clamped to 1..300 s, default 30 s; the first run at once), and podman's
 * own health state (State.Health.Status) is what the Ready condition reads.
 *
 * Transport: each request is one HTTP/1.1 exchange (Connection: close) on
 * its own unix-socket connection; responses are read by nodejs/http-parser
 * (podman_resp below), so Content-Length, chunked and read-to-EOF bodies
 * all work, and the events stream arrives de-chunked.
 *
 * Single-threaded: everything runs on the caller's event loop.
 */
#ifndef SVCD_PODMAN_H
#define SVCD_PODMAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "svcd/model.h"

struct event_base;
struct store;
struct json_t;
struct podman_src;

/* Label that names a podman pod's Kubernetes namespace. */
#define PODMAN_NAMESPACE_LABEL "svcd.io/namespace"
#define PODMAN_SUBDOMAIN_LABEL "svcd.io/subdomain"
#define PODMAN_PORTS_LABEL "svcd.io/ports"
#define PODMAN_PROBE_LABEL "svcd.io/readiness-probe"
#define PODMAN_PROBE_PERIOD_LABEL "svcd.io/readiness-period"
/* Annotation carrying the podman pod ID. */
#define PODMAN_ID_ANNOTATION "svcd.io/podman-pod-id"

/* ---- the source ------------------------------------------------------ */

/* Starts the source: the first list runs as soon as the loop does. The
 * socket need not exist yet (svcd retries with backoff). Returns NULL on
 * ENOMEM or a path too long for a unix socket (logged). base and st must
 * outlive the source. Registers metrics svcd_podman_*. */
struct podman_src *podman_src_new(struct event_base *base, struct store *st,
                                  const char *socket_path);
/* Stops everything (connections, timers); the pods stay in the store.
 * Accepts NULL. */
void podman_src_free(struct podman_src *ps);
/* True once a full list has been applied to the store (for /readyz). Stays
 * true across reconnects (the last known state is served meanwhile). */
bool podman_src_synced(const struct podman_src *ps);
/* Sets spec.nodeName of the pods it makes (copied; NULL = none). Pods
 * already in the store get it at their next update. */
void podman_src_set_node_name(struct podman_src *ps, const char *node_name);

struct podman_stats {
    bool connected;         /* events stream open */
    uint64_t lists;         /* list rounds applied (full or per pod) */
    uint64_t full_lists;
    uint64_t events;        /* event lines parsed */
    uint64_t reconnects;    /* times the stream was lost */
    uint64_t healthchecks;  /* healthchecks run */
    uint64_t errors;        /* failed requests */
    size_t pods;            /* pods this source has in the store */
};
void podman_src_get_stats(const struct podman_src *ps, struct podman_stats *out);

/* ---- pure parts (no I/O; unit-tested) -------------------------------- */

enum podman_event_type { PODMAN_EV_OTHER = 0, PODMAN_EV_POD, PODMAN_EV_CONTAINER };

/* One line of the events stream, copied into fixed buffers (longer values
 * are truncated; IDs are 64 hex digits). */
struct podman_event {
    enum podman_event_type type;
    char action[32];        /* "start", "died", "remove", "health_status"... */
    char id[80];            /* pod ID for pod events, container ID else */
    char pod_id[80];        /* Actor.Attributes.podId ("" when podman left it
                               out, as on "died") */
    char health[16];        /* HealthStatus, "" when absent */
};
/* Parses one JSON line. 0, or -1 when it is not a JSON object with Type and
 * Action (the line is then ignored by the source). */
int podman_event_parse(const char *line, size_t len, struct podman_event *out);
/* Whether an event can change what svcd derives from the pod. */
bool podman_event_relevant(const struct podman_event *ev);

/* Builds a Pod from one element of /libpod/pods/json (entry) and the
 * /libpod/containers/{id}/json objects of its containers (any order; the
 * infra container is recognised by entry.InfraId; missing ones are
 * tolerated). node_name may be NULL. Returns a new pod (caller owns it:
 * store_pod_upsert or model_pod_free) with meta.fingerprint set, or NULL
 * with a reason in err when the entry has no usable name or ENOMEM. */
struct svcd_pod *podman_pod_build(const struct json_t *entry,
                                  const struct json_t *const *inspects, size_t n_inspects,
                                  const char *node_name, char *err, size_t errlen);

/* Parses the svcd.io/ports label ("http=8080/TCP,53/UDP,9090") into ports
 * appended to *ports (*n updated). 0, or -1 on a malformed item (err set);
 * items before the bad one stay. */
int podman_ports_parse(const char *text, struct svcd_container_port **ports, size_t *n,
                       char *err, size_t errlen);
/* Parses the svcd.io/readiness-probe label into out (kind NONE before).
 * period_s 0 = default 10. 0, or -1 (err set). */
int podman_probe_parse(const char *text, uint32_t period_s, struct svcd_probe *out,
                       char *err, size_t errlen);

/* Healthcheck interval of a container inspect object in seconds (clamped to
 * 1..300; 30 when unset), or 0 when the container has no healthcheck. */
uint32_t podman_healthcheck_interval(const struct json_t *inspect);

/* ---- HTTP responses (no I/O; fed by the source, unit-tested, fuzzed) -- */

/*
 * One HTTP/1.x response, read incrementally with nodejs/http-parser: status
 * line, headers (counted and size-capped, not kept), then the body with any
 * chunked coding removed. A plain response's body is collected; a stream's
 * (stream = true and status 200) is split at '\n' into lines handed to the
 * line callback as they complete (empty lines skipped).
 */
#define PODMAN_HTTP_MAX_HEADER 8192         /* one header, name + value */
#define PODMAN_HTTP_MAX_HEADERS 128
#define PODMAN_HTTP_MAX_BODY (64u << 20)    /* collected body */
#define PODMAN_HTTP_MAX_LINE (1u << 20)     /* one line of a stream */

struct podman_resp;

enum podman_resp_rc {
    PODMAN_RESP_MORE = 0,     /* needs more bytes */
    PODMAN_RESP_DONE = 1,     /* response complete; later bytes are ignored */
    PODMAN_RESP_ERROR = -1,   /* malformed, over a limit, or cut short */
};

/* Called from inside podman_resp_feed: once with line NULL (len 0) when the
 * headers are complete (any status; podman_resp_status is then valid), then
 * once per line of a 200 stream (NUL-terminated, '\n' removed; valid only
 * during the call). It must not free the podman_resp. */
typedef void (*podman_resp_line_fn)(void *ctx, const char *line, size_t len);

/* A reader for one response. line may be NULL. Returns NULL on ENOMEM;
 * free with podman_resp_free. */
struct podman_resp *podman_resp_new(bool stream, podman_resp_line_fn line, void *ctx);
/* Accepts NULL. */
void podman_resp_free(struct podman_resp *r);
/* Feeds the next bytes received; len 0 means the peer closed the
 * connection (which completes a body delimited by EOF, and is an error
 * anywhere else). After DONE or ERROR the result does not change. */
enum podman_resp_rc podman_resp_feed(struct podman_resp *r, const char *data, size_t len);
/* The status code, 0 until the status line has been read. */
int podman_resp_status(const struct podman_resp *r);
/* True once the headers are complete. */
bool podman_resp_headers_done(const struct podman_resp *r);
/* The collected body (not NUL-terminated; a stream's 200 body is not
 * collected): valid until the next feed or free; *len set. Never NULL. */
const char *podman_resp_body(struct podman_resp *r, size_t *len);
/* Why the last feed returned ERROR ("" otherwise); owned by r. */
const char *podman_resp_error(const struct podman_resp *r);

#endif
