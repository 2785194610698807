/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The commands' way to the store: the store's doors (store.h) as a
 * connection sees them, inside or outside a transaction.
 *
 * While EXEC runs a client's queued commands (or RENAME, COPY, MSETNX,
 * BITOP run theirs), the worker's txn is set and every read and write
 * below goes to that transaction (store_txn.h), so that the commands see
 * each other's writes and the store sees them all at once. Outside one,
 * reads are store_read() (ordered with transactions) and writes the
 * store's doors as before. Worker thread of the connection.
 */
#ifndef KVS_SERVER_KEYSPACE_H
#define KVS_SERVER_KEYSPACE_H

#include <stdbool.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "store.h"
#include "store_txn.h"

struct conn;

/* kvs_db_get_ex() of key (expire_at may be NULL). */
int ks_get(struct conn *c, kvs_slice key, kvs_buf *value, int64_t *expire_at);

/* store_update(). */
int ks_update(struct conn *c, kvs_slice key, kvs_buf *value, store_decide_fn *decide, void *ctx,
              struct store_rmw *u);

/* store_write(). */
int ks_write(struct conn *c, enum store_op op, kvs_slice key, kvs_slice value, int64_t expire_at);

/* DBSIZE. */
int ks_dbsize(struct conn *c, uint64_t *keys);

/* The running transaction of c's worker, or NULL. */
struct store_txn *ks_txn(struct conn *c);

/* A command that reads and writes several keys (RENAME, COPY, MSETNX,
   BITOP) runs in a transaction over the stripes in the mask
   (store_txn_bit() of each key): EXEC's when one runs (*local is then
   unused), else *local, begun here. ks_txn_end() commits the one begun
   here (returning store_txn_commit()'s result), or aborts it when
   commit is false; EXEC's is left to EXEC. */
struct store_txn *ks_txn_begin(struct conn *c, uint64_t stripes, struct store_txn *local);
int ks_txn_end(struct conn *c, struct store_txn *t, bool commit);

/* Reads of several keys that must see one moment of the store (MGET,
   EXISTS): read_all(ctx, locked) reads them all and may be called again
   (after the caller's own rewind) when a transaction committed during the
   first pass, the second time with the keys' stripes held. keys[i * step]
   for i < n are the keys. */
void ks_read_many(struct conn *c, const kvs_slice *keys, size_t n, size_t step,
                  bool (*read_all)(void *ctx), void *ctx);

#endif
