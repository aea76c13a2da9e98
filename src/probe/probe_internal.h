/*
 * probe internals shared by the probe module's files and its unit tests:
 *
 *   probe_check.c  - runs ONE probe attempt (exec / tcp / http / grpc) on an
 *                    event loop and reports a result; pure I/O, no policy.
 *   probe_state.c  - the kubelet's per-container decision logic (thresholds,
 *                    startup gating, liveness restarts); pure, no I/O.
 *   probe_mgr.c    - glue: store subscription, per-pod workers and timers,
 *                    verdicts written back to the store, status, metrics.
 */
#ifndef SVCD_PROBE_INTERNAL_H
#define SVCD_PROBE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "svcd/model.h"
#include "svcd/probe.h"

struct event_base;

/* ---- probe_check: one attempt ------------------------------------------ */

/* Everything one attempt needs. Strings are read during probe_check_start()
 * only (copied or sent), so the request may be freed right after. */
struct probe_check_req {
    enum svcd_probe_kind kind;
    /* tcp / http / grpc */
    struct svcd_ip ip;
    uint16_t port;
    const char *path;                  /* http, NULL = "/" */
    bool https;                        /* http: checked as a TCP connect (no TLS) */
    const struct svcd_kvmap *headers;  /* http, may be NULL */
    const char *grpc_service;          /* grpc, NULL = "" (whole server) */
    /* exec */
    char *const *argv;                 /* NULL-terminated */
    const char *netns_path;            /* setns() into it first, or NULL */
    uid_t uid;
    gid_t gid;
    uint32_t timeout_ms;               /* > 0 */
};

/* Called exactly once per started attempt (never from inside
 * probe_check_start), unless the attempt was cancelled. reason is a short
 * message (output of exec probes, truncated), valid during the call. */
typedef void (*probe_check_done_fn)(void *ctx, enum probe_result res, const char *reason,
                                    double duration_s);

struct probe_check;

/* Starts an attempt. Returns a handle owned by the module (freed after the
 * callback returns, or by probe_check_cancel), or NULL on ENOMEM only: other
 * failures (fork, socket...) are reported through done as ERROR. */
struct probe_check *probe_check_start(struct event_base *base, const struct probe_check_req *req,
                                      probe_check_done_fn done, void *ctx);
/* Stops an attempt now: done is not called; an exec child is SIGKILLed and
 * reaped. Must not be called from inside its own done callback. */
void probe_check_cancel(struct probe_check *c);

/* Builds the gRPC health request body (5-byte gRPC prefix + protobuf
 * HealthCheckRequest{service}) into buf; returns its length or -1 if cap is
 * too small. Exposed for tests. */
int probe_grpc_encode_request(const char *service, uint8_t *buf, size_t cap);
/* Parses a gRPC message (prefix + HealthCheckResponse); returns the
 * ServingStatus (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN), or
 * -1 when malformed. Exposed for tests and the fuzz target. */
int probe_grpc_decode_response(const uint8_t *buf, size_t len);

/* ---- probe_state: kubelet decision logic per container ----------------- */

struct probe_thresholds {
    uint32_t success;   /* >= 1 */
    uint32_t failure;   /* >= 1 */
};

struct probe_state {
    bool has[PROBE_TYPE_COUNT];
    struct probe_thresholds thr[PROBE_TYPE_COUNT];
    bool started;       /* startup succeeded, or no startup probe */
    bool ready;         /* readiness result, true when no readiness probe */
    bool live_failed;   /* liveness demanded a restart and has not passed since */
    uint32_t consec_succ[PROBE_TYPE_COUNT];
    uint32_t consec_fail[PROBE_TYPE_COUNT];
    uint32_t restarts_needed;
};

/* What one recorded result changed. */
enum probe_state_event {
    PROBE_EV_NONE          = 0,
    PROBE_EV_READY_CHANGED = 1 << 0,  /* probe_state_ready() flipped */
    PROBE_EV_STARTED       = 1 << 1,  /* startup probe just passed */
    PROBE_EV_RESTART       = 1 << 2,  /* liveness/startup asks for a restart */
};

/* Sets up a container's state as at container start (thresholds < 1 become
 * 1; startup/liveness success thresholds are forced to 1 as Kubernetes
 * validation requires). */
void probe_state_init(struct probe_state *s, const bool has[PROBE_TYPE_COUNT],
                      const struct probe_thresholds thr[PROBE_TYPE_COUNT]);
/* Whether a probe of this type should run now (startup gating). */
bool probe_state_should_run(const struct probe_state *s, enum probe_type t);
/* Records one result; returns enum probe_state_event flags. */
unsigned probe_state_record(struct probe_state *s, enum probe_type t, bool success);
/* The container's readiness: started && ready && !live_failed. */
bool probe_state_ready(const struct probe_state *s);

#endif
