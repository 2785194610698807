/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * WATCH: the keys clients watch, and the writes that touch them.
 *
 * A client's struct watcher holds the keys it watches (one watch_entry per
 * key) and a dirty flag. Every write that passes the store's door
 * (store.h) calls watch_touch() for its keys while it still holds the
 * key's stripe; a touched key marks each watcher of it dirty, and EXEC
 * refuses to run for a dirty watcher. When nobody watches anything,
 * watch_touch() is one relaxed load of a counter.
 *
 * Why the stripe: watch_add() registers a key while holding the key's
 * stripe exclusive, so a write of the key either finished before (and is
 * not the watcher's business) or starts after, when it sees the counter
 * raised (the lock orders them) and touches the key.
 *
 * As Redis 7.0: a key that was not alive when watched (missing, or past
 * its time) is touched only by a write that leaves it alive, since
 * removing what was already gone changes nothing; and a key alive when
 * watched that has passed its time by EXEC aborts the EXEC
 * (watch_expired()).
 *
 * Thread safety: any thread; a watcher is changed only by the thread of
 * its connection, dirty by any.
 */
#ifndef KVS_SERVER_WATCH_H
#define KVS_SERVER_WATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/slice.h"

struct store;
struct watch_entry;

struct watcher {
    atomic_bool dirty;        /* a watched key was touched since it was watched */
    struct watch_entry *keys; /* the keys watched, newest first */
    size_t nkeys;
};

/* The table of watched keys, part of struct store. */
struct watch_table {
    _Atomic size_t nwatched; /* entries in the table: 0 makes watch_touch() free */
    /* Protects buckets and every entry's links; taken after the stripes. */
    pthread_mutex_t lock;
    struct watch_entry **buckets;
};

int watch_table_init(struct watch_table *t);
void watch_table_destroy(struct watch_table *t);

/* Watch key (copied), alive saying whether it holds a value now. The
   caller holds the key's stripe exclusive. Returns 0 or KVS_ENOMEM. */
int watch_add_locked(struct watch_table *t, struct watcher *w, kvs_slice key, bool alive);

/* Forget every key of w and clear its dirty flag. Any time. */
void watch_clear(struct watch_table *t, struct watcher *w);

/* A write changed key, which holds a value afterwards or not (exists).
   The caller holds the key's stripe (shared or exclusive). */
void watch_touch(struct watch_table *t, kvs_slice key, bool exists);

/* The same for several keys: the ops of a batch (kvs_op, with results). */
struct kvs_op;
void watch_touch_ops(struct watch_table *t, const struct kvs_op *ops, size_t n);

/* Whether key is watched by anyone. */
static inline bool watch_any(struct watch_table *t)
{
    return atomic_load_explicit(&t->nwatched, memory_order_relaxed) != 0;
}

/* Called before the store is cleared, with clear_lock held exclusive:
   alive(key) says whether a key holds a value; those that do are touched. */
void watch_touch_alive(struct watch_table *t, bool (*alive)(void *ctx, kvs_slice key), void *ctx);

/* Calls fn for each key of w that was alive when watched; fn returns
   whether it still is. Returns true when one is not any more (EXEC then
   aborts, as Redis's isWatchedKeyExpired). */
bool watch_expired(struct watcher *w, bool (*alive)(void *ctx, kvs_slice key), void *ctx);

/* The keys of w, for EXEC to lock: fn(ctx, key) for each. */
void watch_each_key(struct watcher *w, void (*fn)(void *ctx, kvs_slice key), void *ctx);

#endif
