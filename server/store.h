/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The server's door to the store: every write a client asks for, and
 * every removal of an expired key, passes through here, and only here.
 *
 * Why one place: a write is checked (NX/XX, an expiry time), applied and,
 * later, forwarded to replicas here, under per-key locks, so that a
 * read-modify-write (SET NX, EXPIRE, GETEX...) is atomic against every
 * other write of its key. Expiry times arrive absolute (ms since the
 * epoch), converted once by the command that took them. Reads go to
 * kvs_db_get() directly: they need no ordering and never wait for a
 * writer.
 *
 * Three doors: store_write() for one unconditional write (SET with an
 * expiry time, SETEX, FLUSHDB), store_update() for one write that needs
 * the key's current value or expiry time first (SET NX/XX/GET/KEEPTTL,
 * GETEX, EXPIRE, PERSIST...), and store_write_batch() for the
 * unconditional writes a worker gathered in one loop turn (SET, MSET,
 * DEL) and the active expiry's removals (expiry.h), each applied with one
 * kvs_db_write() (one append, one fsync under --fsync always). Batches of
 * different workers may run at once; where they write the same key the
 * engine's order decides, and both were unacknowledged, so either order is
 * a valid history.
 *
 * Replication (repl_stream.h): while the stream is on, every write that
 * this door applies is appended to it here, in the order the engine
 * applied it: a batch or a single write holds the stream's lock across
 * its engine write and its append (batches serialise then), and a
 * read-modify-write, which holds its key's stripe exclusive, takes it for
 * the append only. With the stream off (no replica ever attached) the
 * door costs one relaxed load more.
 *
 * Thread safety: any thread, any number at once.
 */
#ifndef KVS_SERVER_STORE_H
#define KVS_SERVER_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "repl_stream.h"
#include "watch.h"

/* Power of two, at most 64. Stripes only make a write that reads first
   (store_update) wait for the other writes to keys of its stripe; batches
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
       reads the key first (store_update) holds it exclusive across read and
       write; plain writes and batches hold it shared, so batches never wait
       for each other (nor for each other's fsync). A batch takes the
       stripes of its keys shared in ascending index order; an exclusive
       holder holds no other stripe; so no cycle can form. Taken after
       clear_lock. Prefers writers, so batches cannot starve a SET NX. */
    pthread_rwlock_t stripes[STORE_STRIPES];
    /* The replication stream the door feeds, or NULL (store_set_feed). */
    struct repl_stream *feed;
    /* Transactions (store_txn.h) being committed: started and finished
       counts, so that reads can tell one ran beside them (store_read). */
    _Atomic uint64_t commits_started, commits_finished;
    struct watch_table watch; /* WATCH's keys (watch.h) */
};

/* The stripe of key: an index below STORE_STRIPES. */
size_t store_stripe(kvs_slice key);

/*
 * store_read - kvs_db_get_ex() (expire_at may be NULL) of one key, in
 * order with the transactions: while one commits, the read waits for the
 * commit to finish if it holds the key, so that a client that saw one
 * write of a transaction sees all of its writes after. Otherwise one
 * relaxed load more than kvs_db_get_ex(). Returns as kvs_db_get_ex().
 */
int store_read(struct store *st, kvs_slice key, kvs_buf *value, int64_t *expire_at);

/*
 * Reads of several keys that must see one moment (MGET, EXISTS):
 * store_reads_begin() returns a token; store_reads_clean(token) says
 * afterwards whether no transaction committed meanwhile. If not, the
 * reads are done again between store_reads_lock() and
 * store_reads_unlock() on the stripes of the keys (a mask of
 * store_stripe() bits), which wait for the commits that hold them.
 */
uint64_t store_reads_begin(struct store *st);
bool store_reads_clean(struct store *st, uint64_t token);
void store_reads_lock(struct store *st, uint64_t stripes);
void store_reads_unlock(struct store *st, uint64_t stripes);

/* Remove every key, touching the watched keys that held a value (watch.h).
   The caller holds clear_lock exclusive. Returns as kvs_db_clear(). */
int store_clear_locked(struct store *st);

/* WATCH key: registered under the key's stripe (watch.h), alive or not
   as the store holds it now. Returns 0, KVS_ENOMEM or the engine's read
   error. */
int store_watch(struct store *st, struct watcher *w, kvs_slice key);

enum store_op {
    STORE_SET,   /* key = value, expiring at expire_at (0: never) */
    STORE_DEL,   /* remove key */
    STORE_CLEAR, /* remove every key (key and value unused) */
};

/* store_write() returns this when it did nothing: DEL found no key.
   Positive so it cannot be taken for a kvs_err. */
#define STORE_SKIPPED 1

/* Initialise st over an open db (borrowed; closed by the caller after
   store_destroy). Returns 0 or KVS_ENOMEM. */
int store_init(struct store *st, kvs_db *db);
void store_destroy(struct store *st);

/* Attach the replication stream (before any write), and turn its feeding
   on or off between writes: no write is half-way through the door when
   it changes. Any thread. */
void store_set_feed(struct store *st, struct repl_stream *feed);
void store_feed_switch(struct store *st, bool on);

/* For a write path that holds its keys' stripes exclusive (a
   transaction's commit): whether to feed, taking the stream's lock if
   so; then the applied ops (wrapped in MULTI/EXEC when more than one,
   FLUSHALL first when cleared) and the lock's release. */
bool store_feed_begin(struct store *st);
void store_feed_end(struct store *st, bool cleared, const kvs_op *ops, size_t n, int rc);

/*
 * store_write - apply one unconditional write.
 * @op, @key, @value: what to write (value is used by STORE_SET only).
 * @expire_at: STORE_SET only: the absolute expiry time in ms since the
 *       epoch (kvs.h), 0 for none; a set without one clears the key's.
 * Returns 0 when applied, STORE_SKIPPED, or a kvs_err from the engine.
 */
int store_write(struct store *st, enum store_op op, kvs_slice key, kvs_slice value,
                int64_t expire_at);

/* What a read-modify-write does once it has seen the key. */
enum store_action {
    STORE_KEEP,   /* nothing */
    STORE_PUT,    /* key = put_value, expiring at put_expire_at (0: never) */
    STORE_REMOVE, /* remove key */
};

/* The key as a read-modify-write sees it, and what it decides. */
struct store_rmw {
    /* In: what the read found. value is the caller's buffer (see
       store_update); with found false it is empty and expire_at 0. A key
       whose expiry time has passed is not found. */
    bool found;
    const kvs_buf *value;
    int64_t expire_at;
    /* Out: the decision. put_value may point into value. */
    enum store_action action;
    kvs_slice put_value;
    int64_t put_expire_at;
};

/* Decides what to do with the key: reads u's inputs and sets its outputs
   (action is STORE_KEEP on entry). Runs under the key's lock: short, no
   I/O, no call into the store. */
typedef void store_decide_fn(void *ctx, struct store_rmw *u);

/*
 * store_update - a read-modify-write of one key, atomic against every
 * other write of it: the key is read (value and expiry time, into value),
 * decide() chooses, and its choice is applied, all under the key's stripe
 * held exclusive. SET NX/XX/GET/KEEPTTL, GETEX, the EXPIRE family and
 * PERSIST go through here.
 * @value: receives the key's value (the caller's buffer, e.g. the
 *         worker's scratch), and keeps it after the call.
 * @u:     receives the read and the decision, which the caller replies by.
 * Returns 0 (the decision was applied; u->action says what it was), or a
 * kvs_err from the engine (a failed read decides nothing: u->action is
 * STORE_KEEP; a failed write may or may not have been applied).
 */
int store_update(struct store *st, kvs_slice key, kvs_buf *value, store_decide_fn *decide,
                 void *ctx, struct store_rmw *u);

/*
 * store_write_batch - apply n unconditional sets and removes, and
 * KVS_OP_EXPIRE removals (DEL's and the active expiry's: expiry.h), in
 * order, as one kvs_db_write()
 * (see kvs.h for what an error leaves applied). Ordered against
 * store_write() and store_update() on the same keys and against FLUSHDB.
 * Keys and values must be within the engine's limits (checked by the
 * caller, since one bad op would fail the whole batch).
 * Returns 0 (each op's result says whether a remove found its key) or a
 * kvs_err.
 */
int store_write_batch(struct store *st, kvs_op *ops, size_t n);

#endif
