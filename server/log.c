/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's log; see log.h. Called from every thread.
 *
 * Format: "kvs-server[PID] 2024-11-21 18:00:00.123 info: message". The
 * level is an atomic: CONFIG SET may change it while threads log.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CONFIG SET loglevel changes it while other threads log. */
static _Atomic int min_level = LVL_INFO;

static const char *const level_names[] = {
    [LVL_DEBUG] = "debug",
    [LVL_INFO] = "info",
    [LVL_WARN] = "warn",
    [LVL_ERROR] = "error",
};

int log_level_parse(const char *text, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&min_level, memory_order_relaxed);
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t used = (size_t)snprintf(line, sizeof(line), "kvs-server[%d] ", (int)getpid());
    used += strftime(line + used, sizeof(line) - used, "%Y-%m-%d %H:%M:%S", &tm);
    used += (size_t)snprintf(line + used, sizeof(line) - used, ".%03ld %s: ", ts.tv_nsec / 1000000,
                             level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    va_end(ap);
    /* A message longer than the buffer is cut; the line still ends in \n. */
    used = n < 0 ? used : used + (size_t)n;
    if (used > sizeof(line) - 2)
        used = sizeof(line) - 2;
    /* Newlines inside the message would break "one event, one line". */
    for (char *p = line; p < line + used; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    line[used++] = '\n';
    (void)!write(STDERR_FILENO, line, used);
}
