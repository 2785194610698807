/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The commands' way to the store; see keyspace.h. Worker thread.
 */
#include "keyspace.h"

#include "conn.h"
#include "worker.h"

static struct store *store_of(struct conn *c)
{
    return &c->w->srv->store;
}

struct store_txn *ks_txn(struct conn *c)
{
    return c->w->txn;
}

int ks_get(struct conn *c, kvs_slice key, kvs_buf *value, int64_t *expire_at)
{
    struct store_txn *t = c->w->txn;
    if (t)
        return store_txn_get(t, key, value, expire_at);
    if (c->w->reads_locked) {
        int64_t at;
        return kvs_db_get_ex(store_of(c)->db, key, value, expire_at ? expire_at : &at);
    }
    return store_read(store_of(c), key, value, expire_at);
}

int ks_update(struct conn *c, kvs_slice key, kvs_buf *value, store_decide_fn *decide, void *ctx,
              struct store_rmw *u)
{
    struct store_txn *t = c->w->txn;
    if (t)
        return store_txn_update(t, key, value, decide, ctx, u);
    return store_update(store_of(c), key, value, decide, ctx, u);
}

int ks_write(struct conn *c, enum store_op op, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    struct store_txn *t = c->w->txn;
    if (t)
        return store_txn_write(t, op, key, value, expire_at);
    return store_write(store_of(c), op, key, value, expire_at);
}

int ks_dbsize(struct conn *c, uint64_t *keys)
{
    struct store_txn *t = c->w->txn;
    if (t)
        return store_txn_dbsize(t, keys);
    kvs_stats st;
    int rc = kvs_db_stats(store_of(c)->db, &st);
    if (rc == 0)
        *keys = st.keys;
    return rc;
}

struct store_txn *ks_txn_begin(struct conn *c, uint64_t stripes, struct store_txn *local)
{
    if (c->w->txn)
        return c->w->txn;
    store_txn_begin(store_of(c), local, stripes, false);
    return local;
}

int ks_txn_end(struct conn *c, struct store_txn *t, bool commit)
{
    if (t == c->w->txn)
        return 0;
    if (!commit) {
        store_txn_abort(t);
        return 0;
    }
    return store_txn_commit(t);
}

void ks_read_many(struct conn *c, const kvs_slice *keys, size_t n, size_t step,
                  bool (*read_all)(void *ctx), void *ctx)
{
    struct store *st = store_of(c);
    if (c->w->txn) {
        read_all(ctx);
        return;
    }
    uint64_t token = store_reads_begin(st);
    if (token != UINT64_MAX) {
        if (!read_all(ctx) || store_reads_clean(st, token))
            return;
    }
    uint64_t stripes = 0;
    for (size_t i = 0; i < n; i++)
        stripes |= store_txn_bit(keys[i * step]);
    store_reads_lock(st, stripes);
    c->w->reads_locked = true;
    read_all(ctx);
    c->w->reads_locked = false;
    store_reads_unlock(st, stripes);
}
