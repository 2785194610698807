/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Opening a kvs store: rebuild the index from the segment files.
 *
 * Files left by an interrupted compaction are settled first: *.tmp files
 * are deleted (a compaction never relies on them), a hint whose segment is
 * gone is deleted. Then every segment is replayed in (id, sub) order; a
 * compaction output with a valid hint is replayed from the hint, any other
 * segment is scanned record by record, checksums verified. Why replaying
 * old segments beside compaction outputs is correct is argued in compact.c.
 *
 * Only the newest segment may end in a torn record (every other segment was
 * fsynced when it was sealed). A bad record there is cut off and logged when
 * nothing but zeros follows it, which is what a crash leaves: a record cut
 * short, or a tail of zeros after a power loss. Any other bad record, in any
 * segment, fails the open with KVS_ECORRUPT naming the file and offset:
 * nothing is skipped silently.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fileio.h"
#include "hint.h"
#include "klog_db.h"
#include "listing.h"

/* Delete what an interrupted compaction left (recovery's leftover_fn). */
struct cleanup {
    struct klog_db *db;
    bool changed;
};

static int clean_leftover(void *ctx, const char *name, enum klog_leftover kind)
{
    struct cleanup *c = ctx;
    struct klog_db *db = c->db;
    if (kind == KLOG_LEFTOVER_FOREIGN)
        return 0;
    if (kind == KLOG_LEFTOVER_TMP)
        kvs__log(&db->opts, "kvs: deleting %s/%s, left by an interrupted compaction", db->dir,
                 name);
    else
        kvs__log(&db->opts, "kvs: deleting %s/%s: its segment is gone", db->dir, name);
    c->changed = true;
    return kvs__unlink(db->dir_fd, name);
}

/* Read the directory, deleting leftovers of interrupted compactions. */
static int list_dir(struct klog_db *db, struct klog_listing *l, char *why)
{
    struct cleanup c = {db, false};
    int rc = klog_list_dir(db->dir_fd, l, clean_leftover, &c);
    /* Make the deletions durable, so that no old file reappears beside a
       new one of the same name after a machine crash. */
    if (rc == 0 && c.changed)
        rc = kvs__fsync_dir(db->dir_fd);
    if (rc != 0)
        kvs__why(why, "cannot list or clean up %s: %s", db->dir, kvs_strerror(rc));
    return rc;
}

/* ---- replaying records into the index ---- */

/* Key comparison between the record being replayed and the record at an
   index location. The replayed key is read lazily: replaying a hint needs
   it only when two hashes collide. */
struct replay_match {
    struct klog_db *db;
    uint64_t loc; /* of the record being replayed (puts) */
    bool have_key;
    kvs_slice key;
};

static int replay_match(void *ctx, uint64_t loc)
{
    struct replay_match *m = ctx;
    struct klog_rec rec;
    if (!m->have_key) {
        if (klog_read_head(m->db, m->loc, &rec) != 0 || rec.type != KLOG_REC_PUT)
            return KVS_ECORRUPT;
        m->key = kvs_slice_of(rec.key, rec.klen);
        m->have_key = true;
    }
    if (klog_read_head(m->db, loc, &rec) != 0 || rec.type != KLOG_REC_PUT)
        return KVS_ECORRUPT;
    return rec.klen == m->key.len && (rec.klen == 0 || memcmp(rec.key, m->key.data, rec.klen) == 0);
}

static int replay_put(struct klog_db *db, uint64_t hash, uint64_t loc, uint64_t len,
                      int64_t expire_at, const struct klog_rec *rec)
{
    struct replay_match m = {.db = db, .loc = loc};
    if (rec) {
        m.key = kvs_slice_of(rec->key, rec->klen);
        m.have_key = true;
    }
    struct klog_index_pos pos;
    uint64_t old;
    int rc = klog_index_lookup_locked(&db->index, hash, replay_match, &m, true, &pos);
    if (rc != 0)
        return rc;
    klog_index_put_locked(&db->index, &pos, hash, loc, &old);
    klog_forget_locked(db, old);
    if (old == KLOG_LOC_EMPTY)
        db->keys++;
    klog_count_live_locked(db, loc, len, expire_at);
    return 0;
}

static int replay_del(struct klog_db *db, const struct klog_rec *rec)
{
    struct replay_match m = {.db = db, .have_key = true, .key = kvs_slice_of(rec->key, rec->klen)};
    struct klog_index_pos pos;
    uint64_t old;
    int rc = klog_index_lookup_locked(&db->index, klog_key_hash(rec->key, rec->klen), replay_match,
                                      &m, false, &pos);
    if (rc != 0 || !pos.found)
        return rc;
    klog_index_remove_locked(&db->index, &pos, &old);
    klog_forget_locked(db, old);
    db->keys--;
    return 0;
}

static int replay_clear(struct klog_db *db)
{
    struct klog_table *t = klog_index_table_new();
    if (!t)
        return KVS_ENOMEM;
    klog_index_reset_locked(&db->index, t);
    db->keys = db->live_rec = db->expires = 0;
    db->expire_sum = 0;
    for (size_t i = 0; i < db->nsegs; i++)
        db->segs[i]->live = 0;
    return 0;
}

/* ---- segments ---- */

/*
 * Whether the bad record at off in the newest segment is a torn tail: an
 * append cut short by a crash, possibly followed by whatever the file system
 * left after it (zeros, or garbage after a power loss). It is, unless a
 * valid record starts anywhere after it: then the damage is in the middle of
 * the log and must be reported, never cut. Runs only on the error path.
 */
static bool torn_tail(const struct klog_seg *s, uint64_t off)
{
    uint64_t size = atomic_load(&s->size);
    return klog_rec_find(s->map, size, off + 1) == size;
}

/*
 * Scan every record of s into the index. hint, when not NULL, collects the
 * entries of a rebuilt hint; *hint_ok is cleared if the segment holds
 * records a hint cannot describe.
 */
static int scan_seg(struct klog_db *db, struct klog_seg *s, const char *name, bool newest,
                    struct klog_hint_buf *hint, bool *hint_ok, char *why)
{
    uint64_t size = atomic_load(&s->size);
    uint64_t off = KLOG_SEG_HDR;
    while (off < size) {
        struct klog_rec rec;
        enum klog_rec_status st = klog_rec_decode(s->map + off, size - off, &rec);
        if (st != KLOG_REC_OK) {
            if (!newest || !torn_tail(s, off)) {
                kvs__why(why, "corrupt record in %s/%s at offset %" PRIu64 " (%s)", db->dir, name,
                         off, klog_rec_status_str(st));
                return KVS_ECORRUPT;
            }
            kvs__log(&db->opts,
                     "kvs: cutting torn record off %s/%s at offset %" PRIu64 " (%s, %" PRIu64
                     " bytes dropped)",
                     db->dir, name, off, klog_rec_status_str(st), size - off);
            int rc = klog_seg_truncate(s, off);
            if (rc != 0) {
                kvs__why(why, "cannot cut the torn tail off %s/%s: %s", db->dir, name,
                         kvs_strerror(rc));
                return rc;
            }
            break;
        }
        uint64_t loc = klog_loc(s->sno, (uint32_t)off);
        int rc = 0;
        if (rec.type == KLOG_REC_PUT) {
            uint64_t hash = klog_key_hash(rec.key, rec.klen);
            rc = replay_put(db, hash, loc, rec.len, rec.expire_at, &rec);
            if (rc == 0 && hint)
                rc = klog_hint_add(hint, hash, (uint32_t)off, (uint32_t)rec.len, rec.expire_at);
        } else {
            *hint_ok = false;
            s->has_clear = s->has_clear || rec.type == KLOG_REC_CLEAR;
            if (rec.type == KLOG_REC_DEL)
                s->dels += rec.len;
            rc = rec.type == KLOG_REC_DEL ? replay_del(db, &rec) : replay_clear(db);
        }
        if (rc != 0) {
            kvs__why(why, "cannot replay %s/%s at offset %" PRIu64 ": %s", db->dir, name, off,
                     kvs_strerror(rc));
            return rc;
        }
        off += rec.len;
    }
    return 0;
}

/* Replay s from its hint. Returns 0, 1 if the hint is unusable (logged;
   nothing replayed), or an error. */
static int replay_hint(struct klog_db *db, struct klog_seg *s, char *why)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, s->id, s->sub, KLOG_FILE_HINT);
    unsigned char *data;
    size_t len;
    int rc = klog_hint_read(db->dir_fd, name, &data, &len);
    if (rc != 0) {
        kvs__log(&db->opts, "kvs: ignoring hint %s/%s (%s); scanning its segment", db->dir, name,
                 kvs_strerror(rc));
        return 1;
    }
    struct klog_hint_view view;
    const char *bad = klog_hint_parse(data, len, s->id, s->sub, atomic_load(&s->size), &view);
    if (bad) {
        kvs__log(&db->opts, "kvs: ignoring hint %s/%s (%s); scanning its segment", db->dir, name,
                 bad);
        free(data);
        return 1;
    }
    for (size_t i = 0; rc == 0 && i < view.n; i++) {
        uint64_t hash;
        uint32_t off, rlen;
        int64_t at;
        klog_hint_entry(&view, i, &hash, &off, &rlen, &at);
        rc = replay_put(db, hash, klog_loc(s->sno, off), rlen, at, NULL);
    }
    free(data);
    if (rc != 0) {
        kvs__why(why, "cannot replay hint %s/%s: %s", db->dir, name, kvs_strerror(rc));
        return rc;
    }
    s->hint_bytes = len;
    return 0;
}

/* Scan a compaction output whose hint was missing or bad, and write the
   hint again. A hint that cannot be written only costs time at next open. */
static int scan_and_rehint(struct klog_db *db, struct klog_seg *s, const char *name, bool newest,
                           char *why)
{
    struct klog_hint_buf hint = {0};
    bool hint_ok = klog_hint_begin(&hint, s->id, s->sub) == 0;
    int rc = scan_seg(db, s, name, newest, hint_ok ? &hint : NULL, &hint_ok, why);
    if (rc == 0 && hint_ok && klog_hint_finish(&hint, atomic_load(&s->size)) == 0) {
        char hname[KLOG_SEG_NAME_LEN];
        klog_file_name(hname, s->id, s->sub, KLOG_FILE_HINT);
        int wrc = kvs__write_file_atomic(db->dir_fd, hname, hint.data, hint.len);
        if (wrc == 0)
            s->hint_bytes = hint.len;
        else
            kvs__log(&db->opts, "kvs: cannot rewrite hint %s/%s: %s", db->dir, hname,
                     kvs_strerror(wrc));
    }
    klog_hint_buf_free(&hint);
    return rc;
}

/*
 * Open, check and replay one segment. Returns 0 (with *out NULL when the
 * segment was an empty torn file and got deleted) or an error.
 */
static int load_seg(struct klog_db *db, const struct klog_seg_name *sn, bool newest,
                    struct klog_seg **out, char *why)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, sn->id, sn->sub, KLOG_FILE_SEG);
    *out = NULL;
    struct klog_seg *s;
    int rc = klog_seg_open(db->dir_fd, sn->id, sn->sub, &s);
    if (rc != 0) {
        kvs__why(why, "cannot open %s/%s: %s", db->dir, name, kvs_strerror(rc));
        return rc;
    }
    uint64_t size = atomic_load(&s->size);
    const char *what;
    rc = klog_seg_head_check(s->map, size, sn->id, sn->sub, &what);
    if (rc != 0) {
        /* A machine crash soon after the newest segment was created can
           leave its header cut short, zeros, or garbage: the header reaches
           the disk with the segment's first fsync, so nothing in it was
           synced. If no whole record follows, it held nothing to recover
           (kvs-check --repair would salvage nothing from it either). A bad
           header with records after it is damage: refused. */
        if (newest &&
            klog_rec_find(s->map, size, size < KLOG_SEG_HDR ? size : KLOG_SEG_HDR) == size) {
            kvs__log(&db->opts, "kvs: deleting %s/%s: torn before its header was complete", db->dir,
                     name);
            klog_seg_free(s);
            rc = kvs__unlink(db->dir_fd, name);
            if (rc == 0)
                rc = kvs__fsync_dir(db->dir_fd);
            if (rc != 0)
                kvs__why(why, "cannot delete %s/%s: %s", db->dir, name, kvs_strerror(rc));
            return rc;
        }
        kvs__why(why, "%s/%s: %s", db->dir, name, what);
        klog_seg_free(s);
        return rc;
    }
    rc = klog_seg_register(db, s);
    if (rc != 0) {
        kvs__why(why, "too many segments in %s (at most %u)", db->dir, KLOG_MAX_SEGS);
        klog_seg_free(s);
        return rc;
    }
    /* Registered: from here on s is freed with the segment list. */
    db->segs[db->nsegs++] = s;
    db->seg_bytes += size;
    if (sn->sub == 0) {
        bool unused = true;
        rc = scan_seg(db, s, name, newest, NULL, &unused, why);
    } else {
        rc = sn->hint ? replay_hint(db, s, why) : 1;
        if (rc == 1)
            rc = scan_and_rehint(db, s, name, newest, why);
    }
    /* The pages the replay read are the page cache's to keep or drop: do
       not leave them counted in this process's RSS. Gets fault in the ones
       they need again, from the page cache while it still has them. */
    if (s->map && s->map_len)
        madvise((void *)s->map, s->map_len, MADV_DONTNEED);
    /* A cut tail shrank the file. */
    db->seg_bytes -= size - atomic_load(&s->size);
    db->hint_bytes += s->hint_bytes;
    /* Every segment but the newest was synced when it was sealed (the
       newest is synced at the end of klog_recover). The tombstones of a
       compaction output are ones it had to keep. */
    atomic_store(&s->synced, !newest);
    if (sn->sub > 0)
        s->pinned = s->dels;
    *out = s;
    return rc;
}

int klog_recover(struct klog_db *db, char *why)
{
    struct klog_listing l = {0};
    pthread_mutex_lock(&db->wlock);
    /* No reader can reach the store before the open returns. */
    klog_index_set_opening_locked(&db->index, true);
    int rc = list_dir(db, &l, why);
    if (rc == 0) {
        rc = klog_segs_reserve_locked(db, l.n);
        if (rc != 0)
            kvs__why(why, "out of memory opening %s", db->dir);
    }
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        struct klog_seg *s;
        rc = load_seg(db, &l.segs[i], i + 1 == l.n, &s, why);
    }
    /* The newest segment may end in records that reached the page cache
       only (a process crash under "no"). Sync it, so that every segment
       but the active one is on disk: compaction relies on it when it drops
       a tombstone because its key was written again (compact.c). */
    struct klog_seg *newest = db->nsegs ? db->segs[db->nsegs - 1] : NULL;
    if (rc == 0 && newest && !atomic_load(&newest->synced)) {
        rc = kvs__fdatasync(newest->fd);
        if (rc != 0)
            kvs__why(why, "cannot sync the newest segment of %s: %s", db->dir, kvs_strerror(rc));
        atomic_store(&newest->synced, rc == 0);
    }
    db->next_id = l.max_id + 1;
    /* Compaction outputs go below the next segment, after those already
       there (compact.c). */
    db->gap_id = l.max_id;
    db->gap_sub = l.max_sub;
    for (size_t i = 0; rc == 0 && i < db->nsegs; i++)
        klog_seg_check_locked(db, db->segs[i]);
    klog_index_set_opening_locked(&db->index, false);
    pthread_mutex_unlock(&db->wlock);
    klog_listing_free(&l);
    return rc;
}
