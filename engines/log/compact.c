/*
 * Compaction and clear for the kvs engine.
 *
 * Compaction merges every segment into new ones holding only live records.
 * Under the write lock it seals the active segment and takes a fresh id A
 * (later writes get ids above A); every existing segment, all with ids
 * below A and all fsynced, is an input. Without the write lock it walks the
 * index and copies each live record that sits in an input into outputs
 * (A, 1), (A, 2), ... written as .tmp files with a hint each; fsyncs them,
 * renames them and fsyncs the directory. Then it points the index at the
 * copies in batches under the write lock, skipping keys written since they
 * were copied (a newer write wins), retires the inputs, and unlinks them
 * oldest first before fsyncing the directory again. Tombstones and clear
 * records are not copied: after a full merge nothing older remains for
 * them to hide.
 *
 * (The lead's design names the outputs (A, k) after the sealed segment A.
 * A fresh id does the same job and stays correct when two compactions run
 * with no write in between, where (A, k) names would collide.)
 *
 * Why every crash leaves files that replay to the acknowledged state:
 *  - An output record is a copy of a record R of key K that the index held
 *    when it was read, so R was K's last write so far: the last record of K
 *    in the inputs, and K's value unless a later segment (id > A) rewrote
 *    it. Outputs sort after every input and before every later segment.
 *  - Crash before the outputs are all renamed and the directory synced:
 *    every input is still there. .tmp files are deleted on open; an output
 *    already renamed only repeats, after the inputs, values the inputs end
 *    with, and later segments still come after it.
 *  - Crash while inputs are being unlinked: they go oldest first, so what
 *    remains is a suffix S of the inputs, replayed before the outputs. For a
 *    key whose input history ends in a put R, the outputs hold R (or a later
 *    segment decides). For a key whose input history ends removed (a
 *    tombstone or a clear record), the outputs hold nothing; S can only hold
 *    a put of it if S also holds the newer removal, because S is a suffix.
 *    So S, outputs, later segments replay to the same index as all inputs,
 *    later segments did. With S empty this is also the finished state.
 *  - A hint whose segment is missing belongs to a segment that was not yet
 *    renamed or was already unlinked; open deletes it. A segment without its
 *    hint is scanned, which replays the same records.
 * This needs the inputs to be every older segment on disk. The engine knows
 * every segment file (open loads them all); when a compaction or clear
 * cannot remove files it wrote or meant to delete, the store turns
 * read-only rather than let a later merge drop a tombstone that such a
 * forgotten file would need.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engines/fileio.h"
#include "hint.h"
#include "log_db.h"

void (*kvs__log_crash_hook)(int step);

/* Steps at which the crash hook is called, in order. */
enum {
    STEP_OUTPUTS_WRITTEN = 1, /* .tmp outputs and hints synced, nothing renamed */
    STEP_FIRST_RENAMED,       /* first output segment renamed, its hint not yet */
    STEP_RENAMED,             /* every output renamed, directory synced */
    STEP_INDEX_MOVED,         /* index points at outputs, inputs still on disk */
    STEP_FIRST_UNLINKED,      /* oldest input segment unlinked, its hint not yet */
    STEP_DONE,                /* every input unlinked, directory synced */
};

static void crash_point(int step)
{
    if (kvs__log_crash_hook)
        kvs__log_crash_hook(step);
}

#define COPY_BUF (256u << 10)
#define MOVE_BATCH 4096

/* An index entry to repoint once the outputs are in place. */
struct move {
    uint64_t hash;
    uint64_t from;
    uint32_t out; /* output number */
    uint32_t off;
};

struct output {
    struct log_seg *seg; /* the .tmp file while written; the mapped segment after */
    uint64_t size;
    struct log_hint_buf hint;
    bool seg_renamed, hint_renamed;
};

/* An input, remembered by name: the segment itself is retired early. */
struct input {
    uint64_t id;
    unsigned sub;
    uint64_t hint_bytes;
};

struct compaction {
    struct log_db *db;
    uint64_t id;
    uint64_t target; /* output size */
    struct input *in;
    size_t nin;
    struct output *out;
    size_t nout, out_cap;
    struct move *moves;
    size_t nmoves, moves_cap;
    unsigned char *buf; /* records waiting to be written to the last output */
    size_t buf_len;
};

/* ---- writing outputs ---- */

static int flush(struct compaction *c)
{
    if (c->buf_len == 0)
        return 0;
    struct iovec iov = {c->buf, c->buf_len};
    int rc = kvs__writev_all(c->out[c->nout - 1].seg->fd, &iov, 1);
    c->buf_len = 0;
    return rc;
}

static int open_output(struct compaction *c, uint64_t cap)
{
    if (c->nout == LOG_SEG_MAX_SUB)
        return KVS_ENOSPC;
    if (c->nout == c->out_cap) {
        size_t n = c->out_cap ? c->out_cap * 2 : 8;
        struct output *p = realloc(c->out, n * sizeof(*p));
        if (!p)
            return KVS_ENOMEM;
        c->out = p;
        c->out_cap = n;
    }
    struct output *o = &c->out[c->nout];
    memset(o, 0, sizeof(*o));
    unsigned sub = (unsigned)c->nout + 1;
    int rc = log_hint_begin(&o->hint, c->id, sub);
    if (rc == 0)
        rc = log_seg_create(c->db->dir_fd, c->id, sub, LOG_FILE_SEG_TMP, 0, &o->seg);
    if (rc != 0) {
        log_hint_buf_free(&o->hint);
        return rc;
    }
    o->size = LOG_SEG_HDR;
    o->seg->cap = cap;
    c->nout++;
    return 0;
}

/* Copy one verified record into the outputs and remember its move. */
static int copy_record(struct compaction *c, uint64_t hash, uint64_t from,
                       const struct log_rec *rec)
{
    struct output *o = c->nout ? &c->out[c->nout - 1] : NULL;
    if (!o || o->size + rec->len > o->seg->cap) {
        int rc = flush(c);
        if (rc == 0) {
            uint64_t cap = LOG_SEG_HDR + rec->len;
            rc = open_output(c, cap > c->target ? cap : c->target);
        }
        if (rc != 0)
            return rc;
        o = &c->out[c->nout - 1];
    }
    if (c->nmoves == c->moves_cap) {
        size_t n = c->moves_cap ? c->moves_cap * 2 : 1024;
        struct move *p = realloc(c->moves, n * sizeof(*p));
        if (!p)
            return KVS_ENOMEM;
        c->moves = p;
        c->moves_cap = n;
    }
    int rc = log_hint_add(&o->hint, hash, (uint32_t)o->size, (uint32_t)rec->len);
    if (rc != 0)
        return rc;
    c->moves[c->nmoves++] = (struct move){hash, from, (uint32_t)(c->nout - 1), (uint32_t)o->size};
    if (c->buf_len + rec->len > COPY_BUF) {
        rc = flush(c);
        if (rc != 0)
            return rc;
    }
    if (rec->len > COPY_BUF) {
        /* Too big for the buffer: straight from the input's mapping. */
        struct iovec iov = {(void *)rec->head, rec->len};
        rc = kvs__writev_all(o->seg->fd, &iov, 1);
    } else {
        memcpy(c->buf + c->buf_len, rec->head, rec->len);
        c->buf_len += rec->len;
    }
    o->size += rec->len;
    return rc;
}

/*
 * Walk the index and copy every live record that sits in an input. Runs
 * beside readers and writers: the table is read inside an epoch section,
 * and inputs cannot go away (only compaction and clear retire segments,
 * and they hold mlock).
 */
static int copy_live(struct compaction *c)
{
    struct log_db *db = c->db;
    unsigned token = log_epoch_enter(&db->epoch);
    const struct log_table *t = log_index_table(&db->index);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= t->mask; i++) {
        uint64_t loc = atomic_load_explicit(&t->slot[i].loc, memory_order_acquire);
        if (!log_loc_live(loc))
            continue;
        struct log_seg *s = log_seg_at(db, loc);
        if (!s || s->id >= c->id)
            continue; /* written after the compaction started */
        if ((i & 1023) == 0 && atomic_load(&db->closing)) {
            rc = KVS_ECLOSED;
            break;
        }
        uint64_t hash = atomic_load_explicit(&t->slot[i].hash, memory_order_relaxed);
        uint64_t off = log_loc_off(loc);
        uint64_t size = atomic_load(&s->size);
        struct log_rec rec;
        enum log_rec_status st =
            off < size ? log_rec_decode(s->map + off, size - off, &rec) : LOG_REC_SHORT;
        if (st != LOG_REC_OK || rec.type != LOG_REC_PUT) {
            /* Never copy damage into a fresh segment. */
            char name[LOG_SEG_NAME_LEN];
            log_file_name(name, s->id, s->sub, LOG_FILE_SEG);
            kvs__log(&db->opts,
                     "kvs: compaction stopped: corrupt record in %s/%s at offset %" PRIu64 " (%s)",
                     db->dir, name, off, log_rec_status_str(st));
            rc = KVS_ECORRUPT;
            break;
        }
        rc = copy_record(c, hash, loc, &rec);
    }
    log_epoch_exit(&db->epoch, token);
    if (rc == 0)
        rc = flush(c);
    return rc;
}

/* fsync every output and write its hint, all still as .tmp files. */
static int finish_outputs(struct compaction *c)
{
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        char name[LOG_SEG_NAME_LEN];
        log_file_name(name, c->id, (unsigned)i + 1, LOG_FILE_SEG_TMP);
        int rc = kvs__fdatasync(o->seg->fd);
        if (rc != 0) {
            log_fsync_failed(c->db, rc, name);
            return rc;
        }
        log_file_name(name, c->id, (unsigned)i + 1, LOG_FILE_HINT_TMP);
        bool fsync_failed = false;
        rc = log_hint_finish(&o->hint, o->size);
        if (rc == 0)
            rc = log_hint_write(c->db->dir_fd, name, &o->hint, &fsync_failed);
        if (rc != 0) {
            if (fsync_failed)
                log_fsync_failed(c->db, rc, name);
            return rc;
        }
    }
    return 0;
}

static int rename_outputs(struct compaction *c)
{
    int dfd = c->db->dir_fd;
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        unsigned sub = (unsigned)i + 1;
        char from[LOG_SEG_NAME_LEN], to[LOG_SEG_NAME_LEN];
        log_file_name(from, c->id, sub, LOG_FILE_SEG_TMP);
        log_file_name(to, c->id, sub, LOG_FILE_SEG);
        int rc = kvs__rename(dfd, from, to);
        if (rc != 0)
            return rc;
        o->seg_renamed = true;
        if (i == 0)
            crash_point(STEP_FIRST_RENAMED);
        log_file_name(from, c->id, sub, LOG_FILE_HINT_TMP);
        log_file_name(to, c->id, sub, LOG_FILE_HINT);
        rc = kvs__rename(dfd, from, to);
        if (rc != 0)
            return rc;
        o->hint_renamed = true;
    }
    int rc = kvs__fsync_dir(dfd);
    if (rc != 0)
        log_fsync_failed(c->db, rc, NULL);
    return rc;
}

/* Swap each written .tmp segment for the renamed file, mapped and
   registered so that index locations can point into it. */
static int map_outputs(struct compaction *c)
{
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        struct log_seg *s;
        int rc = log_seg_open(c->db->dir_fd, c->id, (unsigned)i + 1, &s);
        if (rc == 0) {
            rc = log_seg_register(c->db, s);
            if (rc != 0)
                log_seg_free(s);
        }
        if (rc != 0)
            return rc;
        s->hint_bytes = o->hint.len;
        log_seg_free(o->seg);
        o->seg = s;
    }
    return 0;
}

/*
 * Undo a compaction that did not reach its index switch: the inputs are
 * untouched, so removing every output restores the state before. Outputs
 * left behind unknown to the engine could later resurrect keys (see the top
 * of the file), so a failure here turns the store read-only.
 */
static void abandon(struct compaction *c)
{
    struct log_db *db = c->db;
    bool renamed = false;
    int rc = 0;
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        unsigned sub = (unsigned)i + 1;
        char name[LOG_SEG_NAME_LEN];
        log_file_name(name, c->id, sub, o->seg_renamed ? LOG_FILE_SEG : LOG_FILE_SEG_TMP);
        if (rc == 0)
            rc = kvs__unlink(db->dir_fd, name);
        log_file_name(name, c->id, sub, o->hint_renamed ? LOG_FILE_HINT : LOG_FILE_HINT_TMP);
        if (rc == 0)
            rc = kvs__unlink(db->dir_fd, name);
        renamed = renamed || o->seg_renamed || o->hint_renamed;
        /* A registered output is in the segment table: retire it. */
        if (o->seg->owner)
            log_seg_retire(db, o->seg);
        else
            log_seg_free(o->seg);
        o->seg = NULL;
    }
    if (rc == 0 && renamed)
        rc = kvs__fsync_dir(db->dir_fd);
    if (rc != 0) {
        atomic_store(&db->readonly, true);
        kvs__log(&db->opts,
                 "kvs: cannot remove the outputs of a failed compaction in %s (%s); refusing "
                 "writes until reopened",
                 db->dir, kvs_strerror(rc));
    }
}

/* Point the index at the copies, a batch per hold of the write lock so
   that writers are never held up for long. */
static void move_index(struct compaction *c)
{
    struct log_db *db = c->db;
    for (size_t i = 0; i < c->nmoves;) {
        pthread_mutex_lock(&db->wlock);
        for (size_t end = i + MOVE_BATCH; i < c->nmoves && i < end; i++) {
            const struct move *m = &c->moves[i];
            uint64_t to = log_loc(c->out[m->out].seg->sno, m->off);
            /* false: written since; the copy is stale and counts as such. */
            log_index_move_locked(&db->index, m->hash, m->from, to);
        }
        pthread_mutex_unlock(&db->wlock);
    }
}

/* Replace the inputs by the outputs in the segment list and retire the
   inputs; no index location points into them any more. */
static void swap_segments(struct compaction *c)
{
    struct log_db *db = c->db;
    pthread_mutex_lock(&db->wlock);
    /* The inputs are the first nin segments: everything newer was appended
       after them. Room for the outputs was reserved before. */
    for (size_t i = 0; i < c->nin; i++) {
        struct log_seg *s = db->segs[i];
        db->seg_bytes -= atomic_load(&s->size);
        db->hint_bytes -= s->hint_bytes;
        log_seg_retire(db, s);
    }
    memmove(&db->segs[c->nout], &db->segs[c->nin], (db->nsegs - c->nin) * sizeof(db->segs[0]));
    for (size_t i = 0; i < c->nout; i++) {
        db->segs[i] = c->out[i].seg;
        db->seg_bytes += c->out[i].size;
        db->hint_bytes += c->out[i].seg->hint_bytes;
    }
    db->nsegs = db->nsegs - c->nin + c->nout;
    db->compactions++;
    pthread_mutex_unlock(&db->wlock);
}

/* Unlink the inputs oldest first: the crash argument at the top needs what
   remains to be a suffix. */
static int unlink_inputs(struct compaction *c)
{
    int dfd = c->db->dir_fd;
    for (size_t i = 0; i < c->nin; i++) {
        char name[LOG_SEG_NAME_LEN];
        log_file_name(name, c->in[i].id, c->in[i].sub, LOG_FILE_SEG);
        int rc = kvs__unlink(dfd, name);
        if (rc != 0)
            return rc;
        if (i == 0)
            crash_point(STEP_FIRST_UNLINKED);
        if (c->in[i].hint_bytes) {
            log_file_name(name, c->in[i].id, c->in[i].sub, LOG_FILE_HINT);
            rc = kvs__unlink(dfd, name);
            if (rc != 0)
                return rc;
        }
    }
    int rc = kvs__fsync_dir(dfd);
    if (rc != 0)
        log_fsync_failed(c->db, rc, NULL);
    return rc;
}

/* Seal, take the compaction's id and the list of inputs. Returns 0, or 1
   when there is nothing to compact. */
static int start_locked(struct compaction *c)
{
    struct log_db *db = c->db;
    if (atomic_load(&db->readonly))
        return KVS_EREADONLY;
    int rc = log_seal_locked(db);
    if (rc != 0)
        return rc;
    if (db->nsegs == 0)
        return 1;
    if (db->next_id > LOG_SEG_MAX_ID)
        return KVS_ENOSPC;
    c->id = db->next_id++;
    c->in = malloc(db->nsegs * sizeof(c->in[0]));
    if (!c->in)
        return KVS_ENOMEM;
    c->nin = db->nsegs;
    for (size_t i = 0; i < c->nin; i++) {
        struct log_seg *s = db->segs[i];
        c->in[i] = (struct input){s->id, s->sub, s->hint_bytes};
    }
    /* Outputs no smaller than the segment limit, and few enough for the
       four-digit sub number. */
    uint64_t target = db->live_rec / (LOG_SEG_MAX_SUB - 1) + LOG_SEG_HDR;
    c->target = target > db->seg_max ? target : db->seg_max;
    if (c->target > LOG_SEG_CAP_BYTES)
        c->target = LOG_SEG_CAP_BYTES; /* 32-bit offsets; past ~20 TB open_output says ENOSPC */
    return 0;
}

static void compaction_free(struct compaction *c)
{
    for (size_t i = 0; i < c->nout; i++)
        log_hint_buf_free(&c->out[i].hint);
    free(c->out);
    free(c->in);
    free(c->moves);
    free(c->buf);
}

int log_compact(struct log_db *db)
{
    struct compaction c = {.db = db};
    pthread_mutex_lock(&db->mlock);
    pthread_mutex_lock(&db->wlock);
    int rc = start_locked(&c);
    pthread_mutex_unlock(&db->wlock);
    if (rc != 0)
        goto out;
    rc = KVS_ENOMEM;
    c.buf = malloc(COPY_BUF);
    if (!c.buf)
        goto out_abandon;
    rc = copy_live(&c);
    if (rc == 0)
        rc = finish_outputs(&c);
    if (rc != 0)
        goto out_abandon;
    crash_point(STEP_OUTPUTS_WRITTEN);
    rc = rename_outputs(&c);
    if (rc == 0)
        rc = map_outputs(&c);
    if (rc == 0) {
        pthread_mutex_lock(&db->wlock);
        rc = log_segs_reserve_locked(db, c.nout);
        pthread_mutex_unlock(&db->wlock);
    }
    if (rc != 0)
        goto out_abandon;
    crash_point(STEP_RENAMED);

    move_index(&c);
    swap_segments(&c);
    crash_point(STEP_INDEX_MOVED);
    rc = unlink_inputs(&c);
    if (rc != 0) {
        atomic_store(&db->readonly, true);
        kvs__log(&db->opts,
                 "kvs: cannot remove compacted segments from %s (%s); refusing writes until "
                 "reopened",
                 db->dir, kvs_strerror(rc));
        goto out;
    }
    crash_point(STEP_DONE);
    kvs__log(&db->opts, "kvs: compacted %zu segments of %s into %zu", c.nin, db->dir, c.nout);
    goto out;

out_abandon:
    abandon(&c);
out:
    pthread_mutex_unlock(&db->mlock);
    compaction_free(&c);
    return rc == 1 ? 0 : rc;
}

/*
 * Clear: append a clear record to a fresh segment and sync it, then drop
 * every older segment. Replay resets the index at a clear record, so every
 * crash state is right: before the record is synced the old state stands
 * (the clear was not acknowledged), after it the old segments replay to
 * nothing whether or not they are gone yet.
 */
int log_clear(struct log_db *db)
{
    pthread_mutex_lock(&db->mlock);
    pthread_mutex_lock(&db->wlock);
    int rc = KVS_EREADONLY;
    size_t nold = 0;
    struct input *old = NULL;
    struct log_table *fresh = NULL;
    if (atomic_load(&db->readonly))
        goto out_unlock;
    /* Allocated first: once the clear record is on disk nothing may fail. */
    rc = KVS_ENOMEM;
    old = malloc((db->nsegs + 1) * sizeof(*old));
    fresh = log_index_table_new();
    if (!old || !fresh)
        goto out_unlock;
    /* Sealing makes the clear record start a new segment. */
    rc = log_seal_locked(db);
    uint64_t loc;
    if (rc == 0)
        rc = log_append_locked(db, LOG_REC_CLEAR, kvs_slice_of(NULL, 0), kvs_slice_of(NULL, 0),
                               &loc);
    if (rc == 0 && db->opts.fsync != KVS_FSYNC_ALWAYS) {
        rc = kvs__fdatasync(db->active->fd);
        if (rc != 0) {
            char name[LOG_SEG_NAME_LEN];
            log_file_name(name, db->active->id, 0, LOG_FILE_SEG);
            log_fsync_failed(db, rc, name);
        } else {
            db->dirty = false;
        }
    }
    if (rc != 0)
        goto out_unlock;
    log_index_reset_locked(&db->index, fresh);
    fresh = NULL;
    /* Every segment but the new active one goes. */
    for (size_t i = 0; i + 1 < db->nsegs; i++) {
        struct log_seg *s = db->segs[i];
        old[nold++] = (struct input){s->id, s->sub, s->hint_bytes};
        log_seg_retire(db, s);
    }
    db->segs[0] = db->active;
    db->nsegs = 1;
    db->seg_bytes = atomic_load(&db->active->size);
    db->hint_bytes = 0;
    db->keys = db->live_rec = 0;
out_unlock:
    pthread_mutex_unlock(&db->wlock);
    if (rc == 0 && nold) {
        struct compaction c = {.db = db, .in = old, .nin = nold};
        rc = unlink_inputs(&c);
        if (rc != 0) {
            atomic_store(&db->readonly, true);
            kvs__log(&db->opts,
                     "kvs: cannot remove cleared segments from %s (%s); refusing writes until "
                     "reopened",
                     db->dir, kvs_strerror(rc));
        }
    }
    pthread_mutex_unlock(&db->mlock);
    log_index_table_free(fresh);
    free(old);
    return rc;
}
