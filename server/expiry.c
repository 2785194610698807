/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Active expiry; see expiry.h. Everything but expirer_start(),
 * expirer_stop() and the figures runs on the expirer's own thread.
 */
#include "expiry.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "repl.h"
#include "server.h"

/* Redis's constants (expire.c), scaled by --active-expire-effort there as
   here: keys with a time looked at per step, the share of the cycle's
   period it may take, and the share of expired keys among those looked at
   above which it looks again. */
#define KEYS_PER_LOOP 20
#define SLOW_TIME_PERC 25
#define ACCEPTABLE_STALE 10
/* The most keys a step asks the engine for, and so the most removals in
   one batch: the store's write lock is held for one batch at a time. */
#define STEP_MAX 512

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Add n to a figure whose only writer is the expirer's thread. */
static void figure_add(_Atomic uint64_t *figure, uint64_t n)
{
    atomic_store_explicit(figure, atomic_load_explicit(figure, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static double stale_get(struct expirer *e)
{
    uint64_t bits = atomic_load_explicit(&e->stale, memory_order_relaxed);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static void stale_set(struct expirer *e, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    atomic_store_explicit(&e->stale, bits, memory_order_relaxed);
}

double expirer_stale_perc(struct expirer *e)
{
    return stale_get(e) * 100;
}

void expirer_reset_stale(struct expirer *e)
{
    stale_set(e, 0);
}

static bool stopping(struct expirer *e)
{
    pthread_mutex_lock(&e->lock);
    bool stop = e->stop;
    pthread_mutex_unlock(&e->lock);
    return stop;
}

/* The scan's callback: copy the key (borrowed for the call). */
static int collect(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)value;
    (void)expire_at;
    struct expirer *e = ctx;
    if (e->nkeys == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        size_t *lens = realloc(e->lens, cap * sizeof(*lens));
        if (!lens)
            return KVS_ENOMEM;
        e->lens = lens;
        kvs_op *ops = realloc(e->ops, cap * sizeof(*ops));
        if (!ops)
            return KVS_ENOMEM;
        e->ops = ops;
        e->cap = cap;
    }
    if (key.len > SIZE_MAX / 2 - e->keys.len ||
        kvs_buf_reserve(&e->keys, e->keys.len + key.len + 1) != 0)
        return KVS_ENOMEM;
    if (key.len)
        memcpy((char *)e->keys.data + e->keys.len, key.data, key.len);
    e->keys.len += key.len;
    e->lens[e->nkeys++] = key.len;
    return 0;
}

/* Report a failed step once, until a step succeeds again. */
static void step_failed(struct expirer *e, const char *what, int rc)
{
    if (!e->failing)
        log_warn("active expiry: %s: %s; trying again next cycle", what, kvs_strerror(rc));
    e->failing = true;
}

/*
 * One step: the expired keys among about count keys from the cursor,
 * removed. *found receives how many expired keys it met. Returns 0, or
 * the error that ended it (the cursor then stays).
 */
static int step(struct expirer *e, size_t count, size_t *found)
{
    struct store *st = &e->srv->store;
    e->nkeys = 0;
    e->keys.len = 0;
    uint64_t next = 0;
    int rc = kvs_db_scan(st->db, e->cursor, count, KVS_SCAN_EXPIRED, collect, e, &next);
    if (rc != 0)
        return rc;
    *found = e->nkeys;
    /* Read after the scan judged them: every key it found expired at or
       before this, so only a write since then keeps one. */
    int64_t now = kvs_now_ms();
    const char *p = e->keys.data;
    for (size_t i = 0; i < e->nkeys; i++) {
        e->ops[i] = (kvs_op){.type = KVS_OP_EXPIRE, .key = {p, e->lens[i]}, .expire_at = now};
        p += e->lens[i];
    }
    rc = store_write_batch(st, e->ops, e->nkeys);
    if (rc != 0)
        return rc;
    uint64_t removed = 0;
    for (size_t i = 0; i < e->nkeys; i++)
        removed += e->ops[i].result == 0;
    figure_add(&e->expired, removed);
    e->cursor = next;
    return 0;
}

/* One cycle, as Redis's activeExpireCycle(ACTIVE_EXPIRE_CYCLE_SLOW). */
static void cycle(struct expirer *e)
{
    int64_t start = mono_us(), cpu_start = thread_cpu_us();
    unsigned effort = e->srv->cfg.expire_effort - 1; /* 0 to 9 */
    size_t keys_per_loop = KEYS_PER_LOOP + KEYS_PER_LOOP / 4 * effort;
    int64_t limit_us = (int64_t)(SLOW_TIME_PERC + 2 * effort) * 1000000 / e->srv->cfg.hz / 100;
    size_t acceptable = ACCEPTABLE_STALE - effort;
    double sampled = 0, expired = 0;
    kvs_stats st;
    int rc = 0;
    /* A replica's keys go when its primary's DELs arrive (repl.h). */
    if (repl_is_replica(e->srv->repl) || repl_is_loading(e->srv->repl))
        st.expires = 0;
    else
        rc = kvs_db_stats(e->srv->store.db, &st);
    if (rc != 0) {
        step_failed(e, "reading the store's figures", rc);
    } else if (st.expires > 0) {
        /* A step visits every key, with a time or not; ask for enough to
           meet about keys_per_loop with times, and count those as the
           keys looked at. */
        double with_time = (double)st.expires / (double)(st.keys ? st.keys : 1);
        if (with_time > 1)
            with_time = 1;
        double want = (double)keys_per_loop / with_time;
        size_t count = want > STEP_MAX ? STEP_MAX : (size_t)want;
        for (;;) {
            size_t found = 0;
            rc = step(e, count, &found);
            if (rc != 0) {
                step_failed(e, "removing expired keys", rc);
                break;
            }
            e->failing = false;
            double looked = (double)count * with_time;
            if (looked < (double)found)
                looked = (double)found;
            sampled += looked;
            expired += (double)found;
            if (mono_us() - start > limit_us) {
                figure_add(&e->time_capped, 1);
                break;
            }
            /* Redis looks again while more than acceptable% had expired. */
            if ((double)found * 100 <= looked * (double)acceptable || stopping(e))
                break;
            /* Many keys to remove: bigger steps, bigger batches. */
            count = count * 2 > STEP_MAX ? STEP_MAX : count * 2;
        }
    }
    double current = sampled > 0 ? expired / sampled : 0;
    stale_set(e, current * 0.05 + stale_get(e) * 0.95);
    figure_add(&e->cycle_us, (uint64_t)(thread_cpu_us() - cpu_start));
}

static void *expirer_main(void *arg)
{
    struct expirer *e = arg;
    int64_t period_us = 1000000 / e->srv->cfg.hz;
    struct timespec tick;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        tick.tv_nsec += period_us * 1000;
        while (tick.tv_nsec >= 1000000000) {
            tick.tv_nsec -= 1000000000;
            tick.tv_sec++;
        }
        int rc = 0;
        while (!e->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&e->wake, &e->lock, &tick);
        if (e->stop)
            break;
        pthread_mutex_unlock(&e->lock);
        if (!atomic_load_explicit(&e->paused, memory_order_relaxed))
            cycle(e);
        /* A cycle that ran past the next tick starts the count afresh. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > tick.tv_sec || (now.tv_sec == tick.tv_sec && now.tv_nsec > tick.tv_nsec))
            tick = now;
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

int expirer_start(struct expirer *e, struct server *srv)
{
    memset(e, 0, sizeof(*e));
    e->srv = srv;
    stale_set(e, 0);
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&e->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_mutex_init(&e->lock, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&e->wake);
        return rc;
    }
    /* Signals are the main thread's, as for the workers. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&e->thread, NULL, expirer_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&e->lock);
        pthread_cond_destroy(&e->wake);
        return rc;
    }
    pthread_setname_np(e->thread, "kvs-expire");
    e->started = true;
    return 0;
}

void expirer_stop(struct expirer *e)
{
    if (!e->started)
        return;
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    kvs_buf_free(&e->keys);
    free(e->lens);
    free(e->ops);
    e->lens = NULL;
    e->ops = NULL;
    e->started = false;
}
