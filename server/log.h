/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's log: one line per event on stderr, filtered by level.
 *
 * A line is formatted into a local buffer and written with one write(2), so
 * lines from different threads never interleave. Any thread may log.
 */
#ifndef KVS_SERVER_LOG_H
#define KVS_SERVER_LOG_H

#include <stdbool.h>

enum log_level {
    LVL_DEBUG,
    LVL_INFO,
    LVL_WARN,
    LVL_ERROR,
};

/* Parse "debug", "info", "warn" or "error". Returns 0 or -1. */
int log_level_parse(const char *text, enum log_level *out);

/* Set the lowest level written; any thread (CONFIG SET loglevel). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* "debug", "info", "warn" or "error". */
const char *log_level_name(enum log_level level);

/* Whether a line at level would be written, to skip costly formatting. */
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LVL_ERROR, __VA_ARGS__)

#endif
