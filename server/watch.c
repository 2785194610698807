/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The table of watched keys; see watch.h. A chained hash of entries, one
 * per (watcher, key), under one mutex that only writers of watched keys
 * and WATCH/UNWATCH/EXEC take.
 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "kvs/kvs.h"

#define WATCH_BUCKETS 1024u

struct watch_entry {
    struct watch_entry *next;     /* in its bucket */
    struct watch_entry *next_own; /* in its watcher's list */
    struct watcher *owner;
    uint64_t hash;
    bool alive; /* the key held a value when watched, or since */
    size_t len;
    unsigned char key[];
};

int watch_table_init(struct watch_table *t)
{
    atomic_init(&t->nwatched, 0);
    t->buckets = calloc(WATCH_BUCKETS, sizeof(*t->buckets));
    if (!t->buckets)
        return KVS_ENOMEM;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->buckets);
        return KVS_ENOMEM;
    }
    return 0;
}

void watch_table_destroy(struct watch_table *t)
{
    pthread_mutex_destroy(&t->lock);
    free(t->buckets);
}

static uint64_t key_hash(kvs_slice key)
{
    return XXH3_64bits(key.data, key.len);
}

static bool entry_is(const struct watch_entry *e, uint64_t hash, kvs_slice key)
{
    return e->hash == hash && e->len == key.len && memcmp(e->key, key.data, key.len) == 0;
}

int watch_add_locked(struct watch_table *t, struct watcher *w, kvs_slice key, bool alive)
{
    uint64_t hash = key_hash(key);
    for (struct watch_entry *e = w->keys; e; e = e->next_own) {
        if (entry_is(e, hash, key))
            return 0; /* watched already: Redis keeps the first */
    }
    struct watch_entry *e = malloc(sizeof(*e) + key.len);
    if (!e)
        return KVS_ENOMEM;
    e->owner = w;
    e->hash = hash;
    e->alive = alive;
    e->len = key.len;
    if (key.len)
        memcpy(e->key, key.data, key.len);
    e->next_own = w->keys;
    w->keys = e;
    w->nkeys++;
    pthread_mutex_lock(&t->lock);
    struct watch_entry **b = &t->buckets[hash & (WATCH_BUCKETS - 1)];
    e->next = *b;
    *b = e;
    atomic_fetch_add_explicit(&t->nwatched, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void watch_clear(struct watch_table *t, struct watcher *w)
{
    if (w->keys) {
        pthread_mutex_lock(&t->lock);
        for (struct watch_entry *e = w->keys; e; e = e->next_own) {
            struct watch_entry **p = &t->buckets[e->hash & (WATCH_BUCKETS - 1)];
            while (*p != e)
                p = &(*p)->next;
            *p = e->next;
        }
        atomic_fetch_sub_explicit(&t->nwatched, w->nkeys, memory_order_relaxed);
        pthread_mutex_unlock(&t->lock);
        struct watch_entry *next;
        for (struct watch_entry *e = w->keys; e; e = next) {
            next = e->next_own;
            free(e);
        }
    }
    w->keys = NULL;
    w->nkeys = 0;
    atomic_store_explicit(&w->dirty, false, memory_order_relaxed);
}

/* One key's watchers; the table's lock is held. */
static void touch_locked(struct watch_table *t, uint64_t hash, kvs_slice key, bool exists)
{
    for (struct watch_entry *e = t->buckets[hash & (WATCH_BUCKETS - 1)]; e; e = e->next) {
        if (!entry_is(e, hash, key))
            continue;
        if (!e->alive && !exists)
            continue; /* it was gone and still is: no change */
        atomic_store_explicit(&e->owner->dirty, true, memory_order_relaxed);
    }
}

void watch_touch(struct watch_table *t, kvs_slice key, bool exists)
{
    if (!watch_any(t))
        return;
    uint64_t hash = key_hash(key);
    pthread_mutex_lock(&t->lock);
    touch_locked(t, hash, key, exists);
    pthread_mutex_unlock(&t->lock);
}

void watch_touch_ops(struct watch_table *t, const struct kvs_op *ops, size_t n)
{
    if (!watch_any(t))
        return;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        /* A remove or an expiry that found nothing changed nothing; a set
           refused by --maxmemory neither. */
        if (ops[i].result != 0)
            continue;
        touch_locked(t, key_hash(ops[i].key), ops[i].key, ops[i].type == KVS_OP_SET);
    }
    pthread_mutex_unlock(&t->lock);
}

void watch_touch_alive(struct watch_table *t, bool (*alive)(void *ctx, kvs_slice key), void *ctx)
{
    if (!watch_any(t))
        return;
    pthread_mutex_lock(&t->lock);
    for (size_t b = 0; b < WATCH_BUCKETS; b++) {
        for (struct watch_entry *e = t->buckets[b]; e; e = e->next) {
            kvs_slice key = {e->key, e->len};
            if (e->alive && alive(ctx, key))
                atomic_store_explicit(&e->owner->dirty, true, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&t->lock);
}

bool watch_expired(struct watcher *w, bool (*alive)(void *ctx, kvs_slice key), void *ctx)
{
    for (struct watch_entry *e = w->keys; e; e = e->next_own) {
        if (e->alive && !alive(ctx, (kvs_slice){e->key, e->len}))
            return true;
    }
    return false;
}

void watch_each_key(struct watcher *w, void (*fn)(void *ctx, kvs_slice key), void *ctx)
{
    for (struct watch_entry *e = w->keys; e; e = e->next_own)
        fn(ctx, (kvs_slice){e->key, e->len});
}
