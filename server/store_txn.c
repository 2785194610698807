/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transactions over the store; see store_txn.h. The overlay is an array
 * of the keys written, in the order first written, with a small
 * open-addressing index over it.
 */
#include "store_txn.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct txn_entry {
    uint64_t hash;
    kvs_buf key;
    kvs_buf value;
    int64_t expire_at;
    bool present;    /* the key holds value once the transaction is applied */
    bool base_alive; /* it held a value before the transaction */
};

void store_txn_begin(struct store *st, struct store_txn *t, uint64_t stripes, bool clear)
{
    *t = (struct store_txn){.st = st, .clear = clear};
    if (clear) {
        stripes = STORE_STRIPES == 64 ? UINT64_MAX : (UINT64_C(1) << STORE_STRIPES) - 1;
        pthread_rwlock_wrlock(&st->clear_lock);
    } else {
        pthread_rwlock_rdlock(&st->clear_lock);
    }
    t->stripes = stripes;
    for (uint64_t m = stripes; m; m &= m - 1)
        pthread_rwlock_wrlock(&st->stripes[__builtin_ctzll(m)]);
}

static void release(struct store_txn *t)
{
    for (uint64_t m = t->stripes; m; m &= m - 1)
        pthread_rwlock_unlock(&t->st->stripes[__builtin_ctzll(m)]);
    pthread_rwlock_unlock(&t->st->clear_lock);
    for (size_t i = 0; i < t->n; i++) {
        kvs_buf_free(&t->entries[i].key);
        kvs_buf_free(&t->entries[i].value);
    }
    free(t->entries);
    free(t->index);
    *t = (struct store_txn){0};
}

void store_txn_abort(struct store_txn *t)
{
    release(t);
}

static bool declared(const struct store_txn *t, kvs_slice key)
{
    return (t->stripes & store_txn_bit(key)) != 0;
}

static struct txn_entry *find(struct store_txn *t, kvs_slice key, uint64_t hash)
{
    if (!t->index_cap)
        return NULL;
    for (size_t s = hash & (t->index_cap - 1);; s = (s + 1) & (t->index_cap - 1)) {
        uint32_t i = t->index[s];
        if (i == 0)
            return NULL;
        struct txn_entry *e = &t->entries[i - 1];
        if (e->hash == hash && e->key.len == key.len &&
            (key.len == 0 || memcmp(e->key.data, key.data, key.len) == 0))
            return e;
    }
}

static int reindex(struct store_txn *t, size_t cap)
{
    uint32_t *index = calloc(cap, sizeof(*index));
    if (!index)
        return KVS_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        size_t s = t->entries[i].hash & (cap - 1);
        while (index[s])
            s = (s + 1) & (cap - 1);
        index[s] = (uint32_t)(i + 1);
    }
    free(t->index);
    t->index = index;
    t->index_cap = cap;
    return 0;
}

static bool alive(int64_t expire_at, int64_t now)
{
    return expire_at == 0 || expire_at > now;
}

/* The entry of key, created (with what the store holds) if missing. */
static int entry_of(struct store_txn *t, kvs_slice key, struct txn_entry **out)
{
    uint64_t hash = XXH3_64bits(key.data, key.len);
    struct txn_entry *e = find(t, key, hash);
    if (e) {
        *out = e;
        return 0;
    }
    if (t->n == UINT32_MAX - 1)
        return KVS_ENOMEM;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        void *p = realloc(t->entries, cap * sizeof(*t->entries));
        if (!p)
            return KVS_ENOMEM;
        t->entries = p;
        t->cap = cap;
    }
    if ((t->n + 1) * 2 > t->index_cap && reindex(t, t->index_cap ? t->index_cap * 2 : 32) != 0)
        return KVS_ENOMEM;
    e = &t->entries[t->n];
    *e = (struct txn_entry){.hash = hash};
    if (kvs_buf_set(&e->key, key.data, key.len) != 0)
        return KVS_ENOMEM;
    if (!t->cleared) {
        int64_t at = 0;
        int rc = kvs_db_get_ex(t->st->db, key, &e->value, &at);
        if (rc != 0 && rc != KVS_ENOTFOUND) {
            kvs_buf_free(&e->key);
            kvs_buf_free(&e->value);
            return rc;
        }
        e->base_alive = rc == 0;
        e->present = rc == 0;
        e->expire_at = rc == 0 ? at : 0;
    }
    size_t s = hash & (t->index_cap - 1);
    while (t->index[s])
        s = (s + 1) & (t->index_cap - 1);
    t->index[s] = (uint32_t)(t->n + 1);
    t->n++;
    *out = e;
    return 0;
}

int store_txn_get(struct store_txn *t, kvs_slice key, kvs_buf *value, int64_t *expire_at)
{
    int64_t at;
    if (!expire_at)
        expire_at = &at;
    if (!declared(t, key))
        return KVS_EINVAL;
    struct txn_entry *e = find(t, key, XXH3_64bits(key.data, key.len));
    if (!e) {
        if (t->cleared)
            return KVS_ENOTFOUND;
        return kvs_db_get_ex(t->st->db, key, value, expire_at);
    }
    if (!e->present || !alive(e->expire_at, kvs_now_ms()))
        return KVS_ENOTFOUND;
    if (kvs_buf_set(value, e->value.data, e->value.len) != 0)
        return KVS_ENOMEM;
    *expire_at = e->expire_at;
    return 0;
}

/* Check a write against the engine's limits, as kvs_db_write() would
   (one bad op would fail the whole batch at commit). */
static int check_sizes(struct store_txn *t, kvs_slice key, const kvs_slice *value)
{
    const kvs_engine *engine = kvs_db_engine(t->st->db);
    if (key.len > kvs_engine_max_key(engine))
        return KVS_EKEYSIZE;
    if (value && value->len > kvs_engine_max_value(engine))
        return KVS_EVALSIZE;
    return 0;
}

static int put(struct store_txn *t, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    struct txn_entry *e;
    int rc = check_sizes(t, key, &value);
    if (rc == 0)
        rc = entry_of(t, key, &e);
    if (rc != 0)
        return rc;
    if (kvs_buf_set(&e->value, value.data, value.len) != 0)
        return KVS_ENOMEM;
    e->present = true;
    e->expire_at = expire_at;
    return 0;
}

/* Remove key: 0 if it was alive, KVS_ENOTFOUND if not. */
static int del(struct store_txn *t, kvs_slice key)
{
    struct txn_entry *e;
    int rc = check_sizes(t, key, NULL);
    if (rc == 0)
        rc = entry_of(t, key, &e);
    if (rc != 0)
        return rc;
    bool was = e->present && alive(e->expire_at, kvs_now_ms());
    e->present = false;
    e->expire_at = 0;
    e->value.len = 0;
    return was ? 0 : KVS_ENOTFOUND;
}

int store_txn_update(struct store_txn *t, kvs_slice key, kvs_buf *value, store_decide_fn *decide,
                     void *ctx, struct store_rmw *u)
{
    int64_t at = 0;
    *u = (struct store_rmw){.value = value, .action = STORE_KEEP};
    int rc = store_txn_get(t, key, value, &at);
    if (rc != 0 && rc != KVS_ENOTFOUND)
        return rc;
    u->found = rc == 0;
    if (u->found)
        u->expire_at = at;
    else
        value->len = 0;
    decide(ctx, u);
    switch (u->action) {
    case STORE_PUT:
        return put(t, key, u->put_value, u->put_expire_at);
    case STORE_REMOVE:
        rc = del(t, key);
        return rc == KVS_ENOTFOUND ? 0 : rc;
    case STORE_KEEP:
        break;
    }
    return 0;
}

int store_txn_write(struct store_txn *t, enum store_op op, kvs_slice key, kvs_slice value,
                    int64_t expire_at)
{
    if (op == STORE_CLEAR) {
        if (!t->clear)
            return KVS_EINVAL;
        for (size_t i = 0; i < t->n; i++) {
            kvs_buf_free(&t->entries[i].key);
            kvs_buf_free(&t->entries[i].value);
        }
        t->n = 0;
        if (t->index_cap)
            memset(t->index, 0, t->index_cap * sizeof(*t->index));
        t->cleared = true;
        return 0;
    }
    if (!declared(t, key))
        return KVS_EINVAL;
    if (op == STORE_SET)
        return put(t, key, value, expire_at);
    int rc = del(t, key);
    return rc == KVS_ENOTFOUND ? STORE_SKIPPED : rc;
}

int store_txn_ops(struct store_txn *t, kvs_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!declared(t, ops[i].key))
            return KVS_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        kvs_op *op = &ops[i];
        int rc = 0;
        switch (op->type) {
        case KVS_OP_SET:
            rc = put(t, op->key, op->value, op->expire_at);
            break;
        case KVS_OP_REMOVE:
            rc = del(t, op->key);
            break;
        case KVS_OP_EXPIRE:
            /* A key past its time already reads as missing here: there is
               nothing left to expire. */
            rc = KVS_ENOTFOUND;
            break;
        }
        if (rc != 0 && rc != KVS_ENOTFOUND)
            return rc;
        op->result = rc;
    }
    return 0;
}

int store_txn_dbsize(struct store_txn *t, uint64_t *keys)
{
    int64_t n = 0;
    if (!t->cleared) {
        kvs_stats st;
        int rc = kvs_db_stats(t->st->db, &st);
        if (rc != 0)
            return rc;
        n = (int64_t)st.keys;
    }
    int64_t now = kvs_now_ms();
    for (size_t i = 0; i < t->n; i++) {
        const struct txn_entry *e = &t->entries[i];
        n += (e->present && alive(e->expire_at, now)) - e->base_alive;
    }
    *keys = n > 0 ? (uint64_t)n : 0;
    return 0;
}

bool store_txn_dirty(const struct store_txn *t)
{
    return t->n > 0 || t->cleared;
}

int store_txn_commit(struct store_txn *t)
{
    struct store *st = t->st;
    int rc = 0;
    kvs_op *ops = NULL;
    if (t->n) {
        ops = malloc(t->n * sizeof(*ops));
        if (!ops) {
            release(t);
            return KVS_ENOMEM;
        }
    }
    size_t nops = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct txn_entry *e = &t->entries[i];
        kvs_slice key = {e->key.data, e->key.len};
        if (e->present)
            ops[nops++] = (kvs_op){.type = KVS_OP_SET,
                                   .key = key,
                                   .value = {e->value.data, e->value.len},
                                   .expire_at = e->expire_at};
        else if (e->base_alive)
            ops[nops++] = (kvs_op){.type = KVS_OP_REMOVE, .key = key};
        /* else: missing before and after, nothing to write */
    }
    /* Reads of other clients wait for the commit or read again. The
       replication stream gets the commit as MULTI/EXEC, in its order. */
    bool feed = store_feed_begin(st);
    atomic_fetch_add_explicit(&st->commits_started, 1, memory_order_acq_rel);
    if (t->cleared)
        rc = store_clear_locked(st);
    if (rc == 0 && nops)
        rc = kvs_db_write(st->db, ops, nops);
    atomic_fetch_add_explicit(&st->commits_finished, 1, memory_order_acq_rel);
    if (feed)
        store_feed_end(st, t->cleared, ops, nops, rc);
    if (rc == 0 && nops) {
        watch_touch_ops(&st->watch, ops, nops);
        for (size_t i = 0; i < nops; i++) {
            if (ops[i].type == KVS_OP_SET && ops[i].result == KVS_EFULL)
                rc = KVS_EFULL;
        }
    }
    free(ops);
    release(t);
    return rc;
}
