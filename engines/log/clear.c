/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Clear (FLUSHDB) for the kvs engine: append a clear record to a fresh
 * segment and sync it, then drop every older segment. Replay resets the
 * index at a clear record, so every crash state is right: before the record
 * is synced the old state stands (the clear was not acknowledged), after it
 * the old segments replay to nothing whether or not they are gone yet. A
 * segment holding a clear record is compacted only together with every
 * older one (select.c), which drops the record.
 */
#include <stdlib.h>

#include "compact.h"
#include "core/fileio.h"

int klog_clear(struct klog_db *db)
{
    pthread_mutex_lock(&db->mlock);
    pthread_mutex_lock(&db->wlock);
    int rc = KVS_EREADONLY;
    size_t nold = 0;
    struct input *old = NULL;
    struct klog_table *fresh = NULL;
    if (atomic_load(&db->readonly))
        goto out_unlock;
    /* Allocated first: once the clear record is on disk nothing may fail. */
    rc = KVS_ENOMEM;
    old = malloc((db->nsegs + 1) * sizeof(*old));
    fresh = klog_index_table_new();
    if (!old || !fresh)
        goto out_unlock;
    /* Sealing makes the clear record start a new segment, and applies the
       records waiting for an fsync under "always" first. */
    rc = klog_seal_locked(db);
    uint64_t loc;
    if (rc == 0)
        rc = klog_append_locked(db, KLOG_REC_CLEAR, kvs_slice_of(NULL, 0), kvs_slice_of(NULL, 0),
                                &loc);
    if (rc == 0) {
        rc = kvs__fdatasync(db->active->fd);
        if (rc != 0) {
            char name[KLOG_SEG_NAME_LEN];
            klog_file_name(name, db->active->id, 0, KLOG_FILE_SEG);
            klog_fsync_failed(db, rc, name);
        } else {
            /* Nothing is queued after the seal: this only moves the durable
               position past the clear record. */
            klog_durable_locked(db, db->lsn);
        }
    }
    if (rc != 0)
        goto out_unlock;
    klog_index_reset_locked(&db->index, fresh);
    fresh = NULL;
    /* Every segment but the new active one goes. */
    for (size_t i = 0; i + 1 < db->nsegs; i++) {
        struct klog_seg *s = db->segs[i];
        old[nold++] = (struct input){.id = s->id, .sub = s->sub, .hint_bytes = s->hint_bytes};
        klog_seg_retire(db, s);
    }
    db->segs[0] = db->active;
    db->nsegs = 1;
    db->seg_bytes = atomic_load(&db->active->size);
    db->hint_bytes = 0;
    db->keys = db->live_rec = db->expires = 0;
    db->expire_sum = 0;
    db->active->live = 0;
    db->active->has_clear = true;
    db->seg_due = false;
out_unlock:
    pthread_mutex_unlock(&db->wlock);
    if (rc == 0 && nold) {
        rc = klog_unlink_inputs(db, old, nold);
        if (rc != 0)
            klog_stop_writes(db, rc,
                             "kvs: cannot remove cleared segments from %s (%s); refusing writes "
                             "until reopened",
                             db->dir, kvs_strerror(rc));
    }
    pthread_mutex_unlock(&db->mlock);
    klog_index_table_free(fresh);
    free(old);
    return rc;
}
