/*
 * The kvs engine's handle and the helpers its files share.
 *
 * The engine is split by concern: log_engine.c (the vtable, reads and the
 * write path), recovery.c (open: replaying segments and hints),
 * compact.c (compaction and clear), background.c (the thread that fsyncs,
 * compacts and reclaims), with record, segment, hint, index and epoch below
 * them. Locks, in the order they are taken:
 *
 *   mlock     serialises compaction and clear (long-running maintenance)
 *   wlock     serialises writers: appends, index changes, the segment list
 *             and the counters of struct log_db
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
#define LOG_MAX_SEGS 65536u
/* Segment size limits: small for tests, offsets must stay 32-bit. */
#define LOG_SEG_MIN_BYTES 4096ull
#define LOG_SEG_CAP_BYTES (2048ull << 20)

struct log_db {
    struct kvs_db base; /* first: the handle the wrappers see */
    struct log_epoch epoch;
    kvs_options opts; /* a copy: the caller's is borrowed for open only */
    char *dir;
    int dir_fd; /* our own descriptor of the data directory */
    uint64_t seg_max;

    struct log_index index;
    /* Segment table: sno -> segment, read by readers inside an epoch
       section. An entry is cleared when its retired segment is freed. */
    _Atomic(struct log_seg *) *segtab;

    /* Protects everything down to the next blank line. */
    pthread_mutex_t wlock;
    struct log_seg *active; /* appended to; NULL until the next write */
    struct log_seg **segs;  /* every segment, in (id, sub) order */
    size_t nsegs, segs_cap;
    uint64_t next_id; /* id of the next segment or compaction */
    bool dirty;       /* appended to active since its last fsync */
    uint64_t keys;
    uint64_t live_rec;   /* bytes of the records of live keys */
    uint64_t seg_bytes;  /* bytes of all segment files */
    uint64_t hint_bytes; /* bytes of all hint files */
    uint64_t compactions;
    uint64_t writes; /* records appended since open */

    /* Set after a failed fsync (or a write that could not be undone):
       writes answer KVS_EREADONLY from then on. */
    atomic_bool readonly;

    /* Protects the free sno stack. */
    pthread_mutex_t sno_lock;
    unsigned *sno_free;
    size_t nfree;

    /* Serialises compaction and clear; taken before wlock. */
    pthread_mutex_t mlock;

    /* The background thread. bg_lock and bg_cond guard its sleep. */
    pthread_t bg;
    bool bg_running;
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    bool bg_stop;           /* under bg_lock */
    atomic_bool bg_compact; /* a writer saw compaction due */
    atomic_bool closing;    /* makes a running compaction give up */
};

static inline struct log_db *log_db_of(struct kvs_db *base)
{
    return (struct log_db *)base;
}

/* The segment an index location points into; inside an epoch section or
   under wlock. */
static inline struct log_seg *log_seg_at(struct log_db *db, uint64_t loc)
{
    return atomic_load_explicit(&db->segtab[log_loc_sno(loc)], memory_order_acquire);
}

/*
 * log_read_head - decode the header of the record at loc (which must be
 * readable: inside an epoch section or under wlock). Returns 0 or
 * KVS_ECORRUPT.
 */
int log_read_head(struct log_db *db, uint64_t loc, struct log_rec *rec);

/* Give s an sno and publish it in the segment table. Returns 0 or
   KVS_ENOSPC (LOG_MAX_SEGS segments open). */
int log_seg_register(struct log_db *db, struct log_seg *s);

/* Free s, and its table entry, once no reader can hold a location in it.
   The caller has made sure the index no longer points into s. */
void log_seg_retire(struct log_db *db, struct log_seg *s);

/* Make room for n more segments in the list. Returns 0 or KVS_ENOMEM. */
int log_segs_reserve_locked(struct log_db *db, size_t n);

/* A failed fsync of file name in the directory (NULL: the directory
   itself): refuse writes from now on, and say so in the log. */
void log_fsync_failed(struct log_db *db, int rc, const char *name);

/* Bytes on disk that no live key needs (wlock held). */
uint64_t log_stale_locked(const struct log_db *db);

/* Whether stale bytes pass both compaction thresholds (wlock held). */
bool log_compact_due_locked(const struct log_db *db);

/* recovery.c: build the index from the directory. On failure why says
   which file and offset. */
int log_recover(struct log_db *db, char *why);

/* compact.c */
int log_compact(struct log_db *db);
int log_clear(struct log_db *db);

/*
 * log_append_locked - append one record to the active segment (starting a
 * new one when it is full or absent) and make it as durable as the policy
 * asks. Returns 0 with *loc set, or an error with nothing acknowledged.
 */
int log_append_locked(struct log_db *db, unsigned type, kvs_slice key, kvs_slice val,
                      uint64_t *loc);

/* Seal the active segment: fsync it so that every segment but the newest
   is complete on disk, and stop appending to it. */
int log_seal_locked(struct log_db *db);

/* background.c */
int log_bg_start(struct log_db *db);
void log_bg_stop(struct log_db *db);
/* Ask the background thread to compact; cheap, any thread. */
void log_bg_kick(struct log_db *db);

/*
 * Test hook: when set, compaction calls it at each numbered step (see
 * compact.c) so that a test can kill the process there and check what a
 * reopen makes of the files left behind. NULL in normal operation.
 */
extern void (*kvs__log_crash_hook)(int step);

#endif
