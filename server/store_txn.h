/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transactions at the store's door: several reads and writes of declared
 * keys that no other write can come between, applied as one
 * kvs_db_write() (one append, one fsync under --fsync always).
 *
 * EXEC runs its queued commands inside one; RENAME, COPY, MSETNX and
 * BITOP, which read some keys and write others, run inside their own.
 * store_txn_begin() takes the stripes of the keys the transaction will
 * touch, exclusive, in ascending order (as batches take theirs shared, so
 * no cycle can form), and clear_lock shared, or exclusive when the
 * transaction may clear the store (FLUSHDB inside MULTI). Writes go to an
 * overlay of the keys written, which later reads of the transaction see;
 * other clients see none of them until store_txn_commit() applies the
 * overlay as one batch. While the batch is applied the store's commit
 * counters are raised, so that reads of other clients wait for it when
 * they read one of its keys (store_read), and reads of several keys are
 * done again (store_reads_*): no client sees part of a transaction.
 *
 * Thread safety: a transaction belongs to the thread that began it;
 * every function but begin is called with the locks held.
 */
#ifndef KVS_SERVER_STORE_TXN_H
#define KVS_SERVER_STORE_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct txn_entry;

struct store_txn {
    struct store *st;
    uint64_t stripes; /* held exclusive */
    bool clear;       /* clear_lock held exclusive */
    bool cleared;     /* the transaction cleared the store: it reads empty */
    struct txn_entry *entries;
    size_t n, cap;
    uint32_t *index; /* open addressing: entry index + 1, 0 empty */
    size_t index_cap;
};

/* The stripe bit of key, to build the mask store_txn_begin() takes. */
static inline uint64_t store_txn_bit(kvs_slice key)
{
    return UINT64_C(1) << store_stripe(key);
}

/* Take the locks: the stripes in the mask exclusive, and clear_lock
   exclusive when clear (then every stripe), else shared. */
void store_txn_begin(struct store *st, struct store_txn *t, uint64_t stripes, bool clear);

/* Read key as the transaction sees it (its own writes first), as
   kvs_db_get_ex(). KVS_EINVAL for a key the transaction did not declare. */
int store_txn_get(struct store_txn *t, kvs_slice key, kvs_buf *value, int64_t *expire_at);

/* store_update() inside the transaction. */
int store_txn_update(struct store_txn *t, kvs_slice key, kvs_buf *value, store_decide_fn *decide,
                     void *ctx, struct store_rmw *u);

/* store_write() inside the transaction (STORE_CLEAR needs begin's
   clear). Returns 0, STORE_SKIPPED, or a kvs_err. */
int store_txn_write(struct store_txn *t, enum store_op op, kvs_slice key, kvs_slice value,
                    int64_t expire_at);

/* The ops of a batched command (worker.h) inside the transaction: each
   op's result is set as kvs_db_write() would set it. */
int store_txn_ops(struct store_txn *t, kvs_op *ops, size_t n);

/* DBSIZE as the transaction sees it. */
int store_txn_dbsize(struct store_txn *t, uint64_t *keys);

/* Whether the transaction has written anything. */
bool store_txn_dirty(const struct store_txn *t);

/* Apply the writes as one batch (after the clear, if any), touch the
   watched keys, release the locks and free the transaction. Returns 0,
   KVS_EFULL when --maxmemory refused its sets (its removes applied), or
   the engine's error (a prefix of the writes may be applied). */
int store_txn_commit(struct store_txn *t);

/* Release the locks and free the transaction, writing nothing. */
void store_txn_abort(struct store_txn *t);

#endif
