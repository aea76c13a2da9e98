/*
 * probe_state: the kubelet's per-container probe decisions, without I/O.
 *
 * Mirrors pkg/kubelet/prober (worker.go) semantics:
 *   - the startup probe runs alone until it succeeds once; while it has not,
 *     readiness and liveness do not run and the container is not ready;
 *     failureThreshold startup failures in a row ask for a restart;
 *   - readiness starts as "failure" (not ready) and flips only after
 *     successThreshold successes / failureThreshold failures in a row;
 *   - failureThreshold liveness failures in a row ask for a restart. svcd
 *     cannot restart a container, so it counts the restart, keeps the
 *     container not ready until liveness passes again, and resets the other
 *     probes as the restarted container would see them (startup re-gated,
 *     readiness back to "not ready").
 * The manager feeds results in and acts on the returned events.
 */
#include "probe_internal.h"

#include <string.h>

void probe_state_init(struct probe_state *s, const bool has[PROBE_TYPE_COUNT],
                      const struct probe_thresholds thr[PROBE_TYPE_COUNT])
{
    memset(s, 0, sizeof(*s));
    for (int t = 0; t < PROBE_TYPE_COUNT; t++) {
        s->has[t] = has[t];
        s->thr[t].success = thr[t].success ? thr[t].success : 1;
        s->thr[t].failure = thr[t].failure ? thr[t].failure : 1;
    }
    /* Kubernetes validation: startup and liveness successThreshold must be 1. */
    s->thr[PROBE_TYPE_STARTUP].success = 1;
    s->thr[PROBE_TYPE_LIVENESS].success = 1;
    s->started = !s->has[PROBE_TYPE_STARTUP];
    s->ready = !s->has[PROBE_TYPE_READINESS];
    s->live_failed = false;
}

bool probe_state_ready(const struct probe_state *s)
{
    return s->started && s->ready && !s->live_failed;
}

bool probe_state_should_run(const struct probe_state *s, enum probe_type t)
{
    if (t < 0 || t >= PROBE_TYPE_COUNT || !s->has[t])
        return false;
    if (t == PROBE_TYPE_STARTUP)
        return !s->started;
    return s->started;
}

/* A restart as the kubelet would do it: the new container starts over. */
static void probe_state_restart(struct probe_state *s, enum probe_type why)
{
    s->restarts_needed++;
    if (why == PROBE_TYPE_LIVENESS)
        s->live_failed = true;
    s->started = !s->has[PROBE_TYPE_STARTUP];
    s->ready = !s->has[PROBE_TYPE_READINESS];
    memset(s->consec_succ, 0, sizeof(s->consec_succ));
    memset(s->consec_fail, 0, sizeof(s->consec_fail));
}

unsigned probe_state_record(struct probe_state *s, enum probe_type t, bool success)
{
    if (!probe_state_should_run(s, t))
        return PROBE_EV_NONE;   /* a late result for a gated probe: ignore */

    bool was_ready = probe_state_ready(s);
    unsigned ev = PROBE_EV_NONE;

    if (success) {
        s->consec_fail[t] = 0;
        if (s->consec_succ[t] < UINT32_MAX)
            s->consec_succ[t]++;
    } else {
        s->consec_succ[t] = 0;
        if (s->consec_fail[t] < UINT32_MAX)
            s->consec_fail[t]++;
    }

    switch (t) {
    case PROBE_TYPE_STARTUP:
        if (success) {
            s->started = true;
            ev |= PROBE_EV_STARTED;
        } else if (s->consec_fail[t] >= s->thr[t].failure) {
            probe_state_restart(s, t);
            ev |= PROBE_EV_RESTART;
        }
        break;
    case PROBE_TYPE_READINESS:
        if (success && !s->ready && s->consec_succ[t] >= s->thr[t].success)
            s->ready = true;
        else if (!success && s->ready && s->consec_fail[t] >= s->thr[t].failure)
            s->ready = false;
        break;
    case PROBE_TYPE_LIVENESS:
        if (success) {
            s->live_failed = false;
        } else if (s->consec_fail[t] >= s->thr[t].failure) {
            probe_state_restart(s, t);
            ev |= PROBE_EV_RESTART;
        }
        break;
    }
    if (probe_state_ready(s) != was_ready)
        ev |= PROBE_EV_READY_CHANGED;
    return ev;
}
