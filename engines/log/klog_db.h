/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine's handle and the helpers its files share.
 *
 * The engine is split by concern: klog_engine.c (the vtable, opening and
 * the read path), write.c (the write path and group commit), recovery.c
 * (open: replaying segments and hints), compact.c (compaction), select.c
 * (what to compact, and when), clear.c, background.c (the thread that
 * fsyncs, compacts and reclaims), with record, segment, hint, index and
 * epoch below them; check.c is the offline checker. Locks, in the order
 * they are taken:
 *
 *   mlock     serialises compaction and clear (long-running maintenance)
 *   wlock     serialises writers: appends, index changes, the segment list,
 *             the queue of records waiting for their fsync, and the
 *             counters of struct klog_db and of each segment
 *   sync_lock the group commit's state (durable, sync_err, syncing, the
 *             waiting writers)
 *   epoch.lock, sno_lock, bg_lock   leaf locks held only briefly
 *
 * Readers (get) take none of them.
 */
#ifndef KVS_LOG_LOG_DB_H
#define KVS_LOG_LOG_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "epoch.h"
#include "index.h"
#include "kvs/engine.h"
#include "record.h"
#include "segment.h"

/* Open segments at once; the size of the segment table. */
#define KLOG_MAX_SEGS 65536u
/* Segment size limits: small for tests, offsets must stay 32-bit. */
#define KLOG_SEG_MIN_BYTES 4096ull
#define KLOG_SEG_CAP_BYTES (2048ull << 20)

/*
 * A record appended to the log but not yet applied to the index: under the
 * "always" policy a record becomes visible only once an fsync covers it
 * (write.c). The key is borrowed from the writer, who waits until the
 * record is applied or its fsync failed.
 */
struct klog_pend {
    uint64_t end;  /* log position (db->lsn) just past the record */
    uint64_t loc;  /* where the record is */
    uint64_t hash; /* of the key */
    const void *key;
    uint32_t klen;
    uint32_t len;      /* bytes of the record */
    unsigned type;     /* KLOG_REC_PUT or KLOG_REC_DEL */
    int64_t expire_at; /* a put's expiry time, 0: none */
    int *result;       /* out: 0, or KVS_ENOTFOUND for a remove of a missing key */
};

struct klog_waiter;

struct klog_db {
    struct kvs_db base; /* first: the handle the wrappers see */
    struct klog_epoch epoch;
    kvs_options opts; /* a copy: the caller's is borrowed for open only */
    char *dir;
    int dir_fd; /* our own descriptor of the data directory */
    uint64_t seg_max;

    struct klog_index index;
    /* Segment table: sno -> segment, read by readers inside an epoch
       section. An entry is cleared when its retired segment is freed. */
    _Atomic(struct klog_seg *) *segtab;

    /* Protects everything down to the next blank line. */
    pthread_mutex_t wlock;
    struct klog_seg *active; /* appended to; NULL until the next write */
    struct klog_seg **segs;  /* every segment, in (id, sub) order */
    size_t nsegs, segs_cap;
    /* Slots of segs promised to the outputs of a running compaction:
       writers adding segments leave them free (klog_segs_reserve_locked). */
    size_t segs_held;
    uint64_t next_id; /* id of the next segment or compaction */
    uint64_t keys;
    uint64_t expires;             /* live keys whose record has an expiry time */
    unsigned __int128 expire_sum; /* the sum of those times */
    uint64_t live_rec;            /* bytes of the records of live keys */
    uint64_t seg_bytes;           /* bytes of all segment files */
    uint64_t hint_bytes;          /* bytes of all hint files */
    uint64_t compactions;
    uint64_t writes; /* records appended since open */
    uint64_t lsn;    /* log position: bytes appended since open */
    /* Records appended but not yet applied, oldest first: pend[pend_head]
       to pend[pend_len - 1]. Empty except under "always". */
    struct klog_pend *pend;
    size_t pend_head, pend_len, pend_cap;
    kvs_buf wbuf; /* a batch's records, encoded for one write (len unused) */
    bool seg_due; /* a segment is due for compaction (select.c) */
    /* Under mlock: compaction outputs are named (gap_id, sub) with sub
       above gap_sub (compact.c). */
    uint64_t gap_id;
    unsigned gap_sub;

    /* Set after a failed fsync (or a write that could not be undone):
       writes answer KVS_EREADONLY from then on. */
    atomic_bool readonly;

    /* Group commit under "always" (write.c). sync_lock protects durable,
       sync_err, syncing and the list of waiting writers. Taken after wlock
       when both are held. */
    pthread_mutex_t sync_lock;
    uint64_t durable; /* every record below this log position is synced and applied */
    int sync_err;     /* the first failed fsync: waiters get it, nothing is applied after */
    bool syncing;     /* a writer is leading an fsync */
    struct klog_waiter *waiters, **waiters_tail; /* oldest first */

    /* Protects the free sno stack. */
    pthread_mutex_t sno_lock;
    unsigned *sno_free;
    size_t nfree;

    /* Serialises compaction and clear; taken before wlock. */
    pthread_mutex_t mlock;

    /* The background threads: one compacts and reclaims, one syncs once a
       second under "everysec" (background.c). bg_lock guards their sleep:
       bg_cond the first's, sync_cond the second's. */
    pthread_t bg, syncer;
    bool bg_running, syncer_running;
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond, sync_cond;
    bool bg_stop;           /* under bg_lock */
    atomic_bool bg_compact; /* a writer saw compaction due */
    atomic_bool closing;    /* makes a running compaction give up */
};

static inline struct klog_db *klog_db_of(struct kvs_db *base)
{
    return (struct klog_db *)base;
}

/* The segment an index location points into; inside an epoch section or
   under wlock. */
static inline struct klog_seg *klog_seg_at(struct klog_db *db, uint64_t loc)
{
    return atomic_load_explicit(&db->segtab[klog_loc_sno(loc)], memory_order_acquire);
}

/*
 * klog_read_head - decode the header of the record at loc (which must be
 * readable: inside an epoch section or under wlock). Returns 0 or
 * KVS_ECORRUPT.
 */
int klog_read_head(struct klog_db *db, uint64_t loc, struct klog_rec *rec);

/* Give s an sno and publish it in the segment table. Returns 0 or
   KVS_ENOSPC (KLOG_MAX_SEGS segments open). */
int klog_seg_register(struct klog_db *db, struct klog_seg *s);

/* Free s, and its table entry, once no reader can hold a location in it.
   The caller has made sure the index no longer points into s. */
void klog_seg_retire(struct klog_db *db, struct klog_seg *s);

/* Make room for n more segments in the list beside the slots held for a
   running compaction (segs_held). Returns 0 or KVS_ENOMEM. */
int klog_segs_reserve_locked(struct klog_db *db, size_t n);

/*
 * klog_stop_writes - refuse writes from now on (KVS_EREADONLY): record rc
 * as the store's failure, which every writer waiting for an fsync gets
 * (write.c), and log the printf-style line, the first time only. Any
 * thread, wlock held or not (sync_lock is taken after it).
 */
void klog_stop_writes(struct klog_db *db, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A failed fsync of file name in the directory (NULL: the directory
   itself), of segment s, or a record the index could not follow (a key
   comparison failed on damage): klog_stop_writes() saying which. */
void klog_fsync_failed(struct klog_db *db, int rc, const char *name);
void klog_seg_fsync_failed(struct klog_db *db, const struct klog_seg *s, int rc);
void klog_index_failed(struct klog_db *db, int rc);

/* Wake the writers waiting for an fsync that durable now covers, or all of
   them after a failure (write.c). sync_lock held. */
void klog_wake_locked(struct klog_db *db);

/* Does the record at loc hold the key? A klog_match_fn for the index. */
struct klog_key_match {
    struct klog_db *db;
    kvs_slice key;
    struct klog_rec rec; /* the matching record's header */
};
int klog_match_key(void *ctx, uint64_t loc);

/* Bytes on disk that no live key needs (wlock held). */
uint64_t klog_stale_locked(const struct klog_db *db);

/* select.c: whether a compaction is due (wlock held), and noting that s
   may have become due after its live bytes shrank or it was sealed. */
bool klog_compact_due_locked(const struct klog_db *db);
void klog_seg_check_locked(struct klog_db *db, const struct klog_seg *s);
/* The size at which the active segment is sealed: a share of the live
   data, at most segment_max_bytes (wlock held). */
uint64_t klog_seg_target_locked(const struct klog_db *db);

/* recovery.c: build the index from the directory. On failure why says
   which file and offset. */
int klog_recover(struct klog_db *db, char *why);

/* compact.c: compact everything now, or (the background thread) the
   segments that are due, returning 1 when none is. clear.c: clear. */
int klog_compact(struct klog_db *db);
int klog_compact_step(struct klog_db *db);
int klog_clear(struct klog_db *db);

/* write.c */
int klog_set(struct kvs_db *base, kvs_slice key, kvs_slice val);
int klog_remove(struct kvs_db *base, kvs_slice key);
int klog_write(struct kvs_db *base, kvs_op *ops, size_t n);

/*
 * klog_append_locked - append one record to the active segment (starting a
 * new one when it is full or absent), handing it to the kernel; the caller
 * makes it durable and updates the index. Returns 0 with *loc set, or an
 * error with nothing appended.
 */
int klog_append_locked(struct klog_db *db, unsigned type, kvs_slice key, kvs_slice val,
                       uint64_t *loc);

/* Seal the active segment: fsync it so that every segment but the newest
   is complete on disk, apply the records that waited for that fsync, and
   stop appending to it. */
int klog_seal_locked(struct klog_db *db);

/* After an fsync that covered the log up to position upto (wlock held):
   apply the waiting records up to there and wake their writers. */
void klog_durable_locked(struct klog_db *db, uint64_t upto);

/*
 * klog_wait_durable - wait until everything appended below log position end
 * is synced (and, under "always", applied), leading an fsync of the active
 * segment when no other thread is syncing. Every fsync of the log goes
 * through here or a seal, so a caller never returns before the fsync that
 * covers it has succeeded. Returns 0, or the error of the failed fsync that
 * should have covered end (the store is read-only from then on). No lock
 * held.
 */
int klog_wait_durable(struct klog_db *db, uint64_t end);

/* klog_sync_all - klog_wait_durable() up to everything appended so far. */
int klog_sync_all(struct klog_db *db);

/* The record at old (a location the index held) is live no more: take it
   out of the accounting of live bytes (per segment, for compaction) and of
   expiry times. No-op for a location that is not live. */
void klog_forget_locked(struct klog_db *db, uint64_t old);

/* A record of len bytes at loc, expiring at expire_at, became live. */
void klog_count_live_locked(struct klog_db *db, uint64_t loc, uint64_t len, int64_t expire_at);

/* check.c: the engine's checker (kvs/check.h). */
int klog_check(const char *dir, int dir_fd, const struct kvs_salvage *salvage, FILE *out,
               struct kvs_check_report *r, char *why);

/* scan.c: one step of kvs_db_scan(). */
int klog_scan(struct kvs_db *base, uint64_t cursor, size_t count, unsigned flags, kvs_scan_fn fn,
              void *ctx, uint64_t *next);

/* background.c */
int klog_bg_start(struct klog_db *db);
void klog_bg_stop(struct klog_db *db);
/* Ask the background thread to compact; cheap, any thread. */
void klog_bg_kick(struct klog_db *db);

/*
 * Test hook: when set, compaction calls it at each numbered step (see
 * compact.c) so that a test can kill the process there and check what a
 * reopen makes of the files left behind. NULL in normal operation.
 */
extern void (*kvs__log_crash_hook)(int step);

/* Test hook: when set, compaction's walk of the index calls it for each
   key of an input it meets, with the hash the walk read from the key's
   slot, before reading the record, so that a test can change the index
   there. */
extern void (*kvs__log_walk_hook)(uint64_t hash);

#endif
