/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the kvs engine's files share: the segment table and list, reading
 * a record's header where the index points, the accounting of live bytes,
 * and the state of a store that stopped taking writes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "klog_db.h"

/* ---- segments ---- */

int klog_read_head(struct klog_db *db, uint64_t loc, struct klog_rec *rec)
{
    struct klog_seg *s = klog_seg_at(db, loc);
    uint64_t off = klog_loc_off(loc);
    uint64_t size = s ? atomic_load_explicit(&s->size, memory_order_acquire) : 0;
    if (!s || off >= size)
        return KVS_ECORRUPT;
    if (klog_rec_head(s->map + off, size - off, rec) != KLOG_REC_OK)
        return KVS_ECORRUPT;
    return 0;
}

static void seg_free_cb(struct klog_retired *r)
{
    struct klog_seg *s = (struct klog_seg *)r;
    struct klog_db *db = s->owner;
    atomic_store_explicit(&db->segtab[s->sno], NULL, memory_order_relaxed);
    pthread_mutex_lock(&db->sno_lock);
    db->sno_free[db->nfree++] = s->sno;
    pthread_mutex_unlock(&db->sno_lock);
    klog_seg_free(s);
}

int klog_seg_register(struct klog_db *db, struct klog_seg *s)
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

void klog_seg_retire(struct klog_db *db, struct klog_seg *s)
{
    /* The table entry stays until the grace period ends: a reader may have
       loaded a location in s just before the index stopped pointing there. */
    klog_epoch_retire(&db->epoch, &s->retired, seg_free_cb);
}

int klog_segs_reserve_locked(struct klog_db *db, size_t n)
{
    size_t need = db->nsegs + db->segs_held + n;
    if (db->segs_cap >= need)
        return 0;
    size_t cap = db->segs_cap ? db->segs_cap : 16;
    while (cap < need)
        cap *= 2;
    struct klog_seg **p = realloc(db->segs, cap * sizeof(*p));
    if (!p)
        return KVS_ENOMEM;
    db->segs = p;
    db->segs_cap = cap;
    return 0;
}

uint64_t klog_stale_locked(const struct klog_db *db)
{
    uint64_t overhead = db->nsegs * (uint64_t)KLOG_SEG_HDR + db->live_rec;
    return db->seg_bytes > overhead ? db->seg_bytes - overhead : 0;
}

int klog_match_key(void *ctx, uint64_t loc)
{
    struct klog_key_match *m = ctx;
    int rc = klog_read_head(m->db, loc, &m->rec);
    if (rc != 0)
        return rc;
    if (m->rec.type != KLOG_REC_PUT)
        return KVS_ECORRUPT; /* the index points at puts only */
    return m->rec.klen == m->key.len &&
           (m->key.len == 0 || memcmp(m->rec.key, m->key.data, m->key.len) == 0);
}

void klog_forget_locked(struct klog_db *db, uint64_t old)
{
    struct klog_rec rec;
    if (!klog_loc_live(old) || klog_read_head(db, old, &rec) != 0)
        return;
    struct klog_seg *s = klog_seg_at(db, old);
    db->live_rec -= rec.len;
    s->live -= rec.len;
    if (rec.expire_at) {
        db->expires--;
        db->expire_sum -= (uint64_t)rec.expire_at;
    }
    klog_seg_check_locked(db, s);
}

void klog_count_live_locked(struct klog_db *db, uint64_t loc, uint64_t len, int64_t expire_at)
{
    db->live_rec += len;
    klog_seg_at(db, loc)->live += len;
    if (expire_at) {
        db->expires++;
        db->expire_sum += (uint64_t)expire_at;
    }
}

/* ---- refusing writes ---- */

void klog_stop_writes(struct klog_db *db, int rc, const char *fmt, ...)
{
    pthread_mutex_lock(&db->sync_lock);
    if (db->sync_err == 0)
        db->sync_err = rc;
    klog_wake_locked(db);
    pthread_mutex_unlock(&db->sync_lock);
    if (atomic_exchange(&db->readonly, true))
        return; /* said already */
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    kvs__log(&db->opts, "%s", line);
}

void klog_fsync_failed(struct klog_db *db, int rc, const char *name)
{
    klog_stop_writes(db, rc, "kvs: fsync of %s/%s failed (%s); refusing writes until reopened",
                     db->dir, name ? name : ".", kvs_strerror(rc));
}

void klog_seg_fsync_failed(struct klog_db *db, const struct klog_seg *s, int rc)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, s->id, s->sub, KLOG_FILE_SEG);
    klog_fsync_failed(db, rc, name);
}

void klog_index_failed(struct klog_db *db, int rc)
{
    klog_stop_writes(db, rc,
                     "kvs: cannot update the index of %s (%s); refusing writes until reopened",
                     db->dir, kvs_strerror(rc));
}
