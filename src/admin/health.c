/*
 * health: the named readiness checks behind /readyz and systemd's READY=1
 * (see include/svcd/health.h).
 */
#include "svcd/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "svcd/vec.h"

struct health_check {
    char *name;
    health_check_fn fn;
    void *ctx;
};

struct health {
    struct health_check *checks;
    size_t n, cap;
};

struct health *health_new(void)
{
    return calloc(1, sizeof(struct health));
}

int health_add(struct health *h, const char *name, health_check_fn fn, void *ctx)
{
    if (VEC_RESERVE(h->checks, h->n, h->cap, 4) < 0)
        return -1;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    h->checks[h->n++] = (struct health_check){ copy, fn, ctx };
    return 0;
}

/* Runs one check; an empty reason becomes "unknown". */
static enum health_state health_run(const struct health_check *c, char *reason, size_t len)
{
    reason[0] = '\0';
    enum health_state s = c->fn(c->ctx, reason, len);
    if (s != HEALTH_OK && !reason[0])
        snprintf(reason, len, "%s", s == HEALTH_PENDING ? "pending" : "unknown");
    return s;
}

enum health_state health_eval(struct health *h, char *reason, size_t len)
{
    enum health_state worst = HEALTH_OK;
    char r[256];
    if (len)
        reason[0] = '\0';
    for (size_t i = 0; h && i < h->n; i++) {
        enum health_state s = health_run(&h->checks[i], r, sizeof(r));
        if (s > worst) {
            worst = s;
            if (len)
                snprintf(reason, len, "%s: %s", h->checks[i].name, r);
        }
    }
    return worst;
}

bool health_render(struct health *h, struct evbuffer *out, bool verbose)
{
    bool ready = true;
    char r[256];
    struct evbuffer *lines = evbuffer_new();
    for (size_t i = 0; h && i < h->n; i++) {
        const struct health_check *c = &h->checks[i];
        enum health_state s = health_run(c, r, sizeof(r));
        if (s == HEALTH_OK) {
            if (verbose && lines)
                evbuffer_add_printf(lines, "[+]%s ok\n", c->name);
        } else {
            ready = false;
            if (lines)
                evbuffer_add_printf(lines, "[-]%s %s: %s\n", c->name,
                                    s == HEALTH_PENDING ? "pending" : "failed", r);
        }
    }
    if (lines) {
        if (verbose || !ready) {
            evbuffer_add_buffer(out, lines);
            evbuffer_add_printf(out, "readyz check %s\n", ready ? "passed" : "failed");
        } else {
            evbuffer_add_printf(out, "ok");
        }
        evbuffer_free(lines);
    }
    return ready;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->checks[i].name);
    free(h->checks);
    free(h);
}
