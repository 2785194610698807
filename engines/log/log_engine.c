/*
 * The native "kvs" engine: a Bitcask-style log with an in-memory hash index.
 *
 * This file holds the vtable, opening and closing and the read path; the
 * write path is in write.c. A get reads the index and the record through
 * the segment's mapping inside an epoch section, without taking any lock.
 * See log_db.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    size_t need = db->nsegs + db->segs_held + n;
    if (db->segs_cap >= need)
        return 0;
    size_t cap = db->segs_cap ? db->segs_cap : 16;
    while (cap < need)
        cap *= 2;
    struct log_seg **p = realloc(db->segs, cap * sizeof(*p));
    if (!p)
        return KVS_ENOMEM;
    db->segs = p;
    db->segs_cap = cap;
    return 0;
}

uint64_t log_stale_locked(const struct log_db *db)
{
    uint64_t overhead = db->nsegs * (uint64_t)LOG_SEG_HDR + db->live_rec;
    return db->seg_bytes > overhead ? db->seg_bytes - overhead : 0;
}

/* ---- the read path ---- */

int log_match_key(void *ctx, uint64_t loc)
{
    struct log_key_match *m = ctx;
    int rc = log_read_head(m->db, loc, &m->rec);
    if (rc != 0)
        return rc;
    if (m->rec.type != LOG_REC_PUT)
        return KVS_ECORRUPT; /* the index points at puts only */
    return m->rec.klen == m->key.len &&
           (m->key.len == 0 || memcmp(m->rec.key, m->key.data, m->key.len) == 0);
}

static int log_get(struct kvs_db *base, kvs_slice key, kvs_buf *value)
{
    struct log_db *db = log_db_of(base);
    uint64_t hash = log_key_hash(key.data, key.len);
    struct log_key_match m = {.db = db, .key = key};
    uint64_t loc;

    unsigned token = log_epoch_enter(&db->epoch);
    int rc = log_index_find(log_index_table(&db->index), hash, log_match_key, &m, &loc);
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
    return log_sync_all(log_db_of(base));
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

/* The engine's figures for INFO. */
static int log_info(struct kvs_db *base, kvs_info_fn fn, void *ctx)
{
    struct log_db *db = log_db_of(base);
    pthread_mutex_lock(&db->wlock);
    uint64_t figures[] = {
        db->nsegs,
        db->seg_bytes,
        db->hint_bytes,
        log_stale_locked(db),
        db->compactions,
        log_index_table(&db->index)->mask + 1,
        atomic_load(&db->readonly),
    };
    pthread_mutex_unlock(&db->wlock);
    static const char *const names[] = {
        "segments",    "segment_bytes", "hint_bytes", "stale_bytes",
        "compactions", "index_slots",   "read_only",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(figures) / sizeof(figures[0]),
                   "a name per figure");
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        char value[24];
        snprintf(value, sizeof(value), "%" PRIu64, figures[i]);
        fn(ctx, names[i], value);
    }
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
    free(db->pend);
    kvs_buf_free(&db->wbuf);
    log_index_destroy(&db->index);
    log_epoch_destroy(&db->epoch); /* after the segments: frees retired ones */
    free(db->segtab);
    free(db->sno_free);
    pthread_mutex_destroy(&db->wlock);
    pthread_mutex_destroy(&db->sno_lock);
    pthread_mutex_destroy(&db->mlock);
    pthread_mutex_destroy(&db->bg_lock);
    pthread_cond_destroy(&db->bg_cond);
    pthread_cond_destroy(&db->sync_cond);
    pthread_mutex_destroy(&db->sync_lock);
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
    pthread_cond_init(&db->sync_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&db->sync_lock, NULL);
    db->waiters_tail = &db->waiters;
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
    int rc = atomic_load(&db->readonly) ? 0 : log_sync_all(db);
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
    .write = log_write,
    .scan = log_scan,
    .traits = 0,
    .save = log_sync,
    .info = log_info,
};
