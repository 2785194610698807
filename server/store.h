/*
 * The server's door to the store: every write a client asks for passes
 * through store_write(), and only there.
 *
 * Why one place: a write is checked (NX/XX), applied and, later,
 * forwarded to replicas here, under per-key locks, so that SET NX/XX are
 * atomic against every other write. Reads go to kvs_db_get() directly:
 * they need no ordering and never wait for a writer.
 *
 * Two doors: store_write() for one write that may need the current value
 * (SET NX/XX/GET, FLUSHDB), and store_write_batch() for the unconditional
 * sets and removes a worker gathered in one loop turn, applied with one
 * kvs_db_write() (one append, one fsync under --fsync always). Batches of
 * different workers may run at once; where they write the same key the
 * engine's order decides, and both were unacknowledged, so either order is
 * a valid history. (A replication hook must take its order from the
 * engine's, or serialise batches, when it comes.)
 *
 * Thread safety: any thread, any number at once.
 */
#ifndef KVS_SERVER_STORE_H
#define KVS_SERVER_STORE_H

#include <pthread.h>
#include <stdbool.h>

#include "kvs/kvs.h"

/* Power of two, at most 64. Stripes only make a write that reads first
   (SET NX/XX/GET) wait for the other writes to keys of its stripe; batches
   hold every stripe they touch at once, so fewer stripes mean fewer lock
   operations per batch (and stay within ThreadSanitizer's 64 locks held
   per thread). */
#define STORE_STRIPES 32

struct store {
    kvs_db *db;
    /* Taken shared by every write and exclusive by FLUSHDB, so that a
       clear is ordered before or after each write, never beside it.
       Prefers writers (FLUSHDB), so a stream of writes cannot starve it.
       Taken before a stripe. */
    pthread_rwlock_t clear_lock;
    /* stripes[i] orders the writes to the keys hashing to i: a write that
       reads the key first (NX/XX/GET) holds it exclusive across read and
       write; plain writes and batches hold it shared, so batches never wait
       for each other (nor for each other's fsync). A batch takes the
       stripes of its keys shared in ascending index order; an exclusive
       holder holds no other stripe; so no cycle can form. Taken after
       clear_lock. Prefers writers, so batches cannot starve a SET NX. */
    pthread_rwlock_t stripes[STORE_STRIPES];
};

enum store_op {
    STORE_SET,   /* key = value */
    STORE_DEL,   /* remove key */
    STORE_CLEAR, /* remove every key (key and value unused) */
};

enum store_cond {
    STORE_ALWAYS,
    STORE_IF_ABSENT,  /* SET NX */
    STORE_IF_PRESENT, /* SET XX */
};

/* store_write() returns this when it did nothing: the condition was not
   met, or DEL found no key. Positive so it cannot be taken for a kvs_err. */
#define STORE_SKIPPED 1

/* Initialise st over an open db (borrowed; closed by the caller after
   store_destroy). Returns 0 or KVS_ENOMEM. */
int store_init(struct store *st, kvs_db *db);
void store_destroy(struct store *st);

/*
 * store_write - apply one write.
 * @op, @key, @value: what to write (value is used by STORE_SET only).
 * @cond: STORE_ALWAYS, or for STORE_SET only, NX/XX.
 * @old: for STORE_SET, NULL or a buffer that receives the previous value,
 *       read under the same lock as the write (SET ... GET); required with
 *       NX/XX, which need the read anyway. NULL for the other ops.
 * @had_old: with old, set to whether key had a value.
 * Returns 0 when applied, STORE_SKIPPED, or a kvs_err from the engine.
 */
int store_write(struct store *st, enum store_op op, kvs_slice key, kvs_slice value,
                enum store_cond cond, kvs_buf *old, bool *had_old);

/*
 * store_write_batch - apply n unconditional sets and removes, in order, as
 * one kvs_db_write() (see kvs.h for what an error leaves applied).
 * Ordered against store_write() on the same keys and against FLUSHDB.
 * Keys and values must be within the engine's limits (checked by the
 * caller, since one bad op would fail the whole batch).
 * Returns 0 (each op's result says whether a remove found its key) or a
 * kvs_err.
 */
int store_write_batch(struct store *st, kvs_op *ops, size_t n);

#endif
