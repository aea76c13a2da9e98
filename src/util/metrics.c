/*
 * metrics: the process-wide Prometheus registry behind include/svcd/metrics.h.
 *
 * Series are grouped into families (one per metric name): a family carries
 * the name, help text and type, and owns its series in registration order.
 * Rendering walks families in the order their names were first registered,
 * so "# HELP" / "# TYPE" appear exactly once per name and every series of a
 * name is contiguous, as the text format 0.0.4 requires.
 *
 * Registration is rare (start-up) and linear; updates are a plain store into
 * the series. Single-threaded, like the rest of the daemon.
 */
#include "svcd/metrics.h"
#include "svcd/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

/* Default seconds buckets: 100 us .. 10 s in 1-2.5-5 steps. */
static const double metrics_buckets[] = {
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1, 2.5, 5,
    10,
};
#define METRICS_N_BUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

struct metric_family;

struct metric {
    struct metric_family *family;
    char *labels;                 /* Prometheus label text or NULL */
    double value;                 /* counter / gauge */
    double (*fn)(void *ctx);      /* callback gauge, or NULL */
    void *fn_ctx;
    /* histogram state (non-cumulative per bucket; +Inf is count) */
    uint64_t bucket_counts[METRICS_N_BUCKETS];
    uint64_t count;
    double sum;
};

struct metric_family {
    char *name;
    char *help;
    enum metric_type type;
    struct metric **series;
    size_t n_series, cap_series;
};

static struct metric_family **metrics_families;
static size_t metrics_n_families, metrics_cap_families;

static void metrics_die(const char *what)
{
    fprintf(stderr, "svcd: metrics: %s\n", what);
    abort();
}

static char *metrics_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        metrics_die("out of memory");
    return d;
}

static const char *metrics_type_name(enum metric_type t)
{
    switch (t) {
    case METRIC_COUNTER:   return "counter";
    case METRIC_GAUGE:     return "gauge";
    case METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

/* Empty label text counts as no labels. */
static int metrics_labels_equal(const char *a, const char *b)
{
    if (a && !*a)
        a = NULL;
    if (b && !*b)
        b = NULL;
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static struct metric_family *metrics_family_get(const char *name, const char *help,
                                                enum metric_type type)
{
    for (size_t i = 0; i < metrics_n_families; i++) {
        struct metric_family *f = metrics_families[i];
        if (strcmp(f->name, name) == 0) {
            if (f->type != type)
                metrics_die("metric registered twice with different types");
            return f;
        }
    }
    if (VEC_RESERVE(metrics_families, metrics_n_families, metrics_cap_families, 32) < 0)
        metrics_die("out of memory");
    struct metric_family *f = calloc(1, sizeof(*f));
    if (!f)
        metrics_die("out of memory");
    f->name = metrics_strdup(name);
    f->help = metrics_strdup(help ? help : "");
    f->type = type;
    metrics_families[metrics_n_families++] = f;
    return f;
}

/* Finds or adds name{labels}. Never NULL. */
static struct metric *metrics_register(const char *name, const char *labels, const char *help,
                                       enum metric_type type)
{
    if (!name || !*name)
        metrics_die("metric without a name");
    struct metric_family *f = metrics_family_get(name, help, type);
    for (size_t i = 0; i < f->n_series; i++) {
        if (metrics_labels_equal(f->series[i]->labels, labels))
            return f->series[i];
    }
    if (VEC_RESERVE(f->series, f->n_series, f->cap_series, 4) < 0)
        metrics_die("out of memory");
    struct metric *m = calloc(1, sizeof(*m));
    if (!m)
        metrics_die("out of memory");
    m->family = f;
    m->labels = (labels && *labels) ? metrics_strdup(labels) : NULL;
    f->series[f->n_series++] = m;
    return m;
}

struct metric *metric_counter(const char *name, const char *labels, const char *help)
{
    return metrics_register(name, labels, help, METRIC_COUNTER);
}

struct metric *metric_gauge(const char *name, const char *labels, const char *help)
{
    return metrics_register(name, labels, help, METRIC_GAUGE);
}

struct metric *metric_histogram(const char *name, const char *labels, const char *help)
{
    return metrics_register(name, labels, help, METRIC_HISTOGRAM);
}

static struct metric *metrics_register_fn(const char *name, const char *labels,
                                          const char *help, enum metric_type type,
                                          double (*fn)(void *ctx), void *ctx)
{
    struct metric *m = metrics_register(name, labels, help, type);
    m->fn = fn;
    m->fn_ctx = ctx;
    return m;
}

struct metric *metric_gauge_fn(const char *name, const char *labels, const char *help,
                               double (*fn)(void *ctx), void *ctx)
{
    return metrics_register_fn(name, labels, help, METRIC_GAUGE, fn, ctx);
}

struct metric *metric_counter_fn(const char *name, const char *labels, const char *help,
                                 double (*fn)(void *ctx), void *ctx)
{
    return metrics_register_fn(name, labels, help, METRIC_COUNTER, fn, ctx);
}

void metric_add(struct metric *m, double v)
{
    if (!m || m->family->type == METRIC_HISTOGRAM)
        return;
    m->value += v;
}

void metric_set(struct metric *m, double v)
{
    if (!m || m->family->type == METRIC_HISTOGRAM)
        return;
    m->value = v;
}

void metric_set_now(struct metric *m)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    metric_set(m, (double)now.tv_sec + (double)now.tv_nsec / 1e9);
}

void metric_observe(struct metric *m, double v)
{
    if (!m || m->family->type != METRIC_HISTOGRAM)
        return;
    for (size_t i = 0; i < METRICS_N_BUCKETS; i++) {
        if (v <= metrics_buckets[i]) {
            m->bucket_counts[i]++;
            break;
        }
    }
    m->count++;
    m->sum += v;
}

double metric_value(const struct metric *m)
{
    if (!m)
        return 0;
    if (m->family->type == METRIC_HISTOGRAM)
        return (double)m->count;
    if (m->fn)
        return m->fn(m->fn_ctx);
    return m->value;
}

/* Formats a sample value the way Prometheus clients do: integers without a
 * fraction, others with the shortest of %.15g/%.17g that round-trips. */
static void metrics_format_value(double v, char *buf, size_t len)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, len, "%.0f", v);
    } else {
        snprintf(buf, len, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, len, "%.17g", v);
    }
}

/* HELP text escapes backslash and newline (text format 0.0.4). */
static void metrics_render_help(struct evbuffer *out, const struct metric_family *f)
{
    evbuffer_add_printf(out, "# HELP %s ", f->name);
    for (const char *p = f->help; *p; p++) {
        if (*p == '\\')
            evbuffer_add(out, "\\\\", 2);
        else if (*p == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, p, 1);
    }
    evbuffer_add(out, "\n", 1);
    evbuffer_add_printf(out, "# TYPE %s %s\n", f->name, metrics_type_name(f->type));
}

/* name{labels} value, or name{labels,extra} value. */
static void metrics_render_sample(struct evbuffer *out, const char *name, const char *suffix,
                                  const char *labels, const char *extra, double v)
{
    char val[64];
    metrics_format_value(v, val, sizeof(val));
    evbuffer_add_printf(out, "%s%s", name, suffix);
    if (labels || extra) {
        evbuffer_add_printf(out, "{%s%s%s}", labels ? labels : "",
                            (labels && extra) ? "," : "", extra ? extra : "");
    }
    evbuffer_add_printf(out, " %s\n", val);
}

static void metrics_render_histogram(struct evbuffer *out, const struct metric *m)
{
    const char *name = m->family->name;
    uint64_t cum = 0;
    char le[48];
    for (size_t i = 0; i < METRICS_N_BUCKETS; i++) {
        cum += m->bucket_counts[i];
        snprintf(le, sizeof(le), "le=\"%g\"", metrics_buckets[i]);
        metrics_render_sample(out, name, "_bucket", m->labels, le, (double)cum);
    }
    metrics_render_sample(out, name, "_bucket", m->labels, "le=\"+Inf\"", (double)m->count);
    metrics_render_sample(out, name, "_sum", m->labels, NULL, m->sum);
    metrics_render_sample(out, name, "_count", m->labels, NULL, (double)m->count);
}

void metrics_render(struct evbuffer *out)
{
    for (size_t i = 0; i < metrics_n_families; i++) {
        const struct metric_family *f = metrics_families[i];
        if (f->n_series == 0)
            continue;
        metrics_render_help(out, f);
        for (size_t j = 0; j < f->n_series; j++) {
            const struct metric *m = f->series[j];
            if (f->type == METRIC_HISTOGRAM)
                metrics_render_histogram(out, m);
            else
                metrics_render_sample(out, f->name, "", m->labels, NULL, metric_value(m));
        }
    }
}

void metrics_reset(void)
{
    for (size_t i = 0; i < metrics_n_families; i++) {
        struct metric_family *f = metrics_families[i];
        for (size_t j = 0; j < f->n_series; j++) {
            free(f->series[j]->labels);
            free(f->series[j]);
        }
        free(f->series);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(metrics_families);
    metrics_families = NULL;
    metrics_n_families = metrics_cap_families = 0;
}
