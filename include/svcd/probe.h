/*
 * probe: pod readiness decided the way the kubelet decides it.
 *
 * For every Running pod in the store whose containers carry a
 * readinessProbe, livenessProbe or startupProbe, the probe manager runs the
 * probes on the caller's event loop (exec, tcpSocket, httpGet, grpc), applies
 * initialDelaySeconds / periodSeconds / timeoutSeconds / successThreshold /
 * failureThreshold with the Kubernetes meanings, and writes its verdict back
 * with store_pod_set_probe_ready() in one store batch per loop iteration:
 *
 *   - a startupProbe holds readiness and liveness back until it succeeds;
 *   - a container with a readinessProbe starts not ready; one without is
 *     ready once started;
 *   - liveness failing failureThreshold times in a row counts a "restart
 *     needed" (svcd cannot restart containers), marks the pod not ready and
 *     resets the container's probes as a restart would; the pod is ready
 *     again after liveness (and readiness) succeed;
 *   - a pod is ready when every container is.
 *
 * Pods without any probe get no opinion (SVCD_UNKNOWN): the source's Ready
 * condition / phase decide. Terminating pods keep being probed (the store
 * marks their endpoints terminating). Probes are spread over their period
 * so that many pods do not fire together.
 *
 * exec probes run as an unprivileged user (65534 by default), inside the
 * pod's network namespace when the pod is annotated
 * `svcd.io/netns: /run/netns/NAME`, are killed (whole process group) on
 * timeout, and keep their output (truncated) as the reason. Children are
 * watched with pidfds: the daemon must not set SIGCHLD to SIG_IGN nor reap
 * with waitpid(-1).
 *
 * Single-threaded: every call on the loop's thread.
 */
#ifndef SVCD_PROBE_H
#define SVCD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "svcd/model.h"

struct event_base;
struct store;
struct json_t;
struct probe_mgr;

/* The annotation naming the pod's network namespace for exec probes. */
#define PROBE_NETNS_ANNOTATION "svcd.io/netns"

enum probe_type { PROBE_TYPE_STARTUP = 0, PROBE_TYPE_READINESS, PROBE_TYPE_LIVENESS };
#define PROBE_TYPE_COUNT 3
const char *probe_type_name(enum probe_type t);          /* "startup" ... */
const char *probe_kind_name(enum svcd_probe_kind k);     /* "exec","tcp","http","grpc" */

/* Outcome of one probe run. TIMEOUT and ERROR count as failures. */
enum probe_result {
    PROBE_RESULT_NONE = 0,     /* not run yet */
    PROBE_RESULT_SUCCESS,
    PROBE_RESULT_FAILURE,      /* the target answered "unhealthy" or refused */
    PROBE_RESULT_TIMEOUT,      /* no answer within timeoutSeconds */
    PROBE_RESULT_ERROR,        /* svcd could not run it (no pod IP, bad port...) */
};
#define PROBE_RESULT_COUNT 5
const char *probe_result_name(enum probe_result r);      /* "success" ... */

#define PROBE_REASON_MAX 256

/* The state of one probe of one container. */
struct probe_check_status {
    bool configured;
    enum svcd_probe_kind kind;
    enum probe_result last_result;
    char reason[PROBE_REASON_MAX];     /* message of the last run ("" on success
                                          unless the target said something) */
    int64_t last_probe_ms;             /* unix time in ms of the last result, 0 = never */
    double last_duration_s;
    uint32_t consecutive_successes;
    uint32_t consecutive_failures;
    uint64_t runs;
};

struct probe_container_status {
    const char *name;
    bool started;                      /* startupProbe passed (or none) */
    bool ready;                        /* readiness passed (or none) */
    bool live;                         /* no liveness restart pending */
    uint32_t restarts_needed;
    struct probe_check_status probes[PROBE_TYPE_COUNT];  /* by enum probe_type */
};

/* What the admin API shows for a pod (kubectl-like). Strings and arrays are
 * owned by the manager and valid until the loop runs again or the manager
 * is called again. */
struct probe_pod_status {
    const char *ns;
    const char *name;
    enum svcd_pod_phase phase;
    bool terminating;
    enum svcd_tristate ready;          /* svcd's verdict as sent to the store */
    const char *ready_reason;          /* "" when ready, else "ContainersNotReady" */
    char ready_message[PROBE_REASON_MAX + 96]; /* e.g. "container app: readiness
                                          probe failed: HTTP probe failed with
                                          statuscode: 500" */
    /* The most recent probe result of any container. */
    enum probe_type last_type;
    enum probe_result last_result;
    char reason[PROBE_REASON_MAX];
    int64_t last_probe_ms;             /* 0 = none yet */
    uint32_t restarts_needed;          /* sum over containers */
    size_t n_containers;
    const struct probe_container_status *containers;
};

/* Knobs, mostly for tests and benchmarks. */
struct probe_options {
    bool no_jitter;        /* first run right after initialDelaySeconds */
    uid_t exec_uid;        /* 0 = 65534: exec probes never run as root */
    gid_t exec_gid;        /* 0 = 65534 */
};

/* Creates a manager that subscribes to st and probes on base. Pods already
 * in the store are picked up at once. Returns NULL on ENOMEM. The store and
 * the base must outlive the manager. Registers its metrics:
 *   svcd_probe_total{probe,kind,result}, svcd_probe_restarts_needed_total,
 *   svcd_probe_duration_seconds{kind}, svcd_probe_pods, svcd_probe_inflight,
 *   svcd_probe_pod_visits_total (pods looked at after store commits).
 * (metrics_reset() must not be called while a manager exists.) */
struct probe_mgr *probe_mgr_new(struct event_base *base, struct store *st);
/* Same, with options (NULL = defaults). */
struct probe_mgr *probe_mgr_new_opts(struct event_base *base, struct store *st,
                                     const struct probe_options *opts);
/* Cancels running probes (exec children are killed and reaped) and frees
 * everything. Verdicts already in the store stay there. Accepts NULL.
 * store.h has no unsubscribe: the store keeps calling a small handle that
 * does nothing once the manager is freed, so the store may outlive it. */
void probe_mgr_free(struct probe_mgr *mgr);

/* Status of a probed pod, or NULL when svcd has no opinion on it (no
 * probes, not Running, unknown). See struct probe_pod_status for lifetime. */
const struct probe_pod_status *probe_status_get(struct probe_mgr *mgr, const char *ns,
                                                const char *name);
/* Calls cb for every probed pod (unspecified order); stops when cb returns
 * non-zero, which is returned. */
int probe_status_foreach(struct probe_mgr *mgr,
                         int (*cb)(void *ctx, const struct probe_pod_status *st), void *ctx);
/* The status as a new JSON object (jansson; caller json_decref()s), or
 * NULL on ENOMEM. Shape:
 *   {"namespace","name","phase","terminating","ready":true|false,
 *    "conditions":[{"type":"Ready","status":"True","reason","message"}],
 *    "restartsNeeded", "lastProbe":{"type","result","reason","time"},
 *    "containers":[{"name","started","ready","live","restartsNeeded",
 *       "probes":{"readiness":{"kind","result","reason","time","runs",
 *                 "consecutiveSuccesses","consecutiveFailures"},...}}]} */
struct json_t *probe_status_json(const struct probe_pod_status *st);

/* Counters for tests and the admin API. */
struct probe_stats {
    size_t pods;               /* pods with probes being tracked */
    size_t workers;            /* probe timers */
    size_t inflight;           /* probes running now */
    uint64_t runs;             /* probes completed */
    uint64_t restarts_needed;
    uint64_t store_updates;    /* store_pod_set_probe_ready calls */
};
void probe_mgr_get_stats(const struct probe_mgr *mgr, struct probe_stats *out);

#endif
