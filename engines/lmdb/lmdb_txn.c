/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "lmdb" engine's transaction layer; see lmdb_internal.h.
 *
 * Locking, in the order taken: write_lock (writers only), resize_lock
 * (shared by every transaction, exclusive for a remap), pool_lock (a leaf,
 * held for one pointer). A reader takes resize_lock shared, and pool_lock
 * for a moment unless the thread has a read transaction of its own; it
 * never waits for a writer, whose commit also holds resize_lock only
 * shared. The map is resized in two cases: a writer's
 * MDB_MAP_FULL (the writer drops its transaction and its shared hold,
 * doubles the map under the exclusive hold, and retries) and
 * MDB_MAP_RESIZED (another process grew the map; adopt its size).
 */
#include <stdint.h>
#include <sys/statvfs.h>

#include "core/fileio.h"
#include "lmdb_internal.h"

/* Retries after a remap. Doubling from 64 MiB passes any real size long
   before this; the bound only stops a loop if LMDB misbehaves. */
#define REMAP_TRIES 40

int kvs__lmdb_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return KVS_ENOTFOUND;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return KVS_ECORRUPT;
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return KVS_EVERSION;
    case MDB_MAP_FULL: /* only surfaces when the map cannot grow further */
        return KVS_ENOSPC;
    case MDB_BAD_VALSIZE:
        return KVS_EVALSIZE;
    /* Exhausted fixed tables (reader slots, dirty pages): out of resources. */
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
    case MDB_TLS_FULL:
    case MDB_DBS_FULL:
        return KVS_ENOMEM;
    default: /* MDB_PANIC (a failed meta write), MDB_BAD_*: errors of I/O or of state */
        return rc > 0 ? kvs_err_from_errno(rc) : KVS_EIO;
    }
}

/* Refuse writes from now on; the first failure is the one reported. */
static void fail_writes(struct lmdb_db *db, int err, const char *what)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&db->failed, &none, err))
        kvs__log(&db->opts, "lmdb: %s failed (%s); refusing writes until restart", what,
                 kvs_strerror(err));
}

int kvs__lmdb_sync_now(struct lmdb_db *db)
{
    int rc = atomic_load(&db->failed);
    if (rc != 0)
        return rc;
    /* What mdb_env_sync(env, 1) does without MDB_WRITEMAP, through the
       fileio layer so that tests can make it fail. No lock: it touches
       neither the map nor a transaction. */
    rc = kvs__fdatasync(db->fd);
    if (rc != 0)
        fail_writes(db, rc, "fdatasync of data.mdb");
    /* A concurrent fdatasync that failed may have dropped pages this one
       then found clean: success counts only if no sync failed meanwhile. */
    return rc != 0 ? rc : atomic_load(&db->failed);
}

/*
 * Resize the map under the exclusive hold: double it (grow) or adopt the
 * size another process set (!grow). A failed remap leaves LMDB without a
 * map at all, so the handle is marked broken and every call fails after.
 */
static int remap(struct lmdb_db *db, bool grow)
{
    size_t size = 0; /* 0: mdb_env_set_mapsize() adopts the size in the meta page */
    int rc = 0;
    pthread_rwlock_wrlock(&db->resize_lock);
    if (db->broken) {
        rc = KVS_EIO;
    } else if (grow) {
        MDB_envinfo info;
        mdb_env_info(db->env, &info);
        if (info.me_mapsize > SIZE_MAX / 2)
            rc = KVS_ENOSPC;
        else
            size = info.me_mapsize * 2;
    }
    if (rc == 0) {
        int mrc = mdb_env_set_mapsize(db->env, size);
        if (mrc != 0) {
            db->broken = true;
            rc = kvs__lmdb_err(mrc);
        }
    }
    pthread_rwlock_unlock(&db->resize_lock);
    if (rc != 0)
        kvs__log(&db->opts, "lmdb: resizing the map failed: %s", kvs_strerror(rc));
    else if (grow)
        kvs__log(&db->opts, "lmdb: map grown to %zu MiB", size >> 20);
    return rc;
}

/*
 * A thread's own read transaction: after its first read of a store, a
 * thread keeps the transaction it used (reset between reads, as in the
 * pool, so it pins no snapshot and a remap may go ahead) and renews it
 * for its next read of the same store without taking pool_lock. A server
 * worker reads one store all its life. The store also lists it in owned,
 * to abort it at close; a thread that goes on to another store leaves it
 * there until then. At most LMDB_OWNED_MAX threads get one per store; the
 * others, and a read begun inside another on the same thread (a scan's
 * callback), use the pool. db_id is the store's id, which no later store
 * takes, so a thread never uses the transaction of a closed store.
 */
static _Thread_local struct {
    uint64_t db_id;
    MDB_txn *txn;
    bool in_use; /* between kvs__lmdb_read_begin() and _end() */
} own;

static atomic_uint_least64_t next_db_id = 1;

void kvs__lmdb_pool_init(struct lmdb_db *db)
{
    db->id = atomic_fetch_add(&next_db_id, 1);
}

/* Make txn, begun or taken from the pool, this thread's own if a place in
   owned is left. */
static void adopt(struct lmdb_db *db, MDB_txn *txn)
{
    pthread_mutex_lock(&db->pool_lock);
    bool room = db->owned_len < LMDB_OWNED_MAX;
    if (room)
        db->owned[db->owned_len++] = txn;
    pthread_mutex_unlock(&db->pool_lock);
    if (room) {
        own.db_id = db->id;
        own.txn = txn;
        own.in_use = true;
    }
}

/* Abort this thread's own transaction of db, whose renewal failed. */
static void disown(struct lmdb_db *db)
{
    pthread_mutex_lock(&db->pool_lock);
    for (size_t i = 0; i < db->owned_len; i++) {
        if (db->owned[i] == own.txn) {
            db->owned[i] = db->owned[--db->owned_len];
            break;
        }
    }
    pthread_mutex_unlock(&db->pool_lock);
    mdb_txn_abort(own.txn);
    own.db_id = 0;
    own.txn = NULL;
    own.in_use = false;
}

static MDB_txn *pool_take(struct lmdb_db *db)
{
    MDB_txn *txn = NULL;
    pthread_mutex_lock(&db->pool_lock);
    if (db->pool_len > 0)
        txn = db->pool[--db->pool_len];
    pthread_mutex_unlock(&db->pool_lock);
    return txn;
}

int kvs__lmdb_read_begin(struct lmdb_db *db, MDB_txn **txnp)
{
    for (int attempt = 0;; attempt++) {
        pthread_rwlock_rdlock(&db->resize_lock);
        if (db->broken) {
            pthread_rwlock_unlock(&db->resize_lock);
            return KVS_EIO;
        }
        MDB_txn *txn;
        int rc;
        if (own.db_id == db->id && !own.in_use) {
            txn = own.txn;
            rc = mdb_txn_renew(txn);
            if (rc == 0)
                own.in_use = true;
            else
                disown(db);
        } else if ((txn = pool_take(db)) != NULL) {
            rc = mdb_txn_renew(txn);
            if (rc != 0)
                mdb_txn_abort(txn);
        } else {
            rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
        }
        if (rc == 0) {
            if (own.db_id != db->id)
                adopt(db, txn);
            *txnp = txn;
            return 0;
        }
        pthread_rwlock_unlock(&db->resize_lock);
        if (rc != MDB_MAP_RESIZED || attempt == REMAP_TRIES)
            return kvs__lmdb_err(rc);
        rc = remap(db, false);
        if (rc != 0)
            return rc;
    }
}

void kvs__lmdb_read_end(struct lmdb_db *db, MDB_txn *txn)
{
    /* A reset transaction keeps its reader slot but pins no snapshot. */
    mdb_txn_reset(txn);
    if (own.txn == txn && own.db_id == db->id) {
        own.in_use = false;
        pthread_rwlock_unlock(&db->resize_lock);
        return;
    }
    pthread_mutex_lock(&db->pool_lock);
    if (db->pool_len < LMDB_POOL_MAX) {
        db->pool[db->pool_len++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&db->pool_lock);
    if (txn)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&db->resize_lock);
}

void kvs__lmdb_pool_drain(struct lmdb_db *db)
{
    pthread_mutex_lock(&db->pool_lock);
    while (db->pool_len > 0)
        mdb_txn_abort(db->pool[--db->pool_len]);
    while (db->owned_len > 0)
        mdb_txn_abort(db->owned[--db->owned_len]);
    pthread_mutex_unlock(&db->pool_lock);
}

/* One attempt: begin, apply every write, store the expiry counts it
   changed, commit; on success the handle's counts follow (write_lock is
   held). A DEL of a missing key is not a failure: its result says so. */
static int write_once(struct lmdb_db *db, const struct lmdb_write *w, size_t n, int *results)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    struct lmdb_counts cnt = {0};
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = kvs__lmdb_apply(db, txn, &w[i], &results[i], &cnt);
    if (rc == 0)
        rc = kvs__lmdb_counts_store(db, txn, &cnt);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn); /* frees txn, also on failure */
    if (rc == 0) {
        if (cnt.reset) {
            db->expires = 0;
            db->expire_sum = 0;
        }
        db->expires += (uint64_t)cnt.expires;
        db->expire_sum += (unsigned __int128)cnt.sum;
    }
    return rc;
}

/* Whether the file system holding the store has no room for another map
   page, to tell a full disk from other I/O errors LMDB reports as EIO. */
static bool disk_full(struct lmdb_db *db)
{
    mdb_filehandle_t fd;
    struct statvfs sv;
    if (mdb_env_get_fd(db->env, &fd) != 0 || fstatvfs(fd, &sv) != 0)
        return false;
    return (uint64_t)sv.f_bavail * sv.f_frsize < (1u << 20);
}

int kvs__lmdb_write_batch(struct lmdb_db *db, const struct lmdb_write *w, size_t n, int *results)
{
    int rc;
    pthread_mutex_lock(&db->write_lock);
    for (int attempt = 0;; attempt++) {
        if (atomic_load(&db->failed) != 0) {
            rc = KVS_EREADONLY;
            break;
        }
        pthread_rwlock_rdlock(&db->resize_lock);
        int mrc = db->broken ? MDB_PANIC : write_once(db, w, n, results);
        pthread_rwlock_unlock(&db->resize_lock);
        if (mrc == 0) {
            atomic_store(&db->dirty, true);
            rc = 0;
            break;
        }
        /* MDB_MAP_FULL arises while pages are allocated, before the commit
           writes anything, so growing and retrying is safe. */
        if ((mrc == MDB_MAP_FULL || mrc == MDB_MAP_RESIZED) && attempt < REMAP_TRIES) {
            rc = remap(db, mrc == MDB_MAP_FULL);
            if (rc != 0)
                break;
            continue;
        }
        rc = kvs__lmdb_err(mrc);
        /* A commit that failed before its meta page was written committed
           nothing, and LMDB never overwrites the pages of the last committed
           transaction, so the store stays as it was and later commits may be
           tried (this is how writes resume after a full disk). Data at risk
           from a failed fsync is data acknowledged without one: under
           `always` there is none, and under everysec/no the background sync
           (kvs__lmdb_sync_now) turns the store read-only when it fails. A
           failed meta page write is MDB_PANIC: LMDB itself stops then. */
        if (mrc == MDB_PANIC)
            fail_writes(db, rc, "commit");
        else if (rc == KVS_EIO && disk_full(db))
            rc = KVS_ENOSPC; /* LMDB reports a short write as EIO */
        break;
    }
    pthread_mutex_unlock(&db->write_lock);
    return rc;
}

int kvs__lmdb_write(struct lmdb_db *db, const struct lmdb_write *w)
{
    int result = 0;
    int rc = kvs__lmdb_write_batch(db, w, 1, &result);
    return rc ? rc : result;
}
