/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one place where client writes reach the engine; see store.h.
 * Runs on the worker threads and the active expiry's thread (any of them,
 * at once).
 */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <xxhash.h>

int store_init(struct store *st, kvs_db *db)
{
    st->db = db;
    atomic_init(&st->commits_started, 0);
    atomic_init(&st->commits_finished, 0);
    if (watch_table_init(&st->watch) != 0)
        return KVS_ENOMEM;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&st->clear_lock, &attr);
    if (rc != 0)
        goto out_attr;
    for (size_t i = 0; i < STORE_STRIPES; i++) {
        rc = pthread_rwlock_init(&st->stripes[i], &attr);
        if (rc != 0) {
            while (i-- > 0)
                pthread_rwlock_destroy(&st->stripes[i]);
            pthread_rwlock_destroy(&st->clear_lock);
            break;
        }
    }
out_attr:
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0)
        watch_table_destroy(&st->watch);
    return rc != 0 ? KVS_ENOMEM : 0;
}

void store_destroy(struct store *st)
{
    for (size_t i = 0; i < STORE_STRIPES; i++)
        pthread_rwlock_destroy(&st->stripes[i]);
    pthread_rwlock_destroy(&st->clear_lock);
    watch_table_destroy(&st->watch);
}

size_t store_stripe(kvs_slice key)
{
    return XXH3_64bits(key.data, key.len) & (STORE_STRIPES - 1);
}

#define stripe_index store_stripe

/* Whether key holds a value now (watch_touch_alive's question). */
static bool key_alive(void *ctx, kvs_slice key)
{
    kvs_buf value = {0};
    int rc = kvs_db_get(ctx, key, &value);
    kvs_buf_free(&value);
    return rc == 0;
}

int store_clear_locked(struct store *st)
{
    /* Watched keys that hold a value are touched; the rest are not. */
    watch_touch_alive(&st->watch, key_alive, st->db);
    return kvs_db_clear(st->db);
}

static const kvs_slice flushall_s = {"FLUSHALL", 8}, del_s = {"DEL", 3};

/* SET key value [PXAT t] into the stream (lock held). */
static void feed_set(struct repl_stream *feed, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    kvs_op op = {.type = KVS_OP_SET, .key = key, .value = value, .expire_at = expire_at};
    repl_feed_ops(feed, &op, 1);
}

/* What a read-modify-write did, as Redis propagates it: a change of the
   time alone (the value put back is the one read) as PEXPIREAT or
   PERSIST, a new value as SET (with PXAT), a removal as DEL. */
static void feed_update(struct repl_stream *feed, kvs_slice key, const struct store_rmw *u)
{
    static const kvs_slice pexpireat_s = {"PEXPIREAT", 9}, persist_s = {"PERSIST", 7};
    repl_feed_lock(feed);
    if (u->action == STORE_REMOVE) {
        repl_feed_command(feed, 2, (kvs_slice[]){del_s, key});
    } else if (u->put_value.data == u->value->data && u->put_value.len == u->value->len) {
        char at[24];
        int n = snprintf(at, sizeof(at), "%lld", (long long)u->put_expire_at);
        if (u->put_expire_at > 0)
            repl_feed_command(feed, 3, (kvs_slice[]){pexpireat_s, key, {at, (size_t)n}});
        else
            repl_feed_command(feed, 2, (kvs_slice[]){persist_s, key});
    } else {
        feed_set(feed, key, u->put_value, u->put_expire_at);
    }
    repl_feed_unlock(feed);
}

void store_set_feed(struct store *st, struct repl_stream *feed)
{
    st->feed = feed;
}

void store_feed_switch(struct store *st, bool on)
{
    pthread_rwlock_wrlock(&st->clear_lock);
    repl_stream_set_on(st->feed, on);
    pthread_rwlock_unlock(&st->clear_lock);
}

bool store_feed_begin(struct store *st)
{
    bool feed = repl_feed_on(st->feed);
    if (feed)
        repl_feed_lock(st->feed);
    return feed;
}

void store_feed_end(struct store *st, bool cleared, const kvs_op *ops, size_t n, int rc)
{
    static const kvs_slice multi_s = {"MULTI", 5}, exec_s = {"EXEC", 4};
    bool wrap = n + cleared > 1;
    if (rc == 0 && (n || cleared)) {
        if (wrap)
            repl_feed_command(st->feed, 1, &multi_s);
        if (cleared)
            repl_feed_command(st->feed, 1, &flushall_s);
        repl_feed_ops(st->feed, ops, n);
        if (wrap)
            repl_feed_command(st->feed, 1, &exec_s);
    }
    repl_feed_unlock(st->feed);
}

int store_write(struct store *st, enum store_op op, kvs_slice key, kvs_slice value,
                int64_t expire_at)
{
    int rc;
    if (op == STORE_CLEAR) {
        pthread_rwlock_wrlock(&st->clear_lock);
        bool feed_clear = repl_feed_on(st->feed);
        if (feed_clear)
            repl_feed_lock(st->feed);
        rc = store_clear_locked(st);
        if (feed_clear) {
            if (rc == 0)
                repl_feed_command(st->feed, 1, &flushall_s);
            repl_feed_unlock(st->feed);
        }
        pthread_rwlock_unlock(&st->clear_lock);
        return rc;
    }
    pthread_rwlock_t *stripe = &st->stripes[stripe_index(key)];
    pthread_rwlock_rdlock(&st->clear_lock);
    pthread_rwlock_rdlock(stripe);
    bool feed = repl_feed_on(st->feed);
    if (feed)
        repl_feed_lock(st->feed);
    if (op == STORE_SET) {
        rc = kvs_db_set_ex(st->db, key, value, expire_at);
    } else {
        rc = kvs_db_remove(st->db, key);
        if (rc == KVS_ENOTFOUND)
            rc = STORE_SKIPPED;
    }
    if (rc == 0)
        watch_touch(&st->watch, key, op == STORE_SET && (!expire_at || expire_at > kvs_now_ms()));
    if (feed) {
        if (rc == 0 && op == STORE_SET)
            feed_set(st->feed, key, value, expire_at);
        else if (rc == 0)
            repl_feed_command(st->feed, 2, (kvs_slice[]){del_s, key});
        repl_feed_unlock(st->feed);
    }
    pthread_rwlock_unlock(stripe);
    pthread_rwlock_unlock(&st->clear_lock);
    return rc;
}

/* Read the key, let decide() choose, apply the choice; the key's stripe is
   held exclusive. */
static int update_locked(struct store *st, kvs_slice key, kvs_buf *value, store_decide_fn *decide,
                         void *ctx, struct store_rmw *u)
{
    int64_t expire_at = 0;
    *u = (struct store_rmw){.value = value, .action = STORE_KEEP};
    int rc = kvs_db_get_ex(st->db, key, value, &expire_at);
    if (rc != 0 && rc != KVS_ENOTFOUND)
        return rc;
    u->found = rc == 0;
    if (u->found)
        u->expire_at = expire_at;
    else
        value->len = 0;
    decide(ctx, u);
    switch (u->action) {
    case STORE_PUT:
        rc = kvs_db_set_ex(st->db, key, u->put_value, u->put_expire_at);
        if (rc == 0)
            watch_touch(&st->watch, key, true);
        return rc;
    case STORE_REMOVE:
        rc = kvs_db_remove(st->db, key);
        if (rc == 0)
            watch_touch(&st->watch, key, false);
        return rc == KVS_ENOTFOUND ? 0 : rc;
    case STORE_KEEP:
        break;
    }
    return 0;
}

int store_update(struct store *st, kvs_slice key, kvs_buf *value, store_decide_fn *decide,
                 void *ctx, struct store_rmw *u)
{
    pthread_rwlock_t *stripe = &st->stripes[stripe_index(key)];
    pthread_rwlock_rdlock(&st->clear_lock);
    pthread_rwlock_wrlock(stripe);
    int rc = update_locked(st, key, value, decide, ctx, u);
    if (rc == 0 && u->action != STORE_KEEP && repl_feed_on(st->feed))
        feed_update(st->feed, key, u);
    pthread_rwlock_unlock(stripe);
    pthread_rwlock_unlock(&st->clear_lock);
    return rc;
}

_Static_assert(STORE_STRIPES <= 64, "a batch's stripes are one 64-bit mask");

int store_write_batch(struct store *st, kvs_op *ops, size_t n)
{
    if (n == 0)
        return 0;
    /* The stripes the batch touches, taken in ascending order. */
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++)
        used |= UINT64_C(1) << stripe_index(ops[i].key);
    pthread_rwlock_rdlock(&st->clear_lock);
    for (uint64_t m = used; m; m &= m - 1)
        pthread_rwlock_rdlock(&st->stripes[__builtin_ctzll(m)]);
    bool feed = repl_feed_on(st->feed);
    if (feed)
        repl_feed_lock(st->feed);
    int rc = kvs_db_write(st->db, ops, n);
    if (feed) {
        if (rc == 0)
            repl_feed_ops(st->feed, ops, n);
        repl_feed_unlock(st->feed);
    }
    if (rc == 0)
        watch_touch_ops(&st->watch, ops, n);
    for (uint64_t m = used; m; m &= m - 1)
        pthread_rwlock_unlock(&st->stripes[__builtin_ctzll(m)]);
    pthread_rwlock_unlock(&st->clear_lock);
    return rc;
}

int store_read(struct store *st, kvs_slice key, kvs_buf *value, int64_t *expire_at)
{
    int64_t at;
    if (!expire_at)
        expire_at = &at;
    if (atomic_load_explicit(&st->commits_started, memory_order_acquire) ==
        atomic_load_explicit(&st->commits_finished, memory_order_acquire))
        return kvs_db_get_ex(st->db, key, value, expire_at);
    pthread_rwlock_t *stripe = &st->stripes[stripe_index(key)];
    pthread_rwlock_rdlock(stripe);
    int rc = kvs_db_get_ex(st->db, key, value, expire_at);
    pthread_rwlock_unlock(stripe);
    return rc;
}

uint64_t store_reads_begin(struct store *st)
{
    uint64_t started = atomic_load_explicit(&st->commits_started, memory_order_acquire);
    uint64_t finished = atomic_load_explicit(&st->commits_finished, memory_order_acquire);
    return started == finished ? started : UINT64_MAX;
}

bool store_reads_clean(struct store *st, uint64_t token)
{
    atomic_thread_fence(memory_order_acquire);
    return token != UINT64_MAX &&
           atomic_load_explicit(&st->commits_started, memory_order_relaxed) == token;
}

void store_reads_lock(struct store *st, uint64_t stripes)
{
    for (uint64_t m = stripes; m; m &= m - 1)
        pthread_rwlock_rdlock(&st->stripes[__builtin_ctzll(m)]);
}

void store_reads_unlock(struct store *st, uint64_t stripes)
{
    for (uint64_t m = stripes; m; m &= m - 1)
        pthread_rwlock_unlock(&st->stripes[__builtin_ctzll(m)]);
}

int store_watch(struct store *st, struct watcher *w, kvs_slice key)
{
    pthread_rwlock_t *stripe = &st->stripes[stripe_index(key)];
    pthread_rwlock_rdlock(&st->clear_lock);
    pthread_rwlock_wrlock(stripe);
    kvs_buf probe = {0};
    int rc = kvs_db_get(st->db, key, &probe);
    kvs_buf_free(&probe);
    if (rc == 0 || rc == KVS_ENOTFOUND)
        rc = watch_add_locked(&st->watch, w, key, rc == 0);
    pthread_rwlock_unlock(stripe);
    pthread_rwlock_unlock(&st->clear_lock);
    return rc;
}
