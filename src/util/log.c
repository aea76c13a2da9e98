/*
 * log: stderr logger. Text lines look like
 *   2026-11-27T02:40:01.123Z info  store: generation 12: 3 services changed
 * and JSON lines like {"ts":"...","level":"info","module":"store","msg":"..."}.
 */
#include "svcd/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

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

/* Write s as the inside of a JSON string. */
static void log_json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
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

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    flockfile(stderr);
    if (log_format_cur == LOG_FMT_JSON) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", ts, log_level_names[lvl]);
        log_json_escape(stderr, module);
        fputs("\",\"msg\":\"", stderr);
        log_json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s %-5s %s: %s\n", ts, log_level_names[lvl], module, msg);
    }
    funlockfile(stderr);
}
