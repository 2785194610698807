/* SPDX-License-Identifier: BSD-3-Clause */
/* Plain helpers for the kvs engine's tests; see support.h. */
#include "support.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "support/tmpdir.h"

char *lt_tmpdir(void)
{
    char *dir = malloc(PATH_MAX);
    if (dir && ts_tmpdir_make(dir) != 0) {
        free(dir);
        dir = NULL;
    }
    return dir;
}

void lt_rmrf(const char *dir)
{
    ts_tmpdir_remove(dir);
}

uint64_t lt_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

/* ---- log capture ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cond = PTHREAD_COND_INITIALIZER;
static char log_buf[16384];
static size_t log_len;

static void capture(void *ctx, const char *line)
{
    (void)ctx;
    pthread_mutex_lock(&log_lock);
    if (strlen(line) + 2 > sizeof(log_buf) - log_len) {
        /* Full: keep the newer half, so that waiters see new lines. */
        size_t keep = log_len / 2;
        memmove(log_buf, log_buf + log_len - keep, keep + 1);
        log_len = keep;
    }
    size_t room = sizeof(log_buf) - log_len;
    int n = snprintf(log_buf + log_len, room, "%s\n", line);
    if (n > 0)
        log_len += (size_t)n < room ? (size_t)n : room - 1;
    pthread_cond_broadcast(&log_cond);
    pthread_mutex_unlock(&log_lock);
}

void lt_opts(kvs_options *o)
{
    kvs_options_init(o);
    o->engine = "kvs";
    o->fsync = KVS_FSYNC_NO;
    o->log = capture;
}

const char *lt_log_text(void)
{
    return log_buf;
}

void lt_log_clear(void)
{
    pthread_mutex_lock(&log_lock);
    log_buf[0] = '\0';
    log_len = 0;
    pthread_mutex_unlock(&log_lock);
}

bool lt_log_wait(const char *needle, int seconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&log_lock);
    int rc = 0;
    while (!strstr(log_buf, needle) && rc == 0)
        rc = pthread_cond_timedwait(&log_cond, &log_lock, &deadline);
    bool found = strstr(log_buf, needle) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

/* ---- values ---- */

size_t lt_value(char *out, size_t size, unsigned key, unsigned ver)
{
    int n = snprintf(out, size, "k=%u;v=%u;", key, ver);
    size_t len = (size_t)n + (key * 7u + ver * 13u) % 200u;
    if (len > size)
        len = size;
    for (size_t i = (size_t)n; i < len; i++)
        out[i] = (char)('a' + (key + ver + i) % 26);
    return len;
}

long lt_value_check(const void *val, size_t len, unsigned key)
{
    char text[32];
    size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
    memcpy(text, val, n);
    text[n] = '\0';
    unsigned k, v;
    int used = 0;
    if (sscanf(text, "k=%u;v=%u;%n", &k, &v, &used) != 2 || used == 0 || k != key)
        return -1;
    char expect[512];
    size_t elen = lt_value(expect, sizeof(expect), k, v);
    if (elen != len || memcmp(expect, val, len) != 0)
        return -1;
    return (long)v;
}

/* ---- failures ---- */

static atomic_ulong failures;
static char first_failure[512];

void lt_fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&failures, 1) != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
    va_end(ap);
}

unsigned long lt_failures(void)
{
    return atomic_load(&failures);
}

const char *lt_first_failure(void)
{
    return first_failure;
}

void lt_fail_reset(void)
{
    atomic_store(&failures, 0);
    first_failure[0] = '\0';
}
