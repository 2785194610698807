/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scan scenario of the engine contract (scenarios.h): full passes of
 * kvs_db_scan() while one thread writes (adding keys so that tables and
 * trees grow, removing them in bulk so that they shrink, overwriting and
 * churning others) and another compacts, on engines that compact.
 *
 * Judged: every "stable" key, present and unchanged throughout, is visited
 * in every pass; every value visited is one its key had (values name their
 * key); every pass ends within a bound of steps.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

#define STABLE 2000
#define MAX_STEPS 1000000

struct scan_run {
    kvs_db *db;
    atomic_bool stop;
    atomic_ulong writes, compactions;
    int writer_err, compact_err;
};

/* A value of key: "<key>=<n>", so that a value names its key. */
static size_t make_value(char *out, size_t size, const char *key, unsigned long n)
{
    return (size_t)snprintf(out, size, "%s=%lu", key, n);
}

static int put(kvs_db *db, const char *key, unsigned long n)
{
    char val[96];
    size_t len = make_value(val, sizeof(val), key, n);
    return kvs_db_set(db, kvs_slice_str(key), kvs_slice_of(val, len));
}

static void *writer_main(void *arg)
{
    struct scan_run *r = arg;
    char key[48];
    unsigned long round = 0;
    while (!atomic_load(&r->stop) && r->writer_err == 0) {
        round++;
        /* Grow: 3000 new keys; then remove them all again, so that the next
           growth may start from a shrunk table. */
        for (int i = 0; i < 3000 && r->writer_err == 0; i++) {
            snprintf(key, sizeof(key), "new-%lu-%d", round, i);
            r->writer_err = put(r->db, key, round);
        }
        for (int i = 0; i < 200 && r->writer_err == 0; i++) {
            snprintf(key, sizeof(key), "hot-%d", i);
            r->writer_err = put(r->db, key, round);
        }
        for (int i = 0; i < 3000 && r->writer_err == 0; i++) {
            snprintf(key, sizeof(key), "new-%lu-%d", round, i);
            r->writer_err = kvs_db_remove(r->db, kvs_slice_str(key));
        }
        atomic_fetch_add(&r->writes, 1);
    }
    return NULL;
}

static void *compactor_main(void *arg)
{
    struct scan_run *r = arg;
    while (!atomic_load(&r->stop)) {
        int rc = kvs_db_compact(r->db);
        if (rc == KVS_ENOTSUP)
            break;
        if (rc != 0) {
            r->compact_err = rc;
            break;
        }
        atomic_fetch_add(&r->compactions, 1);
    }
    return NULL;
}

struct pass {
    unsigned char seen[STABLE];
    char bad[160]; /* the first wrong value, explained */
};

/* Whether key is one this scenario writes (the store may hold others). */
static bool ours(kvs_slice key)
{
    static const char *const prefixes[] = {"stable-", "new-", "hot-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);
        if (key.len > n && memcmp(key.data, prefixes[i], n) == 0)
            return true;
    }
    return false;
}

static int visit(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)expire_at;
    struct pass *p = ctx;
    if (!ours(key))
        return 0;
    /* The value starts with the key and '='. */
    if (!value || value->len <= key.len || memcmp(value->data, key.data, key.len) != 0 ||
        ((const char *)value->data)[key.len] != '=') {
        if (!p->bad[0])
            snprintf(p->bad, sizeof(p->bad), "key '%.*s' came with value '%.*s'", (int)key.len,
                     (const char *)key.data, value ? (int)value->len : 0,
                     value ? (const char *)value->data : "");
        return 0;
    }
    /* The key is not NUL-terminated (it may end a mapped page): copy it. */
    char name[32];
    int n;
    if (key.len > 7 && key.len < sizeof(name) && memcmp(key.data, "stable-", 7) == 0) {
        memcpy(name, key.data, key.len);
        name[key.len] = '\0';
        if (sscanf(name + 7, "%d", &n) == 1 && n >= 0 && n < STABLE)
            p->seen[n] = 1;
    }
    return 0;
}

static bool fail(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return false;
}

bool kvs_scn_scan_beside_writers(kvs_db *db, int passes, char *msg, size_t size)
{
    char key[32];
    for (int i = 0; i < STABLE; i++) {
        snprintf(key, sizeof(key), "stable-%d", i);
        if (put(db, key, 1) != 0)
            return fail(msg, size, "cannot set %s", key);
    }
    struct scan_run r = {.db = db};
    pthread_t writer, compactor;
    if (pthread_create(&writer, NULL, writer_main, &r) != 0)
        return fail(msg, size, "cannot start the writer");
    bool compacting = pthread_create(&compactor, NULL, compactor_main, &r) == 0;
    bool ok = true;
    struct pass *p = malloc(sizeof(*p));
    uint64_t rng = 42;
    /* At least the passes asked for, and on until the writer has done two
       rounds, so that passes really overlap its growing and shrinking. */
    for (int pass = 0; ok && p && (pass < passes || atomic_load(&r.writes) < 2); pass++) {
        memset(p, 0, sizeof(*p));
        uint64_t cursor = 0;
        unsigned long steps = 0;
        do {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            size_t count = 1 + (rng >> 33) % 500;
            int rc = kvs_db_scan(db, cursor, count, KVS_SCAN_VALUES, visit, p, &cursor);
            if (rc != 0)
                ok = fail(msg, size, "pass %d, step %lu: %s", pass, steps, kvs_err_name(rc));
        } while (ok && cursor != 0 && ++steps < MAX_STEPS);
        if (ok && cursor != 0)
            ok = fail(msg, size, "pass %d did not end in %d steps", pass, MAX_STEPS);
        if (ok && p->bad[0])
            ok = fail(msg, size, "pass %d: %s", pass, p->bad);
        for (int i = 0; ok && i < STABLE; i++) {
            if (!p->seen[i])
                ok = fail(msg, size, "pass %d missed stable-%d", pass, i);
        }
    }
    atomic_store(&r.stop, true);
    pthread_join(writer, NULL);
    if (compacting)
        pthread_join(compactor, NULL);
    free(p);
    if (ok && !p)
        ok = fail(msg, size, "out of memory");
    if (ok && r.writer_err)
        ok = fail(msg, size, "writer: %s", kvs_err_name(r.writer_err));
    if (ok && r.compact_err)
        ok = fail(msg, size, "compaction: %s", kvs_err_name(r.compact_err));
    return ok;
}
