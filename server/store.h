/*
 * The server's door to the store: every write a client asks for passes
 * through store_write(), and only there.
 *
 * Why one function: a write is checked (NX/XX), applied and, later,
 * forwarded to replicas in one place, under one lock per key, so that the
 * order in which writes to a key reach the engine is the order in which a
 * replication hook placed here would see them, and so that SET NX/XX are
 * atomic against every other write. Reads go to kvs_db_get() directly:
 * they need no ordering and never wait for a writer.
 *
 * Thread safety: any thread, any number at once.
 */
#ifndef KVS_SERVER_STORE_H
#define KVS_SERVER_STORE_H

#include <pthread.h>
#include <stdbool.h>

#include "kvs/kvs.h"

/* Power of two; writes to keys in different stripes never wait for each
   other. 256 makes two threads colliding on unrelated keys rare. */
#define STORE_STRIPES 256

struct store {
    kvs_db *db;
    /* Taken shared by every write and exclusive by FLUSHDB, so that a
       clear is ordered before or after each write, never beside it.
       Prefers writers (FLUSHDB), so a stream of writes cannot starve it.
       Taken before a stripe. */
    pthread_rwlock_t clear_lock;
    /* stripes[i] serialises the writes to the keys hashing to i: check,
       write and, later, the replication hook. Never more than one held. */
    pthread_mutex_t stripes[STORE_STRIPES];
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

#endif
