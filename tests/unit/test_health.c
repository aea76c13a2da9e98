/*
 * test_health: the named readiness checks render as the Kubernetes
 * components' /readyz does (only failing checks, or every check with
 * verbose; "ok" alone when all pass), and health_eval reports the worst
 * state with "name: reason" of its first check (PENDING vs FAILED decides
 * systemd's READY=1). Also: the process_* metrics are registered with the
 * right types and plausible values.
 */
#include "svcd/health.h"
#include "svcd/metrics.h"

#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "testutil.h"

struct fake { enum health_state st; const char *why; };

static enum health_state fake_check(void *ctx, char *reason, size_t len)
{
    const struct fake *f = ctx;
    if (f->why)
        snprintf(reason, len, "%s", f->why);
    return f->st;
}

/* Takes b's contents as a NUL-terminated heap string and frees b. */
static char *take_string(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static char *render(struct health *h, bool verbose, bool *ready)
{
    struct evbuffer *b = evbuffer_new();
    *ready = health_render(h, b, verbose);
    return take_string(b);
}

static void test_render_and_eval(void)
{
    static const struct {
        enum health_state a, b;
        const char *plain, *verbose, *eval;
        enum health_state worst;
    } cases[] = {
        { HEALTH_OK, HEALTH_OK, "ok", "[+]manifests ok\n[+]nftables ok\nreadyz check passed\n",
          "", HEALTH_OK },
        { HEALTH_OK, HEALTH_FAILED, "[-]nftables failed: boom\nreadyz check failed\n",
          "[+]manifests ok\n[-]nftables failed: boom\nreadyz check failed\n",
          "nftables: boom", HEALTH_FAILED },
        { HEALTH_PENDING, HEALTH_OK, "[-]manifests pending: loading\nreadyz check failed\n",
          "[-]manifests pending: loading\n[+]nftables ok\nreadyz check failed\n",
          "manifests: loading", HEALTH_PENDING },
        { HEALTH_PENDING, HEALTH_FAILED,
          "[-]manifests pending: loading\n[-]nftables failed: boom\nreadyz check failed\n",
          "[-]manifests pending: loading\n[-]nftables failed: boom\nreadyz check failed\n",
          "nftables: boom", HEALTH_FAILED },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake m = { cases[i].a, "loading" }, n = { cases[i].b, "boom" };
        struct health *h = health_new();
        CHECK(h && health_add(h, "manifests", fake_check, &m) == 0 &&
              health_add(h, "nftables", fake_check, &n) == 0, "case %zu: setup", i);
        bool ready;
        char *s = render(h, false, &ready);
        CHECK(strcmp(s, cases[i].plain) == 0, "case %zu plain: got\n%s", i, s);
        CHECK(ready == (cases[i].worst == HEALTH_OK), "case %zu ready", i);
        free(s);
        s = render(h, true, &ready);
        CHECK(strcmp(s, cases[i].verbose) == 0, "case %zu verbose: got\n%s", i, s);
        free(s);
        char why[128];
        CHECK(health_eval(h, why, sizeof(why)) == cases[i].worst, "case %zu worst", i);
        CHECK(strcmp(why, cases[i].eval) == 0, "case %zu eval reason: %s", i, why);
        health_free(h);
    }
    /* a failing check without a reason still says something */
    struct fake q = { HEALTH_FAILED, NULL };
    struct health *h = health_new();
    health_add(h, "x", fake_check, &q);
    bool ready;
    char *s = render(h, false, &ready);
    CHECK(strcmp(s, "[-]x failed: unknown\nreadyz check failed\n") == 0, "no reason: %s", s);
    free(s);
    health_free(h);
    /* no checks: ready */
    h = health_new();
    s = render(h, false, &ready);
    CHECK(ready && strcmp(s, "ok") == 0, "empty list: %s", s);
    free(s);
    health_free(h);
    health_free(NULL);
}

static void test_process_metrics(void)
{
    metrics_register_process();
    struct evbuffer *b = evbuffer_new();
    metrics_render(b);
    char *s = take_string(b);
    CHECK(strstr(s, "# TYPE process_cpu_seconds_total counter\n") != NULL, "cpu counter:\n%s", s);
    static const char *const gauges[] = { "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
        "process_start_time_seconds" };
    for (size_t i = 0; i < 5; i++) {
        char want[96];
        snprintf(want, sizeof(want), "# TYPE %s gauge\n", gauges[i]);
        CHECK(strstr(s, want) != NULL, "%s is a gauge", gauges[i]);
    }
    const char *p = strstr(s, "\nprocess_start_time_seconds ");
    double start = p ? strtod(p + 28, NULL) : 0;
    double now = (double)time(NULL);
    CHECK(start > now - 600 && start <= now + 1, "start time %f vs now %f", start, now);
    p = strstr(s, "\nprocess_resident_memory_bytes ");
    CHECK(p && strtod(p + 31, NULL) > 100000, "rss plausible");
    p = strstr(s, "\nprocess_open_fds ");
    CHECK(p && strtod(p + 18, NULL) >= 3, "open fds >= 3");
    free(s);
    metrics_reset();
}

int main(void)
{
    test_render_and_eval();
    test_process_metrics();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
