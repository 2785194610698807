/*
 * The native "kvs" engine: a Bitcask-style log with an in-memory hash index.
 *
 * This file holds the vtable, opening and closing, the read path and the
 * write path. A write appends one record to the active segment with one
 * writev (so it is in the kernel before we return), fsyncs it under the
 * "always" policy, and only then points the index at it. A get reads the
 * index and the record through the segment's mapping inside an epoch
 * section, without taking any lock. See log_db.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engines/fileio.h"
#include "log_db.h"

/* ---- helpers shared by the engine's files ---- */

int log_read_head(struct log_db *db, uint64_t loc, struct log_rec *rec)
{
    struct log_seg *s = log_seg_at(db, loc);
    uint64_t off = log_loc_off(loc);
    uint64_t size = s ? atomic_load_explicit(&s->size, memory_order_acquire) : 0;
    if (!s || off >= size)
        return KVS_ECORRUPT;
    if (log_rec_head(s->map + off, size - off, rec) != LOG_REC_OK)
        return KVS_ECORRUPT;
    return 0;
}

static void seg_free_cb(struct log_retired *r)
{
    struct log_seg *s = (struct log_seg *)r;
    struct log_db *db = s->owner;
    atomic_store_explicit(&db->segtab[s->sno], NULL, memory_order_relaxed);
    pthread_mutex_lock(&db->sno_lock);
    db->sno_free[db->nfree++] = s->sno;
    pthread_mutex_unlock(&db->sno_lock);
    log_seg_free(s);
}

int log_seg_register(struct log_db *db, struct log_seg *s)
{
    pthread_mutex_lock(&db->sno_lock);
    bool ok = db->nfree > 0;
    if (ok)
        s->sno = db->sno_free[--db->nfree];
    pthread_mutex_unlock(&db->sno_lock);
    if (!ok)
        return KVS_ENOSPC;
    s->owner = db;
    atomic_store_explicit(&db->segtab[s->sno], s, memory_order_release);
    return 0;
}

void log_seg_retire(struct log_db *db, struct log_seg *s)
{
    /* The table entry stays until the grace period ends: a reader may have
       loaded a location in s just before the index stopped pointing there. */
    log_epoch_retire(&db->epoch, &s->retired, seg_free_cb);
}

int log_segs_reserve_locked(struct log_db *db, size_t n)
{
    if (db->segs_cap - db->nsegs >= n)
        return 0;
    size_t cap = db->segs_cap ? db->segs_cap : 16;
    while (cap - db->nsegs < n)
        cap *= 2;
    struct log_seg **p = realloc(db->segs, cap * sizeof(*p));
    if (!p)
        return KVS_ENOMEM;
    db->segs = p;
    db->segs_cap = cap;
    return 0;
}

void log_fsync_failed(struct log_db *db, int rc, const char *name)
{
    if (!atomic_exchange(&db->readonly, true))
        kvs__log(&db->opts, "kvs: fsync of %s/%s failed (%s); refusing writes until reopened",
                 db->dir, name ? name : ".", kvs_strerror(rc));
}

uint64_t log_stale_locked(const struct log_db *db)
{
    uint64_t overhead = db->nsegs * (uint64_t)LOG_SEG_HDR + db->live_rec;
    return db->seg_bytes > overhead ? db->seg_bytes - overhead : 0;
}

bool log_compact_due_locked(const struct log_db *db)
{
    uint64_t stale = log_stale_locked(db);
    return stale > db->opts.compact_min_stale_bytes &&
           (double)stale > db->opts.compact_min_stale_ratio * (double)db->seg_bytes;
}

int log_seal_locked(struct log_db *db)
{
    struct log_seg *a = db->active;
    if (!a)
        return 0;
    /* Under "always" every record is already synced. Otherwise sync now, so
       that a torn record can only ever be in the newest segment. */
    if (db->opts.fsync != KVS_FSYNC_ALWAYS) {
        int rc = kvs__fdatasync(a->fd);
        if (rc != 0) {
            char name[LOG_SEG_NAME_LEN];
            log_file_name(name, a->id, a->sub, LOG_FILE_SEG);
            log_fsync_failed(db, rc, name);
            return rc;
        }
    }
    db->active = NULL;
    db->dirty = false;
    return 0;
}

/* ---- the write path ---- */

/* Make the active segment able to take len more bytes. */
static int make_room_locked(struct log_db *db, uint64_t len)
{
    struct log_seg *a = db->active;
    if (a && atomic_load_explicit(&a->size, memory_order_relaxed) + len <= a->cap)
        return 0;
    int rc = log_seal_locked(db);
    if (rc != 0)
        return rc;
    if (db->next_id > LOG_SEG_MAX_ID)
        return KVS_ENOSPC;
    rc = log_segs_reserve_locked(db, 1);
    if (rc != 0)
        return rc;
    /* A record larger than the limit gets a segment of its own. */
    uint64_t cap = db->seg_max > LOG_SEG_HDR + len ? db->seg_max : LOG_SEG_HDR + len;
    struct log_seg *s;
    rc = log_seg_create(db->dir_fd, db->next_id, 0, LOG_FILE_SEG, cap, &s);
    if (rc != 0)
        return rc;
    char name[LOG_SEG_NAME_LEN];
    log_file_name(name, s->id, 0, LOG_FILE_SEG);
    rc = log_seg_register(db, s);
    if (rc != 0) {
        kvs__unlink(db->dir_fd, name);
        log_seg_free(s);
        return rc;
    }
    db->next_id++;
    db->segs[db->nsegs++] = s;
    db->seg_bytes += LOG_SEG_HDR;
    db->active = s;
    /* The new name must be durable before anything in it is acknowledged.
       On failure the segment stays: it holds nothing and replays as such. */
    rc = kvs__fsync_dir(db->dir_fd);
    if (rc != 0)
        log_fsync_failed(db, rc, NULL);
    return rc;
}

/* A failed write is cut off again, so that the file stays a sequence of
   whole records. */
int log_append_locked(struct log_db *db, unsigned type, kvs_slice key, kvs_slice val, uint64_t *loc)
{
    uint64_t len = (uint64_t)LOG_REC_HDR + key.len + val.len;
    int rc = make_room_locked(db, len);
    if (rc != 0)
        return rc;
    struct log_seg *a = db->active;
    uint64_t off = atomic_load_explicit(&a->size, memory_order_relaxed);
    unsigned char head[LOG_REC_HDR];
    log_rec_encode(head, type, key, val);
    struct iovec iov[3] = {
        {head, sizeof(head)},
        {(void *)key.data, key.len},
        {(void *)val.data, val.len},
    };
    rc = kvs__writev_all(a->fd, iov, 3);
    if (rc != 0) {
        int trc = kvs__ftruncate(a->fd, (off_t)off);
        if (trc != 0) {
            atomic_store(&db->readonly, true);
            kvs__log(&db->opts, "kvs: cannot cut a failed write off %s (%s); refusing writes",
                     db->dir, kvs_strerror(trc));
        }
        return rc;
    }
    db->writes++;
    db->seg_bytes += len;
    atomic_store_explicit(&a->size, off + len, memory_order_release);
    if (db->opts.fsync == KVS_FSYNC_ALWAYS) {
        rc = kvs__fdatasync(a->fd);
        if (rc != 0) {
            char name[LOG_SEG_NAME_LEN];
            log_file_name(name, a->id, a->sub, LOG_FILE_SEG);
            log_fsync_failed(db, rc, name);
            return rc;
        }
    } else {
        db->dirty = true;
    }
    *loc = log_loc(a->sno, (uint32_t)off);
    return 0;
}

/* Does the record at loc hold key? */
struct key_match {
    struct log_db *db;
    kvs_slice key;
    struct log_rec rec; /* the matching record's header */
};

static int match_key(void *ctx, uint64_t loc)
{
    struct key_match *m = ctx;
    int rc = log_read_head(m->db, loc, &m->rec);
    if (rc != 0)
        return rc;
    if (m->rec.type != LOG_REC_PUT)
        return KVS_ECORRUPT; /* the index points at puts only */
    return m->rec.klen == m->key.len &&
           (m->key.len == 0 || memcmp(m->rec.key, m->key.data, m->key.len) == 0);
}

/* After a write: live-byte accounting for the record the key had. */
static void forget_locked(struct log_db *db, uint64_t old)
{
    struct log_rec rec;
    if (log_loc_live(old) && log_read_head(db, old, &rec) == 0)
        db->live_rec -= rec.len;
}

static void after_write_locked(struct log_db *db)
{
    if (log_compact_due_locked(db))
        log_bg_kick(db);
}

static int log_set(struct kvs_db *base, kvs_slice key, kvs_slice val)
{
    struct log_db *db = log_db_of(base);
    uint64_t hash = log_key_hash(key.data, key.len);
    struct key_match m = {.db = db, .key = key};
    struct log_index_pos pos;
    uint64_t loc, old;

    pthread_mutex_lock(&db->wlock);
    int rc = KVS_EREADONLY;
    if (atomic_load(&db->readonly))
        goto out_unlock;
    rc = log_index_lookup_locked(&db->index, hash, match_key, &m, true, &pos);
    if (rc != 0)
        goto out_unlock;
    rc = log_append_locked(db, LOG_REC_PUT, key, val, &loc);
    if (rc != 0)
        goto out_unlock;
    log_index_put_locked(&db->index, &pos, hash, loc, &old);
    forget_locked(db, old);
    if (old == LOG_LOC_EMPTY)
        db->keys++;
    db->live_rec += (uint64_t)LOG_REC_HDR + key.len + val.len;
    after_write_locked(db);
out_unlock:
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

static int log_remove(struct kvs_db *base, kvs_slice key)
{
    struct log_db *db = log_db_of(base);
    uint64_t hash = log_key_hash(key.data, key.len);
    struct key_match m = {.db = db, .key = key};
    struct log_index_pos pos;
    uint64_t loc, old;

    pthread_mutex_lock(&db->wlock);
    int rc = KVS_EREADONLY;
    if (atomic_load(&db->readonly))
        goto out_unlock;
    rc = log_index_lookup_locked(&db->index, hash, match_key, &m, false, &pos);
    if (rc != 0)
        goto out_unlock;
    rc = KVS_ENOTFOUND;
    if (!pos.found)
        goto out_unlock;
    rc = log_append_locked(db, LOG_REC_DEL, key, kvs_slice_of(NULL, 0), &loc);
    if (rc != 0)
        goto out_unlock;
    log_index_remove_locked(&db->index, &pos, &old);
    forget_locked(db, old);
    db->keys--;
    after_write_locked(db);
out_unlock:
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

/* ---- the read path ---- */

static int log_get(struct kvs_db *base, kvs_slice key, kvs_buf *value)
{
    struct log_db *db = log_db_of(base);
    uint64_t hash = log_key_hash(key.data, key.len);
    struct key_match m = {.db = db, .key = key};
    uint64_t loc;

    unsigned token = log_epoch_enter(&db->epoch);
    int rc = log_index_find(log_index_table(&db->index), hash, match_key, &m, &loc);
    if (rc == 0)
        rc = KVS_ENOTFOUND;
    if (rc != 1)
        goto out_exit;
    rc = kvs_buf_reserve(value, m.rec.vlen ? m.rec.vlen : 1);
    if (rc != 0)
        goto out_exit;
    if (m.rec.vlen)
        memcpy(value->data, m.rec.val, m.rec.vlen);
    /* Verify what the caller gets, after the copy. */
    rc = 0;
    if (log_rec_sum(m.rec.head, m.rec.key, m.rec.klen, value->data, m.rec.vlen) != m.rec.sum)
        rc = KVS_ECORRUPT;
    else
        value->len = m.rec.vlen;
out_exit:
    log_epoch_exit(&db->epoch, token);
    return rc;
}

/* ---- the rest of the vtable ---- */

static int log_sync(struct kvs_db *base)
{
    struct log_db *db = log_db_of(base);
    pthread_mutex_lock(&db->wlock);
    int rc = 0;
    struct log_seg *a = db->active;
    if (a && db->dirty) {
        rc = kvs__fdatasync(a->fd);
        if (rc == 0) {
            db->dirty = false;
        } else {
            char name[LOG_SEG_NAME_LEN];
            log_file_name(name, a->id, a->sub, LOG_FILE_SEG);
            log_fsync_failed(db, rc, name);
        }
    }
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

static int log_stats(struct kvs_db *base, kvs_stats *st)
{
    struct log_db *db = log_db_of(base);
    pthread_mutex_lock(&db->wlock);
    st->keys = db->keys;
    st->live_bytes = db->live_rec - db->keys * LOG_REC_HDR;
    st->disk_bytes = db->seg_bytes + db->hint_bytes;
    st->stale_bytes = log_stale_locked(db);
    st->compactions = db->compactions;
    pthread_mutex_unlock(&db->wlock);
    return 0;
}

static int log_compact_op(struct kvs_db *base)
{
    return log_compact(log_db_of(base));
}

static int log_clear_op(struct kvs_db *base)
{
    return log_clear(log_db_of(base));
}

/* ---- open and close ---- */

static void db_free(struct log_db *db)
{
    for (size_t i = 0; i < db->nsegs; i++)
        log_seg_free(db->segs[i]);
    free(db->segs);
    log_index_destroy(&db->index);
    log_epoch_destroy(&db->epoch); /* after the segments: frees retired ones */
    free(db->segtab);
    free(db->sno_free);
    pthread_mutex_destroy(&db->wlock);
    pthread_mutex_destroy(&db->sno_lock);
    pthread_mutex_destroy(&db->mlock);
    pthread_mutex_destroy(&db->bg_lock);
    pthread_cond_destroy(&db->bg_cond);
    if (db->dir_fd >= 0)
        close(db->dir_fd);
    free(db->dir);
    free(db);
}

static struct log_db *db_alloc(const char *dir, const kvs_options *opts)
{
    /* aligned_alloc: the epoch's reader counters are cache-line aligned. */
    size_t size = (sizeof(struct log_db) + 63) / 64 * 64;
    struct log_db *db = aligned_alloc(64, size);
    if (!db)
        return NULL;
    memset(db, 0, size);
    db->dir_fd = -1;
    db->opts = *opts;
    if (log_epoch_init(&db->epoch) != 0) {
        free(db);
        return NULL;
    }
    pthread_mutex_init(&db->wlock, NULL);
    pthread_mutex_init(&db->sno_lock, NULL);
    pthread_mutex_init(&db->mlock, NULL);
    pthread_mutex_init(&db->bg_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->bg_cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&db->readonly, false);
    atomic_init(&db->closing, false);
    atomic_init(&db->bg_compact, false);
    db->next_id = 1;

    uint64_t seg_max = opts->segment_max_bytes ? opts->segment_max_bytes : 64u << 20;
    if (seg_max < LOG_SEG_MIN_BYTES)
        seg_max = LOG_SEG_MIN_BYTES;
    if (seg_max > LOG_SEG_CAP_BYTES)
        seg_max = LOG_SEG_CAP_BYTES;
    db->seg_max = seg_max;

    db->dir = strdup(dir);
    db->segtab = calloc(LOG_MAX_SEGS, sizeof(db->segtab[0]));
    db->sno_free = malloc(LOG_MAX_SEGS * sizeof(db->sno_free[0]));
    if (!db->dir || !db->segtab || !db->sno_free || log_index_init(&db->index, &db->epoch) != 0) {
        db_free(db);
        return NULL;
    }
    /* Hand out low numbers first. */
    for (unsigned i = 0; i < LOG_MAX_SEGS; i++)
        db->sno_free[i] = LOG_MAX_SEGS - 1 - i;
    db->nfree = LOG_MAX_SEGS;
    return db;
}

static int log_open(const char *dir, const kvs_options *opts, struct kvs_db **dbp, char *why)
{
    struct log_db *db = db_alloc(dir, opts);
    if (!db) {
        kvs__why(why, "out of memory opening %s", dir);
        return KVS_ENOMEM;
    }
    db->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;
    if (db->dir_fd < 0) {
        rc = kvs_err_from_errno(errno);
        kvs__why(why, "cannot open data directory %s: %s", dir, strerror(errno));
        goto out_free;
    }
    rc = log_recover(db, why);
    if (rc != 0)
        goto out_free;
    rc = log_bg_start(db);
    if (rc != 0) {
        kvs__why(why, "cannot start the background thread for %s", dir);
        goto out_free;
    }
    *dbp = &db->base;
    return 0;

out_free:
    db_free(db);
    return rc;
}

static int log_close(struct kvs_db *base)
{
    struct log_db *db = log_db_of(base);
    log_bg_stop(db);
    /* Flush what is acknowledged but not yet synced, whatever the policy:
       closing is rare and a closed store should be complete on disk. */
    int rc = 0;
    if (db->active && db->dirty && !atomic_load(&db->readonly))
        rc = kvs__fdatasync(db->active->fd);
    db_free(db);
    return rc;
}

static const char *const signature_files[] = {"seg-*", NULL};

const struct kvs_engine kvs__log_engine = {
    .abi = KVS_ENGINE_ABI,
    .name = "kvs",
    .max_key = LOG_MAX_KEY,
    .max_value = LOG_MAX_VALUE,
    .signature_files = signature_files,
    .open = log_open,
    .close = log_close,
    .get = log_get,
    .set = log_set,
    .remove = log_remove,
    .sync = log_sync,
    .stats = log_stats,
    .clear = log_clear_op,
    .compact = log_compact_op,
};
