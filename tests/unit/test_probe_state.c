/*
 * test_probe_state: the kubelet decision logic (probe_state.c), table-driven.
 *
 * Each case sets which probes a container has and their thresholds, then
 * feeds a sequence of results; after every step it checks readiness, the
 * events returned, and (where given) the restart count.
 */
#include <stdio.h>
#include <string.h>

#include "../../src/probe/probe_internal.h"

static int n_pass, n_fail;

#define S PROBE_TYPE_STARTUP
#define R PROBE_TYPE_READINESS
#define L PROBE_TYPE_LIVENESS
#define OK 1
#define KO 0

struct step {
    int type;          /* -1 ends the list */
    int success;
    bool ready_after;
    unsigned events;   /* exact enum probe_state_event flags expected */
    int restarts;      /* -1 = do not check */
};

struct state_case {
    const char *name;
    bool has[3];                         /* startup, readiness, liveness */
    struct probe_thresholds thr[3];
    bool ready_initially;
    struct step steps[12];
};

#define END { -1, 0, false, 0, -1 }

static const struct state_case cases[] = {
    { "no probes: ready at once", { false, false, false }, { { 1, 3 }, { 1, 3 }, { 1, 3 } }, true,
      { END } },
    { "readiness starts not ready, 1 success flips", { false, true, false },
      { { 1, 3 }, { 1, 3 }, { 1, 3 } }, false,
      { { R, OK, true, PROBE_EV_READY_CHANGED, -1 }, { R, OK, true, 0, -1 }, END } },
    { "readiness successThreshold 3", { false, true, false }, { { 1, 3 }, { 3, 2 }, { 1, 3 } }, false,
      { { R, OK, false, 0, -1 },
        { R, OK, false, 0, -1 },
        { R, OK, true, PROBE_EV_READY_CHANGED, -1 },
        { R, KO, true, 0, -1 },                    /* 1 of 2 failures */
        { R, OK, true, 0, -1 },                    /* resets the failure count */
        { R, KO, true, 0, -1 },
        { R, KO, false, PROBE_EV_READY_CHANGED, -1 },
        { R, OK, false, 0, -1 },                   /* needs 3 in a row again */
        { R, KO, false, 0, -1 },
        END } },
    { "startup gates readiness and liveness", { true, true, true },
      { { 1, 3 }, { 1, 3 }, { 1, 3 } }, false,
      { { R, OK, false, 0, -1 },                   /* ignored: not started */
        { L, KO, false, 0, -1 },                   /* ignored */
        { S, KO, false, 0, 0 },
        { S, OK, false, PROBE_EV_STARTED, 0 },
        { S, KO, false, 0, 0 },                    /* startup done: ignored */
        { R, OK, true, PROBE_EV_READY_CHANGED, -1 },
        END } },
    { "startup failureThreshold asks for a restart", { true, false, false },
      { { 1, 2 }, { 1, 3 }, { 1, 3 } }, false,
      { { S, KO, false, 0, 0 },
        { S, KO, false, PROBE_EV_RESTART, 1 },
        { S, KO, false, 0, 1 },
        { S, KO, false, PROBE_EV_RESTART, 2 },
        { S, OK, true, PROBE_EV_STARTED | PROBE_EV_READY_CHANGED, 2 },
        END } },
    { "liveness failure: restart, not ready until it passes", { false, false, true },
      { { 1, 3 }, { 1, 3 }, { 1, 2 } }, true,
      { { L, KO, true, 0, 0 },
        { L, KO, false, PROBE_EV_RESTART | PROBE_EV_READY_CHANGED, 1 },
        { L, KO, false, 0, 1 },
        { L, OK, true, PROBE_EV_READY_CHANGED, 1 },
        END } },
    { "liveness restart resets readiness", { false, true, true },
      { { 1, 3 }, { 1, 3 }, { 1, 1 } }, false,
      { { R, OK, true, PROBE_EV_READY_CHANGED, -1 },
        { L, KO, false, PROBE_EV_RESTART | PROBE_EV_READY_CHANGED, 1 },
        { L, OK, false, 0, 1 },                    /* live again, readiness reset */
        { R, OK, true, PROBE_EV_READY_CHANGED, 1 },
        END } },
    { "liveness successThreshold forced to 1", { false, false, true },
      { { 1, 3 }, { 1, 3 }, { 5, 1 } }, true,
      { { L, KO, false, PROBE_EV_RESTART | PROBE_EV_READY_CHANGED, 1 },
        { L, OK, true, PROBE_EV_READY_CHANGED, 1 },
        END } },
    { "zero thresholds become 1", { false, true, false }, { { 0, 0 }, { 0, 0 }, { 0, 0 } }, false,
      { { R, OK, true, PROBE_EV_READY_CHANGED, -1 },
        { R, KO, false, PROBE_EV_READY_CHANGED, -1 },
        END } },
};

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct state_case *tc = &cases[i];
        struct probe_state st;
        probe_state_init(&st, tc->has, tc->thr);
        if (probe_state_ready(&st) == tc->ready_initially) {
            n_pass++;
        } else {
            n_fail++;
            printf("FAIL %s: initially ready=%d\n", tc->name, probe_state_ready(&st));
        }
        for (size_t j = 0; j < 12 && tc->steps[j].type >= 0; j++) {
            const struct step *sp = &tc->steps[j];
            unsigned ev = probe_state_record(&st, (enum probe_type)sp->type, sp->success);
            bool ok = probe_state_ready(&st) == sp->ready_after && ev == sp->events &&
                      (sp->restarts < 0 || st.restarts_needed == (uint32_t)sp->restarts);
            if (ok) {
                n_pass++;
            } else {
                n_fail++;
                printf("FAIL %s step %zu: ready=%d (want %d) events=%#x (want %#x) restarts=%u\n",
                       tc->name, j, probe_state_ready(&st), sp->ready_after, ev, sp->events,
                       st.restarts_needed);
            }
        }
    }
    /* should_run gating */
    struct probe_state st;
    bool has[3] = { true, true, false };
    struct probe_thresholds thr[3] = { { 1, 3 }, { 1, 3 }, { 1, 3 } };
    probe_state_init(&st, has, thr);
    bool g1 = probe_state_should_run(&st, S) && !probe_state_should_run(&st, R) &&
              !probe_state_should_run(&st, L);
    probe_state_record(&st, S, true);
    bool g2 = !probe_state_should_run(&st, S) && probe_state_should_run(&st, R) &&
              !probe_state_should_run(&st, L);
    if (g1 && g2) {
        n_pass++;
    } else {
        n_fail++;
        printf("FAIL should_run gating (%d %d)\n", g1, g2);
    }
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
