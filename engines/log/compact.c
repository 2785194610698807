/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Compaction for the kvs engine.
 *
 * A compaction copies the live records of some sealed segments, its
 * inputs, into new segments, its outputs, and deletes the inputs. Which
 * segments are inputs is decided in select.c: the background thread
 * compacts incrementally, a few segments whose own stale share passed the
 * threshold at a time, so that the space a compaction needs beside its
 * inputs stays about one segment; kvs_db_compact() compacts everything.
 *
 * Naming. Outputs must replay after every input and before every record
 * written later. The write path leaves a free id below each segment it
 * creates (ids step by two), and outputs are named (gap, sub): gap is the
 * id below the active segment, or below the next one when there is none,
 * and sub counts on from the subs already used there. So outputs sort
 * after every sealed segment and before the active segment and everything
 * newer, and no name is ever used twice.
 *
 * Steps; the write lock is held only for short moments:
 *  1. under wlock: choose the inputs (select.c) and note the gap;
 *  2. copy the tombstones that must be kept (below) into a first output,
 *     then every live record of an input, found by walking the index, into
 *     more outputs, all written as .tmp files with a hint each (none for
 *     the tombstone output), fsync them;
 *  3. rename them, fsync the directory;
 *  4. point the index at the copies in batches under wlock, skipping keys
 *     written since they were copied (a newer write wins);
 *  5. replace the inputs by the outputs in the segment list and retire the
 *     inputs; sync the log up to the position reached then (the records
 *     that superseded what the inputs drop must be on disk before the
 *     inputs go); unlink the inputs oldest first, fsync the directory.
 *
 * Tombstones and clear records. A tombstone of key K in an input may be
 * dropped when nothing older of K can remain on disk without it to hide
 * it: when every older segment is an input too (the input is "covered"),
 * or when K is live at a record in a synced segment, which is newer than
 * the tombstone, on disk, and overrides anything older. Every segment but
 * the active one is synced (sealing syncs a segment, open syncs the
 * newest); the active one may hold records only the page cache has, and
 * replays after the gap anyway, so a tombstone of a key live there is
 * kept. A kept tombstone is copied, and its bytes stay needed in the output
 * ("pinned", not counted as stale there). A clear record voids everything
 * older, so a segment holding one is an input only when covered, and the
 * record is dropped.
 *
 * Why every crash leaves files that replay to the acknowledged state:
 *  - An expired put R of K in a covered input is not copied (the index
 *    drops K at the switch unless K was written since): every older record
 *    of K is in an input too, so once the inputs are gone nothing brings a
 *    value of K back, and until then R itself is still there.
 *  - A put in the outputs is a copy of a record R of key K that the index
 *    held when it was read, so R was K's newest record then; every later
 *    record of K lands in the active segment or a newer one, which replay
 *    after the outputs. A kept tombstone T of K was copied while K had no
 *    live record outside the active segment: either K was not live, and
 *    K's last record before the gap was a removal, so replaying T again
 *    there changes nothing; or K's newest record was in the active
 *    segment, which is synced before the tombstone output is renamed into
 *    place (sync_before_tombstones), so that record, which replays after
 *    T, is on disk whenever T is. The tombstone output replays before the
 *    put outputs: a put of K copied after T was kept is newer than T.
 *  - Crash before the outputs are all renamed and the directory synced:
 *    every input is still there. .tmp files are deleted on open; an output
 *    already renamed only repeats, at the gap, what the segments before it
 *    end with (previous point).
 *  - Crash while inputs are being unlinked: they go oldest first, so what
 *    is left of them is a suffix S of the inputs. (After a machine crash
 *    the directory may keep any subset of the unlinks it had not synced;
 *    the directory is synced before an input that hides puts of older
 *    inputs goes, which is all the argument below needs of the order.)
 *    Every record newer than the gap that superseded a record of an input
 *    was synced before the first unlink (step 5). Take a key K and its
 *    newest record X before the gap. X a put in an input: the outputs hold
 *    it and replay after S. X in a segment that is not an input: it is
 *    still there and newer than anything S holds of K. X a kept tombstone:
 *    the tombstone output holds it. X a tombstone dropped as covered, or a
 *    clear record (always covered): every segment older than X's is an
 *    input, so S holds a put of K only if it also holds X, which then
 *    hides it. A tombstone is never dropped for K being live when K's
 *    newest record is that tombstone. So S, the other segments and the
 *    outputs replay to the same index as before the compaction; with S
 *    empty this is also the finished state.
 *  - A hint whose segment is missing belongs to a segment that was not yet
 *    renamed or was already unlinked; open deletes it. A segment without
 *    its hint is scanned, which replays the same records.
 * This needs every segment on disk to be known to the engine (open loads
 * them all); when a compaction or clear cannot remove files it wrote or
 * meant to delete, the store turns read-only rather than let a later
 * compaction drop a tombstone that such a forgotten file would need.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compact.h"
#include "core/fileio.h"

void (*kvs__log_crash_hook)(int step);
void (*kvs__log_walk_hook)(uint64_t hash);

/* Steps at which the crash hook is called, in order. */
enum {
    STEP_OUTPUTS_WRITTEN = 1, /* .tmp outputs and hints synced, nothing renamed */
    STEP_FIRST_RENAMED,       /* first output segment renamed, its hint not yet */
    STEP_RENAMED,             /* every output renamed, directory synced */
    STEP_INDEX_MOVED,         /* index points at outputs, inputs still on disk */
    STEP_FIRST_UNLINKED,      /* oldest input segment unlinked, its hint not yet */
    STEP_DONE,                /* every input unlinked, directory synced */
};

void klog_crash_point(int step)
{
    if (kvs__log_crash_hook)
        kvs__log_crash_hook(step);
}

#define COPY_BUF (256u << 10)
#define MOVE_BATCH 4096

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

static int open_output(struct compaction *c, uint64_t cap, bool tombs)
{
    unsigned sub = c->sub0 + (unsigned)c->nout + 1;
    if (sub > KLOG_SEG_MAX_SUB)
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
    o->sub = sub;
    o->tombs = tombs;
    int rc = klog_hint_begin(&o->hint, c->id, sub);
    if (rc == 0)
        rc = klog_seg_create(c->db->dir_fd, c->id, sub, KLOG_FILE_SEG_TMP, 0, &o->seg);
    if (rc != 0) {
        klog_hint_buf_free(&o->hint);
        return rc;
    }
    o->size = KLOG_SEG_HDR;
    o->seg->cap = cap;
    c->nout++;
    return 0;
}

/* Append one verified record to the last output (opening a new one when
   it is full); returns its offset in *off. */
static int append_record(struct compaction *c, const struct klog_rec *rec, bool tombs,
                         uint32_t *off)
{
    struct output *o = c->nout ? &c->out[c->nout - 1] : NULL;
    if (!o || o->tombs != tombs || o->size + rec->len > o->seg->cap) {
        int rc = flush(c);
        if (rc == 0) {
            uint64_t cap = KLOG_SEG_HDR + rec->len;
            rc = open_output(c, cap > c->target ? cap : c->target, tombs);
        }
        if (rc != 0)
            return rc;
        o = &c->out[c->nout - 1];
    }
    int rc = 0;
    if (c->buf_len + rec->len > COPY_BUF)
        rc = flush(c);
    if (rc == 0 && rec->len > COPY_BUF) {
        /* Too big for the buffer: straight from the input's mapping. */
        struct iovec iov = {(void *)rec->head, rec->len};
        rc = kvs__writev_all(o->seg->fd, &iov, 1);
    } else if (rc == 0) {
        memcpy(c->buf + c->buf_len, rec->head, rec->len);
        c->buf_len += rec->len;
    }
    if (rc != 0)
        return rc;
    *off = (uint32_t)o->size;
    o->size += rec->len;
    if (tombs)
        o->pinned += rec->len;
    return 0;
}

/* Copy one live record into the outputs and remember its move. */
static int copy_record(struct compaction *c, const struct klog_seg *s, uint64_t hash, uint64_t from,
                       const struct klog_rec *rec)
{
    if (c->nmoves == c->moves_cap) {
        size_t n = c->moves_cap ? c->moves_cap * 2 : 1024;
        struct move *p = realloc(c->moves, n * sizeof(*p));
        if (!p)
            return KVS_ENOMEM;
        c->moves = p;
        c->moves_cap = n;
    }
    /* An expired record of a covered input is dropped, not copied: no
       older record of its key outlives the inputs, so once they are gone
       the key is simply absent (the index drops it at the switch). */
    if (s->covered && rec->expire_at && rec->expire_at <= c->now) {
        c->moves[c->nmoves++] = (struct move){hash, from, MOVE_DROP, 0, (uint32_t)rec->len};
        return 0;
    }
    uint32_t off;
    int rc = append_record(c, rec, false, &off);
    if (rc == 0)
        rc =
            klog_hint_add(&c->out[c->nout - 1].hint, hash, off, (uint32_t)rec->len, rec->expire_at);
    if (rc == 0)
        c->moves[c->nmoves++] =
            (struct move){hash, from, (uint32_t)(c->nout - 1), off, (uint32_t)rec->len};
    return rc;
}

static int corrupt(struct compaction *c, const struct klog_seg *s, uint64_t off,
                   enum klog_rec_status st)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, s->id, s->sub, KLOG_FILE_SEG);
    kvs__log(&c->db->opts,
             "kvs: compaction stopped: corrupt record in %s/%s at offset %" PRIu64 " (%s)",
             c->db->dir, name, off, klog_rec_status_str(st));
    return KVS_ECORRUPT;
}

/* Is K live at a record in a sealed segment (so on disk)? In an epoch
   section. 1 yes, 0 no, or an error. */
static int live_on_disk(struct klog_db *db, const struct klog_rec *t)
{
    struct klog_key_match m = {.db = db, .key = kvs_slice_of(t->key, t->klen)};
    uint64_t loc;
    int rc = klog_index_find(klog_index_table(&db->index), klog_key_hash(t->key, t->klen),
                             klog_match_key, &m, &loc);
    if (rc <= 0)
        return rc;
    /* The active segment may hold records that only the page cache has. */
    const struct klog_seg *s = klog_seg_at(db, loc);
    return s && atomic_load(&s->synced);
}

/* Copy the tombstones of the inputs that must be kept (see the top). The
   inputs cannot go away meanwhile: only compaction and clear retire
   segments, and they hold mlock. */
static int copy_tombstones(struct compaction *c)
{
    struct klog_db *db = c->db;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->nin; i++) {
        const struct klog_seg *s = c->in[i].seg;
        if (c->in[i].covered || s->dels == 0)
            continue;
        uint64_t size = atomic_load(&s->size);
        unsigned token = klog_epoch_enter(&db->epoch);
        for (uint64_t off = KLOG_SEG_HDR; rc == 0 && off < size;) {
            struct klog_rec rec;
            enum klog_rec_status st = klog_rec_head(s->map + off, size - off, &rec);
            if (st == KLOG_REC_OK && rec.type == KLOG_REC_DEL)
                st = klog_rec_decode(s->map + off, size - off, &rec);
            if (st != KLOG_REC_OK) {
                rc = corrupt(c, s, off, st);
                break;
            }
            off += rec.len;
            if (rec.type != KLOG_REC_DEL)
                continue;
            rc = live_on_disk(db, &rec);
            if (rc == 0) {
                uint32_t at;
                rc = append_record(c, &rec, true, &at);
            } else if (rc == 1) {
                rc = 0;
            }
        }
        klog_epoch_exit(&db->epoch, token);
    }
    return rc;
}

/* Does the index point at exactly this location? (Equal locations name
   one record, so no key comparison is needed.) */
static int same_loc(void *ctx, uint64_t loc)
{
    return loc == *(const uint64_t *)ctx;
}

/* Copy the live records of the inputs by reading the inputs: a probe of
   the index per record. */
static int scan_live(struct compaction *c)
{
    struct klog_db *db = c->db;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->nin; i++) {
        const struct klog_seg *s = c->in[i].seg;
        uint64_t size = atomic_load(&s->size);
        unsigned token = klog_epoch_enter(&db->epoch);
        for (uint64_t off = KLOG_SEG_HDR; rc == 0 && off < size;) {
            struct klog_rec rec;
            enum klog_rec_status st = klog_rec_head(s->map + off, size - off, &rec);
            if (st != KLOG_REC_OK) {
                rc = corrupt(c, s, off, st);
                break;
            }
            uint64_t at = off;
            off += rec.len;
            if (rec.type != KLOG_REC_PUT)
                continue;
            uint64_t loc = klog_loc(s->sno, (uint32_t)at), found;
            uint64_t hash = klog_key_hash(rec.key, rec.klen);
            rc = klog_index_find(klog_index_table(&db->index), hash, same_loc, &loc, &found);
            if (rc <= 0)
                continue; /* not live (rc 0), or cannot happen (same_loc never fails) */
            st = klog_rec_decode(s->map + at, size - at, &rec);
            rc = st == KLOG_REC_OK ? copy_record(c, s, hash, loc, &rec) : corrupt(c, s, at, st);
        }
        klog_epoch_exit(&db->epoch, token);
        if (rc == 0 && atomic_load(&db->closing))
            rc = KVS_ECLOSED;
    }
    if (rc == 0)
        rc = flush(c);
    return rc;
}

/* One key met by walk_live(): copy its record if it sits in an input. */
static int walk_one(void *ctx, uint64_t hash, uint64_t loc)
{
    struct compaction *c = ctx;
    struct klog_db *db = c->db;
    struct klog_seg *s = klog_seg_at(db, loc);
    if (!s || !s->input)
        return 0;
    if ((++c->walked & 1023) == 0 && atomic_load(&db->closing))
        return KVS_ECLOSED;
    if (kvs__log_walk_hook)
        kvs__log_walk_hook(hash);
    uint64_t off = klog_loc_off(loc);
    uint64_t size = atomic_load(&s->size);
    struct klog_rec rec;
    enum klog_rec_status st =
        off < size ? klog_rec_decode(s->map + off, size - off, &rec) : KLOG_REC_SHORT;
    if (st != KLOG_REC_OK || rec.type != KLOG_REC_PUT)
        return corrupt(c, s, off, st); /* never copy damage into a fresh segment */
    /* A writer may have reused the slot for another key since the walk
       read it: such a record is not live under this hash (the inputs stay
       mapped while we run, so reading it was safe). */
    if (klog_key_hash(rec.key, rec.klen) != hash)
        return 0;
    int rc = copy_record(c, s, hash, loc, &rec);
    return rc < 0 ? rc : 1;
}

/*
 * Walk the index and copy every live record that sits in an input. Runs
 * beside readers and writers: the table is read inside an epoch section,
 * and inputs cannot go away (see copy_tombstones).
 */
static int walk_live(struct compaction *c)
{
    struct klog_db *db = c->db;
    unsigned token = klog_epoch_enter(&db->epoch);
    uint64_t next;
    int rc =
        klog_index_scan(klog_index_table(&db->index), 0, SIZE_MAX, SIZE_MAX, walk_one, c, &next);
    klog_epoch_exit(&db->epoch, token);
    if (rc == 0)
        rc = flush(c);
    return rc;
}

/*
 * Copy every live record of the inputs, in the cheaper of two ways:
 * reading the inputs costs a probe of the index per record in them,
 * walking the index a look at every slot. A step of a background
 * compaction usually has far fewer records than the index has slots; a
 * full compaction reads everything anyway.
 */
static int copy_live(struct compaction *c)
{
    struct klog_db *db = c->db;
    uint64_t in_bytes = 0;
    for (size_t i = 0; i < c->nin; i++)
        in_bytes += c->in[i].size;
    pthread_mutex_lock(&db->wlock);
    uint64_t rec_len = db->keys ? db->live_rec / db->keys : KLOG_REC_HDR;
    uint64_t slots = klog_index_table(&db->index)->mask + 1;
    pthread_mutex_unlock(&db->wlock);
    /* A probe costs about as much as looking at 8 slots in a row. */
    bool scan = in_bytes / (rec_len ? rec_len : 1) * 8 < slots;
    return scan ? scan_live(c) : walk_live(c);
}

/* fsync every output and write its hint, all still as .tmp files. */
static int finish_outputs(struct compaction *c)
{
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        char name[KLOG_SEG_NAME_LEN];
        klog_file_name(name, c->id, o->sub, KLOG_FILE_SEG_TMP);
        int rc = kvs__fdatasync(o->seg->fd);
        if (rc != 0) {
            klog_fsync_failed(c->db, rc, name);
            return rc;
        }
        if (o->tombs)
            continue; /* a hint describes puts only; this one is scanned */
        klog_file_name(name, c->id, o->sub, KLOG_FILE_HINT_TMP);
        bool fsync_failed = false;
        rc = klog_hint_finish(&o->hint, o->size);
        if (rc == 0)
            rc = klog_hint_write(c->db->dir_fd, name, &o->hint, &fsync_failed);
        if (rc != 0) {
            if (fsync_failed)
                klog_fsync_failed(c->db, rc, name);
            return rc;
        }
    }
    return 0;
}

/*
 * A kept tombstone of K replays at the gap, after every sealed segment. It
 * was kept because K had no live record on disk: none at all, or one only
 * in the active segment, whose newest records may be in the page cache
 * alone. In the second case a sealed segment may hold a put of K newer
 * than the tombstone, which the tombstone would hide if the active
 * segment's put were lost: so before an output of tombstones appears, sync
 * the log up to where it is now.
 */
static int sync_before_tombstones(struct compaction *c)
{
    bool tombs = false;
    for (size_t i = 0; i < c->nout; i++)
        tombs = tombs || c->out[i].tombs;
    if (!tombs)
        return 0;
    pthread_mutex_lock(&c->db->wlock);
    uint64_t lsn = c->db->lsn;
    pthread_mutex_unlock(&c->db->wlock);
    return klog_wait_durable(c->db, lsn);
}

static int rename_outputs(struct compaction *c)
{
    int dfd = c->db->dir_fd;
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        char from[KLOG_SEG_NAME_LEN], to[KLOG_SEG_NAME_LEN];
        klog_file_name(from, c->id, o->sub, KLOG_FILE_SEG_TMP);
        klog_file_name(to, c->id, o->sub, KLOG_FILE_SEG);
        int rc = kvs__rename(dfd, from, to);
        if (rc != 0)
            return rc;
        o->seg_renamed = true;
        if (i == 0)
            klog_crash_point(STEP_FIRST_RENAMED);
        if (o->tombs)
            continue;
        klog_file_name(from, c->id, o->sub, KLOG_FILE_HINT_TMP);
        klog_file_name(to, c->id, o->sub, KLOG_FILE_HINT);
        rc = kvs__rename(dfd, from, to);
        if (rc != 0)
            return rc;
        o->hint_renamed = true;
    }
    int rc = kvs__fsync_dir(dfd);
    if (rc != 0)
        klog_fsync_failed(c->db, rc, NULL);
    return rc;
}

/* Swap each written .tmp segment for the renamed file, mapped and
   registered so that index locations can point into it. */
static int map_outputs(struct compaction *c)
{
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        struct klog_seg *s;
        int rc = klog_seg_open(c->db->dir_fd, c->id, o->sub, &s);
        if (rc == 0) {
            rc = klog_seg_register(c->db, s);
            if (rc != 0)
                klog_seg_free(s);
        }
        if (rc != 0)
            return rc;
        s->hint_bytes = o->tombs ? 0 : o->hint.len;
        s->pinned = s->dels = o->pinned;
        atomic_store(&s->synced, true);
        klog_seg_free(o->seg);
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
    struct klog_db *db = c->db;
    bool renamed = false;
    int rc = 0;
    for (size_t i = 0; i < c->nout; i++) {
        struct output *o = &c->out[i];
        char name[KLOG_SEG_NAME_LEN];
        klog_file_name(name, c->id, o->sub, o->seg_renamed ? KLOG_FILE_SEG : KLOG_FILE_SEG_TMP);
        if (rc == 0)
            rc = kvs__unlink(db->dir_fd, name);
        klog_file_name(name, c->id, o->sub, o->hint_renamed ? KLOG_FILE_HINT : KLOG_FILE_HINT_TMP);
        if (rc == 0)
            rc = kvs__unlink(db->dir_fd, name);
        renamed = renamed || o->seg_renamed || o->hint_renamed;
        /* A registered output is in the segment table: retire it. */
        if (o->seg->owner)
            klog_seg_retire(db, o->seg);
        else
            klog_seg_free(o->seg);
        o->seg = NULL;
    }
    if (rc == 0 && renamed)
        rc = kvs__fsync_dir(db->dir_fd);
    if (rc != 0)
        klog_stop_writes(db, rc,
                         "kvs: cannot remove the outputs of a failed compaction in %s (%s); "
                         "refusing writes until reopened",
                         db->dir, kvs_strerror(rc));
}

/* Point the index at the copies, a batch per hold of the write lock so
   that writers are never held up for long. */
static void move_index(struct compaction *c)
{
    struct klog_db *db = c->db;
    for (size_t i = 0; i < c->nmoves;) {
        pthread_mutex_lock(&db->wlock);
        for (size_t end = i + MOVE_BATCH; i < c->nmoves && i < end; i++) {
            const struct move *m = &c->moves[i];
            if (m->out == MOVE_DROP) {
                /* false: written since, and not expired any more. */
                if (klog_index_drop_locked(&db->index, m->hash, m->from)) {
                    klog_forget_locked(db, m->from);
                    db->keys--;
                    c->dropped++;
                }
                continue;
            }
            struct klog_seg *to = c->out[m->out].seg;
            /* false: written since; the copy is stale and counts as such. */
            if (klog_index_move_locked(&db->index, m->hash, m->from, klog_loc(to->sno, m->off))) {
                klog_seg_at(db, m->from)->live -= m->len;
                to->live += m->len;
            }
        }
        pthread_mutex_unlock(&db->wlock);
    }
}

static int by_name(const struct klog_seg *a, const struct klog_seg *b)
{
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->sub < b->sub ? -1 : a->sub > b->sub;
}

/* Replace the inputs by the outputs in the segment list, which stays in
   name order, and retire the inputs: no index location points into them
   any more. Returns the log position appended so far: every record that
   superseded a record of an input lies below it. */
static uint64_t swap_segments(struct compaction *c)
{
    struct klog_db *db = c->db;
    pthread_mutex_lock(&db->wlock);
    size_t kept = 0;
    for (size_t i = 0; i < db->nsegs; i++) {
        struct klog_seg *s = db->segs[i];
        if (!s->input) {
            db->segs[kept++] = s;
            continue;
        }
        db->seg_bytes -= atomic_load(&s->size);
        db->hint_bytes -= s->hint_bytes;
        klog_seg_retire(db, s);
    }
    /* Merge the outputs in, into the slots held for them since before. */
    size_t n = kept + c->nout, k = kept, o = c->nout;
    while (o > 0) {
        struct klog_seg *out = c->out[o - 1].seg;
        if (k > 0 && by_name(db->segs[k - 1], out) > 0) {
            db->segs[--n] = db->segs[--k];
        } else {
            db->segs[--n] = out;
            o--;
        }
    }
    for (size_t i = 0; i < c->nout; i++) {
        db->seg_bytes += c->out[i].size;
        db->hint_bytes += c->out[i].seg->hint_bytes;
    }
    db->nsegs = kept + c->nout;
    db->segs_held = 0;
    db->compactions++;
    klog_select_done_locked(db);
    uint64_t lsn = db->lsn;
    pthread_mutex_unlock(&db->wlock);
    return lsn;
}

/* Unlink inputs oldest first: the crash argument at the top needs what
   remains to be a suffix. After a machine crash, unlinks the directory has
   not synced may be undone in any combination, so before an input whose
   dropped tombstones or clear record hide puts in older inputs ("ordered")
   goes, the unlinks before it are made durable. */
int klog_unlink_inputs(struct klog_db *db, const struct input *in, size_t nin)
{
    int dfd = db->dir_fd;
    bool unsynced = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nin; i++) {
        if (in[i].ordered && unsynced) {
            rc = kvs__fsync_dir(dfd);
            if (rc != 0)
                break;
            unsynced = false;
        }
        char name[KLOG_SEG_NAME_LEN];
        klog_file_name(name, in[i].id, in[i].sub, KLOG_FILE_SEG);
        rc = kvs__unlink(dfd, name);
        if (rc != 0)
            return rc;
        unsynced = true;
        if (i == 0)
            klog_crash_point(STEP_FIRST_UNLINKED);
        if (in[i].hint_bytes) {
            klog_file_name(name, in[i].id, in[i].sub, KLOG_FILE_HINT);
            rc = kvs__unlink(dfd, name);
        }
    }
    if (rc == 0)
        rc = kvs__fsync_dir(dfd);
    if (rc != 0)
        klog_fsync_failed(db, rc, NULL);
    return rc;
}

static void compaction_free(struct compaction *c)
{
    for (size_t i = 0; i < c->nout; i++)
        klog_hint_buf_free(&c->out[i].hint);
    free(c->out);
    free(c->in);
    free(c->moves);
    free(c->buf);
}

static uint64_t ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ns = (int64_t)(t.tv_sec - t0->tv_sec) * 1000000000 + (t.tv_nsec - t0->tv_nsec);
    return ns > 0 ? (uint64_t)ns / 1000000 : 0;
}

/* Run one compaction of the inputs select.c chooses. Returns 0, 1 when
   there was nothing to compact, or an error. */
static int compact(struct klog_db *db, bool full)
{
    struct compaction c = {.db = db, .now = kvs_now_ms()};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&db->mlock);
    pthread_mutex_lock(&db->wlock);
    int rc = atomic_load(&db->readonly) ? KVS_EREADONLY : klog_select_locked(&c, full);
    pthread_mutex_unlock(&db->wlock);
    if (rc != 0)
        goto out;
    rc = KVS_ENOMEM;
    c.buf = malloc(COPY_BUF);
    if (!c.buf)
        goto out_abandon;
    rc = copy_tombstones(&c);
    if (rc == 0)
        rc = copy_live(&c);
    db->gap_sub = c.sub0 + (unsigned)c.nout; /* used, even if abandoned */
    if (rc == 0)
        rc = finish_outputs(&c);
    if (rc != 0)
        goto out_abandon;
    klog_crash_point(STEP_OUTPUTS_WRITTEN);
    rc = sync_before_tombstones(&c);
    if (rc == 0)
        rc = rename_outputs(&c);
    if (rc == 0)
        rc = map_outputs(&c);
    if (rc == 0) {
        /* Held until swap_segments: writers that add segments meanwhile
           reserve their slots beside these. */
        pthread_mutex_lock(&db->wlock);
        rc = klog_segs_reserve_locked(db, c.nout);
        if (rc == 0)
            db->segs_held = c.nout;
        pthread_mutex_unlock(&db->wlock);
    }
    if (rc != 0)
        goto out_abandon;
    klog_crash_point(STEP_RENAMED);

    move_index(&c);
    uint64_t superseded_below = swap_segments(&c);
    klog_crash_point(STEP_INDEX_MOVED);
    /* The inputs' records that were not copied are superseded by newer
       ones, which may be only in the page cache of the active segment:
       sync them before deleting what they superseded, or a machine crash
       would bring an older value back from a segment that stays. */
    rc = klog_wait_durable(db, superseded_below);
    if (rc == 0)
        rc = klog_unlink_inputs(db, c.in, c.nin);
    if (rc != 0) {
        klog_stop_writes(db, rc,
                         "kvs: cannot remove compacted segments from %s (%s); refusing writes "
                         "until reopened",
                         db->dir, kvs_strerror(rc));
        goto out;
    }
    klog_crash_point(STEP_DONE);
    uint64_t in_bytes = 0, out_bytes = 0;
    for (size_t i = 0; i < c.nin; i++)
        in_bytes += c.in[i].size;
    for (size_t i = 0; i < c.nout; i++)
        out_bytes += c.out[i].size;
    kvs__log(&db->opts,
             "kvs: compacted %zu segments of %s (%" PRIu64 " KiB) into %zu (%" PRIu64
             " KiB) in %" PRIu64 " ms, %zu expired keys dropped",
             c.nin, db->dir, in_bytes >> 10, c.nout, out_bytes >> 10, ms_since(&t0), c.dropped);
    goto out;

out_abandon:
    abandon(&c);
    pthread_mutex_lock(&db->wlock);
    klog_select_done_locked(db);
    pthread_mutex_unlock(&db->wlock);
out:
    pthread_mutex_unlock(&db->mlock);
    compaction_free(&c);
    return rc;
}

int klog_compact(struct klog_db *db)
{
    int rc = compact(db, true);
    return rc == 1 ? 0 : rc;
}

int klog_compact_step(struct klog_db *db)
{
    return compact(db, false);
}
