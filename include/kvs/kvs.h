/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libkvs: open a store on any registered engine and use it.
 *
 * A store lives in one data directory. The directory records which engine
 * wrote it (a file named ENGINE); opening it with another engine fails with
 * KVS_EWRONGENGINE and touches nothing. An open store holds an exclusive lock
 * on its directory, so a second process opening it gets KVS_ELOCKED.
 *
 * Ownership:
 *  1. kvs_db_open() writes the handle to *dbp on success only; the handle is
 *     released by exactly one kvs_db_close(), which accepts NULL.
 *  2. Keys and values passed in are borrowed for the call (see slice.h).
 *  3. Values come out in a caller-owned kvs_buf; no function returns a
 *     pointer into engine memory.
 *
 * Thread safety:
 *  4. Every function taking a kvs_db except kvs_db_close() may be called by
 *     any number of threads at once. Readers never wait for writers or for a
 *     compaction.
 *  5. kvs_db_close() must not run concurrently with any other call on the
 *     same handle.
 *
 * Durability:
 *  6. When kvs_db_set()/kvs_db_remove() return 0 the change has been handed
 *     to the kernel: it survives a crash of the process (kill -9) under every
 *     fsync policy. The policy decides what survives a crash of the machine:
 *     KVS_FSYNC_ALWAYS everything acknowledged, KVS_FSYNC_EVERYSEC all but
 *     about the last second, KVS_FSYNC_NO whatever the kernel had written.
 *
 * Errors:
 *  7. Functions return 0 or a negative kvs_err (error.h); each says which.
 *     Besides those, any of them returns KVS_EINVAL for a NULL handle,
 *     out-pointer or function, and for a slice with a NULL pointer and a
 *     non-zero length.
 */
#ifndef KVS_KVS_H
#define KVS_KVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/error.h"
#include "kvs/slice.h"
#include "kvs/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the buffer that receives an explanation from kvs_db_open(). */
#define KVS_WHY_MAX 512

typedef struct kvs_db kvs_db;
typedef struct kvs_engine kvs_engine;

typedef enum kvs_fsync {
    KVS_FSYNC_ALWAYS,   /* fsync before acknowledging each write */
    KVS_FSYNC_EVERYSEC, /* fsync from a background thread once a second */
    KVS_FSYNC_NO,       /* never fsync; the kernel writes back when it likes */
} kvs_fsync;

typedef struct kvs_options {
    /* Engine to open with; NULL: the directory's recorded engine, else "kvs". */
    const char *engine;
    kvs_fsync fsync;
    /* Compaction runs when the store's stale bytes exceed the minimum, and
       rewrites the sealed segments whose own stale share exceeds the ratio,
       oldest first, so the directory stays within about twice the live data. */
    uint64_t compact_min_stale_bytes; /* default 1 MiB */
    double compact_min_stale_ratio;   /* stale / bytes of a segment; default 0.5 */
    /* Largest segment of the kvs engine, default 64 MiB; segments are sealed
       earlier, at about an eighth of the live data (at least 4 MiB). */
    uint64_t segment_max_bytes;
    /* Log one line per notable event (a cut torn tail, a compaction);
       NULL logs nothing. Called from any thread. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    /* Volatile engines (mem) only. The memory the data may take, in bytes,
       as Redis's maxmemory with noeviction: a set that starts while the
       store uses this much or more fails with KVS_EFULL (removes go on);
       0: no limit. */
    uint64_t max_memory;
    /* Seconds between snapshots while the store is written to (a snapshot
       is written only if something changed since the last one); 0: none,
       and none when the store is closed either. Default 5. */
    unsigned snapshot_interval;
} kvs_options;

typedef struct kvs_stats {
    uint64_t keys;         /* live keys (those expired but not yet removed included) */
    uint64_t expires;      /* of them, keys with an expiry time */
    int64_t expire_mean;   /* the mean of those expiry times (ms since the epoch), 0: none */
    uint64_t live_bytes;   /* bytes of live keys and values */
    uint64_t disk_bytes;   /* bytes the store occupies in its directory */
    uint64_t stale_bytes;  /* bytes on disk no longer reachable (overwritten, removed) */
    uint64_t compactions;  /* compactions completed since open */
    uint64_t memory_bytes; /* memory a volatile engine holds for the data; 0 for others */
} kvs_stats;

/* Fill *opts with the defaults above (fsync everysec). */
void kvs_options_init(kvs_options *opts);

/* Parse "always", "everysec" or "no". Returns 0 or KVS_EINVAL. */
int kvs_fsync_parse(const char *text, kvs_fsync *out);
/* The name of a policy as kvs_fsync_parse() accepts it. */
const char *kvs_fsync_name(kvs_fsync policy);

/*
 * kvs_engine_find - the engine registered under name, or NULL.
 */
const kvs_engine *kvs_engine_find(const char *name);

/*
 * kvs_engine_count / kvs_engine_at - walk the registered engines in
 * registration order: for (i = 0; i < kvs_engine_count(); i++) ...
 * kvs_engine_at() returns NULL when i is out of range.
 */
size_t kvs_engine_count(void);
const kvs_engine *kvs_engine_at(size_t i);

/* The engine's registered name, and its limits in bytes. */
const char *kvs_engine_name(const kvs_engine *engine);
size_t kvs_engine_max_key(const kvs_engine *engine);
size_t kvs_engine_max_value(const kvs_engine *engine);

/* Traits of an engine, for behaviour that differs by engine. */
#define KVS_ENGINE_VOLATILE 1u /* a process crash may lose writes since the last save */

/* The KVS_ENGINE_* traits of engine, or'ed. */
unsigned kvs_engine_traits(const kvs_engine *engine);

/* The name of the engine recorded in dir, written into name (size bytes).
   Returns 0, KVS_ENOTFOUND when dir has no record, or another error. */
int kvs_dir_engine(const char *dir, char *name, size_t size);

/*
 * kvs_db_open - open (creating if needed) the store in dir.
 * @dir:  data directory; created (one level) if missing.
 * @opts: options, or NULL for the defaults; borrowed for the call.
 * @dbp:  receives the handle on success.
 * @why:  NULL, or a buffer of KVS_WHY_MAX bytes that receives a one-line
 *        explanation on failure (naming the file and offset of a corruption,
 *        or both engines of a mismatch).
 * Returns 0, KVS_ENOENGINE, KVS_EWRONGENGINE, KVS_ELOCKED, KVS_ECORRUPT,
 * KVS_EVERSION, KVS_EIO, KVS_ENOSPC, KVS_EACCES or KVS_ENOMEM.
 */
int kvs_db_open(const char *dir, const kvs_options *opts, kvs_db **dbp, char *why);

/*
 * kvs_db_open_new - kvs_db_open() on a directory that must be new, as the
 * destination of a copy (kvs-convert, kvs-check --repair): dir is created
 * if missing and refused with KVS_ENOTEMPTY if it holds anything; with
 * other not NULL, dir must not be that directory (the copy's source:
 * KVS_EINVAL). Otherwise as kvs_db_open(), why explaining a failure.
 */
int kvs_db_open_new(const char *dir, const char *other, const kvs_options *opts, kvs_db **dbp,
                    char *why);

/* kvs_db_close - flush and close; accepts NULL. Returns 0 or an I/O error
   from the final sync (the handle is released either way). A volatile
   engine writes a snapshot first if anything changed since the last one
   and its snapshot_interval is not 0. */
int kvs_db_close(kvs_db *db);

/* kvs_db_close_nosave - kvs_db_close() without a volatile engine's final
   snapshot (Redis's SHUTDOWN NOSAVE): what changed since the last snapshot
   is lost. For other engines the same as kvs_db_close(). */
int kvs_db_close_nosave(kvs_db *db);

/* The engine a handle was opened with. */
const kvs_engine *kvs_db_engine(const kvs_db *db);

/*
 * Expiry. A key may carry an expiry time, absolute, in milliseconds since
 * the Unix epoch (Redis's PXAT; 0: none), stored with its value. Once
 * kvs_now_ms() reaches it the key is logically gone: gets and scans do not
 * see it. It stays stored, and counted by kvs_db_stats(), until something
 * removes it: a KVS_OP_EXPIRE (the server's active expiry), a write, or a
 * compaction that drops it. Absolute times are what engines store, so a
 * restarted store, or a copy, agrees on when a key expires.
 */

/* The clock expiry is judged by: CLOCK_REALTIME in milliseconds. */
int64_t kvs_now_ms(void);

/*
 * kvs_db_get - copy the value of key into *value.
 * Returns 0, KVS_ENOTFOUND (value untouched; also for a key whose expiry
 * time has passed), KVS_EKEYSIZE, KVS_ECORRUPT, KVS_EIO or KVS_ENOMEM.
 */
int kvs_db_get(kvs_db *db, kvs_slice key, kvs_buf *value);

/* kvs_db_get_ex - kvs_db_get(), and the key's expiry time into *expire_at
   (0: none) when found. */
int kvs_db_get_ex(kvs_db *db, kvs_slice key, kvs_buf *value, int64_t *expire_at);

/*
 * kvs_db_set - store value under key, replacing any previous value.
 * Returns 0, KVS_EKEYSIZE, KVS_EVALSIZE, KVS_ENOSPC, KVS_EIO, KVS_EREADONLY,
 * KVS_ENOMEM, or KVS_EFULL (max_memory refused it). An error means the write was not acknowledged;
 * after a failed fsync its record may still have reached the kernel and be there after a reopen (as
 * with Redis, an unacknowledged write may or may not survive).
 */
int kvs_db_set(kvs_db *db, kvs_slice key, kvs_slice value);

/* kvs_db_set_ex - kvs_db_set() with an expiry time (0: none; a time that
   has passed stores a key that is already logically gone). KVS_EINVAL for
   a negative time. As kvs_db_set() otherwise; a set without it clears
   the key's expiry, as in Redis. */
int kvs_db_set_ex(kvs_db *db, kvs_slice key, kvs_slice value, int64_t expire_at);

/*
 * kvs_db_remove - remove key.
 * Returns 0, KVS_ENOTFOUND, KVS_EKEYSIZE, KVS_ENOSPC, KVS_EIO or
 * KVS_EREADONLY.
 */
int kvs_db_remove(kvs_db *db, kvs_slice key);

/*
 * kvs_db_sync - flush everything acknowledged to stable storage now.
 * Returns 0 once an fsync covering every write acknowledged before the call
 * has succeeded; else the error of the fsync that failed (KVS_EIO,
 * KVS_ENOSPC), and that error from then on: the store refuses writes.
 */
int kvs_db_sync(kvs_db *db);

/* kvs_db_stats - fill *st. Counts are exact for keys, approximate for bytes
   while writes run concurrently. Returns 0, KVS_EIO or KVS_ENOMEM. */
int kvs_db_stats(kvs_db *db, kvs_stats *st);

/* One change of a batch passed to kvs_db_write(). */
typedef enum kvs_op_type {
    KVS_OP_SET,    /* key = value, expiring at expire_at (0: never) */
    KVS_OP_REMOVE, /* remove key */
    /* Remove key if it has an expiry time and that time is at or before
       expire_at (a time the caller read from kvs_now_ms()): how expired
       keys are removed, atomically against a write that renews them. */
    KVS_OP_EXPIRE,
} kvs_op_type;

typedef struct kvs_op {
    kvs_op_type type;
    kvs_slice key;
    kvs_slice value;   /* KVS_OP_SET only */
    int result;        /* out: 0, or KVS_ENOTFOUND for a remove of a missing key, or an
                          expire of a key that is missing or not expired, or
                          KVS_EFULL for a set refused by max_memory */
    int64_t expire_at; /* KVS_OP_SET and KVS_OP_EXPIRE: see above; >= 0 */
} kvs_op;

/*
 * kvs_db_write - apply n sets, removes and expires in order, as one write: one
 * append for the kvs engine, one transaction for lmdb, and one fsync for
 * the whole batch under KVS_FSYNC_ALWAYS. Used for MSET and for the writes
 * a server worker gathered in one turn.
 * Arguments are checked first (KVS_EKEYSIZE, KVS_EVALSIZE, KVS_EINVAL) and
 * nothing is applied if one is bad.
 * Returns 0 when every op was applied (each op's result says whether a
 * remove found its key, or that max_memory refused a set: KVS_EFULL, the
 * other ops applied), or an I/O error (KVS_ENOSPC, KVS_EIO,
 * KVS_EREADONLY) after which a prefix of the ops may have been applied,
 * never an op after a failed one. The same holds after a crash.
 */
int kvs_db_write(kvs_db *db, kvs_op *ops, size_t n);

/* kvs_db_clear - remove every key (FLUSHDB). Returns 0, KVS_ENOTSUP,
   KVS_ENOSPC, KVS_EIO, KVS_EREADONLY or KVS_ENOMEM. */
int kvs_db_clear(kvs_db *db);

/* kvs_db_compact - run a compaction now and wait for it (tests, tools).
   Returns 0, KVS_ENOTSUP for engines without compaction, KVS_EREADONLY,
   KVS_ECORRUPT (a damaged record it will not copy), KVS_EIO, KVS_ENOSPC or
   KVS_ENOMEM. */
int kvs_db_compact(kvs_db *db);

/*
 * kvs_db_save - make everything written so far durable now, whatever the
 * fsync policy (Redis's SAVE). For an engine that keeps its data in files
 * this is kvs_db_sync(); a volatile engine writes its snapshot.
 * Returns 0, KVS_ENOTSUP, or an I/O error (KVS_EIO, KVS_ENOSPC).
 */
int kvs_db_save(kvs_db *db);

/*
 * kvs_db_bgsave - start kvs_db_save() in the engine's background thread
 * and return (Redis's BGSAVE); kvs_db_save_status() tells how it went.
 * With schedule, a save already running does not refuse it: it starts
 * when that one ends (BGSAVE SCHEDULE).
 * Returns 0, KVS_EBUSY when a save is already running (or, with schedule,
 * one is already waiting), or KVS_ENOTSUP for an engine without
 * snapshots.
 */
int kvs_db_bgsave(kvs_db *db, bool schedule);

/* The state of a volatile engine's snapshots (Redis's INFO persistence). */
typedef struct kvs_save_status {
    uint64_t changes;    /* writes since the moment the last good snapshot holds */
    int64_t last_save;   /* ms since the epoch when the last good snapshot was
                            written, or when the store was opened */
    bool in_progress;    /* a snapshot is being written */
    int last_status;     /* 0, or the error of the last attempt */
    uint64_t saves;      /* good snapshots since open */
    int64_t last_ms;     /* how long the last good one took */
    uint64_t last_bytes; /* its size */
} kvs_save_status;

/* kvs_db_save_status - fill *st. Returns 0, or KVS_ENOTSUP for an engine
   without snapshots. */
int kvs_db_save_status(kvs_db *db, kvs_save_status *st);

/*
 * What kvs_db_info() calls for each figure of the engine: a name in
 * lower_case and its value, as INFO shows "name:value". Both are borrowed
 * for the call.
 */
typedef void (*kvs_info_fn)(void *ctx, const char *name, const char *value);

/*
 * kvs_db_info - the engine's own figures (segments, map size, memory...),
 * one call of fn each. Returns 0, or KVS_ENOTSUP for an engine without any.
 */
int kvs_db_info(kvs_db *db, kvs_info_fn fn, void *ctx);

/* Ask kvs_db_scan() for values too, not only keys. */
#define KVS_SCAN_VALUES 1u
/* Visit only the keys whose expiry time has passed (which a scan otherwise
   skips): what the server's active expiry looks for. */
#define KVS_SCAN_EXPIRED 2u

/*
 * What kvs_db_scan() calls for each key. key, and value when asked for
 * (else NULL), are borrowed for the call only; expire_at is the key's
 * expiry time (0: none). The function must not call into the same store.
 * Returns 0 to go on, or a negative kvs_err that ends the step
 * (kvs_db_scan() returns it).
 */
typedef int (*kvs_scan_fn)(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at);

/*
 * kvs_db_scan - one step of a pass over every key, in no order the caller
 * may rely on, as Redis's SCAN walks its keyspace.
 * @cursor: 0 to start a pass, else the *next of the previous step.
 * @count:  about how many keys the step visits (0 is taken as 1); a step
 *          may visit more or fewer, and none while the pass goes on.
 * @flags:  0, or KVS_SCAN_VALUES and/or KVS_SCAN_EXPIRED.
 * @fn, @ctx: called for each key of the step.
 * @next:   receives the cursor of the next step, 0 when the pass is over.
 * A pass needs no state beyond the cursor, takes no lock that writers or a
 * compaction wait for beyond one step, and ends even while keys are added.
 * Every key present from the first step to the last is visited at least
 * once (some may be visited twice); a key comes with a value it had.
 * Returns 0; the error fn returned; KVS_ECORRUPT or KVS_EIO when a record
 * could not be read; KVS_ENOMEM; or KVS_ENOTSUP for an engine that cannot
 * iterate. On error *next is untouched and the step may be retried.
 */
int kvs_db_scan(kvs_db *db, uint64_t cursor, size_t count, unsigned flags, kvs_scan_fn fn,
                void *ctx, uint64_t *next);

#ifdef __cplusplus
}
#endif
#endif
