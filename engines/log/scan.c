/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Iteration for the kvs engine: kvs_db_scan() over the index.
 *
 * The cursor is an order value: the index walks its slots in the order of
 * its keys (index.h), and every key whose order is below the cursor has
 * been visited.
 * A step is one walk of at most a bounded number of slots inside an epoch
 * section: no lock is taken, so writers and compaction carry on beside it,
 * and between steps the table may grow or shrink without the cursor losing
 * its meaning.
 *
 * A key and its value come from one record, read through the segment's
 * mapping: a value the key had when that record was written. Keys alone
 * are checked against the hash in their slot (a slot reused for another
 * key since the walk read it is skipped: that key was not present for the
 * whole pass); values are checked against the record's checksum.
 */
#include "klog_db.h"

/* A step reads at most this many slots per key asked for, so that a sparse
   table does not make one step long (Redis visits up to ten empty buckets
   per key of COUNT). */
#define SLOTS_PER_KEY 10
/* Keys in flight: the index walk finds a key, its record header is
   prefetched, and it is read this many keys later. Records lie in write
   order and the walk goes in index order, so each header is a cache miss
   of its own; overlapping them is most of a step's speed. */
#define AHEAD 16

struct pending {
    uint64_t hash, loc;
};

struct scan_step {
    struct klog_db *db;
    unsigned flags;
    int64_t now; /* expiry is judged by the clock at the step's start */
    kvs_scan_fn fn;
    void *ctx;
    struct pending ring[AHEAD];
    size_t head, n; /* the oldest pending key and how many there are */
};

/* Read one key's record and hand it to the caller's function. */
static int emit(struct scan_step *st, uint64_t hash, uint64_t loc)
{
    struct klog_seg *s = klog_seg_at(st->db, loc);
    if (!s)
        return 0; /* the location went away with its segment */
    uint64_t off = klog_loc_off(loc);
    uint64_t size = atomic_load_explicit(&s->size, memory_order_acquire);
    if (off >= size)
        return KVS_ECORRUPT;
    struct klog_rec rec;
    enum klog_rec_status rs = (st->flags & KVS_SCAN_VALUES)
                                  ? klog_rec_decode(s->map + off, size - off, &rec)
                                  : klog_rec_head(s->map + off, size - off, &rec);
    if (rs != KLOG_REC_OK || rec.type != KLOG_REC_PUT)
        return KVS_ECORRUPT;
    if (klog_key_hash(rec.key, rec.klen) != hash)
        return 0;
    bool expired = rec.expire_at && rec.expire_at <= st->now;
    if (expired != !!(st->flags & KVS_SCAN_EXPIRED))
        return 0;
    kvs_slice key = kvs_slice_of(rec.key, rec.klen);
    kvs_slice val = kvs_slice_of(rec.val, rec.vlen);
    return st->fn(st->ctx, key, (st->flags & KVS_SCAN_VALUES) ? &val : NULL, rec.expire_at);
}

static int emit_oldest(struct scan_step *st)
{
    struct pending p = st->ring[st->head];
    st->head = (st->head + 1) % AHEAD;
    st->n--;
    return emit(st, p.hash, p.loc);
}

/* The index walk met a key: start loading its record, and emit the key met
   AHEAD keys ago. Every key counts towards the step (one whose slot
   changed meanwhile is skipped when emitted). */
static int visit(void *ctx, uint64_t hash, uint64_t loc)
{
    struct scan_step *st = ctx;
    struct klog_seg *s = klog_seg_at(st->db, loc);
    if (s && s->map && klog_loc_off(loc) < s->map_len)
        __builtin_prefetch(s->map + klog_loc_off(loc));
    if (st->n == AHEAD) {
        int rc = emit_oldest(st);
        if (rc < 0)
            return rc;
    }
    st->ring[(st->head + st->n) % AHEAD] = (struct pending){hash, loc};
    st->n++;
    return 1;
}

int klog_scan(struct kvs_db *base, uint64_t cursor, size_t count, unsigned flags, kvs_scan_fn fn,
              void *ctx, uint64_t *next)
{
    struct klog_db *db = klog_db_of(base);
    struct scan_step st = {.db = db, .flags = flags, .now = kvs_now_ms(), .fn = fn, .ctx = ctx};
    size_t max_slots = count > SIZE_MAX / SLOTS_PER_KEY ? SIZE_MAX : count * SLOTS_PER_KEY;
    uint64_t end;
    unsigned token = klog_epoch_enter(&db->epoch);
    int rc =
        klog_index_scan(klog_index_table(&db->index), cursor, count, max_slots, visit, &st, &end);
    while (rc == 0 && st.n > 0)
        rc = emit_oldest(&st);
    klog_epoch_exit(&db->epoch, token);
    if (rc == 0)
        *next = end;
    return rc;
}
