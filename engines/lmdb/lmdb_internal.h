/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "lmdb" engine's handle and the transaction layer its methods share.
 *
 * lmdb_txn.c owns every LMDB transaction: it hands out read transactions
 * (a thread's own or pooled, reset between uses), runs each write in its own write
 * transaction, grows the map when LMDB reports it full, and maps MDB_* and
 * errno codes onto kvs_err. lmdb_engine.c holds the engine table and the
 * methods built on it. Nothing outside engines/lmdb/ includes this header.
 *
 * Layout (lmdb_layout.c): a user key K is stored as the tag LMDB_KEY_TAG,
 * the 64-bit hash of K big-endian, then K. The hash makes LMDB's key order
 * hash order, so that a scan can resume from a number (kvs_db_scan's
 * cursor) as the kvs engine's does; the tag lets LMDB store the empty key,
 * which Redis allows and LMDB refuses. The engine's max_key is LMDB's limit
 * less these LMDB_KEY_HEAD bytes. Its value is a flags byte, then, with
 * LMDB_VAL_EXPIRES, the key's expiry time (8 bytes, little-endian), then
 * the value. Records tagged LMDB_META_TAG are the engine's own (the counts
 * of keys with an expiry time). Stores of earlier layouts, tagged 'k' (the
 * key alone) or 'h' (hash and key), with bare values, are converted on
 * open; other tag values are free.
 */
#ifndef KVS_ENGINES_LMDB_INTERNAL_H
#define KVS_ENGINES_LMDB_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "kvs/engine.h"

#define LMDB_KEY_TAG 'v'
#define LMDB_META_TAG 'm'
#define LMDB_V1_KEY_TAG 'k' /* layout 1: tag, key; bare values */
#define LMDB_V2_KEY_TAG 'h' /* layout 2: tag, hash, key; bare values */
#define LMDB_KEY_HEAD 9     /* tag and hash */
#define LMDB_VAL_EXPIRES 1u /* value flags: an expiry time follows */
#define LMDB_VAL_HEAD_MAX 9 /* flags and expiry time */
/* MDB_MAXKEYSIZE of Debian's liblmdb (the library default); checked at open. */
#define LMDB_LIB_MAX_KEY 511
#define LMDB_MAX_KEY (LMDB_LIB_MAX_KEY - LMDB_KEY_HEAD)
/* Reset read transactions kept for reuse; each holds one reader slot. */
#define LMDB_POOL_MAX 64
/* Threads that may keep a read transaction of their own (lmdb_txn.c). */
#define LMDB_OWNED_MAX 64

struct lmdb_db {
    struct kvs_db base;
    MDB_env *env;
    MDB_dbi dbi;
    int fd;           /* data.mdb, LMDB's own descriptor (mdb_env_get_fd) */
    kvs_options opts; /* copy for kvs__log(); engine is NULL in it */

    /* Serializes writers (and so map growth, which only a writer does).
       Taken before resize_lock. A writer waits here, not inside LMDB, so a
       pending growth only ever waits for readers and the one writer. */
    pthread_mutex_t write_lock;

    /* Held shared by every transaction, read or write, for its whole life,
       and exclusively while mdb_env_set_mapsize() remaps, which LMDB allows
       only when no transaction of the process is active. Writer-preferring,
       so a pending growth is not starved by a stream of readers; readers
       therefore wait during the rare resize, and only then: a reader never
       waits for a writer's commit, because both hold the lock shared. */
    pthread_rwlock_t resize_lock;
    bool broken; /* protected by resize_lock: a remap failed, the map is gone */

    /* Protects pool/pool_len and owned/owned_len; held only to push or
       pop a pointer. */
    pthread_mutex_t pool_lock;
    MDB_txn *pool[LMDB_POOL_MAX];
    size_t pool_len;
    /* The threads' own read transactions (lmdb_txn.c), to abort at close. */
    MDB_txn *owned[LMDB_OWNED_MAX];
    size_t owned_len;
    uint64_t id; /* unique in the process, never reused: what a thread's own
                    transaction is for */

    /* 0, or the first failed commit or sync: writes are refused from then on
       (never retried and acknowledged) and sync/close report it. */
    atomic_int failed;
    /* Set after each commit, cleared by the everysec thread before it syncs. */
    atomic_bool dirty;

    /* Under write_lock: the keys with an expiry time and the sum of those
       times, as committed (a meta record keeps them in the store). */
    uint64_t expires;
    unsigned __int128 expire_sum;

    /* The everysec thread sleeps on stop_cond (CLOCK_MONOTONIC) under
       stop_lock, which protects stop. */
    pthread_t syncer;
    bool syncer_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stop;
};

/* Map an LMDB return code (MDB_* or errno) onto kvs_err, once, here. */
int kvs__lmdb_err(int mdb_rc);

/*
 * Begin a read transaction; on success resize_lock is held shared until
 * kvs__lmdb_read_end(). Any thread. Returns 0 or a kvs_err.
 */
int kvs__lmdb_read_begin(struct lmdb_db *db, MDB_txn **txnp);
void kvs__lmdb_read_end(struct lmdb_db *db, MDB_txn *txn);

/* Give db its id (open only). */
void kvs__lmdb_pool_init(struct lmdb_db *db);

/* Abort the pooled and the threads' own read transactions (close only). */
void kvs__lmdb_pool_drain(struct lmdb_db *db);

enum lmdb_write_op {
    LMDB_PUT,     /* key = val (bare), expiring at expire_at */
    LMDB_DEL,     /* remove key */
    LMDB_EXPIRE,  /* remove key if its expiry time is at or before expire_at */
    LMDB_DROP,    /* remove everything */
    LMDB_RAW_DEL, /* remove a record whose value is not the engine's (earlier layouts) */
};

struct lmdb_write {
    enum lmdb_write_op op;
    MDB_val key;       /* stored key: all but DROP */
    MDB_val val;       /* PUT: the bare value */
    int64_t expire_at; /* PUT and EXPIRE */
};

/* Changes to the expiry counts a write transaction makes, applied to the
   handle's once it committed. */
struct lmdb_counts {
    bool reset; /* a DROP: from zero */
    int64_t expires;
    __int128 sum;
};

/*
 * Apply one write in its own transaction and commit it, growing the map
 * and retrying on MDB_MAP_FULL. Any thread. Returns 0, KVS_ENOTFOUND (DEL
 * of a missing key), KVS_EREADONLY once a commit or sync has failed, or the
 * mapped error. A failed commit makes every later write KVS_EREADONLY.
 */
int kvs__lmdb_write(struct lmdb_db *db, const struct lmdb_write *w);

/*
 * Apply n writes in one transaction and commit it, as kvs__lmdb_write()
 * does for one. results[i] gets 0, or KVS_ENOTFOUND for a DEL of a missing
 * key (which does not fail the batch). Returns 0 with every write applied,
 * or an error with none applied.
 */
int kvs__lmdb_write_batch(struct lmdb_db *db, const struct lmdb_write *w, size_t n, int *results);

/* Flush data.mdb now; a failure makes the store refuse writes. */
int kvs__lmdb_sync_now(struct lmdb_db *db);

/* lmdb_check.c: the engine's checker (kvs/check.h). */
int kvs__lmdb_check(const char *dir, int dir_fd, const struct kvs_salvage *salvage, FILE *out,
                    struct kvs_check_report *r, char *why);

/* Pages on LMDB's freelist as txn sees it. Returns 0 or an MDB_* code. */
int kvs__lmdb_free_pages(MDB_txn *txn, size_t *pages);

/* lmdb_layout.c: the stored form of key in buf (LMDB_LIB_MAX_KEY bytes);
   key.len is at most LMDB_MAX_KEY. */
MDB_val kvs__lmdb_key(unsigned char *buf, kvs_slice key);

/* LMDB's default key order, faster: the main database's comparison,
   installed at open (mdb_set_compare). */
int kvs__lmdb_key_cmp(const MDB_val *a, const MDB_val *b);

/* A stored value's parts: the bare value and its expiry time. Returns 0,
   or KVS_ECORRUPT for a value whose header is impossible. */
int kvs__lmdb_val_parse(const MDB_val *v, kvs_slice *value, int64_t *expire_at);

/* Apply one write inside txn, its effect on the expiry counts into *cnt.
   Returns an MDB_* code; *result gets 0 or KVS_ENOTFOUND (a DEL of a
   missing key, an EXPIRE that removed nothing). */
int kvs__lmdb_apply(struct lmdb_db *db, MDB_txn *txn, const struct lmdb_write *w, int *result,
                    struct lmdb_counts *cnt);

/* Store the expiry counts the handle's plus cnt make, inside txn. Returns
   an MDB_* code. */
int kvs__lmdb_counts_store(struct lmdb_db *db, MDB_txn *txn, const struct lmdb_counts *cnt);

/* The engine's own records in the store (not user keys), as txn sees it.
   Returns an MDB_* code. */
int kvs__lmdb_meta_records(struct lmdb_db *db, MDB_txn *txn, size_t *n);

/* One step of kvs_db_scan() in hash order. */
int kvs__lmdb_scan(struct kvs_db *base, uint64_t cursor, size_t count, unsigned flags,
                   kvs_scan_fn fn, void *ctx, uint64_t *next);

/* Before the store is used (open only): convert a store of an earlier
   layout, then load the expiry counts. Returns 0, or an error explained in
   why. */
int kvs__lmdb_layout_open(struct lmdb_db *db, char *why);

/* Refuse (KVS_ECORRUPT, explained in why) a data.mdb in dir whose meta
   pages record a page size LMDB could not have written, on which
   mdb_env_open() would divide by it (lmdb_meta.c). 0 otherwise. */
int kvs__lmdb_meta_check(const char *dir, char *why);

#endif
