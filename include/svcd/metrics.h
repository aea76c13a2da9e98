/*
 * metrics: a tiny registry of Prometheus counters, gauges and histograms.
 *
 * Modules register their metrics once (at creation) and update them on the
 * hot path with a plain add/set; the admin API renders the registry in the
 * Prometheus text format. Gauges that are cheaper to compute on demand are
 * registered with a callback. Names follow Prometheus conventions
 * (svcd_<module>_<what>_<unit>); labels are fixed per series and given as
 * Prometheus label text, e.g. "condition=\"ready\"".
 *
 * The registry is process-wide (the daemon has one), single-threaded.
 * Registered series are freed by metrics_reset() (tests, shutdown).
 */
#ifndef SVCD_METRICS_H
#define SVCD_METRICS_H

#include <stdint.h>
#include <stddef.h>

struct evbuffer;

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric;  /* one series: name + fixed labels */

/* Registers (or returns the existing) series name{labels}. help is shown
 * once per name. labels may be NULL. Returns the series; never NULL (aborts
 * on ENOMEM, at start-up only). */
struct metric *metric_counter(const char *name, const char *labels, const char *help);
struct metric *metric_gauge(const char *name, const char *labels, const char *help);
/* A histogram of seconds with the default buckets
 * (0.0001 .. 10 s, 1-2.5-5 steps). */
struct metric *metric_histogram(const char *name, const char *labels, const char *help);
/* A gauge whose value is computed by fn(ctx) at render time. */
struct metric *metric_gauge_fn(const char *name, const char *labels, const char *help,
                               double (*fn)(void *ctx), void *ctx);
/* A counter whose value is read by fn(ctx) at render time (a total kept
 * elsewhere, e.g. by the log writer thread). */
struct metric *metric_counter_fn(const char *name, const char *labels, const char *help,
                                 double (*fn)(void *ctx), void *ctx);
/* Registers the standard process_* metrics of the Prometheus client
 * libraries (CPU, resident and virtual memory, open and max fds, start
 * time), read from /proc/self and getrlimit() at render time. */
void metrics_register_process(void);

void metric_add(struct metric *m, double v);      /* counters and gauges */
void metric_set(struct metric *m, double v);      /* gauges */
void metric_observe(struct metric *m, double v);  /* histograms */
double metric_value(const struct metric *m);      /* counter/gauge value */
/* Sets a gauge to the current Unix time in seconds (for *_timestamp_seconds). */
void metric_set_now(struct metric *m);

/* Appends the whole registry in Prometheus text format 0.0.4. */
void metrics_render(struct evbuffer *out);
/* Drops every series (and callback gauges). */
void metrics_reset(void);

#endif
