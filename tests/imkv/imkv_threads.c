/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libimkv under 8 threads: mixed inserts, lookups, overwrites and deletes,
 * each thread checked against its own model.
 *
 * Each thread owns keys "tT:kI" and keeps what each holds (or that it is
 * absent): every lookup of its own keys must return exactly that, every
 * delete succeed exactly when the key is there. Thread T also owns the
 * shared keys "shared:J" with J % 8 == T and rewrites them; every thread
 * reads all shared keys and checks that a value read belongs to its key
 * and is never older than one it read before. A value returned by
 * ht_lookup() must stay as it was, whatever other threads do, until the
 * thread's next lookup. Finally the main thread checks every model and
 * calls ht_destroy() (unless --no-destroy).
 *
 * A plain program (not Criterion) so that the same source runs in the
 * ThreadSanitizer build (test_imkv_threads) and, built without
 * sanitizers against libimkv.a, under valgrind (test_imkv_valgrind*).
 *   imkv_threads [--ops N] [--no-destroy]
 * Prints one line; exits non-zero on the first failure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imkv.h"

#define THREADS 8
#define KEYS 400  /* per thread */
#define SHARED 64 /* shared keys */
#define VAL_MAX 3100

static atomic_bool failed;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[300];

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    pthread_mutex_lock(&fail_lock);
    if (!atomic_load(&failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
        va_end(ap);
        atomic_store(&failed, true);
    }
    pthread_mutex_unlock(&fail_lock);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* "KEY=VERSION:" then filler, len bytes in all (at least the prefix). */
static void make_value(char *buf, const char *key, uint64_t version, size_t len)
{
    int n = snprintf(buf, VAL_MAX, "%s=%" PRIu64 ":", key, version);
    size_t at = (size_t)n;
    if (len < at)
        len = at;
    if (len >= VAL_MAX)
        len = VAL_MAX - 1;
    memset(buf + at, 'a' + (int)(version % 26), len - at);
    buf[len] = '\0';
}

/* The version of a value read for key, or 0 after fail() if it is not
   one written for key. */
static uint64_t parse_value(const char *key, const char *v)
{
    size_t kl = strlen(key);
    if (strncmp(v, key, kl) != 0 || v[kl] != '=') {
        fail("%s: a value of another key: %.40s", key, v);
        return 0;
    }
    char *end;
    uint64_t version = strtoull(v + kl + 1, &end, 10);
    if (*end != ':' || version == 0) {
        fail("%s: a malformed value: %.40s", key, v);
        return 0;
    }
    for (const char *p = end + 1; *p; p++) {
        if (*p != 'a' + (int)(version % 26)) {
            fail("%s: a torn value (version %" PRIu64 ")", key, version);
            return 0;
        }
    }
    return version;
}

static size_t value_len(uint64_t *seed)
{
    uint64_t r = rnd(seed) % 100;
    return r < 90 ? rnd(seed) % 120 : r < 99 ? 120 + rnd(seed) % 800 : 1000 + rnd(seed) % 2000;
}

struct worker {
    int id;
    size_t ops;
    uint64_t seed;
    char (*model)[VAL_MAX]; /* KEYS values; "" when absent */
    uint64_t version[KEYS];
    uint64_t shared_version[SHARED]; /* written (own) or last read (others') */
    size_t lookups, inserts, deletes;
};

static void own_key(char *buf, int t, int i)
{
    snprintf(buf, 32, "t%d:k%d", t, i);
}

static void shared_key(char *buf, int j)
{
    snprintf(buf, 32, "shared:%d", j);
}

static void *work(void *p)
{
    struct worker *w = p;
    char key[32], val[VAL_MAX], held[VAL_MAX] = "", *last = NULL;
    for (size_t op = 0; op < w->ops && !atomic_load(&failed); op++) {
        /* The last value looked up is still what it was. */
        if (last && strcmp(last, held) != 0)
            fail("thread %d: a looked-up value changed before the next lookup", w->id);
        uint64_t r = rnd(&w->seed) % 100;
        int i = (int)(rnd(&w->seed) % KEYS);
        own_key(key, w->id, i);
        char *model = w->model[i];
        if (r < 35) {
            char *v = NULL;
            HT_RET ret = ht_lookup(key, &v);
            w->lookups++;
            if (model[0] ? ret != HT_FOUND || strcmp(v, model) != 0
                         : ret != HT_NOTFOUND || v != NULL)
                fail("thread %d: lookup %s: %d, expected %s", w->id, key, ret,
                     model[0] ? "its value" : "not found");
            last = ret == HT_FOUND ? v : NULL;
            if (last)
                strcpy(held, last);
        } else if (r < 60) {
            make_value(val, key, ++w->version[i], value_len(&w->seed));
            if (ht_insert(key, val) != HT_INSERT_OK)
                fail("thread %d: insert %s failed", w->id, key);
            strcpy(model, val);
            w->inserts++;
        } else if (r < 72) {
            HT_RET ret = ht_delete(key);
            if (ret != (model[0] ? HT_DELETE_OK : HT_DELETE_FAILED))
                fail("thread %d: delete %s: %d, present %d", w->id, key, ret, model[0] != 0);
            model[0] = '\0';
            w->deletes++;
        } else if (r < 80) {
            /* Rewrite one of this thread's shared keys. */
            int j = w->id + THREADS * (int)(rnd(&w->seed) % (SHARED / THREADS));
            shared_key(key, j);
            make_value(val, key, ++w->shared_version[j], value_len(&w->seed));
            if (ht_insert(key, val) != HT_INSERT_OK)
                fail("thread %d: insert %s failed", w->id, key);
        } else {
            int j = (int)(rnd(&w->seed) % SHARED);
            shared_key(key, j);
            char *v = NULL;
            if (ht_lookup(key, &v) != HT_FOUND) {
                fail("thread %d: shared key %s not found", w->id, key);
                break;
            }
            w->lookups++;
            uint64_t version = parse_value(key, v);
            if (j % THREADS == w->id ? version != w->shared_version[j]
                                     : version < w->shared_version[j])
                fail("thread %d: %s at version %" PRIu64 " after %" PRIu64, w->id, key, version,
                     w->shared_version[j]);
            if (j % THREADS != w->id)
                w->shared_version[j] = version;
            last = v;
            strcpy(held, v);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    size_t ops = 50000;
    bool destroy = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc)
            ops = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--no-destroy") == 0)
            destroy = false;
        else {
            fprintf(stderr, "usage: %s [--ops N] [--no-destroy]\n", argv[0]);
            return 2;
        }
    }
    if (ht_init(1024) != HT_INIT_OK) {
        fprintf(stderr, "ht_init failed\n");
        return 1;
    }
    static struct worker w[THREADS];
    char key[32], val[VAL_MAX];
    for (int j = 0; j < SHARED; j++) {
        shared_key(key, j);
        w[j % THREADS].shared_version[j] = 1;
        make_value(val, key, 1, 40);
        if (ht_insert(key, val) != HT_INSERT_OK)
            fail("insert %s failed", key);
    }
    pthread_t th[THREADS];
    int started = 0;
    for (; started < THREADS; started++) {
        w[started].id = started;
        w[started].ops = ops;
        w[started].seed = UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(started + 1);
        w[started].model = calloc(KEYS, VAL_MAX);
        if (!w[started].model || pthread_create(&th[started], NULL, work, &w[started]) != 0) {
            fail("starting thread %d failed", started);
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);

    size_t lookups = 0, inserts = 0, deletes = 0;
    for (int t = 0; t < started && !atomic_load(&failed); t++) {
        lookups += w[t].lookups;
        inserts += w[t].inserts;
        deletes += w[t].deletes;
        for (int i = 0; i < KEYS; i++) {
            own_key(key, t, i);
            char *v = NULL;
            HT_RET ret = ht_lookup(key, &v);
            if (w[t].model[i][0] ? ret != HT_FOUND || strcmp(v, w[t].model[i]) != 0
                                 : ret != HT_NOTFOUND)
                fail("final lookup %s: %d", key, ret);
        }
    }
    for (int t = 0; t < THREADS; t++)
        free(w[t].model);
    if (destroy)
        ht_destroy();
    if (atomic_load(&failed)) {
        printf("FAIL: %s\n", fail_msg);
        return 1;
    }
    printf("ok: %d threads, %zu lookups, %zu inserts, %zu deletes%s\n", started, lookups, inserts,
           deletes, destroy ? "" : " (no ht_destroy)");
    return 0;
}
