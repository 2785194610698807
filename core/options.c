/* SPDX-License-Identifier: BSD-3-Clause */
/* Store options and their defaults; the helpers engines share for messages. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kvs/engine.h"

void kvs_options_init(kvs_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->fsync = KVS_FSYNC_EVERYSEC;
    opts->compact_min_stale_bytes = 1u << 20;
    opts->compact_min_stale_ratio = 0.5;
    opts->segment_max_bytes = 64u << 20;
    opts->snapshot_interval = 5;
}

static const char *const fsync_names[] = {
    [KVS_FSYNC_ALWAYS] = "always",
    [KVS_FSYNC_EVERYSEC] = "everysec",
    [KVS_FSYNC_NO] = "no",
};

int kvs_fsync_parse(const char *text, kvs_fsync *out)
{
    for (size_t i = 0; i < sizeof(fsync_names) / sizeof(fsync_names[0]); i++) {
        if (strcmp(text, fsync_names[i]) == 0) {
            *out = (kvs_fsync)i;
            return 0;
        }
    }
    return KVS_EINVAL;
}

const char *kvs_fsync_name(kvs_fsync policy)
{
    if ((size_t)policy < sizeof(fsync_names) / sizeof(fsync_names[0]))
        return fsync_names[policy];
    return "unknown";
}

void kvs__why(char *why, const char *fmt, ...)
{
    if (!why)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, KVS_WHY_MAX, fmt, ap);
    va_end(ap);
}

void kvs__log(const kvs_options *opts, const char *fmt, ...)
{
    if (!opts || !opts->log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    opts->log(opts->log_ctx, line);
}

void kvs__info_figures(kvs_info_fn fn, void *ctx, const char *const *names, const uint64_t *values,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char value[24];
        snprintf(value, sizeof(value), "%" PRIu64, values[i]);
        fn(ctx, names[i], value);
    }
}

int64_t (*kvs__now_hook)(void);

int64_t kvs_now_ms(void)
{
    if (kvs__now_hook)
        return kvs__now_hook();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
