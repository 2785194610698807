/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine's background threads, started with each open store.
 *
 * "kvs-background" compacts: when a writer sees a compaction due it wakes
 * the thread, which compacts step by step while segments are due (writers
 * and readers carry on meanwhile); about once a second, and between steps,
 * it lets the epoch free what was retired.
 *
 * "kvs-sync", under the "everysec" policy only, fsyncs the log once a
 * second if anything was appended since the last sync. It is a thread of
 * its own so that the sync keeps its pace however long a compaction takes:
 * a step can run for seconds on a large store. A failed fsync turns the
 * store read-only (write.c).
 */
#include <errno.h>
#include <time.h>

#include "klog_db.h"

void klog_bg_kick(struct klog_db *db)
{
    /* Only the first kick after the thread took the last one locks. */
    if (atomic_exchange(&db->bg_compact, true))
        return;
    pthread_mutex_lock(&db->bg_lock);
    pthread_cond_signal(&db->bg_cond);
    pthread_mutex_unlock(&db->bg_lock);
}

/* Compact while a writer asked and segments are due (select.c), one
   short step at a time. writes_seen keeps a compaction that could not help
   from running again and again while nothing is written. */
static void maybe_compact(struct klog_db *db, uint64_t *writes_seen)
{
    if (!atomic_exchange(&db->bg_compact, false))
        return;
    for (;;) {
        pthread_mutex_lock(&db->wlock);
        bool due = klog_compact_due_locked(db) && db->writes != *writes_seen &&
                   !atomic_load(&db->readonly);
        uint64_t writes = db->writes;
        pthread_mutex_unlock(&db->wlock);
        if (!due || atomic_load(&db->closing))
            return;
        int rc = klog_compact_step(db);
        if (rc == 1) {
            *writes_seen = writes; /* nothing was due after all */
            return;
        }
        if (rc != 0) {
            *writes_seen = writes;
            if (rc != KVS_ECLOSED)
                kvs__log(&db->opts, "kvs: compaction of %s failed: %s", db->dir, kvs_strerror(rc));
            return;
        }
        klog_epoch_reclaim(&db->epoch);
    }
}

static struct timespec in_one_second(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += 1;
    return t;
}

static void *bg_main(void *arg)
{
    struct klog_db *db = arg;
    uint64_t writes_seen = 0;
    pthread_mutex_lock(&db->bg_lock);
    while (!db->bg_stop) {
        struct timespec next = in_one_second();
        int rc = 0;
        while (!db->bg_stop && !atomic_load(&db->bg_compact) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&db->bg_cond, &db->bg_lock, &next);
        if (db->bg_stop)
            break;
        pthread_mutex_unlock(&db->bg_lock);
        maybe_compact(db, &writes_seen);
        klog_epoch_reclaim(&db->epoch);
        pthread_mutex_lock(&db->bg_lock);
    }
    pthread_mutex_unlock(&db->bg_lock);
    return NULL;
}

/* Sync what was appended since the last sync, if anything. */
static void sync_if_behind(struct klog_db *db)
{
    pthread_mutex_lock(&db->wlock);
    uint64_t end = db->lsn;
    pthread_mutex_unlock(&db->wlock);
    pthread_mutex_lock(&db->sync_lock);
    bool behind = db->durable < end && db->sync_err == 0;
    pthread_mutex_unlock(&db->sync_lock);
    if (behind)
        klog_wait_durable(db, end); /* a failure has made the store read-only */
}

static void *sync_main(void *arg)
{
    struct klog_db *db = arg;
    struct timespec next = in_one_second();
    pthread_mutex_lock(&db->bg_lock);
    while (!db->bg_stop) {
        if (pthread_cond_timedwait(&db->sync_cond, &db->bg_lock, &next) != ETIMEDOUT)
            continue; /* woken to stop, or spuriously */
        pthread_mutex_unlock(&db->bg_lock);
        sync_if_behind(db);
        next.tv_sec += 1;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (next.tv_sec < now.tv_sec)
            next = in_one_second(); /* fell behind (a slow fsync): no burst */
        pthread_mutex_lock(&db->bg_lock);
    }
    pthread_mutex_unlock(&db->bg_lock);
    return NULL;
}

int klog_bg_start(struct klog_db *db)
{
    if (pthread_create(&db->bg, NULL, bg_main, db) != 0)
        return KVS_ENOMEM;
    pthread_setname_np(db->bg, "kvs-background");
    db->bg_running = true;
    if (db->opts.fsync == KVS_FSYNC_EVERYSEC) {
        if (pthread_create(&db->syncer, NULL, sync_main, db) != 0) {
            klog_bg_stop(db);
            return KVS_ENOMEM;
        }
        pthread_setname_np(db->syncer, "kvs-sync");
        db->syncer_running = true;
    }
    return 0;
}

void klog_bg_stop(struct klog_db *db)
{
    if (!db->bg_running)
        return;
    atomic_store(&db->closing, true);
    pthread_mutex_lock(&db->bg_lock);
    db->bg_stop = true;
    pthread_cond_signal(&db->bg_cond);
    pthread_cond_signal(&db->sync_cond);
    pthread_mutex_unlock(&db->bg_lock);
    pthread_join(db->bg, NULL);
    db->bg_running = false;
    if (db->syncer_running) {
        pthread_join(db->syncer, NULL);
        db->syncer_running = false;
    }
}
