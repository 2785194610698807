/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A compaction of the kvs engine while it runs, shared by compact.c (the
 * steps, and why each crash is safe), select.c (which segments to compact)
 * and clear.c. Nothing outside engines/log/ includes this header.
 */
#ifndef KVS_LOG_COMPACT_H
#define KVS_LOG_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hint.h"
#include "klog_db.h"

/* An index entry to repoint once the outputs are in place, or to drop:
   an expired record of a covered input that was not copied. */
struct move {
    uint64_t hash;
    uint64_t from;
    uint32_t out; /* output number, or MOVE_DROP */
    uint32_t off;
    uint32_t len;
};
#define MOVE_DROP UINT32_MAX

struct output {
    struct klog_seg *seg; /* the .tmp file while written; the mapped segment after */
    unsigned sub;
    uint64_t size;
    uint64_t pinned; /* bytes of kept tombstones */
    struct klog_hint_buf hint;
    bool tombs; /* holds the kept tombstones; no hint */
    bool seg_renamed, hint_renamed;
};

/* An input, remembered by name too: the segment is retired before its
   files are unlinked. */
struct input {
    struct klog_seg *seg;
    uint64_t id;
    unsigned sub;
    uint64_t hint_bytes;
    uint64_t size;
    bool covered; /* every older segment is an input too */
    /* Covered, with tombstones or a clear record that the compaction drops:
       they hide puts in older inputs, which must be gone first. */
    bool ordered;
};

struct compaction {
    struct klog_db *db;
    int64_t now; /* records that expired by then may be dropped from covered inputs */
    uint64_t id; /* outputs are (id, sub0 + 1), (id, sub0 + 2), ... */
    unsigned sub0;
    uint64_t target; /* output size */
    struct input *in;
    size_t nin;
    struct output *out;
    size_t nout, out_cap;
    struct move *moves;
    size_t nmoves, moves_cap;
    unsigned char *buf; /* records waiting to be written to the last output */
    size_t buf_len;
    size_t walked;  /* input records met by the index walk so far */
    size_t dropped; /* expired keys dropped at the index switch */
};

/*
 * klog_select_locked - choose the inputs of c (marking them s->input) and
 * name its outputs: every segment for a full compaction (after sealing the
 * active one), else the stale segments select.c describes. Returns 0, 1
 * when there is nothing to compact, or an error.
 */
int klog_select_locked(struct compaction *c, bool full);

/* After a compaction ended either way: clear the input marks and look
   again whether a segment is due. */
void klog_select_done_locked(struct klog_db *db);

/* Unlink the files of the inputs oldest first, then fsync the directory. */
int klog_unlink_inputs(struct klog_db *db, const struct input *in, size_t nin);

/* Call the test hook at a numbered step. */
void klog_crash_point(int step);

#endif
