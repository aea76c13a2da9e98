/*
 * log: one line per event on stderr, with a level; text or JSON format.
 *
 * Every module logs through these macros. The level and format are set once
 * at start-up (and again on SIGHUP) by the daemon; tests leave the defaults
 * (info, text).
 */
#ifndef SVCD_LOG_H
#define SVCD_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON };

/* Parse "error"/"warn"/"info"/"debug"; returns 0, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);
/* Parse "text"/"json"; returns 0, or -1 for an unknown name. */
int log_format_parse(const char *name, enum log_format *out);

void log_set_level(enum log_level lvl);
void log_set_format(enum log_format fmt);
enum log_level log_get_level(void);

/* Starts the writer thread: from then on log_msg() never blocks (lines go
 * to a bounded buffer; when it is full they are dropped and counted). Returns
 * 0, or -1 if the thread cannot be created (logging stays direct). */
int log_writer_start(void);
/* Waits up to wait_ms for buffered lines to be written, then returns to
 * direct writes. Safe to call when the writer is not running. */
void log_writer_stop(int wait_ms);
/* Lines dropped because the buffer was full (stderr not draining). */
uint64_t log_dropped_lines(void);

/* printf-like; the message should not end in a newline. */
void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_err(mod, ...)   log_msg(LOG_LVL_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_LVL_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_msg(LOG_LVL_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) \
    do { if (log_get_level() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, mod, __VA_ARGS__); } while (0)

#endif
