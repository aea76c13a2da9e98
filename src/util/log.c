/*
 * log: stderr logger. Text lines look like
 *   2026-11-27T02:40:01.123Z info  store: generation 12: 3 services changed
 * and JSON lines like {"ts":"...","level":"info","module":"store","msg":"..."}.
 *
 * Logging never blocks the event loop. Once the daemon calls
 * log_writer_start(), log_msg() only appends the formatted line to a bounded
 * in-memory buffer (LOG_BUF_SIZE); one writer thread does the blocking
 * write(2) to stderr. When stderr stops draining (a full pipe nobody reads)
 * the buffer fills and further lines are dropped whole and counted
 * (log_dropped_lines()); the first write that succeeds afterwards is
 * followed by one line saying how many were lost. Before the writer starts
 * (and in a forked child) lines are written directly, as tests expect.
 */
#include "svcd/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUF_SIZE (256u * 1024u)
#define LOG_LINE_MAX 4096

static enum log_level log_level_cur = LOG_LVL_INFO;
static enum log_format log_format_cur = LOG_FMT_TEXT;

static const char *const log_level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *name, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = LOG_LVL_WARN;
        return 0;
    }
    return -1;
}

int log_format_parse(const char *name, enum log_format *out)
{
    if (strcmp(name, "text") == 0) { *out = LOG_FMT_TEXT; return 0; }
    if (strcmp(name, "json") == 0) { *out = LOG_FMT_JSON; return 0; }
    return -1;
}

void log_set_level(enum log_level lvl) { log_level_cur = lvl; }
void log_set_format(enum log_format fmt) { log_format_cur = fmt; }
enum log_level log_get_level(void) { return log_level_cur; }

/* Appends s as the inside of a JSON string to buf[*n..cap). */
static void log_json_escape(char *buf, size_t *n, size_t cap, const char *s)
{
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*n)++] = '\\';
            buf[(*n)++] = (char)c;
        } else if (c < 0x20) {
            *n += (size_t)snprintf(buf + *n, cap - *n, "\\u%04x", c);
        } else {
            buf[(*n)++] = (char)c;
        }
    }
}

/* Formats one complete line (ending in '\n') into buf; returns its length. */
static size_t log_format_line(char *buf, size_t cap, enum log_level lvl, const char *module,
                              const char *msg)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    size_t len;
    if (log_format_cur == LOG_FMT_JSON) {
        int k = snprintf(buf, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", ts,
                         log_level_names[lvl]);
        len = k < 0 ? 0 : (size_t)k;
        log_json_escape(buf, &len, cap - 8, module);
        len += (size_t)snprintf(buf + len, cap - len, "\",\"msg\":\"");
        log_json_escape(buf, &len, cap - 8, msg);
        len += (size_t)snprintf(buf + len, cap - len, "\"}\n");
    } else {
        int k = snprintf(buf, cap, "%s %-5s %s: %s\n", ts, log_level_names[lvl], module, msg);
        len = k < 0 ? 0 : (size_t)k;
        if (len >= cap) {           /* truncated: keep the newline */
            len = cap - 1;
            buf[len - 1] = '\n';
        }
    }
    return len;
}

/* Writes all of buf to fd 2, retrying on EINTR; false on any other error. */
static bool log_write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        buf += w;
        len -= (size_t)w;
    }
    return true;
}

/* ---------------------------------------------------- the writer thread -- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* data arrived / stop requested (writer waits) */
    pthread_cond_t drained;     /* buffer empty (log_writer_stop waits) */
    bool started, stopping, writing;
    pid_t pid;                  /* process that owns the writer */
    char buf[LOG_BUF_SIZE];     /* ring: head = oldest byte */
    size_t head, used;
    uint64_t unreported;        /* dropped since the last report */
    pthread_t thread;
} lw = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
         .drained = PTHREAD_COND_INITIALIZER };

static _Atomic uint64_t log_dropped_total;

uint64_t log_dropped_lines(void)
{
    return atomic_load(&log_dropped_total);
}

/* Called with lw.mu held: copies as much as fits. */
static void log_ring_put(const char *s, size_t len)
{
    size_t tail = (lw.head + lw.used) % LOG_BUF_SIZE;
    size_t first = LOG_BUF_SIZE - tail < len ? LOG_BUF_SIZE - tail : len;
    memcpy(lw.buf + tail, s, first);
    memcpy(lw.buf, s + first, len - first);
    lw.used += len;
}

static void *log_writer_main(void *arg)
{
    (void)arg;
    static char chunk[64 * 1024];
    pthread_mutex_lock(&lw.mu);
    for (;;) {
        while (lw.used == 0 && !lw.stopping)
            pthread_cond_wait(&lw.cond, &lw.mu);
        if (lw.used == 0 && lw.stopping)
            break;
        size_t n = lw.used < sizeof(chunk) ? lw.used : sizeof(chunk);
        size_t first = LOG_BUF_SIZE - lw.head < n ? LOG_BUF_SIZE - lw.head : n;
        memcpy(chunk, lw.buf + lw.head, first);
        memcpy(chunk + first, lw.buf, n - first);
        lw.head = (lw.head + n) % LOG_BUF_SIZE;
        lw.used -= n;
        lw.writing = true;
        pthread_mutex_unlock(&lw.mu);

        bool ok = log_write_all(chunk, n);   /* may block: this thread only */

        pthread_mutex_lock(&lw.mu);
        lw.writing = false;
        if (ok && lw.unreported) {
            /* stderr drains again: say once how much was lost */
            uint64_t lost = lw.unreported;
            lw.unreported = 0;
            pthread_mutex_unlock(&lw.mu);
            char msg[160], line[320];
            snprintf(msg, sizeof(msg), "%llu log lines dropped: stderr was not being read "
                     "(svcd_log_dropped_lines_total)", (unsigned long long)lost);
            size_t len = log_format_line(line, sizeof(line), LOG_LVL_WARN, "log", msg);
            log_write_all(line, len);
            pthread_mutex_lock(&lw.mu);
        }
        if (lw.used == 0)
            pthread_cond_broadcast(&lw.drained);
    }
    pthread_cond_broadcast(&lw.drained);
    pthread_mutex_unlock(&lw.mu);
    return NULL;
}

int log_writer_start(void)
{
    pthread_mutex_lock(&lw.mu);
    int rc = 0;
    if (!lw.started) {
        lw.stopping = false;
        lw.pid = getpid();
        rc = pthread_create(&lw.thread, NULL, log_writer_main, NULL);
        if (rc == 0) {
            lw.started = true;
            pthread_detach(lw.thread);
        }
    }
    pthread_mutex_unlock(&lw.mu);
    return rc == 0 ? 0 : -1;
}

void log_writer_stop(int wait_ms)
{
    pthread_mutex_lock(&lw.mu);
    if (!lw.started) {
        pthread_mutex_unlock(&lw.mu);
        return;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (lw.used > 0 || lw.writing) {
        if (pthread_cond_timedwait(&lw.drained, &lw.mu, &dl) == ETIMEDOUT)
            break;
    }
    /* Lines logged from now on are written directly (and may block); a
     * writer stuck in write(2) stays detached and dies with the process. */
    lw.stopping = true;
    lw.started = false;
    pthread_cond_signal(&lw.cond);
    pthread_mutex_unlock(&lw.mu);
}

void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
    if (lvl > log_level_cur)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    char line[LOG_LINE_MAX];
    size_t len = log_format_line(line, sizeof(line), lvl, module, msg);

    /* Not started, or a forked child (the mutex may be held by a thread that
     * does not exist here): write directly. */
    if (!lw.started || lw.pid != getpid()) {
        log_write_all(line, len);
        return;
    }
    pthread_mutex_lock(&lw.mu);
    if (lw.used + len > LOG_BUF_SIZE) {
        lw.unreported++;
        atomic_fetch_add(&log_dropped_total, 1);
    } else {
        log_ring_put(line, len);
        pthread_cond_signal(&lw.cond);
    }
    pthread_mutex_unlock(&lw.mu);
}
