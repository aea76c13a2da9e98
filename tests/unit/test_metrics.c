/*
 * test_metrics: the registry renders Prometheus text 0.0.4 exactly:
 * HELP/TYPE once per name, series of a name grouped, labels kept, callback
 * gauges read at render time, histogram buckets cumulative with +Inf, _sum
 * and _count, and re-registration returning the same series.
 */
#include "svcd/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

static int test_passed, test_failed;

#define CHECK(cond, ...) do { \
    if (cond) { test_passed++; } \
    else { test_failed++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

/* Renders the registry into a NUL-terminated heap string. */
static char *test_render(void)
{
    struct evbuffer *b = evbuffer_new();
    metrics_render(b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static size_t test_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static double test_fn_value = 7;
static double test_fn(void *ctx) { return *(double *)ctx; }

/* Exact expected output of a small registry. */
static void test_exact_text(void)
{
    metrics_reset();
    struct metric *c1 = metric_counter("svcd_dns_queries_total", "proto=\"udp\"", "DNS queries.");
    struct metric *g = metric_gauge("svcd_up", NULL, "Whether svcd is up.");
    struct metric *c2 = metric_counter("svcd_dns_queries_total", "proto=\"tcp\"", "DNS queries.");
    metric_add(c1, 3);
    metric_add(c1, 2);
    metric_add(c2, 1);
    metric_set(g, 1);
    metric_gauge_fn("svcd_fn", "a=\"b\"", "Callback\nwith \\ escapes.", test_fn, &test_fn_value);
    char *s = test_render();
    const char *want =
        "# HELP svcd_dns_queries_total DNS queries.\n"
        "# TYPE svcd_dns_queries_total counter\n"
        "svcd_dns_queries_total{proto=\"udp\"} 5\n"
        "svcd_dns_queries_total{proto=\"tcp\"} 1\n"
        "# HELP svcd_up Whether svcd is up.\n"
        "# TYPE svcd_up gauge\n"
        "svcd_up 1\n"
        "# HELP svcd_fn Callback\\nwith \\\\ escapes.\n"
        "# TYPE svcd_fn gauge\n"
        "svcd_fn{a=\"b\"} 7\n";
    CHECK(strcmp(s, want) == 0, "exact text mismatch:\n%s\n--- want:\n%s", s, want);
    free(s);

    /* the callback is read at render time */
    test_fn_value = 0.5;
    s = test_render();
    CHECK(strstr(s, "svcd_fn{a=\"b\"} 0.5\n") != NULL, "callback not re-read:\n%s", s);
    free(s);
}

/* Re-registration returns the same series; values and types behave. */
static void test_identity_and_values(void)
{
    metrics_reset();
    struct metric *a = metric_counter("x_total", "k=\"v\"", "h");
    struct metric *b = metric_counter("x_total", "k=\"v\"", "h");
    struct metric *c = metric_counter("x_total", NULL, "h");
    struct metric *d = metric_counter("x_total", "", "h");
    CHECK(a == b, "same name+labels must return the same series");
    CHECK(a != c, "different labels must be different series");
    CHECK(c == d, "empty labels equal NULL labels");
    metric_add(a, 1.5);
    CHECK(metric_value(b) == 1.5, "value %g", metric_value(b));
    struct metric *g = metric_gauge("g", NULL, "h");
    metric_set(g, -3);
    metric_add(g, 1);
    CHECK(metric_value(g) == -2, "gauge %g", metric_value(g));
    metric_add(NULL, 1);   /* tolerated */
    metric_observe(g, 1);  /* wrong type: ignored */
    CHECK(metric_value(g) == -2, "observe on gauge changed it");

    struct metric *big = metric_gauge("big", NULL, "h");
    metric_set(big, 123456789012.0);
    struct metric *frac = metric_gauge("frac", NULL, "h");
    metric_set(frac, 0.1);
    char *s = test_render();
    CHECK(test_count(s, "# HELP x_total") == 1, "HELP once per name:\n%s", s);
    CHECK(test_count(s, "# TYPE x_total counter\n") == 1, "TYPE once per name:\n%s", s);
    CHECK(strstr(s, "x_total{k=\"v\"} 1.5\n") != NULL, "labelled series:\n%s", s);
    CHECK(strstr(s, "x_total 0\n") != NULL, "unlabelled series:\n%s", s);
    CHECK(strstr(s, "g -2\n") != NULL, "negative gauge:\n%s", s);
    CHECK(strstr(s, "big 123456789012\n") != NULL, "integer format:\n%s", s);
    CHECK(strstr(s, "frac 0.1\n") != NULL, "fraction format:\n%s", s);
    free(s);
}

struct test_hist_case {
    double observe[8];
    size_t n;
    const char *expect[8];  /* lines that must appear */
};

static const struct test_hist_case test_hist_cases[] = {
    { { 0 }, 0,
      { "h_seconds_bucket{le=\"0.0001\"} 0\n", "h_seconds_bucket{le=\"+Inf\"} 0\n",
        "h_seconds_sum 0\n", "h_seconds_count 0\n" } },
    { { 0.00005, 0.0001, 0.002, 0.3, 20 }, 5,
      { "h_seconds_bucket{le=\"0.0001\"} 2\n", "h_seconds_bucket{le=\"0.00025\"} 2\n",
        "h_seconds_bucket{le=\"0.0025\"} 3\n", "h_seconds_bucket{le=\"0.25\"} 3\n",
        "h_seconds_bucket{le=\"0.5\"} 4\n", "h_seconds_bucket{le=\"10\"} 4\n",
        "h_seconds_bucket{le=\"+Inf\"} 5\n", "h_seconds_count 5\n" } },
};

static void test_histogram(void)
{
    for (size_t t = 0; t < sizeof(test_hist_cases) / sizeof(test_hist_cases[0]); t++) {
        const struct test_hist_case *tc = &test_hist_cases[t];
        metrics_reset();
        struct metric *h = metric_histogram("h_seconds", NULL, "Latency.");
        for (size_t i = 0; i < tc->n; i++)
            metric_observe(h, tc->observe[i]);
        char *s = test_render();
        CHECK(strncmp(s, "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n", 52) == 0,
              "case %zu header:\n%s", t, s);
        CHECK(test_count(s, "h_seconds_bucket{") == 17, "case %zu: 16 buckets + Inf:\n%s", t, s);
        for (size_t i = 0; i < 8 && tc->expect[i]; i++)
            CHECK(strstr(s, tc->expect[i]) != NULL, "case %zu missing %s in:\n%s", t,
                  tc->expect[i], s);
        CHECK(metric_value(h) == (double)tc->n, "case %zu count", t);
        free(s);
    }

    /* labels combine with le; sum is rendered */
    metrics_reset();
    struct metric *h = metric_histogram("lat_seconds", "op=\"sync\"", "L");
    metric_observe(h, 0.5);
    metric_observe(h, 0.25);
    char *s = test_render();
    CHECK(strstr(s, "lat_seconds_bucket{op=\"sync\",le=\"0.25\"} 1\n") != NULL, "%s", s);
    CHECK(strstr(s, "lat_seconds_bucket{op=\"sync\",le=\"0.5\"} 2\n") != NULL, "%s", s);
    CHECK(strstr(s, "lat_seconds_sum{op=\"sync\"} 0.75\n") != NULL, "%s", s);
    CHECK(strstr(s, "lat_seconds_count{op=\"sync\"} 2\n") != NULL, "%s", s);
    free(s);
}

/* Series of one name stay together even when registered interleaved. */
static void test_grouping(void)
{
    metrics_reset();
    metric_gauge("a", "i=\"1\"", "A");
    metric_gauge("b", NULL, "B");
    metric_gauge("a", "i=\"2\"", "A");
    metric_gauge("c", NULL, "C");
    metric_gauge("a", "i=\"3\"", "A");
    char *s = test_render();
    const char *want =
        "# HELP a A\n# TYPE a gauge\na{i=\"1\"} 0\na{i=\"2\"} 0\na{i=\"3\"} 0\n"
        "# HELP b B\n# TYPE b gauge\nb 0\n"
        "# HELP c C\n# TYPE c gauge\nc 0\n";
    CHECK(strcmp(s, want) == 0, "grouping:\n%s", s);
    free(s);
    metrics_reset();
    s = test_render();
    CHECK(s[0] == '\0', "reset leaves an empty registry: %s", s);
    free(s);
}

int main(void)
{
    test_exact_text();
    test_identity_and_values();
    test_histogram();
    test_grouping();
    metrics_reset();
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
