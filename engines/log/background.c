/*
 * The kvs engine's background thread, one per open store.
 *
 * About once a second it fdatasyncs the active segment if the "everysec"
 * policy is in force and something was appended since the last sync, and
 * lets the epoch free what was retired. When a writer sees a compaction
 * due it wakes the thread, which compacts step by step while segments are
 * due (writers and readers carry on meanwhile). A failed fsync turns the
 * store read-only.
 */
#include <errno.h>
#include <time.h>

#include "engines/fileio.h"
#include "log_db.h"

void log_bg_kick(struct log_db *db)
{
    /* Only the first kick after the thread took the last one locks. */
    if (atomic_exchange(&db->bg_compact, true))
        return;
    pthread_mutex_lock(&db->bg_lock);
    pthread_cond_signal(&db->bg_cond);
    pthread_mutex_unlock(&db->bg_lock);
}

static void sync_active(struct log_db *db)
{
    /* The epoch section keeps the segment (and its descriptor) alive should
       a clear retire it while we sync. Entered before reading db->active. */
    unsigned token = log_epoch_enter(&db->epoch);
    pthread_mutex_lock(&db->wlock);
    struct log_seg *a = db->dirty ? db->active : NULL;
    db->dirty = false;
    pthread_mutex_unlock(&db->wlock);
    if (a) {
        int rc = kvs__fdatasync(a->fd);
        if (rc != 0) {
            char name[LOG_SEG_NAME_LEN];
            log_file_name(name, a->id, a->sub, LOG_FILE_SEG);
            log_fsync_failed(db, rc, name);
        }
    }
    log_epoch_exit(&db->epoch, token);
}

/* Compact while a writer asked and segments are due (select.c), one
   short step at a time. writes_seen keeps a compaction that could not help
   from running again and again while nothing is written. */
static void maybe_compact(struct log_db *db, uint64_t *writes_seen)
{
    if (!atomic_exchange(&db->bg_compact, false))
        return;
    for (;;) {
        pthread_mutex_lock(&db->wlock);
        bool due =
            log_compact_due_locked(db) && db->writes != *writes_seen && !atomic_load(&db->readonly);
        uint64_t writes = db->writes;
        pthread_mutex_unlock(&db->wlock);
        if (!due || atomic_load(&db->closing))
            return;
        int rc = log_compact_step(db);
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
        log_epoch_reclaim(&db->epoch);
    }
}

static void add_second(struct timespec *t)
{
    t->tv_sec += 1;
}

static void *bg_main(void *arg)
{
    struct log_db *db = arg;
    uint64_t writes_seen = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    add_second(&next);

    pthread_mutex_lock(&db->bg_lock);
    while (!db->bg_stop) {
        int rc = 0;
        while (!db->bg_stop && !atomic_load(&db->bg_compact) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&db->bg_cond, &db->bg_lock, &next);
        if (db->bg_stop)
            break;
        pthread_mutex_unlock(&db->bg_lock);

        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        bool second =
            now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec);
        if (second) {
            if (db->opts.fsync == KVS_FSYNC_EVERYSEC)
                sync_active(db);
            next = now;
            add_second(&next);
        }
        maybe_compact(db, &writes_seen);
        log_epoch_reclaim(&db->epoch);
        pthread_mutex_lock(&db->bg_lock);
    }
    pthread_mutex_unlock(&db->bg_lock);
    return NULL;
}

int log_bg_start(struct log_db *db)
{
    if (pthread_create(&db->bg, NULL, bg_main, db) != 0)
        return KVS_ENOMEM;
    pthread_setname_np(db->bg, "kvs-background");
    db->bg_running = true;
    return 0;
}

void log_bg_stop(struct log_db *db)
{
    if (!db->bg_running)
        return;
    atomic_store(&db->closing, true);
    pthread_mutex_lock(&db->bg_lock);
    db->bg_stop = true;
    pthread_cond_signal(&db->bg_cond);
    pthread_mutex_unlock(&db->bg_lock);
    pthread_join(db->bg, NULL);
    db->bg_running = false;
}
