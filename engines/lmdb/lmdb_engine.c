/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "lmdb" engine: kvs on one LMDB environment (data.mdb and lock.mdb in
 * the data directory), every key in LMDB's main database behind a tag and
 * its hash, so that keys are in hash order and the empty key can be stored
 * (lmdb_internal.h, lmdb_keys.c).
 *
 * Locking (details in lmdb_txn.c): a get runs in a read transaction (the
 * thread's own, or one from a pool; reset after each get) that holds
 * resize_lock shared and never waits for a writer; writers are
 * serialized by write_lock, each set/remove/clear, and each batch of
 * kvs_db_write(), being one committed write transaction; growing the map when it fills takes
 * resize_lock exclusively for the remap, so readers wait only during that rare resize.
 *
 * Fsync policies map onto LMDB's flags: always = LMDB's synchronous commits
 * (data, then meta page); everysec = MDB_NOSYNC commits and a thread that
 * flushes data.mdb once a second when something was committed; no =
 * MDB_NOSYNC commits. Every commit has pwrite()n its pages before it
 * returns, so under each policy an acknowledged write survives kill -9.
 * Without MDB_WRITEMAP (never set here) LMDB's header promises that
 * MDB_NOSYNC loses only durability, not integrity, on a machine crash if
 * the filesystem keeps write order; on one that reorders writes, a machine
 * crash under everysec/no could damage the file (LMDB has no checksums).
 * After a failed commit or sync the engine refuses writes (KVS_EREADONLY).
 *
 * Stats: keys is exact (mdb_stat). live_bytes is an estimate: the leaf and
 * overflow pages, which hold the keys and values, times the page size,
 * their slack included. disk_bytes is data.mdb up to its last allocated
 * page. stale_bytes is the pages on LMDB's freelist times the page size.
 * There is no compaction (LMDB reuses free pages itself).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lmdb_internal.h"

#define INITIAL_MAP_SIZE ((size_t)64 << 20)
/* Reader slots: one per concurrent get, plus the pooled transactions. */
#define MAX_READERS 4096
/* LMDB's largest value (MAXDATASIZE in mdb.c). */
#define LMDB_MAX_VALUE 0xffffffffu

static int init_locks(struct lmdb_db *db)
{
    pthread_rwlockattr_t ra;
    pthread_condattr_t ca;
    if (pthread_rwlockattr_init(&ra) != 0)
        return KVS_ENOMEM;
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int err = pthread_rwlock_init(&db->resize_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    if (err != 0)
        return KVS_ENOMEM;
    if (pthread_mutex_init(&db->write_lock, NULL) != 0)
        goto out_resize;
    if (pthread_mutex_init(&db->pool_lock, NULL) != 0)
        goto out_write;
    if (pthread_mutex_init(&db->stop_lock, NULL) != 0)
        goto out_pool;
    if (pthread_condattr_init(&ca) != 0)
        goto out_stop;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    err = pthread_cond_init(&db->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (err == 0)
        return 0;
out_stop:
    pthread_mutex_destroy(&db->stop_lock);
out_pool:
    pthread_mutex_destroy(&db->pool_lock);
out_write:
    pthread_mutex_destroy(&db->write_lock);
out_resize:
    pthread_rwlock_destroy(&db->resize_lock);
    return KVS_ENOMEM;
}

static void destroy_locks(struct lmdb_db *db)
{
    pthread_cond_destroy(&db->stop_cond);
    pthread_mutex_destroy(&db->stop_lock);
    pthread_mutex_destroy(&db->pool_lock);
    pthread_mutex_destroy(&db->write_lock);
    pthread_rwlock_destroy(&db->resize_lock);
}

/* The everysec thread: flush once a second if anything was committed. */
static void *syncer_main(void *arg)
{
    struct lmdb_db *db = arg;
    pthread_mutex_lock(&db->stop_lock);
    while (!db->stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += 1;
        while (!db->stop &&
               pthread_cond_timedwait(&db->stop_cond, &db->stop_lock, &deadline) != ETIMEDOUT)
            ;
        if (db->stop)
            break;
        pthread_mutex_unlock(&db->stop_lock);
        if (atomic_exchange(&db->dirty, false))
            kvs__lmdb_sync_now(db); /* a failure is kept in db->failed */
        pthread_mutex_lock(&db->stop_lock);
    }
    pthread_mutex_unlock(&db->stop_lock);
    return NULL;
}

static void stop_syncer(struct lmdb_db *db)
{
    if (!db->syncer_started)
        return;
    pthread_mutex_lock(&db->stop_lock);
    db->stop = true;
    pthread_cond_signal(&db->stop_cond);
    pthread_mutex_unlock(&db->stop_lock);
    pthread_join(db->syncer, NULL);
    db->syncer_started = false;
}

/* Open the environment and the main database; explains failures in why. */
static int open_env(struct lmdb_db *db, const char *dir, kvs_fsync policy, char *why)
{
    int rc = kvs__lmdb_meta_check(dir, why);
    if (rc != 0)
        return rc;
    const char *step = "mdb_env_set_maxreaders";
    int mrc = mdb_env_set_maxreaders(db->env, MAX_READERS);
    if (mrc == 0) {
        /* LMDB's compiled default is 1 MiB; open raises it to the data's size. */
        step = "mdb_env_set_mapsize";
        mrc = mdb_env_set_mapsize(db->env, INITIAL_MAP_SIZE);
    }
    if (mrc == 0) {
        /* MDB_NOTLS: a read transaction is tied to its slot, not its thread. */
        unsigned flags = MDB_NOTLS | (policy == KVS_FSYNC_ALWAYS ? 0 : MDB_NOSYNC);
        step = "mdb_env_open";
        mrc = mdb_env_open(db->env, dir, flags, 0644);
    }
    if (mrc == 0) {
        int dead;
        step = "mdb_reader_check";
        mrc = mdb_reader_check(db->env, &dead);
    }
    if (mrc == 0) {
        step = "mdb_env_get_fd";
        mrc = mdb_env_get_fd(db->env, &db->fd);
    }
    if (mrc != 0) {
        kvs__why(why, "lmdb: %s on %s: %s", step, dir, mdb_strerror(mrc));
        return kvs__lmdb_err(mrc);
    }
    int lib_max = mdb_env_get_maxkeysize(db->env);
    if (lib_max < LMDB_LIB_MAX_KEY) {
        kvs__why(why, "lmdb: this liblmdb accepts keys of at most %d bytes; the engine needs %d",
                 lib_max, LMDB_LIB_MAX_KEY);
        return KVS_EVERSION;
    }
    MDB_txn *txn;
    mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, NULL, 0, &db->dbi);
        if (mrc == 0)
            mrc = mdb_set_compare(txn, db->dbi, kvs__lmdb_key_cmp);
        if (mrc == 0)
            mrc = mdb_txn_commit(txn); /* makes the handle usable by every txn */
        else
            mdb_txn_abort(txn);
    }
    if (mrc != 0) {
        kvs__why(why, "lmdb: cannot open the main database in %s: %s", dir, mdb_strerror(mrc));
        return kvs__lmdb_err(mrc);
    }
    return 0;
}

static int lmdb_open(const char *dir, const kvs_options *opts, struct kvs_db **dbp, char *why)
{
    struct lmdb_db *db = calloc(1, sizeof(*db));
    if (!db) {
        kvs__why(why, "lmdb: out of memory");
        return KVS_ENOMEM;
    }
    db->opts = *opts;
    db->opts.engine = NULL; /* borrowed for the open call only */
    kvs__lmdb_pool_init(db);
    int rc = init_locks(db);
    if (rc != 0) {
        kvs__why(why, "lmdb: cannot create locks");
        goto out_free;
    }
    int mrc = mdb_env_create(&db->env);
    if (mrc != 0) {
        rc = kvs__lmdb_err(mrc);
        kvs__why(why, "lmdb: mdb_env_create: %s", mdb_strerror(mrc));
        goto out_locks;
    }
    rc = open_env(db, dir, opts->fsync, why);
    if (rc == 0)
        rc = kvs__lmdb_layout_open(db, why);
    if (rc != 0)
        goto out_env;
    if (opts->fsync == KVS_FSYNC_EVERYSEC) {
        if (pthread_create(&db->syncer, NULL, syncer_main, db) != 0) {
            rc = KVS_ENOMEM;
            kvs__why(why, "lmdb: cannot start the fsync thread");
            goto out_env;
        }
        pthread_setname_np(db->syncer, "kvs-lmdb-sync");
        db->syncer_started = true;
    }
    *dbp = &db->base;
    return 0;

out_env:
    mdb_env_close(db->env);
out_locks:
    destroy_locks(db);
out_free:
    free(db);
    return rc;
}

static int lmdb_close(struct kvs_db *base)
{
    struct lmdb_db *db = (struct lmdb_db *)base;
    stop_syncer(db);
    int rc = kvs__lmdb_sync_now(db); /* the final flush, under every policy */
    kvs__lmdb_pool_drain(db);
    mdb_env_close(db->env);
    destroy_locks(db);
    free(db);
    return rc;
}

static int lmdb_get_ex(struct kvs_db *base, kvs_slice key, kvs_buf *value, int64_t *expire_at)
{
    struct lmdb_db *db = (struct lmdb_db *)base;
    unsigned char buf[LMDB_LIB_MAX_KEY];
    MDB_val k = kvs__lmdb_key(buf, key), v;
    MDB_txn *txn;
    int rc = kvs__lmdb_read_begin(db, &txn);
    if (rc != 0)
        return rc;
    int mrc = mdb_get(txn, db->dbi, &k, &v);
    kvs_slice bare;
    int64_t at = 0;
    rc = mrc == 0 ? kvs__lmdb_val_parse(&v, &bare, &at) : kvs__lmdb_err(mrc);
    if (rc == 0 && at && at <= kvs_now_ms())
        rc = KVS_ENOTFOUND;
    /* v points into the map, valid only until the transaction ends. */
    if (rc == 0)
        rc = kvs_buf_set(value, bare.data, bare.len);
    kvs__lmdb_read_end(db, txn);
    if (rc == 0 && expire_at)
        *expire_at = at;
    return rc;
}

static int lmdb_get(struct kvs_db *base, kvs_slice key, kvs_buf *value)
{
    return lmdb_get_ex(base, key, value, NULL);
}

static int lmdb_set(struct kvs_db *base, kvs_slice key, kvs_slice value)
{
    unsigned char buf[LMDB_LIB_MAX_KEY];
    /* The value is only read, hence the cast. */
    struct lmdb_write w = {
        .op = LMDB_PUT, .key = kvs__lmdb_key(buf, key), .val = {value.len, (void *)value.data}};
    return kvs__lmdb_write((struct lmdb_db *)base, &w);
}

static int lmdb_remove(struct kvs_db *base, kvs_slice key)
{
    unsigned char buf[LMDB_LIB_MAX_KEY];
    struct lmdb_write w = {.op = LMDB_DEL, .key = kvs__lmdb_key(buf, key)};
    return kvs__lmdb_write((struct lmdb_db *)base, &w);
}

/* A batch is one write transaction: all of it or nothing is applied. */
static int lmdb_write(struct kvs_db *base, kvs_op *ops, size_t n)
{
    if (n == 0)
        return 0;
    size_t key_bytes = 0;
    for (size_t i = 0; i < n; i++)
        key_bytes += ops[i].key.len + LMDB_KEY_HEAD;
    size_t head = n * (sizeof(struct lmdb_write) + sizeof(int));
    /* One block: the writes, their results, then the tagged keys. */
    unsigned char *mem = malloc(head + key_bytes);
    if (!mem)
        return KVS_ENOMEM;
    struct lmdb_write *w = (struct lmdb_write *)mem;
    int *results = (int *)(mem + n * sizeof(struct lmdb_write));
    unsigned char *keys = mem + head;
    static const enum lmdb_write_op op_of[] = {
        [KVS_OP_SET] = LMDB_PUT,
        [KVS_OP_REMOVE] = LMDB_DEL,
        [KVS_OP_EXPIRE] = LMDB_EXPIRE,
    };
    for (size_t i = 0; i < n; i++) {
        bool set = ops[i].type == KVS_OP_SET;
        w[i] = (struct lmdb_write){
            .op = op_of[ops[i].type],
            .key = kvs__lmdb_key(keys, ops[i].key),
            .val = {set ? ops[i].value.len : 0, set ? (void *)ops[i].value.data : NULL},
            .expire_at = ops[i].expire_at,
        };
        keys += ops[i].key.len + LMDB_KEY_HEAD;
    }
    int rc = kvs__lmdb_write_batch((struct lmdb_db *)base, w, n, results);
    for (size_t i = 0; rc == 0 && i < n; i++)
        ops[i].result = results[i];
    free(mem);
    return rc;
}

static int lmdb_clear(struct kvs_db *base)
{
    struct lmdb_write w = {.op = LMDB_DROP};
    return kvs__lmdb_write((struct lmdb_db *)base, &w);
}

static int lmdb_sync(struct kvs_db *base)
{
    return kvs__lmdb_sync_now((struct lmdb_db *)base);
}

/* Pages on the freelist. Each record of LMDB's free database (dbi 0) is a
   list of page numbers (pgno_t, a size_t in this build) led by its length;
   the walk reads one record per freeing transaction still remembered. */
int kvs__lmdb_free_pages(MDB_txn *txn, size_t *pages)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, 0, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    *pages = 0;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        size_t n;
        if (v.mv_size < sizeof(n)) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&n, v.mv_data, sizeof(n));
        *pages += n;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int lmdb_stats(struct kvs_db *base, kvs_stats *st)
{
    struct lmdb_db *db = (struct lmdb_db *)base;
    MDB_txn *txn;
    int rc = kvs__lmdb_read_begin(db, &txn);
    if (rc != 0)
        return rc;
    MDB_stat ms;
    MDB_envinfo info;
    size_t free_pages = 0, meta = 0;
    int mrc = mdb_stat(txn, db->dbi, &ms);
    if (mrc == 0)
        mrc = mdb_env_info(db->env, &info);
    if (mrc == 0)
        mrc = kvs__lmdb_free_pages(txn, &free_pages);
    if (mrc == 0)
        mrc = kvs__lmdb_meta_records(db, txn, &meta);
    kvs__lmdb_read_end(db, txn);
    if (mrc != 0)
        return kvs__lmdb_err(mrc);
    st->keys = ms.ms_entries - meta;
    pthread_mutex_lock(&db->write_lock);
    st->expires = db->expires;
    st->expire_mean = db->expires ? (int64_t)(db->expire_sum / db->expires) : 0;
    pthread_mutex_unlock(&db->write_lock);
    st->live_bytes = (uint64_t)(ms.ms_leaf_pages + ms.ms_overflow_pages) * ms.ms_psize;
    st->disk_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    st->stale_bytes = (uint64_t)free_pages * ms.ms_psize;
    return 0;
}

/* The engine's figures for INFO. */
static int lmdb_info(struct kvs_db *base, kvs_info_fn fn, void *ctx)
{
    struct lmdb_db *db = (struct lmdb_db *)base;
    MDB_envinfo info;
    MDB_stat ms;
    int mrc = mdb_env_info(db->env, &info);
    if (mrc == 0)
        mrc = mdb_env_stat(db->env, &ms);
    if (mrc != 0)
        return kvs__lmdb_err(mrc);
    uint64_t figures[] = {
        info.me_mapsize,    ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize,
        ms.ms_psize,        ms.ms_depth,
        info.me_last_txnid, info.me_numreaders,
        info.me_maxreaders, atomic_load(&db->failed) != 0,
    };
    static const char *const names[] = {
        "map_size",    "map_used", "page_size",   "tree_depth",
        "last_txn_id", "readers",  "max_readers", "read_only",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(figures) / sizeof(figures[0]),
                   "a name per figure");
    kvs__info_figures(fn, ctx, names, figures, sizeof(figures) / sizeof(figures[0]));
    return 0;
}

static const char *const signature_files[] = {"data.mdb", "lock.mdb", NULL};

const struct kvs_engine kvs__lmdb_engine = {
    .abi = KVS_ENGINE_ABI,
    .name = "lmdb",
    .max_key = LMDB_MAX_KEY,
    .max_value = LMDB_MAX_VALUE,
    .signature_files = signature_files,
    .open = lmdb_open,
    .close = lmdb_close,
    .get = lmdb_get,
    .set = lmdb_set,
    .remove = lmdb_remove,
    .sync = lmdb_sync,
    .stats = lmdb_stats,
    .clear = lmdb_clear,
    .compact = NULL, /* LMDB reuses freed pages; no compaction */
    .write = lmdb_write,
    .scan = kvs__lmdb_scan,
    .traits = 0,
    .save = lmdb_sync,
    .info = lmdb_info,
    .check = kvs__lmdb_check,
    .get_ex = lmdb_get_ex,
};
