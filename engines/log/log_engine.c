/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The native "kvs" engine: a Bitcask-style log with an in-memory hash index.
 *
 * This file holds the vtable, opening and closing and the read path; the
 * write path is in write.c, what the engine's files share in klog_db.c. A get reads the index and
 * the record through the segment's mapping inside an epoch section, without taking any lock. See
 * klog_db.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "klog_db.h"

/* ---- the read path ---- */

static int klog_get_ex(struct kvs_db *base, kvs_slice key, kvs_buf *value, int64_t *expire_at)
{
    struct klog_db *db = klog_db_of(base);
    uint64_t hash = klog_key_hash(key.data, key.len);
    struct klog_key_match m = {.db = db, .key = key};
    uint64_t loc;

    unsigned token = klog_epoch_enter(&db->epoch);
    int rc = klog_index_find(klog_index_table(&db->index), hash, klog_match_key, &m, &loc);
    if (rc == 0 || (rc == 1 && m.rec.expire_at && m.rec.expire_at <= kvs_now_ms()))
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
    if (klog_rec_sum(m.rec.head, m.rec.key, m.rec.klen, value->data, m.rec.vlen) != m.rec.sum)
        rc = KVS_ECORRUPT;
    else
        value->len = m.rec.vlen;
    if (rc == 0 && expire_at)
        *expire_at = m.rec.expire_at;
out_exit:
    klog_epoch_exit(&db->epoch, token);
    return rc;
}

static int klog_get(struct kvs_db *base, kvs_slice key, kvs_buf *value)
{
    return klog_get_ex(base, key, value, NULL);
}

/* ---- the rest of the vtable ---- */

static int klog_sync(struct kvs_db *base)
{
    return klog_sync_all(klog_db_of(base));
}

static int klog_stats(struct kvs_db *base, kvs_stats *st)
{
    struct klog_db *db = klog_db_of(base);
    pthread_mutex_lock(&db->wlock);
    st->keys = db->keys;
    st->expires = db->expires;
    st->expire_mean = db->expires ? (int64_t)(db->expire_sum / db->expires) : 0;
    st->live_bytes = db->live_rec - db->keys * KLOG_REC_HDR - db->expires * 8;
    st->disk_bytes = db->seg_bytes + db->hint_bytes;
    st->stale_bytes = klog_stale_locked(db);
    st->compactions = db->compactions;
    pthread_mutex_unlock(&db->wlock);
    return 0;
}

/* The engine's figures for INFO. */
static int klog_info(struct kvs_db *base, kvs_info_fn fn, void *ctx)
{
    struct klog_db *db = klog_db_of(base);
    pthread_mutex_lock(&db->wlock);
    uint64_t figures[] = {
        db->nsegs,
        db->seg_bytes,
        db->hint_bytes,
        klog_stale_locked(db),
        db->compactions,
        klog_index_table(&db->index)->mask + 1,
        atomic_load(&db->readonly),
    };
    pthread_mutex_unlock(&db->wlock);
    static const char *const names[] = {
        "segments",    "segment_bytes", "hint_bytes", "stale_bytes",
        "compactions", "index_slots",   "read_only",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(figures) / sizeof(figures[0]),
                   "a name per figure");
    kvs__info_figures(fn, ctx, names, figures, sizeof(figures) / sizeof(figures[0]));
    return 0;
}

static int klog_compact_op(struct kvs_db *base)
{
    return klog_compact(klog_db_of(base));
}

static int klog_clear_op(struct kvs_db *base)
{
    return klog_clear(klog_db_of(base));
}

/* ---- open and close ---- */

static void db_free(struct klog_db *db)
{
    for (size_t i = 0; i < db->nsegs; i++)
        klog_seg_free(db->segs[i]);
    free(db->segs);
    free(db->pend);
    kvs_buf_free(&db->wbuf);
    klog_index_destroy(&db->index);
    klog_epoch_destroy(&db->epoch); /* after the segments: frees retired ones */
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

static struct klog_db *db_alloc(const char *dir, const kvs_options *opts)
{
    /* aligned_alloc: the epoch's reader counters are cache-line aligned. */
    size_t size = (sizeof(struct klog_db) + 63) / 64 * 64;
    struct klog_db *db = aligned_alloc(64, size);
    if (!db)
        return NULL;
    memset(db, 0, size);
    db->dir_fd = -1;
    db->opts = *opts;
    if (klog_epoch_init(&db->epoch) != 0) {
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
    if (seg_max < KLOG_SEG_MIN_BYTES)
        seg_max = KLOG_SEG_MIN_BYTES;
    if (seg_max > KLOG_SEG_CAP_BYTES)
        seg_max = KLOG_SEG_CAP_BYTES;
    db->seg_max = seg_max;

    db->dir = strdup(dir);
    db->segtab = calloc(KLOG_MAX_SEGS, sizeof(db->segtab[0]));
    db->sno_free = malloc(KLOG_MAX_SEGS * sizeof(db->sno_free[0]));
    if (!db->dir || !db->segtab || !db->sno_free || klog_index_init(&db->index, &db->epoch) != 0) {
        db_free(db);
        return NULL;
    }
    /* Hand out low numbers first. */
    for (unsigned i = 0; i < KLOG_MAX_SEGS; i++)
        db->sno_free[i] = KLOG_MAX_SEGS - 1 - i;
    db->nfree = KLOG_MAX_SEGS;
    return db;
}

static int klog_open(const char *dir, const kvs_options *opts, struct kvs_db **dbp, char *why)
{
    struct klog_db *db = db_alloc(dir, opts);
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
    rc = klog_recover(db, why);
    if (rc != 0)
        goto out_free;
    rc = klog_bg_start(db);
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

static int klog_close(struct kvs_db *base)
{
    struct klog_db *db = klog_db_of(base);
    klog_bg_stop(db);
    /* Flush what is acknowledged but not yet synced, whatever the policy:
       closing is rare and a closed store should be complete on disk. */
    int rc = atomic_load(&db->readonly) ? 0 : klog_sync_all(db);
    db_free(db);
    return rc;
}

static const char *const signature_files[] = {"seg-*", NULL};

const struct kvs_engine kvs__log_engine = {
    .abi = KVS_ENGINE_ABI,
    .name = "kvs",
    .max_key = KLOG_MAX_KEY,
    .max_value = KLOG_MAX_VALUE,
    .signature_files = signature_files,
    .open = klog_open,
    .close = klog_close,
    .get = klog_get,
    .set = klog_set,
    .remove = klog_remove,
    .sync = klog_sync,
    .stats = klog_stats,
    .clear = klog_clear_op,
    .compact = klog_compact_op,
    .write = klog_write,
    .scan = klog_scan,
    .traits = 0,
    .save = klog_sync,
    .info = klog_info,
    .check = klog_check,
    .get_ex = klog_get_ex,
};
