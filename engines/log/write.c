/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The write path of the kvs engine: set, remove, batches of both, and the
 * group commit of the "always" policy.
 *
 * A write encodes its records, appends them under wlock to the active
 * segment with one write (so they are in the kernel before it returns) and
 * applies them to the index in log order. A batch is encoded into one
 * buffer and written with one writev (more only when it is larger than
 * WBUF_MAX or has to start a new segment).
 *
 * Group commit. Under "always" a record is applied only once an fsync
 * covers it: the writer queues its records (struct klog_pend), releases
 * wlock and waits until the log is durable past its last record. One
 * waiting writer at a time leads an fsync: it notes the log position
 * appended so far and the active segment under wlock, fsyncs that segment
 * holding no lock, then under wlock applies every queued record up to the
 * position noted, oldest first, and wakes the others. So one fsync serves
 * every writer that appended while the previous one ran, and no write is
 * visible to readers, or acknowledged, before an fsync covers it.
 *
 * The same leader protocol makes every other sync of the log under every
 * policy: kvs_db_sync(), the once-a-second sync of "everysec", close, and
 * compaction before it deletes what newer records superseded all wait for
 * db->durable to pass the position they need (klog_wait_durable). So a
 * caller that finds an fsync running waits for it and its result instead
 * of returning early, and a failed fsync fails every caller it should have
 * covered.
 *
 * Positions. db->lsn counts the bytes appended since open, across
 * segments. A segment is fsynced when it is sealed (klog_seal_locked), so an
 * fsync of the active segment covers everything appended before the moment
 * it was noted; a seal itself applies the whole queue. db->durable is the
 * position below which everything is synced and applied.
 *
 * Failures. A failed fsync, of the log or any other file of the store,
 * sets sync_err and makes the store read-only: every writer not yet
 * covered gets the error, and nothing is applied from then on, because the
 * data of a failed fsync may be gone from the page cache while a later
 * fsync succeeds (REFERENCES.md). A failed write is cut off again and
 * fails only its own writer; in a batch, the records written before it
 * stay (a prefix, as kvs_db_write() allows).
 *
 * Removes. A remove of a key that is neither in the index nor possibly in
 * the queue answers KVS_ENOTFOUND at once and writes nothing. Otherwise it
 * appends a tombstone, and whether it found the key is decided when the
 * tombstone is applied, in log order. A tombstone of a key that turned out
 * to be missing is harmless: replaying it removes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "klog_db.h"

/* A batch is written whenever this many encoded bytes are waiting. */
#define WBUF_MAX (1u << 20)
/* Records at least this long are written from the caller's buffers. */
#define DIRECT_MIN (64u << 10)
/* How many ops of a batch prefetch_batch() looks at: the lines it loads
   for more would be evicted before their turn. */
#define PREFETCH_MAX 256
/* How much of the queue a remove searches for its key. */
#define PEND_SCAN 64

static bool always(const struct klog_db *db)
{
    return db->opts.fsync == KVS_FSYNC_ALWAYS;
}

/* ---- applying records to the index ---- */

/* Apply one appended record. Returns 0 (*p->result set) or the error of a
   key comparison, the index unchanged. */
static int apply_locked(struct klog_db *db, const struct klog_pend *p)
{
    struct klog_key_match m = {.db = db, .key = kvs_slice_of(p->key, p->klen)};
    struct klog_index_pos pos;
    uint64_t old;
    bool put = p->type == KLOG_REC_PUT;
    int rc = klog_index_lookup_locked(&db->index, p->hash, klog_match_key, &m, put, &pos);
    if (rc != 0)
        return rc;
    *p->result = 0;
    if (put) {
        klog_index_put_locked(&db->index, &pos, p->hash, p->loc, &old);
        klog_forget_locked(db, old);
        if (old == KLOG_LOC_EMPTY)
            db->keys++;
        klog_count_live_locked(db, p->loc, p->len, p->expire_at);
    } else if (pos.found) {
        klog_index_remove_locked(&db->index, &pos, &old);
        klog_forget_locked(db, old);
        db->keys--;
    } else {
        *p->result = KVS_ENOTFOUND;
    }
    return 0;
}

static void after_write_locked(struct klog_db *db)
{
    if (klog_compact_due_locked(db))
        klog_bg_kick(db);
}

/* Apply the queued records that end at or below upto, oldest first. When
   an fsync covered them (synced), move durable past them and wake their
   writers; a batch under "everysec" or "no" is applied unsynced, and
   durable, which kvs_db_sync() trusts, must not move then. Returns 0, or
   the error that stopped it. */
static int apply_queue_locked(struct klog_db *db, uint64_t upto, bool synced)
{
    pthread_mutex_lock(&db->sync_lock);
    int rc = db->sync_err;
    pthread_mutex_unlock(&db->sync_lock);
    if (rc != 0)
        return rc;
    uint64_t done = upto;
    while (db->pend_head < db->pend_len && db->pend[db->pend_head].end <= upto) {
        const struct klog_pend *p = &db->pend[db->pend_head];
        rc = apply_locked(db, p);
        if (rc != 0) {
            done = p->end - p->len;
            klog_index_failed(db, rc);
            break;
        }
        db->pend_head++;
    }
    if (db->pend_head == db->pend_len)
        db->pend_head = db->pend_len = 0;
    after_write_locked(db);
    if (!synced)
        return rc;
    pthread_mutex_lock(&db->sync_lock);
    if (done > db->durable)
        db->durable = done;
    klog_wake_locked(db);
    pthread_mutex_unlock(&db->sync_lock);
    return rc;
}

void klog_durable_locked(struct klog_db *db, uint64_t upto)
{
    apply_queue_locked(db, upto, true);
}

/* ---- group commit ---- */

/* Fsync the active segment, covering everything appended so far, and apply
   what it covered. The epoch section keeps the segment and its descriptor
   alive should a compaction or clear retire it meanwhile. */
static void lead_fsync(struct klog_db *db)
{
    unsigned token = klog_epoch_enter(&db->epoch);
    pthread_mutex_lock(&db->wlock);
    uint64_t upto = db->lsn;
    struct klog_seg *a = db->active;
    pthread_mutex_unlock(&db->wlock);
    /* No active segment: the last seal covered and applied everything. */
    int rc = a ? kvs__fdatasync(a->fd) : 0;
    pthread_mutex_lock(&db->wlock);
    if (rc != 0)
        klog_seg_fsync_failed(db, a, rc);
    else
        apply_queue_locked(db, upto, true);
    pthread_mutex_unlock(&db->wlock);
    klog_epoch_exit(&db->epoch, token);
}

/* A writer waiting for an fsync, on its own condition variable so that a
   finished fsync wakes only the writers it covered, and one more to lead
   the next fsync for the others. Under sync_lock. */
struct klog_waiter {
    struct klog_waiter *next;
    uint64_t end;
    pthread_cond_t cond;
    bool queued;
};

/* After durable moved (or an fsync failed): wake the waiters now covered,
   or all of them after a failure, and, unless an fsync is running, the
   oldest of the rest, to lead the next one. */
void klog_wake_locked(struct klog_db *db)
{
    struct klog_waiter **pp = &db->waiters;
    bool leader = db->syncing;
    while (*pp) {
        struct klog_waiter *w = *pp;
        if (w->end <= db->durable || db->sync_err != 0 || !leader) {
            leader = leader || w->end > db->durable;
            *pp = w->next;
            w->queued = false;
            pthread_cond_signal(&w->cond);
        } else {
            pp = &w->next;
        }
    }
    db->waiters_tail = pp;
}

int klog_wait_durable(struct klog_db *db, uint64_t end)
{
    struct klog_waiter self = {.end = end};
    bool cond_made = false;
    int rc;
    pthread_mutex_lock(&db->sync_lock);
    for (;;) {
        if (db->durable >= end) {
            rc = 0;
            break;
        }
        if (db->sync_err != 0) {
            rc = db->sync_err;
            break;
        }
        if (!db->syncing) {
            db->syncing = true;
            pthread_mutex_unlock(&db->sync_lock);
            lead_fsync(db);
            pthread_mutex_lock(&db->sync_lock);
            db->syncing = false;
            klog_wake_locked(db);
            continue;
        }
        if (!cond_made) {
            pthread_cond_init(&self.cond, NULL);
            cond_made = true;
        }
        if (!self.queued) {
            self.queued = true;
            self.next = NULL;
            *db->waiters_tail = &self;
            db->waiters_tail = &self.next;
        }
        pthread_cond_wait(&self.cond, &db->sync_lock);
    }
    if (self.queued) {
        /* Left on an error while still listed (no waker removed it). */
        struct klog_waiter **pp = &db->waiters;
        while (*pp != &self)
            pp = &(*pp)->next;
        *pp = self.next;
        if (!self.next)
            db->waiters_tail = pp;
    }
    pthread_mutex_unlock(&db->sync_lock);
    if (cond_made)
        pthread_cond_destroy(&self.cond);
    return rc;
}

int klog_sync_all(struct klog_db *db)
{
    pthread_mutex_lock(&db->wlock);
    uint64_t end = db->lsn;
    pthread_mutex_unlock(&db->wlock);
    return klog_wait_durable(db, end);
}

/* ---- appending ---- */

int klog_seal_locked(struct klog_db *db)
{
    struct klog_seg *a = db->active;
    if (!a)
        return 0;
    /* Every record must be on disk before a newer segment holds any, so
       that only the newest segment can end in a torn record. Under
       "always" this fsync also covers the queued records. */
    int rc = kvs__fdatasync(a->fd);
    if (rc != 0) {
        klog_seg_fsync_failed(db, a, rc);
        return rc;
    }
    db->active = NULL;
    atomic_store(&a->synced, true);
    apply_queue_locked(db, db->lsn, true);
    klog_seg_check_locked(db, a);
    return 0;
}

/* Make the active segment able to take len more bytes. */
static int make_room_locked(struct klog_db *db, uint64_t len)
{
    struct klog_seg *a = db->active;
    if (a) {
        uint64_t size = atomic_load_explicit(&a->size, memory_order_relaxed);
        if (size + len <= a->cap &&
            (size + len <= klog_seg_target_locked(db) || size == KLOG_SEG_HDR))
            return 0;
    }
    int rc = klog_seal_locked(db);
    if (rc != 0)
        return rc;
    if (db->next_id > KLOG_SEG_MAX_ID)
        return KVS_ENOSPC;
    rc = klog_segs_reserve_locked(db, 1);
    if (rc != 0)
        return rc;
    /* A record larger than the limit gets a segment of its own. */
    uint64_t cap = db->seg_max > KLOG_SEG_HDR + len ? db->seg_max : KLOG_SEG_HDR + len;
    struct klog_seg *s;
    rc = klog_seg_create(db->dir_fd, db->next_id, 0, KLOG_FILE_SEG, cap, &s);
    if (rc != 0)
        return rc;
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, s->id, 0, KLOG_FILE_SEG);
    rc = klog_seg_register(db, s);
    if (rc != 0) {
        kvs__unlink(db->dir_fd, name);
        klog_seg_free(s);
        return rc;
    }
    /* Leave the id below the next segment free: compaction outputs written
       while this segment is active are named after it (compact.c). */
    db->next_id += 2;
    db->segs[db->nsegs++] = s;
    db->seg_bytes += KLOG_SEG_HDR;
    db->active = s;
    /* The new name must be durable before anything in it is acknowledged.
       On failure the segment stays: it holds nothing and replays as such. */
    rc = kvs__fsync_dir(db->dir_fd);
    if (rc != 0)
        klog_fsync_failed(db, rc, NULL);
    return rc;
}

/* Write len bytes (iov) at the end of the active segment, which has room
   for them. A failed write is cut off again, so that the file stays a
   sequence of whole records. */
static int write_locked(struct klog_db *db, const struct iovec *iov, int iovcnt, uint64_t len)
{
    struct klog_seg *a = db->active;
    uint64_t off = atomic_load_explicit(&a->size, memory_order_relaxed);
    int rc = kvs__writev_all(a->fd, iov, iovcnt);
    if (rc != 0) {
        int trc = kvs__ftruncate(a->fd, (off_t)off);
        if (trc != 0)
            klog_stop_writes(db, trc, "kvs: cannot cut a failed write off %s (%s); refusing writes",
                             db->dir, kvs_strerror(trc));
        return rc;
    }
    db->seg_bytes += len;
    db->lsn += len;
    atomic_store_explicit(&a->size, off + len, memory_order_release);
    return 0;
}

/* Append one record whose header is encoded; fills in p->loc and p->end. */
static int append_locked(struct klog_db *db, const struct iovec iov[3], struct klog_pend *p)
{
    int rc = make_room_locked(db, p->len);
    if (rc != 0)
        return rc;
    struct klog_seg *a = db->active;
    uint64_t off = atomic_load_explicit(&a->size, memory_order_relaxed);
    rc = write_locked(db, iov, 3, p->len);
    if (rc != 0)
        return rc;
    db->writes++;
    if (p->type == KLOG_REC_DEL)
        a->dels += p->len;
    p->loc = klog_loc(a->sno, (uint32_t)off);
    p->end = db->lsn;
    return 0;
}

int klog_append_locked(struct klog_db *db, unsigned type, kvs_slice key, kvs_slice val,
                       uint64_t *loc)
{
    unsigned char head[KLOG_REC_HDR_MAX];
    uint32_t hlen = klog_rec_encode(head, type, key, val, 0);
    struct iovec iov[3] = {
        {head, hlen},
        {(void *)key.data, key.len},
        {(void *)val.data, val.len},
    };
    struct klog_pend p = {.len = (uint32_t)(hlen + key.len + val.len), .type = type};
    int rc = append_locked(db, iov, &p);
    if (rc == 0)
        *loc = p.loc;
    return rc;
}

/* ---- the queue ---- */

/* Room in the queue for n more records. */
static int pend_reserve_locked(struct klog_db *db, size_t n)
{
    if (db->pend_cap - db->pend_len >= n)
        return 0;
    if (db->pend_head > 0) {
        db->pend_len -= db->pend_head;
        memmove(db->pend, db->pend + db->pend_head, db->pend_len * sizeof(db->pend[0]));
        db->pend_head = 0;
        if (db->pend_cap - db->pend_len >= n)
            return 0;
    }
    size_t cap = db->pend_cap ? db->pend_cap : 64;
    while (cap - db->pend_len < n)
        cap *= 2;
    struct klog_pend *p = realloc(db->pend, cap * sizeof(*p));
    if (!p)
        return KVS_ENOMEM;
    db->pend = p;
    db->pend_cap = cap;
    return 0;
}

/* Checks before appending records, puts of them new keys at most. */
static int begin_locked(struct klog_db *db, size_t records, size_t puts)
{
    if (atomic_load(&db->readonly))
        return KVS_EREADONLY;
    /* The index must take the queued puts without failing once their
       records are on disk. */
    int rc = klog_index_reserve_locked(&db->index, db->pend_len - db->pend_head + puts);
    if (rc == 0)
        rc = pend_reserve_locked(db, records);
    return rc;
}

/* Might the key be present once the queue is applied? 1 yes, 0 no, or an
   error of the key comparison. */
static int present_locked(struct klog_db *db, uint64_t hash, kvs_slice key)
{
    size_t queued = db->pend_len - db->pend_head;
    if (queued > PEND_SCAN)
        return 1;
    for (size_t i = db->pend_head; i < db->pend_len; i++) {
        if (db->pend[i].hash == hash)
            return 1;
    }
    struct klog_key_match m = {.db = db, .key = key};
    struct klog_index_pos pos;
    int rc = klog_index_lookup_locked(&db->index, hash, klog_match_key, &m, false, &pos);
    return rc < 0 ? rc : pos.found;
}

/* For KVS_OP_EXPIRE: is the key stored with an expiry time at or before
   at? 1 yes, 0 no (also while a write of it waits in the queue: it may
   renew the key; a later expire cycle looks again), or an error of the
   key comparison. */
static int expired_locked(struct klog_db *db, uint64_t hash, kvs_slice key, int64_t at)
{
    for (size_t i = db->pend_head; i < db->pend_len; i++) {
        if (db->pend[i].hash == hash)
            return 0;
    }
    struct klog_key_match m = {.db = db, .key = key};
    struct klog_index_pos pos;
    int rc = klog_index_lookup_locked(&db->index, hash, klog_match_key, &m, false, &pos);
    if (rc < 0)
        return rc;
    return pos.found && m.rec.expire_at != 0 && m.rec.expire_at <= at;
}

/* The records just appended: applied now, or queued for the next fsync. */
static int commit_locked(struct klog_db *db, struct klog_pend *p)
{
    if (always(db)) {
        db->pend[db->pend_len++] = *p;
        return 0;
    }
    int rc = apply_locked(db, p);
    if (rc != 0)
        klog_index_failed(db, rc);
    after_write_locked(db);
    return rc;
}

/* ---- set and remove ---- */

static struct klog_pend pend_of(unsigned type, kvs_slice key, kvs_slice val, int64_t expire_at,
                                int *result)
{
    return (struct klog_pend){
        .hash = klog_key_hash(key.data, key.len),
        .key = key.data,
        .klen = (uint32_t)key.len,
        .len = (uint32_t)(klog_rec_hlen(expire_at) + key.len + val.len),
        .type = type,
        .expire_at = expire_at,
        .result = result,
    };
}

int klog_set(struct kvs_db *base, kvs_slice key, kvs_slice val)
{
    struct klog_db *db = klog_db_of(base);
    int result = 0;
    struct klog_pend p = pend_of(KLOG_REC_PUT, key, val, 0, &result);
    unsigned char head[KLOG_REC_HDR_MAX];
    uint32_t hlen = klog_rec_encode(head, KLOG_REC_PUT, key, val, 0);
    struct iovec iov[3] = {
        {head, hlen},
        {(void *)key.data, key.len},
        {(void *)val.data, val.len},
    };
    pthread_mutex_lock(&db->wlock);
    int rc = begin_locked(db, 1, 1);
    if (rc == 0)
        rc = append_locked(db, iov, &p);
    if (rc == 0)
        rc = commit_locked(db, &p);
    pthread_mutex_unlock(&db->wlock);
    if (rc == 0 && always(db))
        rc = klog_wait_durable(db, p.end);
    return rc ? rc : result;
}

int klog_remove(struct kvs_db *base, kvs_slice key)
{
    struct klog_db *db = klog_db_of(base);
    int result = KVS_ENOTFOUND;
    kvs_slice none = kvs_slice_of(NULL, 0);
    struct klog_pend p = pend_of(KLOG_REC_DEL, key, none, 0, &result);
    pthread_mutex_lock(&db->wlock);
    int rc = begin_locked(db, 1, 0);
    if (rc == 0)
        rc = present_locked(db, p.hash, key);
    if (rc == 1) {
        unsigned char head[KLOG_REC_HDR_MAX];
        uint32_t hlen = klog_rec_encode(head, KLOG_REC_DEL, key, none, 0);
        struct iovec iov[3] = {{head, hlen}, {(void *)key.data, key.len}, {NULL, 0}};
        rc = append_locked(db, iov, &p);
        if (rc == 0)
            rc = commit_locked(db, &p);
        if (rc == 0 && always(db)) {
            pthread_mutex_unlock(&db->wlock);
            rc = klog_wait_durable(db, p.end);
            return rc ? rc : result;
        }
    }
    pthread_mutex_unlock(&db->wlock);
    return rc ? rc : result;
}

/* ---- batches ---- */

/* Records of a batch encoded in db->wbuf, not yet written. Their queue
   entries are the last `buffered` ones; a seal, which may apply the queue
   and empty it, only ever happens with none buffered. */
struct batch {
    struct klog_db *db;
    size_t used;     /* bytes in db->wbuf */
    size_t buffered; /* records in db->wbuf */
    size_t queued;   /* records of the batch queued so far */
};

/* Drop the buffered records and their queue entries. */
static void drop_locked(struct batch *b)
{
    b->db->pend_len -= b->buffered;
    b->queued -= b->buffered;
    b->used = b->buffered = 0;
}

/* Write the buffered records; on failure drop them. */
static int flush_locked(struct batch *b)
{
    int rc = 0;
    if (b->used) {
        struct iovec iov = {b->db->wbuf.data, b->used};
        rc = write_locked(b->db, &iov, 1, b->used);
    }
    if (rc != 0)
        drop_locked(b);
    b->used = b->buffered = 0;
    return rc;
}

/* Append the record of one op (queued in p) behind the buffered ones. */
static int stage_locked(struct batch *b, const kvs_op *op, kvs_slice val, struct klog_pend *p)
{
    struct klog_db *db = b->db;
    struct klog_seg *a = db->active;
    int rc;
    if (!a || atomic_load_explicit(&a->size, memory_order_relaxed) + b->used + p->len > a->cap ||
        b->used + p->len > WBUF_MAX || p->len >= DIRECT_MIN) {
        rc = flush_locked(b);
        if (rc == 0)
            rc = make_room_locked(db, p->len);
        if (rc != 0)
            return rc;
        a = db->active;
    }
    uint64_t off = atomic_load_explicit(&a->size, memory_order_relaxed) + b->used;
    p->loc = klog_loc(a->sno, (uint32_t)off);
    if (p->len >= DIRECT_MIN) {
        unsigned char head[KLOG_REC_HDR_MAX];
        uint32_t hlen = klog_rec_encode(head, p->type, op->key, val, p->expire_at);
        struct iovec iov[3] = {
            {head, hlen},
            {(void *)op->key.data, op->key.len},
            {(void *)val.data, val.len},
        };
        rc = write_locked(db, iov, 3, p->len);
        if (rc != 0)
            return rc;
    } else {
        rc = kvs_buf_reserve(&db->wbuf, b->used + p->len);
        if (rc != 0)
            return rc;
        unsigned char *dst = (unsigned char *)db->wbuf.data + b->used;
        uint32_t hlen = klog_rec_encode(dst, p->type, op->key, val, p->expire_at);
        if (op->key.len)
            memcpy(dst + hlen, op->key.data, op->key.len);
        if (val.len)
            memcpy(dst + hlen + op->key.len, val.data, val.len);
        b->used += p->len;
        b->buffered++;
    }
    db->writes++;
    if (p->type == KLOG_REC_DEL)
        a->dels += p->len;
    p->end = db->lsn + b->used;
    db->pend[db->pend_len++] = *p;
    b->queued++;
    return 0;
}

/* Append the records of the ops and queue them. *queued tells whether any
   was queued. */
static int stage_batch_locked(struct klog_db *db, kvs_op *ops, size_t n, bool *queued)
{
    struct batch b = {.db = db};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        kvs_op *op = &ops[i];
        bool set = op->type == KVS_OP_SET;
        kvs_slice val = set ? op->value : kvs_slice_of(NULL, 0);
        struct klog_pend p = pend_of(set ? KLOG_REC_PUT : KLOG_REC_DEL, op->key, val,
                                     set ? op->expire_at : 0, &op->result);
        if (!set) {
            rc = op->type == KVS_OP_EXPIRE ? expired_locked(db, p.hash, op->key, op->expire_at)
                                           : present_locked(db, p.hash, op->key);
            if (rc < 0)
                break;
            if (rc == 0) {
                op->result = KVS_ENOTFOUND;
                continue;
            }
        }
        rc = stage_locked(&b, op, val, &p);
    }
    /* On failure the buffered records are dropped: what was written before
       them is the prefix that stays. */
    if (rc == 0)
        rc = flush_locked(&b);
    else
        drop_locked(&b);
    *queued = b.queued > 0;
    return rc;
}

/* Before a batch takes the write lock: start the cache misses of its
   index probes, then those of the records their keys will be compared
   with, for many ops at once rather than one after the other under the
   lock. Only hints: a change meanwhile merely wastes one. */
static void prefetch_batch(struct klog_db *db, const kvs_op *ops, size_t n)
{
    uint64_t hash[PREFETCH_MAX];
    if (n > PREFETCH_MAX)
        n = PREFETCH_MAX;
    unsigned token = klog_epoch_enter(&db->epoch);
    const struct klog_table *t = klog_index_table(&db->index);
    for (size_t i = 0; i < n; i++) {
        hash[i] = klog_key_hash(ops[i].key.data, ops[i].key.len);
        klog_index_prefetch(t, hash[i]);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t loc = klog_index_first_loc(t, hash[i]);
        struct klog_seg *s = klog_loc_live(loc) ? klog_seg_at(db, loc) : NULL;
        if (s && s->map && klog_loc_off(loc) < s->map_len)
            __builtin_prefetch(s->map + klog_loc_off(loc));
    }
    klog_epoch_exit(&db->epoch, token);
}

int klog_write(struct kvs_db *base, kvs_op *ops, size_t n)
{
    struct klog_db *db = klog_db_of(base);
    if (n > 1)
        prefetch_batch(db, ops, n);
    size_t puts = 0;
    for (size_t i = 0; i < n; i++)
        puts += ops[i].type == KVS_OP_SET;
    pthread_mutex_lock(&db->wlock);
    bool queued = false;
    int rc = begin_locked(db, n, puts);
    if (rc == 0)
        rc = stage_batch_locked(db, ops, n, &queued);
    uint64_t end = db->lsn;
    int arc = 0;
    if (queued && !always(db))
        arc = apply_queue_locked(db, end, false);
    pthread_mutex_unlock(&db->wlock);
    /* Wait also after a failed write: the records before it are queued
       and borrow the caller's keys until they are applied or failed. */
    if (queued && always(db))
        arc = klog_wait_durable(db, end);
    return rc ? rc : arc;
}
