/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which segments the kvs engine compacts, and when (compact.c does it).
 *
 * The stale bytes of a segment are its size less its header, the records
 * the index points into it ("live") and the tombstones a compaction had to
 * keep in it ("pinned"). A segment other than the active one is due once
 * its stale bytes reach compact_min_stale_ratio of its size. The active
 * segment is due once they do and also pass compact_min_stale_bytes; it is
 * then sealed and compacted, so that a store much smaller than a segment
 * does not grow by a whole segment of garbage. Nothing is compacted while
 * the store's stale bytes are at most compact_min_stale_bytes.
 *
 * A background compaction takes due segments oldest first until their live
 * bytes reach one segment: each run is short, and the room it needs beside
 * its inputs (its outputs, until the inputs are deleted) is about one
 * segment. When compaction has fallen behind (a fast writer, a loaded
 * machine), a run takes up to half of the live bytes of all due segments,
 * so that its fixed cost, a few fsyncs, is spread over more. Under sustained overwrites a segment
 * is rewritten when about half of it is stale (with the default ratio), so the stale share of the
 * whole store stays below one half, where a compaction of everything at once needed the inputs, the
 * outputs and whatever was written meanwhile side by side (tests/log measures the directory).
 *
 * Walking from the oldest segment, an input is "covered" while every
 * segment before it is an input too. Compacting a covered segment drops its
 * tombstones (compact.c says why), so its pinned bytes count as stale; a
 * segment holding a clear record is an input only when covered.
 */
#include <stdlib.h>

#include "compact.h"

/* Segments are sealed at 1/SEG_SHARE of the live records, between SEG_MIN
   and segment_max_bytes. */
#define SEG_SHARE 8
#define SEG_MIN (4ull << 20)

/* Stale bytes of s; a covered segment's pinned tombstones are stale too. */
static uint64_t seg_stale(const struct klog_seg *s, bool covered)
{
    uint64_t size = atomic_load_explicit(&s->size, memory_order_relaxed);
    uint64_t need = KLOG_SEG_HDR + s->live + (covered ? 0 : s->pinned);
    return size > need ? size - need : 0;
}

static bool stale_enough(const struct klog_db *db, const struct klog_seg *s, bool covered)
{
    uint64_t stale = seg_stale(s, covered);
    uint64_t size = atomic_load_explicit(&s->size, memory_order_relaxed);
    return stale > 0 && (double)stale >= db->opts.compact_min_stale_ratio * (double)size;
}

static bool active_due(const struct klog_db *db)
{
    const struct klog_seg *a = db->active;
    return a && seg_stale(a, false) > db->opts.compact_min_stale_bytes &&
           stale_enough(db, a, false);
}

uint64_t klog_seg_target_locked(const struct klog_db *db)
{
    uint64_t target = db->live_rec / SEG_SHARE;
    if (target < SEG_MIN)
        target = SEG_MIN;
    return target < db->seg_max ? target : db->seg_max;
}

void klog_seg_check_locked(struct klog_db *db, const struct klog_seg *s)
{
    if (!db->seg_due && s != db->active && !s->input && stale_enough(db, s, false))
        db->seg_due = true;
}

bool klog_compact_due_locked(const struct klog_db *db)
{
    return klog_stale_locked(db) > db->opts.compact_min_stale_bytes &&
           (db->seg_due || active_due(db));
}

void klog_select_done_locked(struct klog_db *db)
{
    db->seg_due = false;
    for (size_t i = 0; i < db->nsegs; i++) {
        db->segs[i]->input = false;
        klog_seg_check_locked(db, db->segs[i]);
    }
}

/* Live bytes a background step copies at most: one segment's worth, or
   half of what all due segments hold when compaction has fallen behind,
   so that the fixed cost of a step (its fsyncs) is spread over more. */
static uint64_t step_budget_locked(const struct klog_db *db)
{
    uint64_t due = 0;
    for (size_t i = 0; i < db->nsegs && db->segs[i] != db->active; i++) {
        if (stale_enough(db, db->segs[i], false))
            due += db->segs[i]->live;
    }
    uint64_t target = klog_seg_target_locked(db);
    return due / 2 > target ? due / 2 : target;
}

/* Name the outputs: (gap, gap_sub + 1), ... with gap the free id below the
   active segment, or below the next one. */
static int name_outputs_locked(struct compaction *c)
{
    struct klog_db *db = c->db;
    uint64_t gap = (db->active ? db->active->id : db->next_id) - 1;
    if (gap != db->gap_id) {
        db->gap_id = gap;
        db->gap_sub = 0;
    }
    if (db->gap_sub > KLOG_SEG_MAX_SUB / 2) {
        /* Many compactions with nothing written between them: move to a
           fresh gap, skipping one id. */
        int rc = klog_seal_locked(db);
        if (rc != 0)
            return rc;
        if (db->next_id + 2 > KLOG_SEG_MAX_ID)
            return KVS_ENOSPC;
        db->next_id += 2;
        db->gap_id = db->next_id - 1;
        db->gap_sub = 0;
    }
    c->id = db->gap_id;
    c->sub0 = db->gap_sub;
    return 0;
}

int klog_select_locked(struct compaction *c, bool full)
{
    struct klog_db *db = c->db;
    int rc = 0;
    if (full || active_due(db))
        rc = klog_seal_locked(db);
    if (rc == 0)
        rc = name_outputs_locked(c);
    if (rc != 0)
        return rc;
    c->in = malloc((db->nsegs + 1) * sizeof(c->in[0]));
    if (!c->in)
        return KVS_ENOMEM;
    uint64_t budget = step_budget_locked(db);
    bool covered = true;
    uint64_t live = 0;
    for (size_t i = 0; i < db->nsegs; i++) {
        struct klog_seg *s = db->segs[i];
        if (s == db->active)
            break; /* always the newest */
        bool pick = full || stale_enough(db, s, covered);
        if (s->has_clear && !covered)
            pick = false;
        if (!pick) {
            covered = false;
            continue;
        }
        if (!full && c->nin > 0 && live + s->live > budget)
            break;
        s->input = true;
        s->covered = covered;
        live += s->live;
        c->in[c->nin++] = (struct input){
            .seg = s,
            .id = s->id,
            .sub = s->sub,
            .hint_bytes = s->hint_bytes,
            .size = atomic_load(&s->size),
            .covered = covered,
            .ordered = covered && (s->dels > 0 || s->has_clear),
        };
    }
    db->seg_due = false;
    if (c->nin == 0)
        return 1;
    /* Outputs no smaller than the segment limit, and few enough for the
       four-digit sub number; 32-bit offsets cap them (past ~10 TB of live
       data open_output says ENOSPC). */
    uint64_t target = live / (KLOG_SEG_MAX_SUB - c->sub0 - 1) + KLOG_SEG_HDR;
    c->target = target > db->seg_max ? target : db->seg_max;
    if (c->target > KLOG_SEG_CAP_BYTES)
        c->target = KLOG_SEG_CAP_BYTES;
    return 0;
}
