/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine's snapshots: writing one (kmem_save), loading one at open
 * (kmem_load), and the background thread that writes them.
 *
 * Writing: the table's snapshot walk (kmem_table_snapshot) copies the
 * items of one moment into blocks (snapshot.h), written to mem.snapshot.tmp
 * stripe by stripe while writers go on. Then the temporary file is
 * fsynced, renamed over mem.snapshot and the directory fsynced: the rename
 * relies on the fsync of the file before it (else a machine crash could
 * leave the new name on an empty file), and the snapshot counts as saved
 * only once the directory's fsync made the rename durable. Until the
 * rename the previous snapshot stays whole; a crash before it leaves a
 * temporary file that the next open deletes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "mem_db.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- writing ---- */

struct save_walk {
    struct mem_db *db;
    struct kmem_snap_writer w;
    uint64_t cut_writes;
    int64_t cut_ms;
};

static void at_cut(void *ctx)
{
    struct save_walk *s = ctx;
    s->cut_writes = atomic_load_explicit(&s->db->writes, memory_order_acquire);
    s->cut_ms = kvs_now_ms();
}

static int add_item(void *ctx, const struct kmem_entry *e)
{
    struct save_walk *s = ctx;
    if (e->expire_at && e->expire_at <= s->cut_ms)
        return 0; /* already gone at the cut */
    return kmem_snap_add(&s->w, kvs_slice_of(e->key, e->klen), kvs_slice_of(e->value, e->vlen),
                         e->expire_at);
}

static int stripe_done(void *ctx)
{
    struct save_walk *s = ctx;
    return kmem_snap_flush(&s->w, KMEM_SNAP_BLOCK);
}

/* Write the snapshot; on success its cut and size go to s and *bytes. */
static int write_snapshot(struct mem_db *db, struct save_walk *s, uint64_t *bytes)
{
    int fd = kvs__create(db->dir_fd, KMEM_SNAP_TMP, O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fd;
    s->db = db;
    kmem_snap_writer_init(&s->w, fd);
    struct kmem_snapshot_calls calls = {
        .cut = at_cut,
        .item = add_item,
        .stripe_done = stripe_done,
        .ctx = s,
    };
    int rc = kmem_table_snapshot(db->table, &calls);
    if (rc == 0)
        rc = kmem_snap_finish(&s->w, s->cut_ms);
    if (rc == 0)
        rc = kvs__fsync(fd);
    *bytes = (uint64_t)s->w.off;
    kmem_snap_writer_free(&s->w);
    close(fd);
    if (rc == 0)
        rc = kvs__rename(db->dir_fd, KMEM_SNAP_TMP, KMEM_SNAP_NAME);
    if (rc == 0)
        return kvs__fsync_dir(db->dir_fd);
    kvs__unlink(db->dir_fd, KMEM_SNAP_TMP); /* a failed attempt; the previous one stays */
    return rc;
}

int kmem_save(struct mem_db *db)
{
    pthread_mutex_lock(&db->save_lock);
    pthread_mutex_lock(&db->state_lock);
    db->in_progress = true;
    pthread_mutex_unlock(&db->state_lock);

    int64_t start = mono_ms();
    struct save_walk s;
    uint64_t bytes = 0;
    int rc = write_snapshot(db, &s, &bytes);
    int64_t took = mono_ms() - start;

    pthread_mutex_lock(&db->state_lock);
    db->in_progress = false;
    db->last_status = rc;
    if (rc == 0) {
        db->saved_writes = s.cut_writes;
        db->last_save = kvs_now_ms();
        db->saves++;
        db->last_ms = took;
        db->last_bytes = bytes;
    }
    pthread_mutex_unlock(&db->state_lock);
    pthread_mutex_unlock(&db->save_lock);
    if (rc == 0)
        kvs__log(&db->opts,
                 "mem: snapshot of %s written: %" PRIu64 " keys, %" PRIu64 " bytes in %" PRId64
                 " ms",
                 db->dir, s.w.records, bytes, took);
    else
        kvs__log(&db->opts, "mem: snapshot of %s failed: %s (the previous one stays)", db->dir,
                 kvs_strerror(rc));
    return rc;
}

int kmem_save_status(struct kvs_db *base, kvs_save_status *st)
{
    struct mem_db *db = mem_db_of(base);
    pthread_mutex_lock(&db->state_lock);
    /* Read under the lock: saved_writes never passes what is read after
       it was set. */
    st->changes = atomic_load_explicit(&db->writes, memory_order_acquire) - db->saved_writes;
    st->last_save = db->last_save;
    st->in_progress = db->in_progress || db->bg_requested;
    st->last_status = db->last_status;
    st->saves = db->saves;
    st->last_ms = db->last_ms;
    st->last_bytes = db->last_bytes;
    pthread_mutex_unlock(&db->state_lock);
    return 0;
}

/* ---- the background thread ---- */

int kmem_bgsave(struct kvs_db *base, bool schedule)
{
    struct mem_db *db = mem_db_of(base);
    int rc = 0;
    pthread_mutex_lock(&db->state_lock);
    if (db->bg_requested || (db->in_progress && !schedule)) {
        rc = KVS_EBUSY;
    } else {
        db->bg_requested = true;
        pthread_cond_signal(&db->bg_cond);
    }
    pthread_mutex_unlock(&db->state_lock);
    return rc;
}

/* Once a second: give retired items back to the slab; write a snapshot
   when one was asked for, or when the interval has passed since the last
   attempt and something changed. */
static void *bg_main(void *arg)
{
    struct mem_db *db = arg;
    int64_t interval = (int64_t)db->opts.snapshot_interval * 1000;
    int64_t last_attempt = mono_ms();
    pthread_mutex_lock(&db->state_lock);
    while (!db->bg_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 1;
        if (!db->bg_requested)
            pthread_cond_timedwait(&db->bg_cond, &db->state_lock, &until);
        if (db->bg_stop)
            break;
        /* A request is taken now; one made while this save runs waits for
           the next turn (BGSAVE SCHEDULE). */
        bool asked = db->bg_requested;
        db->bg_requested = false;
        if (asked)
            db->in_progress = true; /* from the request on, as INFO shows it */
        uint64_t changes = atomic_load(&db->writes) - db->saved_writes;
        pthread_mutex_unlock(&db->state_lock);

        kmem_table_reclaim(db->table, false);
        if (asked || (interval && changes && mono_ms() - last_attempt >= interval)) {
            kmem_save(db);
            last_attempt = mono_ms();
        }
        pthread_mutex_lock(&db->state_lock);
    }
    pthread_mutex_unlock(&db->state_lock);
    return NULL;
}

int kmem_bg_start(struct mem_db *db)
{
    if (pthread_create(&db->bg, NULL, bg_main, db) != 0)
        return KVS_ENOMEM;
    db->bg_started = true;
    return 0;
}

void kmem_bg_stop(struct mem_db *db)
{
    if (!db->bg_started)
        return;
    pthread_mutex_lock(&db->state_lock);
    db->bg_stop = true;
    pthread_cond_signal(&db->bg_cond);
    pthread_mutex_unlock(&db->state_lock);
    pthread_join(db->bg, NULL);
    db->bg_started = false;
}

/* ---- loading ---- */

struct load {
    struct mem_db *db;
    const char *path;
    int64_t now;
    uint64_t expired;
    char *why;
};

/* The snapshot's size is known: make the table that size at once rather
   than growing it while loading. */
static int size_table(void *ctx, const struct kmem_snap_summary *sum)
{
    struct load *l = ctx;
    if (sum->records <= KMEM_TABLE_MIN_BUCKETS)
        return 0;
    size_t buckets = sum->records < ((size_t)1 << 30) ? (size_t)sum->records : (size_t)1 << 30;
    struct kmem_table *t;
    if (kmem_table_create(l->db->slab, buckets, 0, &t) != 0)
        return 0; /* the table grows as it loads instead */
    kmem_table_destroy(l->db->table);
    l->db->table = t;
    return 0;
}

static int load_record(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at,
                       uint64_t offset)
{
    struct load *l = ctx;
    if (expire_at && expire_at <= l->now) {
        l->expired++;
        return 0;
    }
    bool again = false;
    int rc =
        kmem_table_put(l->db->table, key.data, key.len, value.data, value.len, expire_at, &again);
    if (rc == 0 && again) {
        /* A snapshot holds each key once: a second one means the file is
           not one moment's state, whichever copy is right. */
        kvs__why(l->why, "snapshot %s is corrupt at offset %" PRIu64 ": a key that came before",
                 l->path, offset);
        return KVS_ECORRUPT;
    }
    if (rc == KVS_ENOMEM && l->db->opts.max_memory) {
        kvs__why(l->why, "snapshot %s does not fit in max_memory (%" PRIu64 " bytes)", l->path,
                 l->db->opts.max_memory);
        return KVS_EFULL;
    }
    if (rc != 0)
        kvs__why(l->why, "cannot load snapshot %s: %s", l->path, kvs_strerror(rc));
    return rc;
}

int kmem_load(struct mem_db *db, char *why)
{
    int rc = 0;
    if (faccessat(db->dir_fd, KMEM_SNAP_TMP, F_OK, 0) == 0 &&
        kvs__unlink(db->dir_fd, KMEM_SNAP_TMP) == 0)
        kvs__log(&db->opts, "mem: deleted %s/%s, a snapshot an earlier run did not finish", db->dir,
                 KMEM_SNAP_TMP);
    int fd = openat(db->dir_fd, KMEM_SNAP_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        rc = kvs_err_from_errno(errno);
        kvs__why(why, "cannot open %s/%s: %s", db->dir, KMEM_SNAP_NAME, strerror(errno));
        return rc;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", db->dir, KMEM_SNAP_NAME);
    struct load l = {.db = db, .path = path, .now = kvs_now_ms(), .why = why};
    struct kmem_snap_calls calls = {.record = load_record, .ctx = &l};
    struct kmem_snap_summary sum;
    int64_t start = mono_ms();
    rc = kmem_snap_read(fd, path, &calls, size_table, &sum, why);
    close(fd);
    if (rc != 0)
        return rc;
    db->last_bytes = sum.bytes;
    kvs__log(&db->opts,
             "mem: loaded %s: %" PRIu64 " keys (%" PRIu64 " expired ones left out) in %" PRId64
             " ms",
             path, sum.records - l.expired, l.expired, mono_ms() - start);
    return 0;
}
